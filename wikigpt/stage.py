"""Shared entry-point plumbing for `stages/*.py`: one-line errors, exit codes, timing."""

from __future__ import annotations

import functools
import os
import sys
import time
from typing import Callable

from wikigpt.errors import WikigptError


def stage_main(fn: Callable[[], None]) -> Callable[[], None]:
    """Wrap a stage's `main()`: a WikigptError becomes `error: ...` on stderr and exit code 1.

    Set WIKIGPT_TRACEBACK=1 to see the full traceback instead.
    """

    @functools.wraps(fn)
    def wrapper() -> None:
        start = time.perf_counter()
        try:
            fn()
        except WikigptError as e:
            if os.environ.get("WIKIGPT_TRACEBACK"):
                raise
            print(f"error: {e}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        stage = os.path.splitext(os.path.basename(sys.argv[0]))[0] or fn.__module__
        print(f"[{stage}] done in {time.perf_counter() - start:.1f}s", file=sys.stderr)

    return wrapper
