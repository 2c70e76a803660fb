"""The run report: one markdown page (plus PNG loss curves) that says what the pipeline did.

It is rendered from what the stages already wrote — `metrics/<stage>.json`, `plots/*_loss.tsv`,
`reports/samples.md` and `params.yaml` — so it never recomputes anything and never invents a
figure: a value the metrics do not contain is printed as "n/a". The `report` DVC stage
regenerates it after `eval`; `wikigpt report` renders it by hand (e.g. on a partial run).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from wikigpt.config import read_params
from wikigpt.errors import WikigptError
from wikigpt.io import atomic_dir, atomic_file

# metrics/<name>.json in pipeline order, with the stage that writes each (train.json is pretrain's).
METRICS_FILES = {
    "extract": "extract",
    "clean": "clean",
    "tokenizer": "tokenizer",
    "pack": "pack",
    "train": "pretrain",
    "sft": "sft",
    "eval": "eval",
}
# Loss curves: figure name -> (TSV written by the stage, title).
LOSS_CURVES = {
    "pretrain_loss": ("plots/pretrain_loss.tsv", "Pretraining loss"),
    "sft_loss": ("plots/sft_loss.tsv", "SFT loss"),
}
PARAM_SECTIONS = ("extract", "clean", "tokenizer", "pack", "model", "train", "sft", "eval")
SAMPLES_FILE = "reports/samples.md"
NA = "n/a"

# Where each headline figure may live in a (flattened) metrics file. The first key present wins;
# when none is, the report says n/a rather than guessing from a similar-looking key.
TIME_KEYS = (
    "seconds",
    "elapsed_s",
    "elapsed_seconds",
    "wall_s",
    "wall_seconds",
    "time_s",
    "duration_s",
    "total_seconds",
    "train_seconds",
    "seconds.total",
    "timing.seconds",
)
TRAIN_KEYS = {
    "params": ("n_params", "num_params", "params", "parameters", "n_parameters", "model_params", "model.n_params"),
    "seconds": ("train_seconds", "train_time_s", "seconds", "elapsed_s", "wall_seconds", "wall_s", "time_s"),
    "tokens_seen": ("tokens_seen", "tokens", "train_tokens_seen"),
    "tokens_per_s": ("tokens_per_s", "tokens_per_sec", "tokens_per_second", "tok_per_s", "throughput_tokens_per_s"),
    "mfu": ("mfu", "mfu_percent", "mfu_pct"),
    "tflops": ("achieved_tflops", "tflops", "tflops_per_s"),
    "device": ("device", "device_name", "gpu", "hardware.device"),
    "steps": ("steps", "max_steps", "step", "iters"),
    "train_loss": ("final_train_loss", "train_loss"),
    "val_loss": ("final_val_loss", "val_loss", "best_val_loss"),
    "val_bpb": ("val_bpb", "val_bits_per_byte", "bits_per_byte"),
}
TOKENIZER_KEYS = {
    "vocab_size": ("vocab_size",),
    "ours_tpw": ("tokens_per_word", "fertility.tokens_per_word", "fertility", "ours.tokens_per_word"),
    "ours_bpt": ("bytes_per_token", "fertility.bytes_per_token", "ours.bytes_per_token"),
    "gpt2_tpw": ("gpt2_tokens_per_word", "gpt2.tokens_per_word", "gpt2_fertility", "fertility.gpt2_tokens_per_word"),
    "gpt2_bpt": ("gpt2_bytes_per_token", "gpt2.bytes_per_token", "fertility.gpt2_bytes_per_token"),
}


@dataclass
class RunData:
    """Everything the report is rendered from, loaded once so rendering is a pure function."""

    metrics: dict[str, dict[str, Any] | None]  # file name -> parsed JSON (None when absent)
    curves: dict[str, dict[str, list[float | None]] | None]  # figure name -> columns
    figures: dict[str, str] = field(default_factory=dict)  # figure name -> path relative to the report
    samples: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    environment: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # unreadable inputs, stated in the report


# ----------------------------------------------------------------------------- loading


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {"a.b": value}; lists and scalars are leaves."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            out.update(flatten(v, key))
        return out
    return {prefix: obj}


def pick(flat: dict[str, Any] | None, keys: Iterable[str]) -> Any:
    """The value of the first of `keys` present in `flat` (None when none is, or it is null)."""
    if not flat:
        return None
    for key in keys:
        if key in flat and flat[key] is not None:
            return flat[key]
    return None


def load_metrics(root: Path, problems: list[str]) -> dict[str, dict[str, Any] | None]:
    out: dict[str, dict[str, Any] | None] = {}
    for name in METRICS_FILES:
        path = root / "metrics" / f"{name}.json"
        out[name] = None
        if not path.exists():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            problems.append(f"metrics/{name}.json: unreadable ({e})")
            continue
        if not isinstance(data, dict):
            problems.append(f"metrics/{name}.json: expected a JSON object")
            continue
        out[name] = data
    return out


def _number(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def read_curve(path: Path) -> dict[str, list[float | None]]:
    """A loss-curve TSV (header row, then numbers; empty cells where a column was not logged)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or "step" not in rows[0]:
        raise WikigptError(f"{path}: expected a tab-separated header with a 'step' column")
    header = [h.strip() for h in rows[0]]
    columns: dict[str, list[float | None]] = {h: [] for h in header}
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise WikigptError(f"{path}: line {line_no} has {len(row)} fields, header has {len(header)}")
        for h, cell in zip(header, row):
            columns[h].append(_number(cell))
    return columns


