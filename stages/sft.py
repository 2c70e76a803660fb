"""sft stage: conversations from the clean corpus, then supervised fine-tuning of the base model."""

import torch

from wikigpt.config import load_runtime, load_section
from wikigpt.io import write_metrics
from wikigpt.sft import SftConfig, run_sft
from wikigpt.stage import stage_main


@stage_main
def main() -> None:
    cfg = load_section("sft", SftConfig)
    rt = load_runtime()
    torch.set_num_threads(rt.threads)
    metrics = run_sft(
        clean_dir="data/clean",
        tokenizer_path="data/tokenizer",
        base_dir="data/models/base",
        sft_dir="data/sft",
        ckpt_dir="data/checkpoints/sft",
        out_dir="data/models/sft",
        plot_path="plots/sft_loss.tsv",
        cfg=cfg,
        runtime=rt,
    )
    write_metrics("sft", metrics)
    print(
        f"[sft] {metrics['steps']} steps, val loss {metrics['initial_val_loss']:.3f} -> {metrics['final_val_loss']:.3f} "
        f"({metrics['tokens_per_s']:.0f} tokens/s, {metrics['seconds']:.1f}s)"
    )


if __name__ == "__main__":
    main()
