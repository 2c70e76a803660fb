"""extract stage: a MediaWiki dump -> Parquet shards of plain-text articles.

Keeps namespace-0, non-redirect (`<redirect>` element), wikitext-model pages; converts them with
`wikigpt.data.wikitext`; skips disambiguation pages and pages that convert to nothing; counts all
of it. A page whose conversion raises is skipped, counted as `failed`, and named in a warning.

Parallelism (`runtime.extract_workers` processes; the output does not depend on it):
* multistream dump (index given or found, or stream headers found by scanning): each worker
  decompresses, parses and converts its own segments (see `wikigpt.data.dump`), so bz2
  decompression, the bottleneck of a single reader, is spread over the workers;
* one-stream `.xml.bz2` / `.xml`: the parent reads and parses, the workers convert batches.
Results come back in submission order through a bounded window of in-flight tasks, so rows, row
order and shards are identical for any worker count, and memory stays bounded.
"""

from __future__ import annotations

import itertools
import multiprocessing
import shutil
import sys
import time
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from wikigpt.data.dump import (
    DumpPage,
    Segment,
    SegmentError,
    check_dump_path,
    iter_segment_pages,
    plan_segments,
    resolve_index,
)
from wikigpt.data.wikitext import DEFAULT_DISAMBIGUATION_TEMPLATES, DEFAULT_DROP_SECTIONS, Converter
from wikigpt.errors import WikigptError
from wikigpt.io import atomic_dir



def extract_schema():
    """Shard schema: the corpus contract (id, title, text) + the article's wikitext size.
    pyarrow is imported here, not at module level: workers never need it."""
    import pyarrow as pa

    return pa.schema([("id", pa.int64()), ("title", pa.string()), ("text", pa.string()), ("source_bytes", pa.int64())])


# count keys; every page seen lands in exactly one of the outcome keys
OUTCOMES = ("kept", "redirects", "other_namespaces", "other_models", "disambiguation", "empty", "failed")
BATCH_BYTES = 1 << 20  # wikitext per conversion task when the parent reads a one-stream dump


@dataclass(frozen=True)
class ExtractConfig:
    """params.yaml `extract:` section."""

    dump: str = "data/sample/wikisample-pages-articles-multistream.xml.bz2"
    # multistream index: "" = `<dump name>-index.txt.bz2` next to the dump if it exists,
    # "none" = never use one, else a path
    index: str = ""
    rows_per_shard: int = 10_000
    # pages using any of these templates (case-insensitive, `_` = space) are disambiguation pages
    disambiguation_templates: tuple[str, ...] = DEFAULT_DISAMBIGUATION_TEMPLATES
    # sections with these headings (case-insensitive) are dropped with their subsections
    drop_sections: tuple[str, ...] = DEFAULT_DROP_SECTIONS


# ---------------------------------------------------------------------------------------------
# per-page work (runs in workers)

_converter: Converter | None = None


def _init_worker(disambiguation: tuple[str, ...], drop_sections: tuple[str, ...]) -> None:
    global _converter
    _converter = Converter(tuple(disambiguation), tuple(drop_sections))


class _Result:
    """Rows, counts and warnings of one task, in page order."""

    __slots__ = ("rows", "counts", "warnings")

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.counts: Counter = Counter()
        self.warnings: list[str] = []


def _is_article(page: DumpPage, counts: Counter) -> bool:
    counts["pages_seen"] += 1
    if page.ns != 0:
        counts["other_namespaces"] += 1
    elif page.redirect:
        counts["redirects"] += 1
    elif page.model not in ("", "wikitext"):
        counts["other_models"] += 1
    else:
        return True
    return False


def _convert_page(page: DumpPage, result: _Result) -> None:
    conv = _converter
    assert conv is not None
    nbytes = len(page.text.encode("utf-8"))
    result.counts["bytes_in"] += nbytes
    try:
        if conv.is_disambiguation(page.text):
            result.counts["disambiguation"] += 1
            return
        text = conv.convert(page.text, page.title)
    except Exception as e:  # noqa: BLE001 - one bad page must not stop the stage
        result.counts["failed"] += 1
        result.warnings.append(f"page id {page.id} ({page.title!r}): conversion failed, skipped: {type(e).__name__}: {e}")
        return
    if not text:
        result.counts["empty"] += 1
        return
    result.counts["kept"] += 1
    result.counts["bytes_out"] += len(text.encode("utf-8"))
    result.rows.append({"id": page.id, "title": page.title, "text": text, "source_bytes": nbytes})


def _segment_task(path: str, seg: Segment, file_size: int) -> _Result:
    result = _Result()
    for page in iter_segment_pages(path, seg, file_size):
        if _is_article(page, result.counts):
            _convert_page(page, result)
    return result


def _batch_task(pages: list[DumpPage]) -> _Result:
    result = _Result()
    for page in pages:
        _convert_page(page, result)
    return result


# ---------------------------------------------------------------------------------------------
# orchestration (parent)


