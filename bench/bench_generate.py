"""Generation speed with and without the KV cache, same model, same run.

Greedy decoding of --new-tokens tokens (default 256) after a short prompt. Uncached, every new
token re-runs the whole context (cost grows with length); cached, the prompt is run once and each
new token is one single-position pass over stored keys/values. The outputs are checked identical.

    .venv/bin/python bench/bench_generate.py                 # small (ctx 1024) + tiny (ctx 128)
    .venv/bin/python bench/bench_generate.py --only 110M --new-tokens 64
"""

from __future__ import annotations

import argparse
import time

import torch

from wikigpt.model import GPT, GPTConfig
from wikigpt.train.dist import pick_device

CONFIGS = {
    # the params.yaml default shape: 256 new tokens run past its 128-token context (the window slides)
    "tiny": GPTConfig(vocab_size=4096, block_size=128, n_layer=4, n_head=4, n_embd=128),
    "small": GPTConfig(vocab_size=4096, block_size=1024, n_layer=6, n_head=6, n_embd=384),
    "110M": GPTConfig(vocab_size=32768, block_size=1024, n_layer=12, n_head=12, n_embd=768),
}


def timed(model: GPT, prompt: torch.Tensor, n: int, use_cache: bool, device: torch.device) -> tuple[torch.Tensor, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model.generate(prompt, n, temperature=0.0, use_cache=use_cache)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=sorted(CONFIGS), action="append", help="config(s) (default: small, tiny)")
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--prompt-tokens", type=int, default=16)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; greedy, batch 1, "
          f"{args.prompt_tokens}-token prompt, {args.new_tokens} new tokens")
    print(f"{'config':<6} {'params':>12} {'ctx':>5} {'uncached s':>11} {'cached s':>9} {'cached tok/s':>13} {'speed-up':>9} {'same output':>12}")
    for name in args.only or ["small", "tiny"]:
        config = CONFIGS[name]
        torch.manual_seed(0)
        model = GPT(config).to(device).eval()
        prompt = torch.randint(0, config.vocab_size, (1, args.prompt_tokens), device=device)
        model.generate(prompt, 4, temperature=0.0, use_cache=True)  # warm-up
        cached, t_cached = timed(model, prompt, args.new_tokens, True, device)
        uncached, t_uncached = timed(model, prompt, args.new_tokens, False, device)
        within = args.prompt_tokens + args.new_tokens <= config.block_size
        same = "yes" if torch.equal(cached, uncached) else ("no" if within else "n/a (slides)")
        print(f"{name:<6} {model.num_params():>12,} {config.block_size:>5} {t_uncached:>11.2f} {t_cached:>9.2f} "
              f"{args.new_tokens / t_cached:>13,.1f} {t_uncached / t_cached:>8.1f}x {same:>12}")


if __name__ == "__main__":
    main()
