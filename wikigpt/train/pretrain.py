"""Pretraining on packed tokens: what `stages/pretrain.py` runs.

Reads `data/tokens/{train,val}.bin + meta.json` (pack stage) and `data/tokenizer` (to check that
the tokens were packed with it, and to count the UTF-8 bytes behind each token for bits per byte),
trains the GPT with `train_loop`, and writes the final weights (safetensors + config.json), the
loss curve and the metrics. The vocabulary size comes from meta.json, never from params.

Fingerprint (decides resume vs fresh start): the model params, the train params except the
execution-layout keys below, the vocabulary, and digests of train.bin, val.bin and the tokenizer.
The layout keys change how a step is computed, not what it computes (the sampler is defined per
global step, see `wikigpt.train.data`), so a run may resume on another number of GPUs or with
another micro-batch size.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from wikigpt.errors import WikigptError
from wikigpt.io import atomic_file
from wikigpt.model import GPT, GPTConfig
from wikigpt.pack import check_tokenizer_matches, open_tokens, read_meta
from wikigpt.tokenizer import load_tokenizer, token_byte_lengths
from wikigpt.train import checkpoint as ckpt
from wikigpt.train.data import TokenWindows, fixed_windows, windows
from wikigpt.train.dist import DistContext, all_reduce_sum
from wikigpt.train.loop import LoopResult, LoopSettings, train_loop
from wikigpt.train.tracking import Tracker

LAYOUT_KEYS = ("nproc", "micro_batch_size", "compile", "device")
PLOT_COLUMNS = ("step", "train_loss", "val_loss", "lr")


@dataclass(frozen=True)
class ModelParams:
    """params.yaml `model:` section (the vocabulary size comes from data/tokens/meta.json)."""

    block_size: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    rope_theta: float = 10000.0

    def gpt_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(
            vocab_size=vocab_size, block_size=self.block_size, n_layer=self.n_layer,
            n_head=self.n_head, n_embd=self.n_embd, rope_theta=self.rope_theta,
        )


@dataclass(frozen=True)
class TrainConfig:
    """params.yaml `train:` section."""

    max_steps: int = 200
    batch_tokens: int = 2048  # tokens per optimizer step, summed over micro-steps and processes
    micro_batch_size: int = 16  # sequences per forward pass per process (memory knob)
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 20
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_interval: int = 25  # steps between evals on the fixed batches (0: only first and last)
    eval_batches: int = 4  # fixed eval batches (of micro_batch_size windows) per split
    ckpt_interval: int = 50  # steps between resumable checkpoints (0: only at the end)
    seed: int = 1337
    device: str = "auto"  # auto (cuda > mps > cpu) | cpu | cuda | mps
    compile: bool = True  # torch.compile on CUDA (ignored elsewhere)
    nproc: int = 1  # processes on this machine; > 1 relaunches the stage under torchrun (DDP)


def grad_accum_steps(cfg: TrainConfig, block_size: int, world_size: int) -> int:
    per_micro = cfg.micro_batch_size * block_size * world_size
    if cfg.batch_tokens % per_micro:
        raise WikigptError(
            f"params.yaml: train.batch_tokens ({cfg.batch_tokens}) must be a multiple of micro_batch_size x "
            f"block_size x processes = {cfg.micro_batch_size} x {block_size} x {world_size} = {per_micro}"
        )
    return cfg.batch_tokens // per_micro


def check_params(model: ModelParams, cfg: TrainConfig) -> None:
    problems = []
    if cfg.max_steps < 1:
        problems.append(f"train.max_steps must be >= 1, got {cfg.max_steps}")
    if not 0 <= cfg.min_lr <= cfg.lr:
        problems.append(f"train.min_lr ({cfg.min_lr}) must be between 0 and train.lr ({cfg.lr})")
    if cfg.warmup_steps < 0 or cfg.warmup_steps > cfg.max_steps:
        problems.append(f"train.warmup_steps ({cfg.warmup_steps}) must be between 0 and train.max_steps ({cfg.max_steps})")
    if cfg.eval_batches < 1 or cfg.micro_batch_size < 1 or cfg.nproc < 1:
        problems.append("train.eval_batches, train.micro_batch_size and train.nproc must be >= 1")
    if model.n_embd % model.n_head or (model.n_embd // model.n_head) % 2:
        problems.append(f"model.n_embd ({model.n_embd}) must be a multiple of model.n_head ({model.n_head}) with an even head size")
    if problems:
        raise WikigptError("params.yaml: " + "; ".join(problems))



def unigram_entropy(tokens: np.ndarray, vocab_size: int, chunk: int = 1 << 24) -> float:
    """Entropy (nats/token) of the split's own token frequencies: the loss of the best model that
    ignores context. A trained LM must end clearly below it."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for s in range(0, len(tokens), chunk):
        counts += np.bincount(np.asarray(tokens[s : s + chunk]), minlength=vocab_size)[:vocab_size]
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