def load_curves(root: Path, problems: list[str]) -> dict[str, dict[str, list[float | None]] | None]:
    out: dict[str, dict[str, list[float | None]] | None] = {}
    for name, (rel, _) in LOSS_CURVES.items():
        out[name] = None
        path = root / rel
        if not path.exists():
            continue
        try:
            out[name] = read_curve(path)
        except (OSError, UnicodeDecodeError, WikigptError) as e:
            problems.append(str(e))
    return out


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return NA


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or NA


def _gpus() -> str:
    """GPU models via nvidia-smi: importing torch only to ask would cost seconds per report."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        out = None
    names = [n.strip() for n in out.stdout.splitlines() if n.strip()] if out and out.returncode == 0 else []
    if names:
        return ", ".join(f"{n} x{names.count(n)}" for n in dict.fromkeys(names))
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "Apple silicon (MPS)"
    return "none detected"


def _git_commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return NA
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else NA


def collect_environment(root: Path) -> list[tuple[str, str]]:
    """Versions and hardware of the machine rendering the report (the one that ran the pipeline)."""
    return [
        ("python", platform.python_version()),
        ("torch", _version("torch")),
        ("dvc", _version("dvc")),
        ("tokenizers", _version("tokenizers")),
        ("numpy", _version("numpy")),
        ("os", platform.platform()),
        ("cpu", _cpu_model()),
        ("cpu cores", str(os.cpu_count() or NA)),
        ("gpu", _gpus()),
        ("git commit", _git_commit(root)),
    ]


def load_run(root: str | Path = ".", environment: list[tuple[str, str]] | None = None) -> RunData:
    root = Path(root)
    problems: list[str] = []
    samples_path = root / SAMPLES_FILE
    samples = samples_path.read_text(encoding="utf-8") if samples_path.exists() else None
    params: dict[str, Any] = {}
    if (root / "params.yaml").exists():
        try:
            params = read_params(root / "params.yaml")
        except WikigptError as e:
            problems.append(str(e))
    return RunData(
        metrics=load_metrics(root, problems),
        curves=load_curves(root, problems),
        samples=samples,
        params={k: params[k] for k in PARAM_SECTIONS if k in params},
        environment=collect_environment(root) if environment is None else environment,
        problems=problems,
    )


# ----------------------------------------------------------------------------- figures


def plot_curve(columns: dict[str, list[float | None]], title: str, out_png: Path) -> bool:
    """Loss against step (train line, val points/line), lr on a second axis. False when empty."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a rented box or in CI
    import matplotlib.pyplot as plt

    steps = columns.get("step", [])

    def series(name: str) -> tuple[list[float], list[float]]:
        pairs = [(s, v) for s, v in zip(steps, columns.get(name, [])) if s is not None and v is not None]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    train, val, lr = series("train_loss"), series("val_loss"), series("lr")
    if not train[0] and not val[0]:
        return False
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        if train[0]:
            ax.plot(*train, label="train loss", color="tab:blue", linewidth=1.2)
        if val[0]:
            ax.plot(*val, label="val loss", color="tab:orange", marker="o", markersize=3, linewidth=1.2)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if lr[0]:
            ax2 = ax.twinx()
            ax2.plot(*lr, label="lr", color="0.5", linestyle="--", linewidth=0.8)
            ax2.set_ylabel("learning rate")
            ax2.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
            h2, l2 = ax2.get_legend_handles_labels()
            handles, labels = handles + h2, labels + l2
        ax.legend(handles, labels, loc="upper right")
        fig.tight_layout()
        out_png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_png, metadata={"Software": None})  # no version stamp: stable bytes
    finally:
        plt.close(fig)
    return True


# ----------------------------------------------------------------------------- rendering


