"""WikiGPT: a decoder-only transformer, the Llama recipe on a GPT-2-small skeleton, in one file.

    tokens -> embedding -> n_layer x [x + Attn(RMSNorm(x)); x + SwiGLU(RMSNorm(x))] -> RMSNorm -> tied head

- RMSNorm (reduction in fp32), pre-norm, learnable weight, no bias.
- Rotary position embeddings on q and k, "rotate_half" convention (dim i is paired with
  dim i + head_dim/2, as in HF Llama), cos/sin tables precomputed once for block_size positions.
- One fused qkv projection; attention is `F.scaled_dot_product_attention` (flash / memory-efficient
  kernels where available).
- SwiGLU MLP, hidden = 8/3 x width rounded up to a multiple of 256.
- No biases anywhere; the LM head shares its weight with the token embedding.
- Init N(0, 0.02); the two projections per block that write into the residual stream (attention
  output, MLP down) are scaled by 1/sqrt(2 x n_layer) so the residual variance stays O(1) with depth.

The default config (vocab 32768, context 1024, 12 layers, 12 heads, width 768) has exactly
110,119,680 parameters; see `param_groups()`.

Generation keeps a KV cache (`KVCache`): the prompt is run once ("prefill"), then each new token
costs one single-position forward pass over the cached keys and values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 32768
    block_size: int = 1024  # maximum context length (size of the RoPE tables and of the KV cache)
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if (self.n_embd // self.n_head) % 2:
            raise ValueError(f"head_dim ({self.n_embd // self.n_head}) must be even for RoPE")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def mlp_hidden(self) -> int:
        # 8/3 x width keeps the SwiGLU MLP (3 matrices) at the parameter count of a 4x GELU MLP (2);
        # rounding up to a multiple of 256 keeps matmul shapes hardware friendly.
        return 256 * math.ceil(8 * self.n_embd / 3 / 256)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Reduce in fp32 even under bf16 autocast: the mean of squares loses precision in bf16.
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return xf.type_as(x) * self.weight


def rope_tables(head_dim: int, length: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of shape (length, head_dim): position p, frequency theta^(-2i/head_dim),
    repeated for both halves of the head so that `rotate_half` pairs dim i with dim i + head_dim/2."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = torch.outer(torch.arange(length, dtype=torch.float64), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float(), angles.sin().float()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (B, H, T, D); cos/sin: (T, D) for the positions of x. Rotates each (i, i + D/2) pair by
    its position's angle, so q.k depends only on the offset between the two positions."""
    return x * cos + rotate_half(x) * sin


