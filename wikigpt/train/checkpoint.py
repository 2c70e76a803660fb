"""Checkpoints.

Two kinds of file:
- inference weights: `<dir>/model.safetensors` + `<dir>/config.json` (the GPTConfig fields), what
  chat/serve/eval/export load with `load_model(dir)`. The tied head is stored once (as `wte.weight`).
- a resumable training state: one `state.pt` per checkpoint directory (model, optimizer, step,
  tokens seen, RNG states, sampler state, history, config, fingerprint), replaced atomically, so an
  interrupted write never destroys the last good checkpoint. Loaded with `weights_only=True`.

`fingerprint()` hashes what determines a run (model + train params, the token files): the loop
resumes only from a state with the same fingerprint, never an old run under a new lr.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from wikigpt.errors import WikigptError
from wikigpt.io import atomic_dir, atomic_file, write_json
from wikigpt.model import GPT, GPTConfig

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATE_FILE = "state.pt"
TIED_KEY = "lm_head.weight"  # shares storage with wte.weight; not stored separately


def unwrap(model: torch.nn.Module) -> GPT:
    """The plain GPT inside a DDP and/or torch.compile wrapper."""
    while True:
        if hasattr(model, "module"):  # DistributedDataParallel
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        else:
            return model


def model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Weights to store: CPU, contiguous, the tied head dropped."""
    sd = unwrap(model).state_dict()
    return {k: v.detach().to("cpu").contiguous() for k, v in sd.items() if k != TIED_KEY}


def save_model(out_dir: str | os.PathLike, model: torch.nn.Module, atomic: bool = True) -> Path:
    """Write model.safetensors + config.json into out_dir (atomically replacing it by default)."""
    gpt = unwrap(model)
    out_dir = Path(out_dir)
    if atomic:
        with atomic_dir(out_dir) as tmp:
            _write_model(tmp, gpt)
    else:
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_model(out_dir, gpt)
    return out_dir


def _write_model(d: Path, gpt: GPT) -> None:
    save_file(model_state(gpt), str(d / WEIGHTS_FILE), metadata={"format": "pt"})
    write_json(d / CONFIG_FILE, dataclasses.asdict(gpt.config))


def read_config(model_dir: str | os.PathLike) -> GPTConfig:
    path = Path(model_dir) / CONFIG_FILE
    if not path.exists():
        raise WikigptError(f"{path}: not found (expected a model directory with {WEIGHTS_FILE} + {CONFIG_FILE})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return GPTConfig(**raw)
    except (json.JSONDecodeError, TypeError, ValueError) as e:
        raise WikigptError(f"{path}: not a valid model config: {e}") from None


def load_model(model_dir: str | os.PathLike, device: str | torch.device = "cpu") -> GPT:
    """Build the GPT from config.json and load model.safetensors (strictly: every weight present)."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    weights = model_dir / WEIGHTS_FILE
    if not weights.exists():
        raise WikigptError(f"{weights}: not found")
    state = load_file(str(weights), device="cpu")
    model = GPT(config)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != TIED_KEY]
    if missing or unexpected:
        raise WikigptError(f"{weights}: weights do not match config.json (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device).eval()