def fmt(value: Any) -> str:
    """A metric value for a markdown table: thousands separators, 4 significant digits."""
    if value is None:
        return NA
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == 0:
            return "0"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) < 1e-3:
            return f"{value:.3e}"
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value, ensure_ascii=False)
        return _cell(text if len(text) <= 120 else text[:117] + "...")
    return _cell(str(value))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def fmt_seconds(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return NA
    s = float(value)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)} min {s % 60:02.0f} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def fmt_mfu(value: Any) -> str:
    """MFU as a percentage; metrics may store it as a fraction (0.41) or a percentage (41.0)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return NA
    pct = value * 100 if value <= 1.0 else value
    return f"{pct:.1f}%"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _stage_seconds(flat: dict[str, Any]) -> Any:
    """The stage's time; for a stage that times its parts separately (eval: one entry per model),
    the sum of the parts' `seconds`."""
    value = pick(flat, TIME_KEYS)
    if value is not None:
        return value
    parts = [v for k, v in flat.items() if k.count(".") == 1 and k.endswith(".seconds") and isinstance(v, (int, float))]
    return sum(parts) if parts else None


def _counts(flat: dict[str, Any], limit: int = 6) -> str:
    """The stage's top-level integer counts (not timings), the first `limit`, for the summary table;
    nested ones when it has no top-level count (eval: per model)."""
    def ints(keys):
        return [f"{k}: {fmt(flat[k])}" for k in keys if isinstance(flat[k], int) and not isinstance(flat[k], bool)]

    items = ints([k for k in flat if "." not in k and k not in TIME_KEYS]) or ints(flat)
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ("<br>".join(items[:limit]) + more) if items else NA


