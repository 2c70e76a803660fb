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
import importlib.util
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


def load_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], where: str | os.PathLike) -> None:
    """Load a `model_state()` dict into a GPT (tied head restored by the tie itself)."""
    missing, unexpected = unwrap(model).load_state_dict(state, strict=False)
    missing = [k for k in missing if k != TIED_KEY]
    if missing or unexpected:
        raise WikigptError(f"{where}: weights do not match the model (missing {missing[:3]}, unexpected {unexpected[:3]})")


# ---- resumable training state ----------------------------------------------------------------


def save_train_state(ckpt_dir: str | os.PathLike, state: dict[str, Any]) -> Path:
    """torch.save `state` to <ckpt_dir>/state.pt through a temporary file + rename: a crash while
    writing leaves the previous checkpoint intact."""
    path = Path(ckpt_dir) / STATE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path, "wb") as f:
        torch.save(state, f)
    return path


def load_train_state(ckpt_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The saved state, or None if there is none. weights_only=True: only tensors and plain
    Python containers are unpickled, never arbitrary objects."""
    path = Path(ckpt_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say so, the caller starts fresh
        raise WikigptError(f"{path}: unreadable checkpoint ({type(e).__name__}: {e}); delete it to start fresh") from None


def rng_state() -> dict[str, Any]:
    """Python, numpy (legacy global), torch and CUDA generator states, as weights_only-safe values."""
    import random

    import numpy as np

    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    random.setstate(tuple(state["python"][:1]) + (tuple(state["python"][1]),) + tuple(state["python"][2:]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---- fingerprints ----------------------------------------------------------------------------

FULL_HASH_LIMIT = 256 << 20  # files up to this size are hashed whole
SAMPLE_BLOCKS, SAMPLE_BLOCK = 64, 1 << 20  # larger ones: 64 evenly spaced 1 MiB blocks + the size


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file (size-prefixed); for files over 256 MiB, of 64 evenly spaced 1 MiB blocks.
    Seconds on a multi-GB train.bin instead of minutes, and any re-pack changes the size or the
    sampled bytes (token files are not edited in place)."""
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(f"{size}:".encode())
    with open(path, "rb") as f:
        if size <= FULL_HASH_LIMIT:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        else:
            for i in range(SAMPLE_BLOCKS):
                f.seek((size - SAMPLE_BLOCK) * i // (SAMPLE_BLOCKS - 1))
                h.update(f.read(SAMPLE_BLOCK))
    return h.hexdigest()


def code_digest(*modules: str) -> str:
    """sha256 of the source of the given modules (a package: every .py file under it).

    Part of a training fingerprint: when DVC reruns a training stage because its code changed, a
    persisted checkpoint written by the old code must not be resumed (a finished one would just be
    handed back as the "new" model)."""
    files: list[Path] = []
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"code_digest: no source for module {name!r}")
        origin = Path(spec.origin)
        files += sorted(origin.parent.rglob("*.py")) if spec.submodule_search_locations else [origin]
    h = hashlib.sha256()
    for path in files:
        h.update(f"{path.name}:{path.stat().st_size}:".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def fingerprint(parts: dict[str, Any]) -> dict[str, str]:
    """{part name: sha256 of its canonical JSON}. Two runs may share a checkpoint only when every
    part matches; keeping the parts separate lets the log say WHAT changed."""
    return {
        name: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]
        for name, value in sorted(parts.items())
    }


def fingerprint_diff(old: dict[str, str] | None, new: dict[str, str]) -> list[str]:
    """Names of the parts that differ ([] = same run)."""
    if not isinstance(old, dict):
        return ["(no fingerprint)"]
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
