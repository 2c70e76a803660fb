"""Pretraining: schedule, optimizer groups, window sampler, checkpoints (resume = identical weights),
fingerprints, failure modes, bits per byte, and DDP under torchrun with 2 CPU processes."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from wikigpt.errors import WikigptError
from wikigpt.model import GPT, GPTConfig
from wikigpt.train import checkpoint as ckpt
from wikigpt.train.checkpoint import load_model
from wikigpt.train.data import TokenWindows, fixed_windows
from wikigpt.train.dist import DistContext
from wikigpt.train.loop import LoopSettings, train_loop
from wikigpt.train.mfu import peak_tflops, throughput
from wikigpt.train.optim import lr_at, make_optimizer
from wikigpt.train.pretrain import ModelParams, TrainConfig, run_pretrain, token_byte_lengths, unigram_entropy
from wikigpt.train.tracking import Tracker

REPO = Path(__file__).resolve().parents[1]
MODEL = ModelParams(block_size=32, n_layer=2, n_head=4, n_embd=64)
TRAIN = TrainConfig(
    max_steps=12, batch_tokens=2 * 8 * 32, micro_batch_size=8, lr=3e-3, min_lr=3e-4, warmup_steps=3,
    eval_interval=4, eval_batches=2, ckpt_interval=6, seed=7, device="cpu", compile=False,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def synthetic_docs(n: int, seed: int) -> list[str]:
    """Sentences from a tiny grammar: learnable structure, so a few steps beat the unigram baseline."""
    rng = random.Random(seed)
    subj = ["The cat", "A dog", "The king", "Paris", "The river", "My friend", "The old city", "A scientist"]
    verb = ["runs to", "looks at", "is near", "writes about", "flows into", "remembers", "builds", "finds"]
    obj = ["the house.", "a small garden.", "the sea.", "an old book.", "the capital of France.", "a café in Zürich."]
    return [" ".join(f"{rng.choice(subj)} {rng.choice(verb)} {rng.choice(obj)}" for _ in range(rng.randint(5, 30))) for _ in range(n)]


def write_pack(root: Path, train_docs: list[str], val_docs: list[str], vocab: int = 400) -> dict:
    """data/tokenizer + data/tokens in the pack stage's format (meta.json keys of wikigpt.pack)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from wikigpt.specials import SPECIAL_TOKENS
    from wikigpt.tokenizer import tokenizer_sha256

    (root / "data" / "tokenizer").mkdir(parents=True, exist_ok=True)
    (root / "data" / "tokens").mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(train_docs, trainer=trainer)
    tok.save(str(root / "data" / "tokenizer" / "tokenizer.json"))
    meta = {"dtype": "uint16", "vocab_size": tok.get_vocab_size(), "tokenizer_sha256": tokenizer_sha256(root / "data" / "tokenizer")}
    for split, docs in (("train", train_docs), ("val", val_docs)):
        ids = [i for d in docs for i in tok.encode(d).ids + [0]]
        np.asarray(ids, dtype="<u2").tofile(root / "data" / "tokens" / f"{split}.bin")
        meta[f"{split}_tokens"], meta[f"{split}_docs"] = len(ids), len(docs)
    (root / "data" / "tokens" / "meta.json").write_text(json.dumps(meta))
    return meta


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("packed")
    write_pack(root, synthetic_docs(300, 1), synthetic_docs(30, 2))
    return root


def run(root: Path, tmp: Path, name: str, cfg: TrainConfig = TRAIN, model: ModelParams = MODEL, log=None):
    lines = []
    metrics = run_pretrain(
        model, cfg, DistContext(), tokens_dir=root / "data" / "tokens", tokenizer_dir=root / "data" / "tokenizer",
        ckpt_dir=tmp / name / "ckpt", model_dir=tmp / name / "base", plot_path=tmp / name / "loss.tsv",
        progress=False, log_interval=100, log=log or lines.append,
    )
    return metrics, lines


# ---- schedule, optimizer, sampler ----------------------------------------------------------


def test_lr_warmup_then_cosine_to_min():
    lrs = [lr_at(s, 100, 1.0, 0.1, 10) for s in range(110)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)  # linear warmup to the peak
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10]))
    assert all(a >= b for a, b in zip(lrs[10:100], lrs[11:101]))  # then monotone decay
    assert lrs[55] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.5)))  # cosine midpoint
    assert lrs[100] == lrs[109] == pytest.approx(0.1)


