"""Batches of random token windows from a memory-mapped token file.

Sampling is defined per GLOBAL optimizer step, not per process: step s draws the offsets of all
`micro_batch x grad_accum x world_size` windows from a generator seeded by (seed, s), and each
rank takes its own disjoint slice for each of its micro-steps. So ranks never see the same window,
the data a step sees does not depend on how it is split over GPUs and micro-steps (one GPU with
8 accumulation steps sees exactly what 8 GPUs see), and the sampler's whole state is the step
counter: resuming needs no generator state, only `{"step": s}`.

Any object with `next_batch() -> (x, y)`, `state_dict()` and `load_state_dict()` can feed
`train_loop`; this is the one pretraining uses.
"""

from __future__ import annotations

import numpy as np
import torch

from wikigpt.errors import WikigptError


class TokenWindows:
    def __init__(
        self,
        tokens: np.ndarray,
        block_size: int,
        micro_batch: int,
        grad_accum: int,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        name: str = "train.bin",
    ):
        if len(tokens) < block_size + 1:
            raise WikigptError(f"{name}: {len(tokens)} tokens, fewer than block_size + 1 = {block_size + 1}")
        self.tokens = tokens
        self.block_size = block_size
        self.micro_batch, self.grad_accum = micro_batch, grad_accum
        self.rank, self.world_size = rank, world_size
        self.seed = seed
        self.step = 0  # optimizer steps fully consumed
        self.micro = 0  # micro-batches of the current step consumed by this rank
        self._offsets: np.ndarray | None = None

    def step_offsets(self, step: int) -> np.ndarray:
        """Start offsets of every window of global step `step`, shape (grad_accum, world, micro)."""
        rng = np.random.default_rng([self.seed, step])
        n = self.grad_accum * self.world_size * self.micro_batch
        high = len(self.tokens) - self.block_size  # exclusive: a window needs block_size + 1 tokens
        return rng.integers(0, high, size=n, dtype=np.int64).reshape(self.grad_accum, self.world_size, self.micro_batch)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's next micro-batch: x, y of shape (micro_batch, block_size), int64, on CPU."""
        if self.micro == 0:
            self._offsets = self.step_offsets(self.step)
        starts = self._offsets[self.micro, self.rank]
        xy = torch.from_numpy(windows(self.tokens, starts, self.block_size + 1))
        self.micro += 1
        if self.micro == self.grad_accum:
            self.micro, self.step = 0, self.step + 1
        return xy[:, :-1], xy[:, 1:]

    def state_dict(self) -> dict[str, int]:
        if self.micro:
            raise RuntimeError("sampler state requested in the middle of an optimizer step")
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.step, self.micro = int(state["step"]), 0


def windows(tokens: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Stack tokens[s : s + length] for each start into an int64 array (one memmap read each)."""
    return np.stack([np.asarray(tokens[s : s + length]) for s in starts]).astype(np.int64)


def fixed_windows(n_tokens: int, block_size: int, count: int, name: str = "val.bin") -> np.ndarray:
    """`count` start offsets spread evenly over a split: the same eval windows at every eval, every
    run, so eval losses are comparable along a curve and across runs."""
    if n_tokens < block_size + 1:
        raise WikigptError(
            f"{name}: {n_tokens} tokens, fewer than block_size + 1 = {block_size + 1}; "
            f"lower model.block_size or give the split more documents"
        )
    return np.linspace(0, n_tokens - block_size - 1, num=count).round().astype(np.int64)
