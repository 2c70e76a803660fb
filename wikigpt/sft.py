"""Supervised fine-tuning: the pretrained model learns to answer in the chat format.

What `stages/sft.py` runs:

1. build the conversations (`wikigpt.sft_data`) into `data/sft/`;
2. encode them with the chat template (`wikigpt.chat_template.encode_conversation`): the loss is
   computed on the assistant's text and its closing `<|end|>` only;
3. fine-tune the base model for `sft.epochs` epochs: batches of whole conversations, right-padded
   with `<|pad|>` (label -1), length-bucketed so little compute goes to padding; AdamW with warmup
   + cosine (the pretrain utilities, `wikigpt.train.optim`), gradient clipping, bf16 autocast on
   CUDA; masked val loss on the held-out conversations every `eval_interval` steps;
4. write `data/models/sft` (safetensors + config.json) and the loss curve.

Resumable like pretraining: a training state (model, optimizer, step, RNG, history, fingerprint)
is written atomically to `data/checkpoints/sft/` every `checkpoint_interval` steps. The batch order
is a pure function of (seed, epoch), so the sampler state is just the step. A run resumes only
when the fingerprint (sft params, base weights, tokenizer, conversations) matches; otherwise it
starts fresh, so an old run is never continued under new settings.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from wikigpt.chat_template import IGNORE_INDEX, encode_conversation, pad_batch
from wikigpt.errors import WikigptError
from wikigpt.model import GPT
from wikigpt.sft_data import SftDataConfig, read_sft_split
from wikigpt.train.checkpoint import (
    file_digest,
    code_digest,
    fingerprint,
    fingerprint_diff,
    load_train_state,
    load_weights,
    model_state,
    rng_state,
    save_train_state,
    set_rng_state,
)
from wikigpt.train.dist import autocast_for
from wikigpt.train.optim import lr_at, make_optimizer, set_lr


@dataclasses.dataclass(frozen=True)
class SftConfig:
    """params.yaml `sft:` section: the conversations (first block) and the fine-tuning run."""

    # conversations (see wikigpt.sft_data.SftDataConfig)
    val_fraction: float = 0.1
    answer_sentences: int = 2
    max_answer_chars: int = 300
    min_answer_chars: int = 20
    section_questions: int = 2
    multi_turn_fraction: float = 0.3
    user_jsonl: str | None = None
    # fine-tuning
    epochs: int = 3
    batch_size: int = 16  # conversations per optimizer step
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 10
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    max_len: int = 0  # tokens per conversation (0 = the model's block_size); longer ones are cut
    eval_interval: int = 25  # steps between held-out loss evaluations (and at the end; 0 = only then)
    eval_conversations: int = 200  # held-out conversations used for the val loss
    checkpoint_interval: int = 50  # steps between resumable checkpoints (and at the end; 0 = only then)
    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda | mps

    def data_config(self) -> SftDataConfig:
        names = {f.name for f in dataclasses.fields(SftDataConfig)}
        return SftDataConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})


Example = tuple[list[int], list[int]]  # (ids, labels) of one conversation


def encode_split(tokenizer: Any, sft_dir: str | Path, split: str, max_len: int) -> tuple[list[Example], int]:
    """Encode every conversation of a split; returns the examples and how many were cut to max_len.

    A cut conversation keeps its beginning (the question and the start of the answer), so it
    still teaches the format; it merely never shows the closing <|end|>."""
    examples, truncated = [], 0
    for i, conv in enumerate(read_sft_split(sft_dir, split), 1):
        ids, labels = encode_conversation(tokenizer, conv["messages"], where=f"{sft_dir}/{split}.jsonl:{i}")
        if len(ids) > max_len:
            ids, labels = ids[:max_len], labels[:max_len]
            truncated += 1
        if any(l != IGNORE_INDEX for l in labels[1:]):
            examples.append((ids, labels))
    if not examples:
        raise WikigptError(f"{sft_dir}/{split}.jsonl: no conversation with an answer to learn from")
    return examples, truncated


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Batches of example indices for one epoch: shuffled, then length-bucketed.

    Within windows of 32 batches the examples are sorted by length before being cut into batches
    (less padding), and the batch order is shuffled again. Pure function of (seed, epoch)."""
    rng = random.Random(f"sft:{seed}:{epoch}")
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 32
    batches = []
    for w in range(0, len(order), window):
        chunk = sorted(order[w : w + window], key=lambda i: lengths[i])
        batches += [chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(examples: Sequence[Example], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad with <|pad|> / -1 and shift: x = ids[:-1], y = labels[1:] (position t predicts t + 1)."""
    ids, labels = pad_batch(examples)
    ids_t = torch.tensor(ids, dtype=torch.long)
    labels_t = torch.tensor(labels, dtype=torch.long)
    x, y = ids_t[:, :-1], labels_t[:, 1:]
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)



@torch.no_grad()
def masked_loss(model: GPT, examples: Sequence[Example], batch_size: int, device: torch.device) -> float:
    """Mean cross-entropy over the assistant tokens of `examples` (the quantity SFT minimises)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    for b in range(0, len(order), batch_size):
        x, y = collate([examples[i] for i in order[b : b + batch_size]], device)
        with autocast_for(device):
            _, loss = model(x, y)
        n = int((y != IGNORE_INDEX).sum())
        total += float(loss) * n
        count += n
    model.train(was_training)
    return total / max(count, 1)


def _due(step: int, interval: int) -> bool:
    return interval > 0 and step % interval == 0


def run_fingerprint(cfg: SftConfig, inputs: dict[str, str | Path]) -> dict[str, str]:
    """What determines an SFT run: its params (less the device), its code and its input files."""
    params = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "device"}
    code = code_digest("wikigpt.model", "wikigpt.train", "wikigpt.sft", "wikigpt.chat_template")
    return fingerprint({"sft": params, "code": code, **{name: file_digest(path) for name, path in inputs.items()}})


@dataclasses.dataclass
class SftResult:
    steps: int
    epochs: int
    train_conversations: int
    val_conversations: int
    tokens_seen: int  # input positions processed (padding excluded)
    trained_tokens: int  # positions with a label (assistant text + <|end|>)
    final_train_loss: float  # mean over the last epoch's steps
    initial_val_loss: float
    final_val_loss: float
    seconds: float
    tokens_per_s: float
    resumed_from_step: int
    history: list[dict[str, Any]]


def train_sft(
    model: GPT,
    train: Sequence[Example],
    val: Sequence[Example],
    cfg: SftConfig,
    device: torch.device,
    ckpt_dir: str | Path | None = None,
    run_fp: dict[str, str] | None = None,
    log: Callable[[dict[str, Any], int], None] | None = None,
    progress: bool = False,
) -> SftResult:
    """Fine-tune `model` in place on `train`; evaluate on `val`. With `ckpt_dir`, save a resumable
    state there and resume from it when its fingerprint equals `run_fp`."""
    if cfg.epochs < 1 or cfg.batch_size < 1:
        raise WikigptError("params.yaml: sft.epochs and sft.batch_size must be >= 1")
    if cfg.eval_interval < 0 or cfg.checkpoint_interval < 0:
        raise WikigptError("params.yaml: sft.eval_interval and sft.checkpoint_interval must be >= 0 (0 = only at the end)")
    model.to(device).train()
    lengths = [len(ids) for ids, _ in train]
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    max_steps = steps_per_epoch * cfg.epochs
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), device.type)
    val_examples = list(val[: cfg.eval_conversations]) if cfg.eval_conversations > 0 else list(val)

    step, tokens_seen, trained_tokens, history = 0, 0, 0, []
    resumed_from = 0
    state = load_train_state(ckpt_dir) if ckpt_dir is not None else None
    if state is not None:
        changed = fingerprint_diff(state.get("fingerprint"), run_fp or {})
        if changed:
            print(f"[sft] checkpoint in {ckpt_dir} is from another run (changed: {', '.join(changed)}); starting fresh")
            state = None
    if state is not None:
        print(f"[sft] resuming from step {state['step']} of {max_steps}")
        load_weights(model, state["model"], Path(ckpt_dir) / "state.pt")
        optimizer.load_state_dict(state["optimizer"])
        step, tokens_seen, trained_tokens = state["step"], state["tokens_seen"], state["trained_tokens"]
        history = state["history"]
        set_rng_state(state["rng"])
        resumed_from = step
        initial_val = state["initial_val_loss"]
    else:
        torch.manual_seed(cfg.seed)
        initial_val = masked_loss(model, val_examples, cfg.batch_size, device)
        history.append({"step": 0, "train_loss": None, "val_loss": initial_val})

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=max_steps, initial=step, desc="sft", unit="step")
    start = time.perf_counter()
    tokens_at_start = tokens_seen
    train_loss = float("nan")
    batches_epoch, batches = -1, []
    while step < max_steps:
        epoch, index = divmod(step, steps_per_epoch)
        if epoch != batches_epoch:
            batches_epoch, batches = epoch, epoch_batches(lengths, cfg.batch_size, cfg.seed, epoch)
        batch = batches[index]
        x, y = collate([train[i] for i in batch], device)
        lr = lr_at(step, max_steps, cfg.lr, cfg.min_lr, cfg.warmup_steps)
        set_lr(optimizer, lr)
        with autocast_for(device):
            _, loss = model(x, y)
        if not torch.isfinite(loss):
            raise WikigptError(f"sft: loss became {float(loss)} at step {step}; the last good checkpoint is kept (lower sft.lr?)")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)) if cfg.grad_clip > 0 else None
        optimizer.step()
        step += 1
        train_loss = float(loss.detach())
        tokens_seen += sum(len(train[i][0]) - 1 for i in batch)
        trained_tokens += int((y != IGNORE_INDEX).sum())
        row: dict[str, Any] = {"step": step, "train_loss": train_loss, "val_loss": None}
        if _due(step, cfg.eval_interval) or step == max_steps:
            row["val_loss"] = masked_loss(model, val_examples, cfg.batch_size, device)
        history.append(row)
        if log is not None:
            log({"sft/train_loss": train_loss, "sft/val_loss": row["val_loss"], "sft/lr": lr, "sft/grad_norm": grad_norm}, step)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{train_loss:.3f}")
        if ckpt_dir is not None and (_due(step, cfg.checkpoint_interval) or step == max_steps):
            save_train_state(
                ckpt_dir,
                {
                    "fingerprint": run_fp or {},
                    "model": model_state(model),
                    "optimizer": optimizer.state_dict(),
                    "step": step,
                    "tokens_seen": tokens_seen,
                    "trained_tokens": trained_tokens,
                    "history": history,
                    "rng": rng_state(),
                    "initial_val_loss": initial_val,
                },
            )
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    final_val = next(r["val_loss"] for r in reversed(history) if r["val_loss"] is not None)
    # Mean over the last epoch: one batch's loss is too noisy to compare runs with.
    last_epoch = [r["train_loss"] for r in history[-steps_per_epoch:] if r["train_loss"] is not None]
    last_train = sum(last_epoch) / len(last_epoch) if last_epoch else train_loss
    return SftResult(
        steps=step,
        epochs=cfg.epochs,
        train_conversations=len(train),
        val_conversations=len(val_examples),
        tokens_seen=tokens_seen,
        trained_tokens=trained_tokens,
        final_train_loss=last_train,
        initial_val_loss=initial_val,
        final_val_loss=final_val,
        seconds=seconds,
        tokens_per_s=(tokens_seen - tokens_at_start) / seconds if seconds > 0 else 0.0,
        resumed_from_step=resumed_from,
        history=history,
    )