class FixedBatchEval:
    """Loss on the same evenly spaced windows of each split at every eval (so curves are smooth
    and comparable across runs); val bits per byte from the per-token UTF-8 byte counts."""

    def __init__(self, splits: dict[str, np.ndarray], block_size: int, batch_size: int, batches: int,
                 byte_lengths: np.ndarray, ctx: DistContext):
        self.splits = splits
        self.block_size, self.batch_size = block_size, batch_size
        self.starts = {name: fixed_windows(len(t), block_size, batch_size * batches, f"{name}.bin") for name, t in splits.items()}
        self.byte_lengths = torch.as_tensor(byte_lengths)
        self.ctx = ctx

    def __call__(self, model: torch.nn.Module) -> dict[str, float]:
        out = {}
        device = self.ctx.device
        lengths = self.byte_lengths.to(device)
        for name, tokens in self.splits.items():
            mine = self.starts[name][self.ctx.rank :: self.ctx.world_size]  # ranks share the work
            sums = torch.zeros(4, dtype=torch.float64, device=device)  # nats, tokens, text nats, text bytes
            for i in range(0, len(mine), self.batch_size):
                xy = torch.from_numpy(windows(tokens, mine[i : i + self.batch_size], self.block_size + 1)).to(device)
                x, y = xy[:, :-1], xy[:, 1:]
                logits, _ = model(x, y)
                nats = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="none")
                nbytes = lengths[y.flatten()]
                text = nbytes > 0
                sums += torch.stack([nats.sum(), torch.tensor(nats.numel(), device=device), nats[text].sum(), nbytes.sum()]).double()
            sums = all_reduce_sum(sums, self.ctx)
            out[f"{name}_loss"] = (sums[0] / sums[1]).item()
            if name == "val":
                out["val_bpb"] = (sums[2] / math.log(2) / sums[3].clamp(min=1)).item()
        return out


def write_loss_tsv(path: str | Path, history: list[dict[str, float]]) -> None:
    with atomic_file(path, "w", encoding="utf-8") as f:
        f.write("\t".join(PLOT_COLUMNS) + "\n")
        for row in history:
            f.write("\t".join(str(row[c]) if c == "step" else f"{row.get(c, float('nan')):.6g}" for c in PLOT_COLUMNS) + "\n")