def test_weight_decay_only_on_matrices():
    model = GPT(GPTConfig(vocab_size=64, block_size=8, n_layer=2, n_head=2, n_embd=16))
    opt = make_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu")
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"]) and all(p.dim() == 1 for p in no_decay["params"])
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == model.num_params()  # tied head once
    assert opt.defaults["betas"] == (0.9, 0.95)


def test_windows_are_shifted_pairs_split_across_ranks_independent_of_layout():
    tokens = np.arange(10_000, dtype=np.uint16)
    single = TokenWindows(tokens, 16, micro_batch=4, grad_accum=2, seed=3)
    rank0 = TokenWindows(tokens, 16, micro_batch=4, grad_accum=1, rank=0, world_size=2, seed=3)
    rank1 = TokenWindows(tokens, 16, micro_batch=4, grad_accum=1, rank=1, world_size=2, seed=3)
    for _ in range(3):  # three optimizer steps
        a0, a1 = single.next_batch(), single.next_batch()
        r0, r1 = rank0.next_batch(), rank1.next_batch()
        assert a0[0].shape == (4, 16) and a0[0].dtype == torch.int64
        assert torch.equal(a0[1][:, :-1], a0[0][:, 1:])  # y is x shifted by one
        assert torch.equal(r0[0], a0[0]) and torch.equal(r1[0], a1[0])  # same global batch, split by rank
        assert not set(r0[0][:, 0].tolist()) & set(r1[0][:, 0].tolist())  # ranks see different windows


def test_sampler_resumes_from_its_state():
    tokens = np.arange(5_000, dtype=np.uint16)
    a = TokenWindows(tokens, 8, 2, 2, seed=1)
    for _ in range(6):
        a.next_batch()
    b = TokenWindows(tokens, 8, 2, 2, seed=1)
    b.load_state_dict(a.state_dict())
    assert a.state_dict() == {"step": 3}
    assert torch.equal(a.next_batch()[0], b.next_batch()[0])


def test_short_split_is_a_clear_error():
    with pytest.raises(WikigptError, match="val.bin: 50 tokens, fewer than block_size"):
        fixed_windows(50, 64, 4, "val.bin")
    with pytest.raises(WikigptError, match="train.bin"):
        TokenWindows(np.zeros(10, dtype=np.uint16), 16, 1, 1)


# ---- metrics helpers ------------------------------------------------------------------------


def test_token_byte_lengths_sum_to_utf8_length(packed):
    from wikigpt.tokenizer import load_tokenizer

    tok = load_tokenizer(packed / "data" / "tokenizer")
    lengths = token_byte_lengths(tok)
    text = "A scientist finds a café in Zürich. Москва 東京"
    ids = tok.encode(text).ids
    assert int(lengths[ids].sum()) == len(text.encode("utf-8"))
    assert lengths[:4].tolist() == [0, 0, 0, 0]  # control tokens carry no text


def test_unigram_entropy():
    assert unigram_entropy(np.array([1, 2, 3, 4] * 10, dtype=np.uint16), 8) == pytest.approx(math.log(4))
    assert unigram_entropy(np.array([5] * 7, dtype=np.uint16), 8) == pytest.approx(0.0)


def test_mfu_uses_device_peak_or_reports_tflops_only():
    assert peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert peak_tflops("NVIDIA GeForce RTX 4090") == 165.0
    perf = throughput(6e8, 1e5, "NVIDIA A100-SXM4-40GB")
    assert perf["achieved_tflops"] == pytest.approx(60.0) and perf["mfu"] == pytest.approx(60 / 312)
    assert throughput(6e8, 1e5, "CPU (x86_64)")["mfu"] is None


def test_file_digest_and_fingerprint_diff(tmp_path):
    f = tmp_path / "train.bin"
    f.write_bytes(b"\x01\x02" * 100)
    d1 = ckpt.file_digest(f)
    f.write_bytes(b"\x01\x02" * 99 + b"\x01\x03")
    assert ckpt.file_digest(f) != d1
    a = ckpt.fingerprint({"train": {"lr": 1e-3}, "train.bin": d1})
    b = ckpt.fingerprint({"train": {"lr": 6e-4}, "train.bin": d1})
    assert ckpt.fingerprint_diff(a, a) == [] and ckpt.fingerprint_diff(a, b) == ["train"]


