"""The shared plumbing: strict params, atomic outputs, special-token stripping, the CLI."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from wikigpt.cli import main as cli_main
from wikigpt.config import from_dict, load_runtime, load_section
from wikigpt.errors import WikigptError
from wikigpt.io import atomic_dir, atomic_file, write_metrics
from wikigpt.specials import SPECIAL_TOKENS, has_special_literal, strip_special_literals


@dataclasses.dataclass(frozen=True)
class Demo:
    lr: float
    steps: int = 10
    name: str = "x"
    mode: Literal["a", "b"] = "a"
    bands_rows: tuple[int, int] = (16, 8)
    extra: list[str] = dataclasses.field(default_factory=list)
    maybe: int | None = None


def test_from_dict_accepts_valid_and_coerces_int_to_float():
    cfg = from_dict(Demo, {"lr": 1, "steps": 5, "bands_rows": [4, 2], "maybe": None}, "train")
    assert cfg == Demo(lr=1.0, steps=5, bands_rows=(4, 2))
    assert isinstance(cfg.lr, float)


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"lr": 1e-3, "stpes": 5}, "unknown key 'train.stpes'"),
        ({}, "missing key 'train.lr'"),
        ({"lr": "fast"}, "train.lr: expected a number"),
        ({"lr": 1.0, "steps": 2.5}, "train.steps: expected an integer"),
        ({"lr": 1.0, "steps": True}, "train.steps: expected an integer"),
        ({"lr": 1.0, "mode": "c"}, "train.mode: expected one of ['a', 'b']"),
        ({"lr": 1.0, "bands_rows": [1, 2, 3]}, "train.bands_rows: expected 2 items"),
        ({"lr": 1.0, "extra": ["ok", 3]}, "train.extra[1]: expected a string"),
    ],
)
def test_from_dict_rejects_with_key_name(data, needle):
    with pytest.raises(WikigptError) as e:
        from_dict(Demo, data, "train")
    assert needle in str(e.value)


def test_load_section_and_runtime(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("train:\n  lr: 0.5\nruntime:\n  wandb: disabled\n")
    assert load_section("train", Demo, p).lr == 0.5
    assert load_runtime(p).wandb == "disabled"
    with pytest.raises(WikigptError, match="missing section 'sft'"):
        load_section("sft", Demo, p)
    p.write_text("runtime:\n  wandb: sometimes\n")
    with pytest.raises(WikigptError, match="runtime.wandb"):
        load_runtime(p)


def test_repo_params_runtime_section_is_valid():
    from tests.conftest import REPO_ROOT

    assert load_runtime(REPO_ROOT / "params.yaml").extract_workers >= 1


def test_atomic_dir_replaces_on_success_and_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (out / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "b.txt").write_text("partial")
            raise RuntimeError("boom")
    # the stale output is gone too, and no temporary sibling is left behind
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_file_keeps_old_content_on_failure(tmp_path):
    f = tmp_path / "x.bin"
    with atomic_file(f) as fh:
        fh.write(b"old")
    with pytest.raises(ValueError):
        with atomic_file(f) as fh:
            fh.write(b"new-partial")
            raise ValueError
    assert f.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_atomic_outputs_get_umask_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        with atomic_file(tmp_path / "f") as fh:
            fh.write(b"x")
        with atomic_dir(tmp_path / "d"):
            pass
    finally:
        os.umask(mask)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_write_metrics(tmp_path):
    path = write_metrics("demo", {"n": 3}, metrics_dir=tmp_path)
    assert path.read_text().strip().startswith("{") and '"n": 3' in path.read_text()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("hi <|assistant|> there", "hi  there"),
        ("<|end|><|user|><|pad|>", ""),
        ("nested <|en<|x|>d|> token", "nested  token"),
        ("<|future_tool|>call", "call"),
        ("a | b <| c |> and x<|y", "a | b <| c |> and x<|y"),
    ],
)
def test_strip_special_literals(text, expected):
    assert strip_special_literals(text) == expected
    assert not has_special_literal(strip_special_literals(text))


def test_special_tokens_order():
    assert SPECIAL_TOKENS == ["<|end|>", "<|user|>", "<|assistant|>", "<|pad|>"]


def test_cli_unknown_command(capsys):
    assert cli_main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    assert cli_main(["--help"]) == 0