def run_pretrain(
    model_params: ModelParams,
    cfg: TrainConfig,
    ctx: DistContext,
    tokens_dir: str | Path = "data/tokens",
    tokenizer_dir: str | Path = "data/tokenizer",
    ckpt_dir: str | Path = "data/checkpoints/pretrain",
    model_dir: str | Path = "data/models/base",
    plot_path: str | Path | None = "plots/pretrain_loss.tsv",
    wandb_mode: str = "disabled",
    wandb_project: str = "wikigpt",
    log_interval: int = 10,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train (or resume) and write the outputs (rank 0). Returns the metrics dict."""
    check_params(model_params, cfg)
    tokens_dir, tokenizer_dir = Path(tokens_dir), Path(tokenizer_dir)
    meta = read_meta(tokens_dir)
    check_tokenizer_matches(meta, tokenizer_dir)
    tok = load_tokenizer(tokenizer_dir)
    vocab_size = int(meta["vocab_size"])
    if tok.get_vocab_size(with_added_tokens=True) != vocab_size:
        raise WikigptError(f"{tokens_dir / 'meta.json'}: vocab_size {vocab_size} differs from {tokenizer_dir}'s {tok.get_vocab_size()}")
    train_tokens, val_tokens = open_tokens(tokens_dir, "train"), open_tokens(tokens_dir, "val")
    T = model_params.block_size
    for name, split in (("train", train_tokens), ("val", val_tokens)):
        if len(split) < T + 1:
            raise WikigptError(
                f"{tokens_dir / (name + '.bin')}: {len(split)} tokens, fewer than model.block_size + 1 = {T + 1}; "
                f"lower model.block_size or pack more documents into the {name} split"
            )
    grad_accum = grad_accum_steps(cfg, T, ctx.world_size)

    config = model_params.gpt_config(vocab_size)
    torch.manual_seed(cfg.seed)  # same init on every rank (DDP also broadcasts rank 0's weights)
    model = GPT(config)
    train_params = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in LAYOUT_KEYS}
    fp = ckpt.fingerprint({
        "model": dataclasses.asdict(config),
        "train": train_params,
        "train.bin": ckpt.file_digest(tokens_dir / "train.bin"),
        "val.bin": ckpt.file_digest(tokens_dir / "val.bin"),
        "tokenizer": meta["tokenizer_sha256"],
        "code": ckpt.code_digest("wikigpt.model", "wikigpt.train"),
    })
    batches = TokenWindows(train_tokens, T, cfg.micro_batch_size, grad_accum, ctx.rank, ctx.world_size, cfg.seed)
    evaluator = FixedBatchEval(
        {"train": train_tokens, "val": val_tokens}, T, cfg.micro_batch_size, cfg.eval_batches, token_byte_lengths(tok), ctx
    )
    settings = LoopSettings(
        max_steps=cfg.max_steps, lr=cfg.lr, min_lr=cfg.min_lr, warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay, beta1=cfg.beta1, beta2=cfg.beta2, grad_clip=cfg.grad_clip,
        grad_accum=grad_accum, eval_interval=cfg.eval_interval, ckpt_interval=cfg.ckpt_interval,
        compile=cfg.compile, log_interval=log_interval, progress=progress, name="pretrain",
    )
    run_config = {"model": dataclasses.asdict(config), "train": dataclasses.asdict(cfg), "grad_accum": grad_accum, "world_size": ctx.world_size}
    if ctx.is_main:
        groups = ", ".join(f"{k} {v:,}" for k, v in model.param_groups().items())
        log(f"model: {model.num_params():,} parameters ({groups}); vocab {vocab_size} from {tokens_dir / 'meta.json'}")
        log(f"train: {len(train_tokens):,} tokens, val: {len(val_tokens):,}; {cfg.batch_tokens:,} tokens/step = "
            f"{ctx.world_size} proc x {grad_accum} micro-steps x {cfg.micro_batch_size} x {T}; device {ctx.device}")
    tracker = Tracker(wandb_mode, wandb_project, f"pretrain-{fp['train'][:8]}", run_config, enabled=ctx.is_main)
    started = time.perf_counter()
    try:
        result = train_loop(
            model, batches, settings, ctx, ckpt_dir, fp, evaluate=evaluator, tracker=tracker,
            flops_per_token=model.flops_per_token(T), config=run_config, log=log,
        )
    finally:
        tracker.finish()
    metrics = pretrain_metrics(model, result, val_tokens, vocab_size, ctx, time.perf_counter() - started)
    if ctx.is_main:
        ckpt.save_model(model_dir, model)
        if plot_path is not None:
            write_loss_tsv(plot_path, result.history)
        verdict = "below" if metrics["val_loss"] < metrics["unigram_entropy"] else "NOT below"
        log(f"final: train loss {metrics['train_loss']:.4f}, val loss {metrics['val_loss']:.4f} "
            f"({metrics['val_bpb']:.3f} bits/byte) vs unigram entropy of val {metrics['unigram_entropy']:.4f}: "
            f"{verdict} the baseline by {metrics['unigram_entropy'] - metrics['val_loss']:.3f} nats/token")
    return metrics


def pretrain_metrics(model: GPT, result: LoopResult, val_tokens: np.ndarray, vocab_size: int,
                     ctx: DistContext, wall_seconds: float) -> dict[str, Any]:
    first = result.history[0] if result.history else {}
    return {
        "params": model.num_params(),
        "param_groups": model.param_groups(),
        "device": result.device_name,
        "world_size": ctx.world_size,
        "steps": result.step,
        "tokens_seen": result.tokens_seen,
        "resumed_from_step": result.resumed_from,
        "train_seconds": round(result.train_seconds, 2),
        "wall_seconds": round(wall_seconds, 2),
        "tokens_per_s": round(result.tokens_per_s, 1),
        "achieved_tflops": result.throughput.get("achieved_tflops"),
        "mfu": result.throughput.get("mfu"),  # fraction of the device's bf16 peak; null when unknown (CPU)
        "train_loss": result.last_eval.get("train_loss"),
        "val_loss": result.last_eval.get("val_loss"),
        "val_bpb": result.last_eval.get("val_bpb"),
        "initial_val_loss": first.get("val_loss"),
        "unigram_entropy": unigram_entropy(val_tokens, vocab_size),
    }
