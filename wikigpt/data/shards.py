"""Parquet shards: the on-disk form of the extracted and clean corpora.

A corpus is a directory of `part-00000.parquet`, `part-00001.parquet`, ... (zstd), one row per
article with at least `id` (int64), `title` and `text`. Shard order and row order are the corpus
order, which every downstream stage relies on for determinism. Reading streams record batches, so
no stage holds the whole corpus in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from wikigpt.errors import WikigptError

ARTICLE_SCHEMA = pa.schema([("id", pa.int64()), ("title", pa.string()), ("text", pa.string())])
SHARD_GLOB = "part-*.parquet"


def shard_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def list_shards(corpus_dir: str | Path) -> list[Path]:
    corpus_dir = Path(corpus_dir)
    if not corpus_dir.is_dir():
        raise WikigptError(f"{corpus_dir}: corpus directory not found (run the upstream stage first)")
    shards = sorted(corpus_dir.glob(SHARD_GLOB))
    if not shards:
        raise WikigptError(f"{corpus_dir}: no {SHARD_GLOB} shards in corpus directory")
    return shards


def _open(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise WikigptError(f"{path}: not a readable Parquet shard: {e}") from None


def count_rows(corpus_dir: str | Path) -> int:
    return sum(_open(p).metadata.num_rows for p in list_shards(corpus_dir))


def iter_batches(
    corpus_dir: str | Path, columns: list[str] | None = None, batch_size: int = 1024
) -> Iterator[pa.RecordBatch]:
    """Stream record batches of the whole corpus in corpus order."""
    for path in list_shards(corpus_dir):
        pf = _open(path)
        missing = [c for c in (columns or []) if c not in pf.schema_arrow.names]
        if missing:
            raise WikigptError(f"{path}: shard lacks column(s) {missing}")
        yield from pf.iter_batches(batch_size=batch_size, columns=columns)


def iter_rows(
    corpus_dir: str | Path, columns: list[str] | None = None, batch_size: int = 1024
) -> Iterator[dict[str, Any]]:
    """Stream rows as dicts in corpus order."""
    for batch in iter_batches(corpus_dir, columns, batch_size):
        yield from batch.to_pylist()


class ShardWriter:
    """Append rows, roll over to a new shard every `rows_per_shard` rows.

    Write into a directory from `wikigpt.io.atomic_dir` so a failure leaves no partial corpus.
    """

    def __init__(self, out_dir: str | Path, rows_per_shard: int = 10_000, schema: pa.Schema = ARTICLE_SCHEMA):
        if rows_per_shard < 1:
            raise WikigptError(f"rows_per_shard must be >= 1, got {rows_per_shard}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.rows_per_shard = rows_per_shard
        self.schema = schema
        self.rows_written = 0
        self.shards_written = 0
        self._buffer: list[dict[str, Any]] = []

    def write(self, row: dict[str, Any]) -> None:
        self._buffer.append(row)
        if len(self._buffer) >= self.rows_per_shard:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = pa.Table.from_pylist(self._buffer, schema=self.schema)
        pq.write_table(table, self.out_dir / shard_name(self.shards_written), compression="zstd")
        self.rows_written += len(self._buffer)
        self.shards_written += 1
        self._buffer = []

    def close(self) -> None:
        self._flush()
        if self.shards_written == 0:
            # An empty corpus still gets one (empty) shard so the directory is a valid corpus;
            # stages decide whether "no rows" is an error for them.
            pq.write_table(self.schema.empty_table(), self.out_dir / shard_name(0), compression="zstd")
            self.shards_written = 1

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
