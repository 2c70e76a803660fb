"""The training loop shared by pretraining and SFT.

    result = train_loop(model, batches, settings, ctx, ckpt_dir, fingerprint, evaluate=..., tracker=...)

- `model`: a GPT (plain nn.Module) on the CPU or already on `ctx.device`; it is moved, compiled
  (CUDA + settings.compile) and wrapped in DDP here. The trained weights end up in `model` itself.
- `batches`: any object with `next_batch() -> (x, y)` (this rank's next micro-batch, int64 CPU
  tensors, y = -1 where no loss), `state_dict()` and `load_state_dict()`; the loop calls
  next_batch() exactly `settings.grad_accum` times per optimizer step and saves its state in each
  checkpoint. Pretraining uses `wikigpt.train.data.TokenWindows`; SFT passes its own padded
  conversation batches with masked labels.
- `evaluate(model) -> dict[str, float]` (optional): run at step 0, every `eval_interval` steps and
  at the end, under torch.no_grad and the loop's autocast; every rank calls it (split the work
  by `ctx.rank` and sum with `wikigpt.train.dist.all_reduce_sum` if you like). Its values land
  in `result.history` rows together with `step` and `lr`.
- `fingerprint`: a `wikigpt.train.checkpoint.fingerprint(...)` dict. A checkpoint in `ckpt_dir`
  with the same fingerprint is resumed (model, optimizer, sampler, RNG, step, history); any other
  one is ignored (the log says which parts changed) and overwritten by this run's first checkpoint.

Per optimizer step: lr from the warmup + cosine schedule, grad_accum micro-steps (bf16 autocast on
CUDA, fp32 elsewhere; DDP gradient sync only on the last one), gradient clipping, a finiteness
check (a NaN/inf loss or gradient stops the run with an error BEFORE the update, so the last
checkpoint on disk stays good), AdamW step. Only rank 0 logs, tracks and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from wikigpt.errors import WikigptError
from wikigpt.train import checkpoint as ckpt
from wikigpt.train.dist import DistContext, all_reduce_sum, autocast_for, barrier
from wikigpt.train.mfu import device_name, throughput
from wikigpt.train.optim import lr_at, make_optimizer, set_lr


class BatchSource(Protocol):
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class LoopSettings:
    max_steps: int
    lr: float
    min_lr: float
    warmup_steps: int
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 = no clipping (the norm is still logged)
    grad_accum: int = 1  # micro-steps per optimizer step on each rank
    eval_interval: int = 0  # 0 = evaluate only at step 0 and at the end
    ckpt_interval: int = 0  # 0 = checkpoint only at the end
    compile: bool = True  # torch.compile; applied on CUDA only
    # result-neutral (not part of any fingerprint):
    log_interval: int = 10
    progress: bool = True
    name: str = "train"


@dataclass
class LoopResult:
    step: int
    tokens_seen: int
    train_seconds: float  # optimizer steps only (no eval, no checkpoint writing), this process
    tokens_per_s: float  # global tokens / s over this process's steps (first step excluded: warm-up)
    last_eval: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int | None = None
    device_name: str = ""
    throughput: dict[str, float | None] = field(default_factory=dict)



def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":  # pinned host memory lets the copy run asynchronously
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def train_loop(
    model: torch.nn.Module,
    batches: BatchSource,
    settings: LoopSettings,
    ctx: DistContext,
    ckpt_dir: str | Path,
    fingerprint: dict[str, str],
    evaluate: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    tracker: Any = None,
    flops_per_token: float | None = None,
    config: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> LoopResult:
    device = ctx.device
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    raw = model.to(device)
    optimizer = make_optimizer(raw, settings.lr, settings.weight_decay, (settings.beta1, settings.beta2), device.type)
    step, tokens_seen, history, resumed_from = 0, 0, [], None

    state = ckpt.load_train_state(ckpt_dir)
    if state is not None:
        changed = ckpt.fingerprint_diff(state.get("fingerprint"), fingerprint)
        if changed:
            if ctx.is_main:
                log(f"{ckpt_dir}: checkpoint from a different run (changed: {', '.join(changed)}); starting fresh")
        else:
            ckpt.load_weights(raw, state["model"], Path(ckpt_dir) / ckpt.STATE_FILE)
            optimizer.load_state_dict(state["optimizer"])
            batches.load_state_dict(state["sampler"])
            ckpt.set_rng_state(state["rng"])
            step, tokens_seen, history = int(state["step"]), int(state["tokens_seen"]), list(state["history"])
            resumed_from = step
            if ctx.is_main:
                log(f"{ckpt_dir}: resuming at step {step} ({tokens_seen:,} tokens seen)")
        del state
    if ctx.distributed:  # every rank must start from the same step (multi-node: shared checkpoint dir)
        steps = all_reduce_sum(torch.tensor([step, 1], dtype=torch.float64, device=device), ctx)
        if steps[0].item() != step * ctx.world_size:
            raise WikigptError(f"{ckpt_dir}: ranks found different checkpoints; put it on a filesystem all nodes share")

    fwd = torch.compile(raw) if settings.compile and device.type == "cuda" else raw
    train_model = DDP(fwd, device_ids=[ctx.local_rank] if device.type == "cuda" else None) if ctx.distributed else fwd
    name = device_name(device)

    def run_eval() -> dict[str, float]:
        if evaluate is None:
            return {}
        raw.eval()
        with torch.no_grad(), autocast_for(device):
            values = evaluate(fwd)
        raw.train()
        row = {"step": step, **values, "lr": lr_at(step, settings.max_steps, settings.lr, settings.min_lr, settings.warmup_steps)}
        history.append(row)
        if ctx.is_main and tracker is not None:
            tracker.log({f"eval/{k}": v for k, v in values.items()}, step)
        return values

    def save() -> None:
        if ctx.is_main:
            ckpt.save_train_state(
                ckpt_dir,
                {
                    "format": 1,
                    "fingerprint": fingerprint,
                    "config": config or {},
                    "settings": asdict(settings),
                    "step": step,
                    "tokens_seen": tokens_seen,
                    "model": ckpt.model_state(raw),
                    "optimizer": optimizer.state_dict(),
                    "sampler": batches.state_dict(),
                    "rng": ckpt.rng_state(),
                    "history": history,
                },
            )
        barrier(ctx)

    raw.train()
    last_eval: dict[str, float] = {}
    say = log
    if resumed_from is None and evaluate is not None:
        last_eval = run_eval()  # the untrained baseline: the first point of the loss curve
    start_step = step
    train_seconds, timed_tokens, timed_seconds = 0.0, 0, 0.0
    window_tokens, window_seconds = 0, 0.0
    bar = tqdm(
        total=settings.max_steps, initial=step, desc=settings.name, unit="step",
        disable=not (settings.progress and ctx.is_main), dynamic_ncols=True,
    )
    if not bar.disable:
        say = bar.write  # print above the progress bar instead of through it
    while step < settings.max_steps:
        t0 = time.perf_counter()
        lr = lr_at(step, settings.max_steps, settings.lr, settings.min_lr, settings.warmup_steps)
        set_lr(optimizer, lr)
        loss_sum = torch.zeros((), device=device)
        step_tokens = 0
        for micro in range(settings.grad_accum):
            x, y = batches.next_batch()
            step_tokens += x.numel()
            x, y = to_device(x, device), to_device(y, device)
            last = micro == settings.grad_accum - 1
            sync = contextlib.nullcontext() if last or not ctx.distributed else train_model.no_sync()
            with sync:  # backward must run inside no_sync too, that is where DDP all-reduces
                with autocast_for(device):
                    _, loss = train_model(x, y)
                (loss / settings.grad_accum).backward()
            loss_sum += loss.detach().float()
        clip = settings.grad_clip if settings.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(raw.parameters(), clip)
        # one reduction for logging and for a consistent NaN verdict on every rank
        stats = all_reduce_sum(torch.stack([loss_sum / settings.grad_accum, grad_norm.float()]).detach(), ctx)
        loss_value = stats[0].item() / ctx.world_size
        norm_value = stats[1].item() / ctx.world_size
        if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            bar.close()
            raise WikigptError(
                f"non-finite {'loss' if not math.isfinite(loss_value) else 'gradient norm'} at step {step + 1} "
                f"(loss {loss_value}, grad norm {norm_value}); weights not updated, the last good checkpoint in "
                f"{ckpt_dir} is kept. Lower train.lr or raise train.warmup_steps."
            )
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens_seen += step_tokens * ctx.world_size
        dt = time.perf_counter() - t0
        train_seconds += dt
        window_tokens += step_tokens * ctx.world_size
        window_seconds += dt
        if step > start_step + 1 or settings.max_steps - start_step == 1:
            timed_tokens += step_tokens * ctx.world_size
            timed_seconds += dt
        bar.update(1)
        if step % settings.log_interval == 0 or step == settings.max_steps:
            tok_s = window_tokens / max(window_seconds, 1e-9)
            perf = throughput(flops_per_token, tok_s, name, ctx.world_size) if flops_per_token else {}
            if ctx.is_main:
                bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
                util = f"MFU {perf['mfu']:.1%}" if perf.get("mfu") is not None else f"{perf.get('achieved_tflops', 0):.3f} TFLOP/s"
                say(
                    f"step {step}/{settings.max_steps} | loss {loss_value:.4f} | lr {lr:.2e} | "
                    f"grad norm {norm_value:.3f} | {tok_s:,.0f} tok/s | {util}"
                )
                if tracker is not None:
                    tracker.log({"train/loss": loss_value, "lr": lr, "grad_norm": norm_value, "tokens_per_s": tok_s, **perf}, step)
            window_tokens, window_seconds = 0, 0.0
        final = step == settings.max_steps
        if evaluate is not None and (final or (settings.eval_interval > 0 and step % settings.eval_interval == 0)):
            last_eval = run_eval()
            if ctx.is_main:
                say(f"step {step} eval | " + " | ".join(f"{k} {v:.4f}" for k, v in last_eval.items()))
        if final or (settings.ckpt_interval > 0 and step % settings.ckpt_interval == 0):
            save()
    bar.close()
    if step == start_step and resumed_from is not None and ctx.is_main:
        log(f"{ckpt_dir}: already at max_steps={settings.max_steps}; nothing to train")
    if evaluate is not None and not last_eval:  # nothing trained in this process: reuse or redo the last eval
        if history and history[-1]["step"] == step:
            last_eval = {k: v for k, v in history[-1].items() if k not in ("step", "lr")}
        else:
            last_eval = run_eval()
    tok_s = timed_tokens / timed_seconds if timed_seconds > 0 else 0.0
    return LoopResult(
        step=step,
        tokens_seen=tokens_seen,
        train_seconds=train_seconds,
        tokens_per_s=tok_s,
        last_eval=last_eval,
        history=history,
        resumed_from=resumed_from,
        device_name=name,
        throughput=throughput(flops_per_token, tok_s, name, ctx.world_size) if flops_per_token else {},
    )
