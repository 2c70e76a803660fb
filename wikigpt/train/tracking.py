"""Experiment tracking with wandb that never blocks a run.

mode (params.yaml `runtime.wandb`): disabled (wandb is not even imported), offline (default: runs
are written under ./wandb and can be uploaded later with `wandb sync wandb/offline-run-*`), or
online. Online init gets a timeout; without network it falls back to offline with a warning
instead of hanging (wandb's own retry loop can block for minutes). Only rank 0 tracks.
"""

from __future__ import annotations

import os
import sys
from typing import Any

INIT_TIMEOUT_S = 20


class Tracker:
    def __init__(self, mode: str, project: str, name: str, config: dict[str, Any], enabled: bool = True):
        self.run = None
        if mode == "disabled" or not enabled:
            return
        if mode not in ("offline", "online"):
            raise ValueError(f"wandb mode must be disabled, offline or online, got {mode!r}")
        os.environ.setdefault("WANDB_SILENT", "true")
        os.environ["WANDB_MODE"] = mode
        try:
            import wandb
        except ImportError:
            print("warning: wandb is not installed; tracking disabled", file=sys.stderr)
            return
        self._wandb = wandb
        try:
            self.run = self._init(mode, project, name, config)
        except Exception as e:  # network, auth, timeout: a tracking problem must not stop training
            if mode == "online":
                print(f"warning: wandb online init failed ({type(e).__name__}: {e}); logging offline", file=sys.stderr)
                os.environ["WANDB_MODE"] = "offline"
                try:
                    self.run = self._init("offline", project, name, config)
                except Exception as e2:
                    print(f"warning: wandb offline init failed too ({e2}); tracking disabled", file=sys.stderr)
            else:
                print(f"warning: wandb init failed ({type(e).__name__}: {e}); tracking disabled", file=sys.stderr)

    def _init(self, mode: str, project: str, name: str, config: dict[str, Any]):
        settings = self._wandb.Settings(init_timeout=INIT_TIMEOUT_S, silent=True)
        return self._wandb.init(project=project, name=name, config=config, mode=mode, settings=settings, reinit=True)

    def log(self, values: dict[str, Any], step: int) -> None:
        if self.run is not None:
            self.run.log({k: v for k, v in values.items() if v is not None}, step=step)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
