"""Training throughput: tokens/s, achieved TFLOP/s and MFU of the GPT, against a NAIVE version of
the same model measured in the same run.

Naive = the same weights and maths with unfused q/k/v projections and explicit masked-softmax
attention (materialised T x T scores), the way a first implementation is written. Both variants
do full training steps (forward, backward, AdamW step) on random tokens; the first steps are
warm-up (allocator, compile) and not timed; then the two variants run alternating timed rounds and
each keeps its best round, so a noisy shared machine biases neither.

    .venv/bin/python bench/bench_train.py                  # tiny (params.yaml shape) + 110M, CPU
    .venv/bin/python bench/bench_train.py --only tiny --steps 20
    .venv/bin/python bench/bench_train.py --batch 16       # on a GPU: bf16 autocast + torch.compile

FLOPs per token = 6 x params + 12 x layers x width x context (PaLM); MFU only where the device's
bf16 peak is known (wikigpt.train.mfu), otherwise achieved TFLOP/s.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from wikigpt.model import GPT, GPTConfig, apply_rope
from wikigpt.train.dist import pick_device
from wikigpt.train.loop import autocast_for
from wikigpt.train.mfu import device_name, throughput
from wikigpt.train.optim import make_optimizer

CONFIGS = {
    "tiny": GPTConfig(vocab_size=4096, block_size=128, n_layer=4, n_head=4, n_embd=128),
    "110M": GPTConfig(vocab_size=32768, block_size=1024, n_layer=12, n_head=12, n_embd=768),
}


class NaiveAttention(nn.Module):
    """Separate q/k/v projections and softmax(QK^T/sqrt(d) + causal mask) V, written out."""

    def __init__(self, fused: nn.Module, config: GPTConfig):
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.head_dim
        C = config.n_embd
        self.q, self.k, self.v = (nn.Linear(C, C, bias=False) for _ in range(3))
        wq, wk, wv = fused.qkv.weight.detach().split(C, dim=0)
        for lin, w in zip((self.q, self.k, self.v), (wq, wk, wv)):
            lin.weight.data.copy_(w)
        self.proj = fused.proj
        mask = torch.ones(config.block_size, config.block_size, dtype=torch.bool).tril()
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x, cos, sin, cache=None, layer=0):
        B, T, C = x.shape
        q, k, v = (lin(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2) for lin in (self.q, self.k, self.v))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        att = att.masked_fill(~self.mask[:T, :T], float("-inf"))
        y = F.softmax(att.float(), dim=-1).type_as(v) @ v
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


def naive_copy(model: GPT) -> GPT:
    naive = GPT(model.config)
    naive.load_state_dict(model.state_dict())
    for block, src in zip(naive.blocks, model.blocks):
        block.attn = NaiveAttention(src.attn, model.config)
    return naive


class Runner:
    """One variant's training state; `time(steps)` runs timed full training steps."""

    def __init__(self, model: GPT, batch: int, device: torch.device, compile_: bool, warmup: int):
        self.model = model.to(device).train()
        self.opt = make_optimizer(self.model, 1e-4, 0.1, (0.9, 0.95), device.type)
        self.fwd = torch.compile(self.model) if compile_ else self.model
        self.device, self.batch = device, batch
        T = model.config.block_size
        g = torch.Generator().manual_seed(0)
        self.x = torch.randint(0, model.config.vocab_size, (batch, T), generator=g).to(device)
        self.y = torch.randint(0, model.config.vocab_size, (batch, T), generator=g).to(device)
        for _ in range(warmup):
            self.step()

    def step(self) -> torch.Tensor:
        with autocast_for(self.device):
            _, loss = self.fwd(self.x, self.y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return loss

    def time(self, steps: int) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = self.step()
        loss.item()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / steps


def figures(model: GPT, batch: int, s_per_step: float, device: torch.device) -> dict:
    T = model.config.block_size
    tok_s = batch * T / s_per_step
    return {"tok_s": tok_s, "s_per_step": s_per_step, **throughput(model.flops_per_token(T), tok_s, device_name(device))}


def check_same_model(model: GPT, naive: GPT) -> float:
    idx = torch.randint(0, model.config.vocab_size, (2, min(64, model.config.block_size)))
    with torch.no_grad():
        a, _ = model(idx, idx)
        b, _ = naive(idx, idx)
    return (a - b).abs().max().item()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(CONFIGS), action="append", help="config(s) to run (default: all)")
    ap.add_argument("--batch", type=int, default=0, help="sequences per step (default: 16 tiny / 1 110M on CPU, 16 on GPU)")
    ap.add_argument("--steps", type=int, default=0, help="timed steps (default: 10 tiny, 2 110M on CPU)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=0, help="alternating timed rounds per variant, best kept (default: 3 tiny, 1 110M on CPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--no-compile", action="store_true", help="no torch.compile on CUDA")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    gpu = device.type == "cuda"
    compile_ = gpu and not args.no_compile
    print(f"device: {device_name(device)}; torch {torch.__version__}; "
          f"{'bf16 autocast' if gpu else 'fp32'}{' + torch.compile (fused model)' if compile_ else ', eager'}")
    if not gpu:
        print("no GPU in this run: MFU is not measured (CPU peak unknown); achieved TFLOP/s shown instead")
    rows = []
    for name in args.only or list(CONFIGS):
        config = CONFIGS[name]
        batch = args.batch or (16 if gpu or name == "tiny" else 1)
        steps = args.steps or (10 if gpu or name == "tiny" else 2)
        torch.manual_seed(0)
        model = GPT(config)
        naive = naive_copy(model)
        diff = check_same_model(model, naive)
        runners = {"fused": Runner(model, batch, device, compile_, args.warmup), "naive": Runner(naive, batch, device, False, args.warmup)}
        best = {k: float("inf") for k in runners}
        repeats = args.repeats or (3 if gpu or name == "tiny" else 1)
        for _ in range(repeats):  # alternate the variants; keep each one's best round (shared machines are noisy)
            for k, r in runners.items():
                best[k] = min(best[k], r.time(steps))
        fused, slow = figures(model, batch, best["fused"], device), figures(naive, batch, best["naive"], device)
        del runners
        rows.append((name, model.num_params(), batch, config.block_size, fused, slow, diff))
        del model, naive
        if gpu:
            torch.cuda.empty_cache()

    print(f"\n{'config':<6} {'params':>12} {'batch x ctx':>12} {'variant':<8} {'tok/s':>10} {'s/step':>8} {'TFLOP/s':>8} {'MFU':>6}")
    for name, n, batch, T, fused, slow, diff in rows:
        for variant, r in (("fused", fused), ("naive", slow)):
            mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
            print(f"{name:<6} {n:>12,} {f'{batch} x {T}':>12} {variant:<8} {r['tok_s']:>10,.0f} {r['s_per_step']:>8.3f} "
                  f"{r['achieved_tflops']:>8.3f} {mfu:>6}")
        print(f"{name:<6} fused / naive speed-up: {fused['tok_s'] / slow['tok_s']:.2f}x   (max |logit diff| {diff:.1e}: same model)")


if __name__ == "__main__":
    main()
