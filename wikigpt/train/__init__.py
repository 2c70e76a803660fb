"""Training utilities shared by pretraining and SFT.

    optim.py       AdamW parameter groups, warmup + cosine learning-rate schedule
    data.py        random windows of a memmapped token file (TokenWindows) + fixed eval windows
    loop.py        train_loop(): accumulation, clipping, autocast, DDP, eval, checkpoints, logging
    checkpoint.py  inference weights (safetensors + config.json), resumable train state, fingerprints
    dist.py        torchrun / DDP setup and teardown
    mfu.py         FLOPs per token, device peak table, model FLOPs utilisation
    tracking.py    wandb wrapper that never blocks (disabled | offline | online)
    pretrain.py    the pretrain stage's library entry point (what stages/pretrain.py calls)
"""