def test_tracker_disabled_and_bad_mode():
    t = Tracker("disabled", "p", "n", {})
    t.log({"x": 1.0}, 1)
    t.finish()
    assert t.run is None
    with pytest.raises(ValueError, match="wandb mode"):
        Tracker("sometimes", "p", "n", {})


# ---- training, checkpoints, resume ----------------------------------------------------------


def test_training_learns_and_writes_outputs(packed, tmp_path):
    metrics, lines = run(packed, tmp_path, "a", replace(TRAIN, max_steps=40, ckpt_interval=0, eval_interval=20))
    assert metrics["val_loss"] < metrics["unigram_entropy"] - 0.3  # clearly below the unigram baseline
    assert metrics["val_loss"] < metrics["initial_val_loss"] - 2.0
    assert 0 < metrics["val_bpb"] < metrics["val_loss"]
    assert metrics["tokens_seen"] == 40 * TRAIN.batch_tokens and metrics["steps"] == 40
    assert metrics["params"] == load_model(tmp_path / "a" / "base").num_params()
    assert metrics["tokens_per_s"] > 0 and metrics["achieved_tflops"] > 0
    rows = (tmp_path / "a" / "loss.tsv").read_text().splitlines()
    assert rows[0] == "step\ttrain_loss\tval_loss\tlr"
    assert [r.split("\t")[0] for r in rows[1:]] == ["0", "20", "40"]
    assert any("unigram entropy" in line and "below the baseline" in line for line in lines)


def test_resume_after_kill_gives_identical_weights(packed, tmp_path, monkeypatch):
    run(packed, tmp_path, "straight")

    real_next = TokenWindows.next_batch

    def killed_after_step_7(self):  # checkpoint at 6, then dies in the middle of step 8
        if self.step == 7 and self.micro == 1:
            raise KeyboardInterrupt
        return real_next(self)

    monkeypatch.setattr(TokenWindows, "next_batch", killed_after_step_7)
    with pytest.raises(KeyboardInterrupt):
        run(packed, tmp_path, "resumed")
    assert not (tmp_path / "resumed" / "base").exists()
    monkeypatch.setattr(TokenWindows, "next_batch", real_next)
    metrics, lines = run(packed, tmp_path, "resumed")
    assert metrics["resumed_from_step"] == 6
    assert any("resuming at step 6" in line for line in lines)

    a = load_model(tmp_path / "straight" / "base").state_dict()
    b = load_model(tmp_path / "resumed" / "base").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the loss curve survives the restart
    assert (tmp_path / "straight" / "loss.tsv").read_text() == (tmp_path / "resumed" / "loss.tsv").read_text()


def test_changed_params_start_fresh_and_say_why(packed, tmp_path):
    run(packed, tmp_path, "x", replace(TRAIN, max_steps=6))
    metrics, lines = run(packed, tmp_path, "x", replace(TRAIN, max_steps=6, lr=1e-3))
    assert metrics["resumed_from_step"] is None
    assert any("different run (changed: train)" in line and "starting fresh" in line for line in lines)
    # a layout-only change (micro-batch size) is the same run: it resumes
    metrics, lines = run(packed, tmp_path, "x", replace(TRAIN, max_steps=6, lr=1e-3, micro_batch_size=16))
    assert metrics["resumed_from_step"] == 6