def _ordered(
    tasks: Iterable[tuple[Callable, tuple]], workers: int, init_args: tuple
) -> Iterator[_Result]:
    """Run tasks in a pool of `workers` processes (in-process when 1) and yield results in task
    order, with at most 2 * workers tasks in flight so memory stays bounded."""
    if workers <= 1:
        _init_worker(*init_args)
        for fn, args in tasks:
            yield fn(*args)
        return
    # fork starts a worker in milliseconds (spawn: 1-2 s of imports each). It is safe here because
    # the pool forks all its workers on the first submit, before it or the progress bar (created
    # after) start any thread; elsewhere (macOS, Windows) spawn is the only safe choice.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    ctx = multiprocessing.get_context(method)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=init_args) as pool:
        window: deque[Future] = deque()
        try:
            for fn, args in tasks:
                window.append(pool.submit(fn, *args))
                if len(window) >= 2 * workers:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for fut in window:
                fut.cancel()


def _article_batches(path: Path, counts: Counter) -> Iterator[tuple[Callable, tuple]]:
    """One reader in the parent: pages -> batches of articles for the workers to convert."""
    batch: list[DumpPage] = []
    size = 0
    for page in iter_segment_pages(path, Segment(0, path.stat().st_size)):
        if not _is_article(page, counts):
            continue
        batch.append(page)
        size += len(page.text)
        if size >= BATCH_BYTES:
            yield _batch_task, (batch,)
            batch, size = [], 0
    if batch:
        yield _batch_task, (batch,)


def _progress(total: int | None, unit: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc="extract", disable=not enabled, file=sys.stderr, dynamic_ncols=True)


def extract(cfg: ExtractConfig, out_dir: str | Path, workers: int = 1, progress: bool = False) -> dict:
    """Run the extract stage: write shards into `out_dir` atomically, return the metrics dict."""
    if cfg.rows_per_shard < 1:
        raise WikigptError(f"params.yaml: extract.rows_per_shard must be >= 1, got {cfg.rows_per_shard}")
    if workers < 1:
        raise WikigptError(f"params.yaml: runtime.extract_workers must be >= 1, got {workers}")
    start = time.perf_counter()
    init_args = (tuple(cfg.disambiguation_templates), tuple(cfg.drop_sections))
    # atomic_dir removes a previous output first: after any failure, nothing is left that looks valid
    with atomic_dir(out_dir) as tmp:
        dump = check_dump_path(cfg.dump)
        index = resolve_index(dump, cfg.index)
        segments, reader = plan_segments(dump, index)
        file_size = dump.stat().st_size
        counts: Counter = Counter()
        if reader != "single":
            try:
                tasks = ((_segment_task, (str(dump), seg, file_size)) for seg in segments)
                shards = _write(tasks, tmp, cfg, counts, workers, init_args, progress, len(segments), dump)
            except SegmentError as e:
                print(
                    f"warning: {dump}: {reader} segments did not parse on their own ({e}); "
                    "re-reading with one reader",
                    file=sys.stderr,
                )
                reader = f"single (after {reader} failed)"
                for child in tmp.iterdir():
                    child.unlink() if child.is_file() else shutil.rmtree(child)
                counts = Counter()
        if reader.startswith("single"):
            shards = _write(_article_batches(dump, counts), tmp, cfg, counts, workers, init_args, progress, None, dump)
        if counts["kept"] == 0:
            raise WikigptError(
                f"{dump}: no articles extracted from {counts['pages_seen']} pages "
                f"({', '.join(f'{k}={counts[k]}' for k in OUTCOMES if counts[k])}); "
                "expected namespace-0, non-redirect wikitext pages with text"
            )

    seconds = time.perf_counter() - start
    metrics = {k: counts[k] for k in ("pages_seen", *OUTCOMES)}
    metrics.update(
        articles=counts["kept"],
        bytes_in=counts["bytes_in"],
        bytes_out=counts["bytes_out"],
        shards=shards,
        seconds=round(seconds, 3),
        mb_per_s=round(counts["bytes_in"] / 1e6 / seconds, 3) if seconds > 0 else 0.0,
        articles_per_s=round(counts["kept"] / seconds, 1) if seconds > 0 else 0.0,
        workers=workers,
        reader=reader,
        segments=len(segments) if not reader.startswith("single") else 1,
    )
    assert sum(metrics[k] for k in OUTCOMES) == metrics["pages_seen"], metrics
    return metrics


def _write(
    tasks: Iterable[tuple[Callable, tuple]],
    tmp: Path,
    cfg: ExtractConfig,
    counts: Counter,
    workers: int,
    init_args: tuple,
    progress: bool,
    total: int | None,
    dump: Path,
) -> int:
    from wikigpt.data.shards import ShardWriter

    writer = ShardWriter(tmp, cfg.rows_per_shard, schema=extract_schema())
    results = _ordered(tasks, workers, init_args)
    first = next(results, None)  # starts the worker processes before the progress bar's thread exists
    with _progress(total, "seg" if total else "batch", progress) as bar:
        for result in itertools.chain([first] if first is not None else [], results):
            for row in result.rows:
                writer.write(row)
            counts.update(result.counts)
            for w in result.warnings:
                print(f"warning: {dump}: {w}", file=sys.stderr)
            bar.update(1)
            bar.set_postfix(articles=counts["kept"], refresh=False)
    writer.close()
    return writer.shards_written
