"""Stage pretrain: data/tokens + data/tokenizer -> data/models/base (+ resumable data/checkpoints/pretrain).

`train.nproc > 1` re-executes this script under torchrun (DDP on this machine); a script started
by torchrun directly (multi-node, see README) runs as one of its ranks.
"""

import torch

from wikigpt.config import load_runtime, load_section
from wikigpt.io import write_metrics
from wikigpt.stage import stage_main
from wikigpt.train import dist
from wikigpt.train.pretrain import ModelParams, TrainConfig, run_pretrain


@stage_main
def main() -> None:
    model_params = load_section("model", ModelParams)
    cfg = load_section("train", TrainConfig)
    rt = load_runtime()
    dist.relaunch_under_torchrun(cfg.nproc, __file__)
    torch.set_num_threads(rt.threads)
    ctx = dist.setup(cfg.device)
    try:
        metrics = run_pretrain(
            model_params, cfg, ctx,
            wandb_mode=rt.wandb, wandb_project=rt.wandb_project,
            log_interval=rt.log_interval, progress=rt.progress,
        )
        if ctx.is_main:
            write_metrics("train", metrics)
    finally:
        dist.teardown(ctx)


if __name__ == "__main__":
    main()
