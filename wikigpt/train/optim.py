"""AdamW with weight decay on matrices only, and the warmup + cosine learning-rate schedule."""

from __future__ import annotations

import inspect
import math

import torch


def make_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float, betas: tuple[float, float], device_type: str
) -> torch.optim.AdamW:
    """AdamW over two groups: 2-D weights (embeddings, linear layers) decay; vectors (norm gains) don't.

    Decaying a norm gain pulls it towards 0 (not towards 1, its neutral value), so it is left alone.
    The fused kernel (one launch for all parameters) is used where this torch build supports it.
    """
    params = [p for p in model.parameters() if p.requires_grad]  # a tied tensor appears once
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    fused = "fused" in inspect.signature(torch.optim.AdamW).parameters and device_type in ("cuda", "cpu", "mps")
    kwargs = {"fused": True} if fused else {}
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8, **kwargs)
    except (RuntimeError, ValueError):  # fused unsupported for this device/dtype: plain AdamW
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8)


def lr_at(step: int, max_steps: int, lr: float, min_lr: float, warmup_steps: int) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup from lr/warmup to lr over
    `warmup_steps`, then a cosine from lr down to min_lr at `max_steps` (and min_lr after)."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
