"""`wikigpt chat`: one-shot and REPL output, streaming equals a plain greedy decode, clear errors."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wikigpt.chat import cli
from wikigpt.cli import main as wikigpt_main
from wikigpt.evaluate import generate_answer
from wikigpt.model import GPT, GPTConfig
from wikigpt.train.checkpoint import load_model, save_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory, tiny_tokenizer):
    root = tmp_path_factory.mktemp("chat")
    (root / "tok").mkdir()
    tiny_tokenizer.save(str(root / "tok" / "tokenizer.json"))
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=tiny_tokenizer.get_vocab_size(), block_size=48, n_layer=2, n_head=2, n_embd=32)
    save_model(root / "model", GPT(cfg))
    other = GPTConfig(vocab_size=tiny_tokenizer.get_vocab_size() + 64, block_size=48, n_layer=1, n_head=2, n_embd=16)
    save_model(root / "other_vocab", GPT(other))
    return root


def base_args(root):
    return ["--checkpoint", str(root / "model"), "--tokenizer", str(root / "tok"), "--temperature", "0", "--max-new-tokens", "12"]


def test_one_shot_prints_the_greedy_answer(artifacts, tiny_tokenizer, capsys):
    assert cli(base_args(artifacts) + ["--prompt", "What is the fox?"]) == 0
    out = capsys.readouterr().out
    model = load_model(artifacts / "model")
    expected = generate_answer(model, tiny_tokenizer, [{"role": "user", "content": "What is the fox?"}], 12)
    assert out.strip() == expected
    assert out.endswith("\n")


def test_seeded_sampling_is_reproducible(artifacts, capsys):
    args = base_args(artifacts)[:-4] + ["--temperature", "1.0", "--top-k", "20", "--top-p", "0.9", "--max-new-tokens", "10", "--seed", "7", "--prompt", "Hi"]
    cli(args)
    first = capsys.readouterr().out
    cli(args)
    assert capsys.readouterr().out == first


def test_repl_keeps_history_and_resets(artifacts, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("What is Paris?\n\nTell me about the fox.\n/reset\nWhat is Paris?\n/quit\nignored\n"))
    assert cli(base_args(artifacts)) == 0
    out = capsys.readouterr().out
    answers = [line[len("assistant> ") :] for line in out.splitlines() if line.startswith("assistant> ")]
    assert len(answers) == 3  # the empty line is skipped, nothing after /quit runs
    assert "(new conversation)" in out
    # After /reset the same first question gets the same greedy answer (the history was cleared).
    assert answers[2] == answers[0]


def test_long_conversation_drops_oldest_turns(artifacts, monkeypatch, capsys):
    question = "Tell me about the history of science and the meaning of life."
    monkeypatch.setattr(sys, "stdin", io.StringIO((question + "\n") * 4))
    assert cli(base_args(artifacts)) == 0
    captured = capsys.readouterr()
    assert "oldest exchange(s) to fit the 48-token context" in captured.err
    assert captured.out.count("assistant> ") == 4


def test_message_too_long_is_an_error_not_a_crash(artifacts, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("word " * 200 + "\nWhat is Paris?\n"))
    assert cli(base_args(artifacts)) == 0
    captured = capsys.readouterr()
    assert "message too long" in captured.err
    assert captured.out.count("assistant> ") == 2


def test_errors_missing_checkpoint_tokenizer_and_vocab_mismatch(artifacts, capsys, tmp_path):
    tok = str(artifacts / "tok")
    assert wikigpt_main(["chat", "--checkpoint", str(tmp_path / "none"), "--tokenizer", tok, "--prompt", "x"]) == 1
    assert f"{tmp_path / 'none'}: no checkpoint there" in capsys.readouterr().err
    assert wikigpt_main(["chat", "--checkpoint", str(artifacts / "model"), "--tokenizer", str(tmp_path), "--prompt", "x"]) == 1
    assert "tokenizer file not found" in capsys.readouterr().err
    assert wikigpt_main(["chat", "--checkpoint", str(artifacts / "other_vocab"), "--tokenizer", tok, "--prompt", "x"]) == 1
    err = capsys.readouterr().err
    assert "checkpoint has vocab_size" in err and "different runs" in err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    assert wikigpt_main(["chat", "--checkpoint", str(tmp_path / "broken"), "--tokenizer", tok, "--prompt", "x"]) == 1
    assert "model.safetensors: not found" in capsys.readouterr().err


def test_console_command_end_to_end(artifacts):
    exe = Path(sys.executable).with_name("wikigpt")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "wikigpt.cli"]
    proc = subprocess.run(
        cmd + ["chat"] + base_args(artifacts),
        input="What is Paris?\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("assistant> ")
