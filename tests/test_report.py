"""The run report: every figure comes from the run's files, missing ones are n/a, PNGs are real."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from wikigpt.errors import WikigptError
from wikigpt.report import build_report, cli, fmt, fmt_mfu, fmt_seconds, read_curve

ENV = [("python", "3.11.test"), ("gpu", "Imaginary H999 x8")]


def write_run(root: Path, *, metrics: dict[str, dict] | None = None, curves: bool = True, samples: bool = True):
    (root / "metrics").mkdir(parents=True, exist_ok=True)
    metrics = metrics if metrics is not None else {
        "extract": {"pages_seen": 431, "pages_kept": 377, "redirects": 21, "seconds": 3.25},
        "clean": {"docs_in": 377, "docs_out": 352, "near_duplicate_clusters": 9, "seconds": 1.5},
        "tokenizer": {
            "vocab_size": 4096,
            "tokens_per_word": 1.3712,
            "bytes_per_token": 4.0813,
            "gpt2_tokens_per_word": 1.5521,
            "gpt2_bytes_per_token": 3.6044,
            "longest_tokens": ["Aldermoor", "|pipe|"],
        },
        "pack": {"train_tokens": 812345, "val_tokens": 4321, "documents": 352},
        "train": {
            "n_params": 1234567,
            "param_groups": {"embedding": 1000000, "attention": 234567},
            "tokens_seen": 9876543,
            "tokens_per_s": 5432.1,
            "mfu": 0.4187,
            "train_seconds": 3725.0,
            "final_val_loss": 3.14159,
            "val_bpb": 1.2345,
            "device": "cpu",
        },
        "sft": {"steps": 77, "final_val_loss": 2.5},
        "eval": {
            "base": {"val_loss": 3.2, "perplexity": 24.53, "cloze_n": 40, "seconds": 2.0},
            "sft": {"val_loss": 2.9, "cloze_accuracy": 0.6875, "seconds": 1.5},
        },
    }
    for name, data in metrics.items():
        (root / "metrics" / f"{name}.json").write_text(json.dumps(data))
    if curves:
        (root / "plots").mkdir(exist_ok=True)
        (root / "plots" / "pretrain_loss.tsv").write_text(
            "step\ttrain_loss\tval_loss\tlr\n"
            "0\t8.3\t8.31\t0.0\n"
            "10\t6.1\t\t0.0003\n"
            "20\t5.2\t5.4\t0.0006\n"
        )
        (root / "plots" / "sft_loss.tsv").write_text("step\ttrain_loss\tval_loss\tlr\n0\t3.0\t3.1\t1e-4\n5\t2.6\t2.7\t5e-5\n")
    if samples:
        (root / "reports").mkdir(exist_ok=True)
        (root / "reports" / "samples.md").write_text("# Samples\n\n## base\n\nThe river Quennel flows north.\n")
    (root / "params.yaml").write_text("model:\n  n_layer: 2\n  n_embd: 64\ntrain:\n  lr: 0.0006\nruntime:\n  threads: 2\n")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_report_contains_the_runs_figures(tmp_path):
    write_run(tmp_path)
    out = build_report(tmp_path, tmp_path / "reports" / "report.md", tmp_path / "reports" / "figures", ENV)
    text = out.read_text()
    # environment as given
    assert "Imaginary H999 x8" in text and "3.11.test" in text
    # per-stage counts and timings
    assert "pages_kept: 377" in text and "3.2 s" in text
    assert "docs_out: 352" in text
    assert "1 h 02 min" in text  # train_seconds 3725
    # tokenizer fertility, ours vs GPT-2
    assert "| wikigpt BPE | 1.371 | 4.081 |" in text
    assert "| GPT-2 | 1.552 | 3.604 |" in text
    assert "Vocabulary size: 4,096." in text
    # model size, throughput, MFU (a fraction shown as a percentage)
    assert "| parameters | 1,234,567 |" in text
    assert "| parameter groups | embedding 1,000,000, attention 234,567 |" in text
    assert "| eval | 3.5 s | base.cloze_n: 40 |" in text  # per-model times summed, nested counts
    assert "| tokens / s | 5,432 |" in text
    assert "| MFU | 41.9% |" in text
    assert "| final val loss | 3.142 |" in text
    # models side by side; a metric one model lacks is n/a
    assert "| metric | base | sft |" in text
    assert "| val_loss | 3.2 | 2.9 |" in text and "| cloze_accuracy | n/a | 0.6875 |" in text
    # every metric, nested ones flattened
    assert "| base.perplexity | 24.53 |" in text
    assert "| sft.cloze_accuracy | 0.6875 |" in text
    assert "Aldermoor" in text and "\\|pipe\\|" in text  # list value, table-safe
    # samples embedded with headings nested under the report's
    assert "The river Quennel flows north." in text
    assert "\n### Samples\n" in text and "\n#### base\n" in text
    # params used (stage sections only, not runtime)
    assert "n_layer: 2" in text and "lr: 0.0006" in text and "threads" not in text
    # figures linked relative to the report, and real PNGs
    assert "![Pretraining loss](figures/pretrain_loss.png)" in text
    assert "![SFT loss](figures/sft_loss.png)" in text
    for name in ("pretrain_loss", "sft_loss"):
        assert png_size(tmp_path / "reports" / "figures" / f"{name}.png") == (700, 400)


def test_missing_inputs_are_na_never_invented(tmp_path):
    write_run(tmp_path, metrics={"train": {"tokens_per_s": 100.0}}, curves=False, samples=False)
    text = build_report(tmp_path, tmp_path / "r.md", tmp_path / "figs", ENV).read_text()
    assert "| MFU | n/a |" in text
    assert "| parameters | n/a |" in text
    assert "| wikigpt BPE | n/a | n/a |" in text
    assert "not run (no `metrics/extract.json`)" in text
    assert "Pretraining loss: n/a" in text
    assert "n/a (`reports/samples.md` missing)" in text
    assert "| tokens / s | 100 |" in text
    assert list((tmp_path / "figs").iterdir()) == []


def test_unreadable_metrics_file_is_reported_not_fatal(tmp_path):
    write_run(tmp_path)
    (tmp_path / "metrics" / "pack.json").write_text("{not json")
    text = build_report(tmp_path, tmp_path / "r.md", tmp_path / "figs", ENV).read_text()
    assert "metrics/pack.json: unreadable" in text
    assert "pages_kept: 377" in text


def test_read_curve_handles_gaps_and_rejects_bad_rows(tmp_path):
    p = tmp_path / "c.tsv"
    p.write_text("step\ttrain_loss\tval_loss\tlr\n0\t2.0\t\t0.1\n1\t1.5\t1.7\t0.05\n")
    cols = read_curve(p)
    assert cols["step"] == [0.0, 1.0] and cols["val_loss"] == [None, 1.7]
    p.write_text("step\ttrain_loss\n0\t1\t2\n")
    with pytest.raises(WikigptError, match=r"c.tsv: line 2 has 3 fields"):
        read_curve(p)
    p.write_text("a,b\n1,2\n")
    with pytest.raises(WikigptError, match="'step' column"):
        read_curve(p)


def test_bad_curve_is_a_problem_line_and_no_figure(tmp_path):
    write_run(tmp_path)
    (tmp_path / "plots" / "sft_loss.tsv").write_text("step\ttrain_loss\n0\n")
    text = build_report(tmp_path, tmp_path / "r.md", tmp_path / "figs", ENV).read_text()
    assert "sft_loss.tsv: line 2 has 1 fields" in text
    assert "SFT loss: n/a" in text
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["pretrain_loss.png"]


def test_formatting():
    assert fmt(1234567) == "1,234,567"
    assert fmt(0.000012) == "1.200e-05"
    assert fmt(None) == "n/a" and fmt(True) == "true"
    assert fmt_seconds(59.94) == "59.9 s" and fmt_seconds(125) == "2 min 05 s" and fmt_seconds("x") == "n/a"
    assert fmt_mfu(0.5) == "50.0%" and fmt_mfu(37.5) == "37.5%" and fmt_mfu(None) == "n/a"


def test_cli_writes_report_under_root(tmp_path, capsys):
    write_run(tmp_path)
    assert cli(["--root", str(tmp_path)]) == 0
    assert (tmp_path / "reports" / "report.md").exists()
    assert (tmp_path / "reports" / "figures" / "pretrain_loss.png").exists()
    with pytest.raises(WikigptError, match="not a directory"):
        cli(["--root", str(tmp_path / "nope")])


def test_dvc_plots_show_renders_the_loss_curves(tmp_path):
    """The top-level `plots:` block of the real dvc.yaml renders both curves from the stage TSVs."""
    write_run(tmp_path, metrics={})
    for rel in ("dvc.yaml", "params.yaml", ".dvc/config", ".dvcignore"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / rel, tmp_path / rel)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(
        [sys.executable, "-m", "dvc", "plots", "show", "-o", "dvc_plots"], cwd=tmp_path, check=True, capture_output=True
    )
    html = (tmp_path / "dvc_plots" / "index.html").read_text()
    for plot_id, title in (("pretrain_loss", "Pretraining loss"), ("sft_loss", "SFT loss")):
        assert plot_id in html and title in html
    # the TSV rows made it into the rendered spec, for both y columns
    assert '"train_loss": "6.1"' in html and '"dvc_inferred_y_value": "5.4"' in html
    assert '"field": "val_loss"' in html and '"dvc_inferred_y_value": "2.7"' in html