class KVCache:
    """Preallocated per-layer keys and values for incremental decoding.

    `pos` is the number of positions already stored; a forward pass with a cache writes its new
    keys/values at [pos, pos + T) and attends over [0, pos + T). The caller advances `pos`
    (GPT.forward does it after the last layer).
    """

    def __init__(self, config: GPTConfig, batch_size: int, device, dtype):
        shape = (config.n_layer, batch_size, config.n_head, config.block_size, config.head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.pos = 0
        self.capacity = config.block_size

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t = k.size(2)
        self.k[layer, :, :, self.pos : self.pos + t] = k
        self.v[layer, :, :, self.pos : self.pos + t] = v
        end = self.pos + t
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.head_dim
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=False)
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def forward(self, x, cos, sin, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) -> (B, H, T, D)
        q, k, v = (t.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is None or cache.pos == 0 and T > 1:
            if cache is not None:  # prefill: store, then plain causal attention over the prompt
                cache.update(layer, k, v)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            past = cache.pos
            k, v = cache.update(layer, k, v)
            if T == 1:  # one new token sees every cached position: no mask needed
                y = F.scaled_dot_product_attention(q, k, v)
            else:
                # A chunk after a non-empty cache: query i (absolute position past + i) sees keys
                # 0..past + i. (is_causal=True would align the mask top-left, which is wrong here.)
                mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(diagonal=past)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


class SwiGLU(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        hidden = config.mlp_hidden
        self.gate = nn.Linear(config.n_embd, hidden, bias=False)
        self.up = nn.Linear(config.n_embd, hidden, bias=False)
        self.down = nn.Linear(hidden, config.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.attn_norm = RMSNorm(config.n_embd, config.norm_eps)
        self.attn = CausalSelfAttention(config)
        self.mlp_norm = RMSNorm(config.n_embd, config.norm_eps)
        self.mlp = SwiGLU(config)

    def forward(self, x, cos, sin, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, cache, layer)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.n_embd, config.norm_eps)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one matrix embeds and un-embeds
        cos, sin = rope_tables(config.head_dim, config.block_size, config.rope_theta)
        # Non-persistent: derived from the config, so never stored in checkpoints.
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                nn.init.ones_(p)
            elif name.endswith(("attn.proj.weight", "mlp.down.weight")):
                nn.init.normal_(p, mean=0.0, std=residual_std)
            else:
                nn.init.normal_(p, mean=0.0, std=0.02)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """idx: (B, T) token ids. With `targets` (B, T; -1 = ignored): logits (B, T, V) and the mean
        cross-entropy. Without: logits of the last position only, (B, 1, V), and None.
        With `cache`, idx continues the cached sequence and the cache advances by T."""
        B, T = idx.shape
        start = cache.pos if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds block_size {self.config.block_size}")
        x = self.wte(idx)
        cos = self.rope_cos[start : start + T].to(x.dtype)
        sin = self.rope_sin[start : start + T].to(x.dtype)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, cache, i)
        if cache is not None:
            cache.pos += T
        x = self.norm(x)
        if targets is None:
            return self.lm_head(x[:, [-1], :]), None
        logits = self.lm_head(x)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    # ---- bookkeeping -------------------------------------------------------------------------

    def num_params(self) -> int:
        """Distinct parameters (the tied embedding / head counted once)."""
        return sum(p.numel() for p in self.parameters())

    def param_groups(self) -> dict[str, int]:
        """Parameter count per kind: embedding (= the tied head), attention, swiglu, norms."""
        groups = {"embedding": 0, "attention": 0, "swiglu": 0, "norms": 0}
        for name, p in self.named_parameters():  # named_parameters() yields a tied tensor once
            if name.startswith("wte"):
                groups["embedding"] += p.numel()
            elif ".attn." in name:
                groups["attention"] += p.numel()
            elif ".mlp." in name:
                groups["swiglu"] += p.numel()
            elif "norm" in name:
                groups["norms"] += p.numel()
            else:
                raise AssertionError(f"unclassified parameter {name}")
        return groups

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token (forward + backward): 6 per weight (the tied head matmul included)
        plus the attention score/value matmuls, 12 x n_layer x width x context (PaLM appendix B)."""
        T = seq_len or self.config.block_size
        return 6 * self.num_params() + 12 * self.config.n_layer * self.config.n_embd * T

    # ---- generation --------------------------------------------------------------------------

    @staticmethod
    def sample_next(
        logits: torch.Tensor,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """logits (B, V) -> next ids (B, 1). temperature 0 = greedy (argmax)."""
        if temperature <= 0:
            return logits.argmax(dim=-1, keepdim=True)
        logits = logits.float() / temperature
        if top_k is not None and top_k < logits.size(-1):
            kth = torch.topk(logits, top_k, dim=-1).values[:, [-1]]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if top_p is not None and top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
            # Drop a token when the tokens ranked above it already reach top_p (keeps at least one).
            drop_sorted = (cum - sorted_logits.softmax(dim=-1)) >= top_p
            drop = drop_sorted.scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        probs = logits.softmax(dim=-1)
        return torch.multinomial(probs, num_samples=1, generator=generator)

    @torch.no_grad()
    def generate_stream(
        self,
        ids: Sequence[int],
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        stop_ids: Sequence[int] = (),
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> Iterator[int]:
        """Yield new token ids one at a time for a single sequence. A token in `stop_ids` ends the
        stream and is NOT yielded. The context beyond block_size is cropped (see `generate`)."""
        device = self.wte.weight.device
        idx = torch.tensor([list(ids)], dtype=torch.long, device=device)
        for token in self._decode(idx, max_new_tokens, temperature, top_k, top_p, use_cache, generator):
            t = int(token[0, 0])
            if t in stop_ids:
                return
            yield t

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        stop_ids: Sequence[int] = (),
        use_cache: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue idx (B, T) by up to max_new_tokens; returns (B, T + n). A row that emits a token
        in `stop_ids` keeps that token and is padded with it afterwards; generation ends early when
        every row has stopped. Beyond block_size the model sees the last block_size tokens only;
        with the cache, the window slides in chunks (the cache is rebuilt from the last 3/4 of the
        context when full), so past block_size cached and uncached outputs may differ."""
        stop = torch.tensor(list(stop_ids), dtype=torch.long, device=idx.device)
        done = torch.zeros(idx.size(0), 1, dtype=torch.bool, device=idx.device)
        out = [idx]
        last = None
        for token in self._decode(idx, max_new_tokens, temperature, top_k, top_p, use_cache, generator):
            if last is not None:
                token = torch.where(done, last, token)  # stopped rows repeat their stop token
            out.append(token)
            if len(stop):
                done = done | torch.isin(token, stop)
                if bool(done.all()):
                    break
            last = token
        return torch.cat(out, dim=1)

    def _decode(self, idx, max_new_tokens, temperature, top_k, top_p, use_cache, generator):
        """The decoding loop shared by generate / generate_stream: yields (B, 1) tokens."""
        if idx.size(1) == 0:
            raise ValueError("generation needs at least one prompt token")
        was_training = self.training
        self.eval()
        try:
            block = self.config.block_size
            cache = None
            seq = idx
            for _ in range(max_new_tokens):
                if not use_cache:
                    logits, _ = self(seq[:, -block:])
                elif cache is None or cache.pos >= block:
                    # (Re)build the cache from the most recent context; keep room to grow so the
                    # rebuild happens once per block/4 new tokens, not on every token.
                    keep = seq[:, -block:] if cache is None else seq[:, -(3 * block) // 4 :]
                    cache = KVCache(self.config, seq.size(0), seq.device, self.wte.weight.dtype)
                    logits, _ = self(keep, cache=cache)
                else:
                    logits, _ = self(seq[:, -1:], cache=cache)
                token = self.sample_next(logits[:, -1, :], temperature, top_k, top_p, generator)
                seq = torch.cat([seq, token], dim=1)
                yield token
        finally:
            self.train(was_training)
