"""Atomic outputs and metrics files.

Every stage writes into a temporary sibling and renames it into place only when complete, so a
crash or a bad input never leaves an output that a later stage (or DVC) would accept.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

METRICS_DIR = Path("metrics")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_sibling(path: Path, kind: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}.tmp-"
    # mkstemp/mkdtemp create 0600/0700; outputs should get the usual permissions once renamed.
    if kind == "dir":
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=path.parent))
        tmp.chmod(0o777 & ~_umask())
        return tmp
    fd, name = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    os.close(fd)
    Path(name).chmod(0o666 & ~_umask())
    return Path(name)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory; on success it replaces `path`, on error it is removed.

    The old `path` is removed *before* the body runs: if the stage fails, nothing that looks like a
    finished output is left behind (a stale output from other inputs would be worse than none).
    """
    path = Path(path)
    _remove(path)
    tmp = _tmp_sibling(path, "dir")
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.replace(tmp, path)


@contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb", **kwargs: Any) -> Iterator[Any]:
    """Open a temporary sibling for writing; rename it onto `path` only if the body succeeds."""
    path = Path(path)
    tmp = _tmp_sibling(path, "file")
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_file(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=False, ensure_ascii=False)
        f.write("\n")


def write_metrics(stage: str, metrics: dict[str, Any], metrics_dir: str | os.PathLike = METRICS_DIR) -> Path:
    """Write `metrics/<stage>.json`, which dvc.yaml declares as a DVC metrics file."""
    path = Path(metrics_dir) / f"{stage}.json"
    write_json(path, metrics)
    return path