def _shift_headings(markdown: str, by: int) -> str:
    """Demote the headings of an embedded markdown file so they nest under the report's."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#{1,6} ", line):
            line = "#" * by + line
        out.append(line)
    return "\n".join(out)


def _param_groups(flat: dict[str, Any] | None) -> str:
    groups = {k.split(".", 1)[1]: v for k, v in (flat or {}).items() if k.startswith("param_groups.")}
    return ", ".join(f"{name} {fmt(v)}" for name, v in groups.items()) or NA


def _eval_table(data: dict[str, Any] | None) -> list[str]:
    """Models side by side (metrics/eval.json holds one object per model: base, sft, ...)."""
    if not data:
        return ["n/a (no `metrics/eval.json`)."]
    models = {k: flatten(v) for k, v in data.items() if isinstance(v, dict)}
    if not models:
        return ["See all metrics below."]
    names: list[str] = []
    for flat in models.values():
        names += [k for k in flat if k not in names]
    return table(["metric", *models], [[_cell(n), *(fmt(flat.get(n)) for flat in models.values())] for n in names])


def render(run: RunData) -> str:
    m = {name: flatten(data) if data is not None else None for name, data in run.metrics.items()}
    train, tok = m.get("train"), m.get("tokenizer")
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# wikigpt run report",
        "",
        f"Generated {now} by the `report` stage (`wikigpt report`) from `metrics/*.json`, "
        "`plots/*.tsv` and `reports/samples.md`. A figure the metrics do not contain is shown as n/a.",
        "",
    ]
    if run.problems:
        lines += ["**Problems reading the run's outputs:**", ""] + [f"- {p}" for p in run.problems] + [""]

    lines += ["## Environment", ""]
    lines += table(["", ""], [[k, _cell(v)] for k, v in run.environment])
    lines += [""]

    lines += ["## Stages", ""]
    rows = []
    for name, stage in METRICS_FILES.items():
        flat = m.get(name)
        if flat is None:
            rows.append([stage, NA, "not run (no `metrics/%s.json`)" % name])
        else:
            rows.append([stage, fmt_seconds(_stage_seconds(flat)), _counts(flat)])
    lines += table(["stage", "time", "counts"], rows)
    lines += [""]

    lines += ["## Tokenizer fertility vs GPT-2", ""]
    lines += [f"Vocabulary size: {fmt(pick(tok, TOKENIZER_KEYS['vocab_size']))}.", ""]
    lines += table(
        ["tokenizer", "tokens / word", "bytes / token"],
        [
            ["wikigpt BPE", fmt(pick(tok, TOKENIZER_KEYS["ours_tpw"])), fmt(pick(tok, TOKENIZER_KEYS["ours_bpt"]))],
            ["GPT-2", fmt(pick(tok, TOKENIZER_KEYS["gpt2_tpw"])), fmt(pick(tok, TOKENIZER_KEYS["gpt2_bpt"]))],
        ],
    )
    lines += ["", "Fewer tokens per word (more bytes per token) means a cheaper, longer effective context.", ""]

    lines += ["## Model and pretraining", ""]
    model_params = run.params.get("model") if isinstance(run.params.get("model"), dict) else {}
    shape = ", ".join(f"{k}={v}" for k, v in model_params.items()) or NA
    tflops = pick(train, TRAIN_KEYS["tflops"])
    lines += table(
        ["", ""],
        [
            ["parameters", fmt(pick(train, TRAIN_KEYS["params"]))],
            ["parameter groups", _param_groups(train)],
            ["model params (params.yaml)", _cell(shape)],
            ["device", fmt(pick(train, TRAIN_KEYS["device"]))],
            ["steps", fmt(pick(train, TRAIN_KEYS["steps"]))],
            ["tokens seen", fmt(pick(train, TRAIN_KEYS["tokens_seen"]))],
            ["training time", fmt_seconds(pick(train, TRAIN_KEYS["seconds"]))],
            ["tokens / s", fmt(pick(train, TRAIN_KEYS["tokens_per_s"]))],
            ["MFU", fmt_mfu(pick(train, TRAIN_KEYS["mfu"]))],
            ["achieved TFLOP/s", fmt(tflops)],
            ["final train loss", fmt(pick(train, TRAIN_KEYS["train_loss"]))],
            ["final val loss", fmt(pick(train, TRAIN_KEYS["val_loss"]))],
            ["val bits per byte", fmt(pick(train, TRAIN_KEYS["val_bpb"]))],
        ],
    )
    lines += [""]

    lines += ["## Evaluation", ""]
    lines += _eval_table(run.metrics.get("eval"))
    lines += [""]

    lines += ["## Loss curves", ""]
    for name, (rel, title) in LOSS_CURVES.items():
        if name in run.figures:
            lines += [f"![{title}]({run.figures[name]})", ""]
        else:
            lines += [f"{title}: n/a (`{rel}` missing or empty).", ""]
    lines += ["Interactive versions: `dvc plots show` (definitions in the `plots:` block of dvc.yaml).", ""]

    lines += ["## All metrics", ""]
    for name, stage in METRICS_FILES.items():
        flat = m.get(name)
        lines += [f"### {stage} (`metrics/{name}.json`)", ""]
        if flat is None:
            lines += ["n/a (file missing).", ""]
            continue
        lines += table(["metric", "value"], [[_cell(k), fmt(v)] for k, v in flat.items()]) if flat else ["(empty)"]
        lines += [""]

    lines += ["## Sample generations", ""]
    if run.samples is None:
        lines += [f"n/a (`{SAMPLES_FILE}` missing).", ""]
    else:
        lines += [_shift_headings(run.samples.strip(), 2), ""]

    lines += ["## Parameters", "", "The stage sections of `params.yaml` this run used:", "", "```yaml"]
    lines += [yaml.safe_dump(run.params, sort_keys=False, allow_unicode=True).rstrip() if run.params else "{}"]
    lines += ["```", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- entry points


def build_report(
    root: str | Path = ".",
    out: str | Path = "reports/report.md",
    figures_dir: str | Path = "reports/figures",
    environment: list[tuple[str, str]] | None = None,
) -> Path:
    """Render `out` (markdown) and `figures_dir/*.png` from the run's outputs under `root`.

    Both are written atomically: a crash leaves no half-written report behind.
    """
    root, out, figures_dir = Path(root), Path(out), Path(figures_dir)
    if not root.is_dir():
        raise WikigptError(f"{root}: not a directory")
    run = load_run(root, environment)
    with atomic_dir(figures_dir) as tmp:
        for name, (_, title) in LOSS_CURVES.items():
            columns = run.curves.get(name)
            if columns and plot_curve(columns, title, tmp / f"{name}.png"):
                rel = os.path.relpath(figures_dir.resolve() / f"{name}.png", out.parent.resolve())
                run.figures[name] = Path(rel).as_posix()
    with atomic_file(out, "w", encoding="utf-8") as f:
        f.write(render(run))
    return out


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="wikigpt report",
        description="Render the run report (markdown + PNG loss curves) from metrics/, plots/ and reports/samples.md.",
    )
    parser.add_argument("--root", default=".", help="repository root holding metrics/, plots/, reports/ (default .)")
    parser.add_argument("--out", default=None, help="markdown file to write (default ROOT/reports/report.md)")
    parser.add_argument("--figures", default=None, help="folder for PNG figures (default ROOT/reports/figures)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    out = Path(args.out) if args.out else root / "reports" / "report.md"
    figures = Path(args.figures) if args.figures else root / "reports" / "figures"
    path = build_report(root, out, figures)
    print(f"wrote {path}", file=sys.stderr)
    return 0