def test_nan_loss_stops_with_clear_error_and_keeps_last_checkpoint(packed, tmp_path):
    from wikigpt.pack import open_tokens

    torch.manual_seed(0)
    model = GPT(MODEL.gpt_config(400))
    tokens = open_tokens(packed / "data" / "tokens", "train")

    class Poisoned(TokenWindows):
        def next_batch(self):
            if self.step == 3:  # after the checkpoint at step 2, a weight goes bad
                with torch.no_grad():
                    model.blocks[0].mlp.up.weight[0, 0] = float("nan")
            return super().next_batch()

    batches = Poisoned(tokens, 32, 8, 1, seed=0)
    settings = LoopSettings(max_steps=6, lr=1e-3, min_lr=1e-4, warmup_steps=1, ckpt_interval=2, compile=False, progress=False)
    fp = ckpt.fingerprint({"run": 1})
    with pytest.raises(WikigptError, match=r"non-finite loss at step 4 .*last good checkpoint"):
        train_loop(model, batches, settings, DistContext(), tmp_path / "ckpt", fp, log=lambda s: None)
    state = ckpt.load_train_state(tmp_path / "ckpt")
    assert state["step"] == 2
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_missing_pack_outputs_and_mismatches_are_clear_errors(packed, tmp_path):
    import shutil

    with pytest.raises(WikigptError, match="meta.json: not found"):
        run_pretrain(MODEL, TRAIN, DistContext(), tokens_dir=tmp_path / "nope", tokenizer_dir=packed / "data" / "tokenizer",
                     ckpt_dir=tmp_path / "c", model_dir=tmp_path / "m", plot_path=None, progress=False)
    long_ctx = replace(MODEL, block_size=4096)
    with pytest.raises(WikigptError, match=r"val.bin: \d+ tokens, fewer than model.block_size \+ 1 = 4097"):
        run(packed, tmp_path, "long", model=long_ctx)
    with pytest.raises(WikigptError, match="batch_tokens"):
        run(packed, tmp_path, "odd", replace(TRAIN, batch_tokens=1000))
    other = tmp_path / "other"
    shutil.copytree(packed / "data", other / "data")
    tok_json = other / "data" / "tokenizer" / "tokenizer.json"
    tok_json.write_text(tok_json.read_text().replace('"dropout": null', '"dropout":null'))
    with pytest.raises(WikigptError, match="differs from the tokenizer the tokens were packed with"):
        run(other, tmp_path, "mismatch")


# ---- distributed --------------------------------------------------------------------------------


def test_ddp_two_cpu_processes_match_single_process(packed, tmp_path):
    """The stage under torchrun (train.nproc=2, gloo) trains on the same global batches as one
    process with 2 accumulation micro-steps (the sampler is defined per global step), so the
    final losses agree up to float summation order: tolerance 1e-4 nats."""
    import shutil

    cfg = replace(TRAIN, max_steps=5, eval_interval=0, ckpt_interval=0)
    params = {
        "model": vars(MODEL),
        "train": {**vars(cfg), "nproc": 2},
        "runtime": {"threads": 1, "log_interval": 1, "wandb": "disabled", "progress": False},
    }
    work = tmp_path / "ddp"
    shutil.copytree(packed / "data", work / "data")
    (work / "params.yaml").write_text(json.dumps(params))  # JSON is YAML
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "pretrain.py")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "relaunching under torchrun" in proc.stderr
    ddp = json.loads((work / "metrics" / "train.json").read_text())
    assert ddp["world_size"] == 2 and ddp["steps"] == 5 and ddp["tokens_seen"] == 5 * cfg.batch_tokens
    assert (work / "data" / "models" / "base" / "model.safetensors").exists()
    assert proc.stdout.count("final: train loss") == 1  # only rank 0 reports

    single, _ = run(packed, tmp_path, "single", cfg)
    assert abs(ddp["val_loss"] - single["val_loss"]) < 1e-4
    assert abs(ddp["train_loss"] - single["train_loss"]) < 1e-4


def test_stage_without_pack_outputs_fails_with_one_line(tmp_path):
    params = {"model": vars(MODEL), "train": vars(TRAIN), "runtime": {"threads": 1, "wandb": "disabled", "progress": False}}
    (tmp_path / "params.yaml").write_text(json.dumps(params))
    proc = subprocess.run([sys.executable, str(REPO / "stages" / "pretrain.py")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: data/tokens/meta.json: not found (run the pack stage first)"]
    assert not (tmp_path / "data" / "models").exists() and not (tmp_path / "metrics").exists()


def test_code_digest_changes_with_the_training_code(tmp_path, monkeypatch):
    # A checkpoint written by other code must not be resumed: the code is part of the fingerprint.
    pkg = tmp_path / "fakepkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "loop.py").write_text("LR = 1\n")
    (tmp_path / "single.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = ckpt.code_digest("fakepkg", "single")
    assert ckpt.code_digest("fakepkg", "single") == before  # stable
    (pkg / "sub" / "loop.py").write_text("LR = 2\n")  # a file deep inside the package
    after_pkg = ckpt.code_digest("fakepkg", "single")
    (tmp_path / "single.py").write_text("X = 2\n")
    after_module = ckpt.code_digest("fakepkg", "single")
    assert len({before, after_pkg, after_module}) == 3
    with pytest.raises(ValueError, match="no source for module 'no_such_module_here'"):
        ckpt.code_digest("no_such_module_here")