def write_loss_tsv(path: str | Path, history: Sequence[dict[str, Any]]) -> None:
    """step, train_loss, val_loss (empty where not measured): the `sft_loss` DVC plot."""
    from wikigpt.io import atomic_file

    with atomic_file(path, "w", encoding="utf-8") as f:
        f.write("step\ttrain_loss\tval_loss\n")
        for r in history:
            cells = [str(r["step"])] + ["" if r[k] is None else f"{r[k]:.6f}" for k in ("train_loss", "val_loss")]
            f.write("\t".join(cells) + "\n")


def run_sft(
    clean_dir: str | Path,
    tokenizer_path: str | Path,
    base_dir: str | Path,
    sft_dir: str | Path,
    ckpt_dir: str | Path,
    out_dir: str | Path,
    plot_path: str | Path,
    cfg: SftConfig,
    runtime: Any,
) -> dict[str, Any]:
    """The sft stage: data, fine-tuning (resumable), model + loss curve. Returns the metrics."""
    from wikigpt.sft_data import build_sft_data
    from wikigpt.tokenizer import load_tokenizer, tokenizer_file
    from wikigpt.train.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_model, save_model
    from wikigpt.train.dist import pick_device
    from wikigpt.train.tracking import Tracker

    data_meta = build_sft_data(clean_dir, sft_dir, cfg.data_config())
    tokenizer = load_tokenizer(tokenizer_path)
    device = pick_device(cfg.device)
    model = load_model(base_dir, device=device)
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    if model.config.vocab_size != vocab:
        raise WikigptError(f"{base_dir}: model vocab_size {model.config.vocab_size} != tokenizer's {vocab} ({tokenizer_path}); rerun pretrain")
    block = model.config.block_size
    if cfg.max_len < 0 or cfg.max_len == 1:
        raise WikigptError(f"params.yaml: sft.max_len must be 0 (the context) or >= 2, got {cfg.max_len}")
    if cfg.max_len > block + 1:
        raise WikigptError(f"params.yaml: sft.max_len={cfg.max_len} exceeds the model's block_size + 1 = {block + 1}")
    max_len = cfg.max_len or block + 1  # ids[:-1] is the input: at most block_size positions
    train, truncated_train = encode_split(tokenizer, sft_dir, "train", max_len)
    val, _ = encode_split(tokenizer, sft_dir, "val", max_len)
    run_fp = run_fingerprint(
        cfg,
        {
            "base_weights": Path(base_dir) / WEIGHTS_FILE,
            "base_config": Path(base_dir) / CONFIG_FILE,
            "tokenizer": tokenizer_file(tokenizer_path),
            "train_conversations": Path(sft_dir) / "train.jsonl",
            "val_conversations": Path(sft_dir) / "val.jsonl",
        },
    )
    tracker = Tracker(runtime.wandb, runtime.wandb_project, name="sft", config=dataclasses.asdict(cfg))

    def log(values: dict[str, Any], step: int) -> None:
        tracker.log(values, step)
        if not runtime.progress and step % max(1, runtime.log_interval) == 0:
            val_part = f" val {values['sft/val_loss']:.4f}" if values.get("sft/val_loss") is not None else ""
            print(f"[sft] step {step} loss {values['sft/train_loss']:.4f}{val_part} lr {values['sft/lr']:.2e}")

    try:
        result = train_sft(model, train, val, cfg, device, ckpt_dir=ckpt_dir, run_fp=run_fp, log=log, progress=runtime.progress)
    finally:
        tracker.finish()
    save_model(out_dir, model)
    write_loss_tsv(plot_path, result.history)
    metrics = {k: v for k, v in dataclasses.asdict(result).items() if k != "history"}
    metrics["truncated_conversations"] = truncated_train
    metrics["seconds"] = round(metrics["seconds"], 2)
    metrics["data"] = {
        "train_conversations": data_meta["train"]["conversations"],
        "val_conversations": data_meta["val"]["conversations"],
        "train_articles": data_meta["train"]["articles"],
        "val_articles": data_meta["val"]["articles"],
        **{f"train_{k}": v for k, v in sorted(data_meta["train"]["by_kind"].items())},
    }
    return metrics
