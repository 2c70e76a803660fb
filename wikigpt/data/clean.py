"""The clean stage: normalise text, filter documents, drop exact and near duplicates.

Per document, in corpus order:
  1. normalise: Unicode NFC, control characters removed, special-token literals (`<|...|>`)
     removed (they would become control tokens downstream), whitespace normalised (runs of
     spaces/tabs collapsed, lines stripped, at most one blank line between paragraphs);
  2. filters, each counted: `min_chars` (drop), `max_chars` (truncate at a paragraph break, or
     drop: `too_long`), `min_alpha_ratio` (drop junk: mostly digits, punctuation, symbols).
     Lengths are in characters, not words: Japanese and Chinese have no spaces;
  3. exact dedup (hash of the normalised text), then MinHash LSH near dedup (wikigpt.data.dedup).
     The first occurrence in corpus order is kept.

Two passes over the input shards keep memory bounded: pass 1 decides, keyed by row index; pass 2
re-normalises (cheap, deterministic) and writes the kept rows. Texts are never all in memory.
"""

from __future__ import annotations

import functools
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from wikigpt.data.dedup import DedupConfig, Deduplicator
from wikigpt.data.shards import ShardWriter, count_rows, iter_batches
from wikigpt.errors import WikigptError
from wikigpt.io import atomic_dir
from wikigpt.specials import strip_special_literals

BATCH_ROWS = 1024  # rows per read batch (and per signature batch); does not change results


@dataclass(frozen=True)
class CleanConfig:
    """`clean` in params.yaml."""

    min_chars: int = 200  # drop documents shorter than this (characters, after normalisation)
    max_chars: int = 100_000  # longer documents are truncated or dropped, see `too_long`
    too_long: Literal["truncate", "drop"] = "truncate"  # long articles are real prose: keep the start
    min_alpha_ratio: float = 0.4  # drop if letters / non-space characters is below this (ja prose: 0.57+)
    rows_per_shard: int = 10_000  # rows per output Parquet shard
    dedup: DedupConfig = field(default_factory=DedupConfig)

    def __post_init__(self) -> None:
        if self.min_chars < 0:
            raise WikigptError(f"params.yaml: clean.min_chars must be >= 0, got {self.min_chars}")
        if self.max_chars < max(self.min_chars, 1):
            raise WikigptError(
                f"params.yaml: clean.max_chars ({self.max_chars}) must be >= clean.min_chars ({self.min_chars}) and >= 1"
            )
        if not 0.0 <= self.min_alpha_ratio <= 1.0:
            raise WikigptError(f"params.yaml: clean.min_alpha_ratio must be in [0, 1], got {self.min_alpha_ratio}")
        if self.rows_per_shard < 1:
            raise WikigptError(f"params.yaml: clean.rows_per_shard must be >= 1, got {self.rows_per_shard}")


# Line breaks other than "\n" (CR, VT, FF, NEL, LINE/PARAGRAPH SEPARATOR) become "\n".
_LINE_BREAKS = re.compile(r"\r\n?|[\x0b\x0c\x85\u2028\u2029]")
_LINE_BREAK_CHARS = "\r\x0b\x0c\x85\u2028\u2029"
# C0/C1 control characters except tab and newline, and the BOM / zero-width no-break space.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ufeff]")
_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> tuple[str, bool]:
    """Normalise one document; return (text, whether it contained a special-token literal).

    NFC; other line breaks -> "\n"; control characters removed; `<|...|>` literals removed;
    in every line, runs of any whitespace (spaces, tabs, NBSP, ideographic space) -> one space
    and the ends stripped; at most one blank line between paragraphs; the whole text stripped.
    """
    text = unicodedata.normalize("NFC", text)
    if any(c in text for c in _LINE_BREAK_CHARS):  # str `in` is a fast scan; the regex is not
        text = _LINE_BREAKS.sub("\n", text)
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    stripped = strip_special_literals(text)
    had_special = stripped != text
    lines: list[str] = []
    for line in stripped.split("\n"):
        line = " ".join(line.split())  # collapses and strips all whitespace, in C
        if line or (lines and lines[-1]):  # keep one blank line between paragraphs, no more
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines), had_special


def normalize_title(title: str) -> str:
    title = strip_special_literals(_CONTROL.sub("", unicodedata.normalize("NFC", title)))
    return _SPACE.sub(" ", title).strip()


@functools.cache
def _char_classes() -> np.ndarray:
    """Code point -> 0 (other: digits, punctuation, symbols...), 1 (letter or combining mark,
    any script), 2 (whitespace). Marks count as letters: a Hindi vowel sign is part of its word.
    Built once from this Python's Unicode tables over the planes that hold scripts."""
    table = np.zeros(0x110000, dtype=np.uint8)
    for block in (range(0x32400), range(0xE0000, 0xE0200)):
        for c in block:
            ch = chr(c)
            if ch.isspace():
                table[c] = 2
            elif unicodedata.category(ch)[0] in "LM":
                table[c] = 1
    return table


def alpha_ratio(text: str) -> float:
    """Letters (any script, with combining marks) / non-whitespace characters; 0.0 if none."""
    codepoints = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    other, letters, _space = np.bincount(_char_classes()[codepoints], minlength=3)
    non_space = int(other) + int(letters)
    return int(letters) / non_space if non_space else 0.0


def truncate(text: str, max_chars: int) -> str:
    """Cut to at most `max_chars`, at the last paragraph (else line, else word) break if there is
    one in the second half of the window, so the text does not end mid-sentence."""
    if len(text) <= max_chars:
        return text
    head = text[:max_chars]
    for sep in ("\n\n", "\n", " "):
        cut = head.rfind(sep)
        if cut >= max_chars // 2:
            return head[:cut].rstrip()
    return head


# Why a document was dropped, in filter order (KEEP = kept). Stored per row as a uint8.
KEEP, MIN_CHARS, MAX_CHARS, ALPHA, EXACT_DUP, NEAR_DUP = range(6)
FILTER_NAMES = {MIN_CHARS: "min_chars", MAX_CHARS: "max_chars", ALPHA: "min_alpha_ratio"}


def filter_document(text: str, cfg: CleanConfig) -> tuple[str, int, bool]:
    """Apply the document filters to normalised text: (text, KEEP or filter code, truncated)."""
    if len(text) < cfg.min_chars or not text:
        return text, MIN_CHARS, False
    truncated = False
    if len(text) > cfg.max_chars:
        if cfg.too_long == "drop":
            return text, MAX_CHARS, False
        text, truncated = truncate(text, cfg.max_chars), True
    if alpha_ratio(text) < cfg.min_alpha_ratio:
        return text, ALPHA, truncated
    return text, KEEP, truncated


def clean_document(text: str | None, cfg: CleanConfig) -> tuple[str, int, bool, bool]:
    """Normalise + filter: (text, KEEP or filter code, had a special literal, truncated)."""
    text, had_special = normalize_text(text or "")
    text, code, truncated = filter_document(text, cfg)
    return text, code, had_special, truncated


def _batches(in_dir: Path, columns: list[str], total: int, desc: str, progress: bool) -> Iterator[pa.RecordBatch]:
    """Record batches of the input in corpus order; fails if the row count differs from `total`
    (the input changed between the two passes, so decisions keyed by row would be wrong)."""
    rows = 0
    with tqdm(total=total, desc=desc, unit="doc", disable=not progress) as bar:
        for batch in iter_batches(in_dir, columns, BATCH_ROWS):
            rows += batch.num_rows
            if rows > total:
                break
            yield batch
            bar.update(batch.num_rows)
    if rows != total:
        raise WikigptError(f"{in_dir}: corpus changed while being read ({total} rows counted, {rows}+ read)")


def clean_corpus(
    in_dir: str | Path, out_dir: str | Path, cfg: CleanConfig, progress: bool = True, threads: int = 1
) -> dict:
    """Clean and deduplicate the Parquet corpus `in_dir` into `out_dir`; return the metrics.

    `out_dir` is replaced atomically: removed first, written whole or not at all. `threads`
    (MinHash signature threads) and `progress` never change the output.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    start = time.perf_counter()
    with atomic_dir(out_dir) as tmp:
        total = count_rows(in_dir)  # fails early, naming the directory, if it has no shards
        if total == 0:
            raise WikigptError(f"{in_dir}: corpus has no documents")

        # Pass 1: decide every row. Memory: one byte per row + the dedup index.
        decisions = np.zeros(total, dtype=np.uint8)
        dedup = Deduplicator(cfg.dedup, threads)
        n_special = n_truncated = bytes_in = 0
        row = 0
        for batch in _batches(in_dir, ["text"], total, "clean: decide", progress):
            bytes_in += pc.sum(pc.binary_length(batch.column("text"))).as_py() or 0
            survivors: list[str] = []
            survivor_rows: list[int] = []
            for text in batch.column("text").to_pylist():
                text, code, had_special, truncated = clean_document(text, cfg)
                n_special += had_special
                n_truncated += truncated
                decisions[row] = code
                if code == KEEP:
                    survivors.append(text)
                    survivor_rows.append(row)
                row += 1
            for r, decision in zip(survivor_rows, dedup.process(survivor_rows, survivors)):
                if decision.kind != "keep":
                    decisions[r] = EXACT_DUP if decision.kind == "exact" else NEAR_DUP
        kept = int((decisions == KEEP).sum())
        if kept == 0:
            raise WikigptError(
                f"{in_dir}: no document survives cleaning ({total} in); check clean.min_chars, "
                f"clean.max_chars and clean.min_alpha_ratio in params.yaml"
            )

        # Pass 2: write the kept rows, normalised again (cheap, deterministic) rather than held.
        bytes_out = 0
        row = 0
        with ShardWriter(tmp, cfg.rows_per_shard) as writer:
            for batch in _batches(in_dir, ["id", "title", "text"], total, "clean: write", progress):
                columns = [batch.column(name).to_pylist() for name in ("id", "title", "text")]
                for doc_id, title, text in zip(*columns):
                    if decisions[row] == KEEP:
                        # Pass 1 kept it, so only normalisation and truncation apply.
                        text = truncate(normalize_text(text or "")[0], cfg.max_chars)
                        writer.write({"id": doc_id, "title": normalize_title(title or ""), "text": text})
                        bytes_out += len(text.encode("utf-8"))
                    row += 1

    seconds = time.perf_counter() - start
    counts = np.bincount(decisions, minlength=6)
    filters = {}
    remaining = total
    for code, name in FILTER_NAMES.items():
        filters[name] = {"in": remaining, "out": remaining - int(counts[code])}
        remaining -= int(counts[code])
    filters["max_chars"]["truncated"] = n_truncated
    filters["exact_dedup"] = {"in": remaining, "out": remaining - int(counts[EXACT_DUP])}
    remaining -= int(counts[EXACT_DUP])
    filters["near_dedup"] = {"in": remaining, "out": remaining - int(counts[NEAR_DUP])}
    stats = dedup.stats()
    return {
        "documents_in": total,
        "documents_out": kept,
        "filters": filters,
        "special_literal_documents": n_special,
        **stats,
        "bytes_in": bytes_in,
        "bytes_out": bytes_out,
        "seconds": round(seconds, 3),
        "docs_per_s": round(total / seconds, 1) if seconds > 0 else None,
        "signature_docs_per_s": round(dedup.signed / dedup.signature_seconds, 1) if dedup.signature_seconds > 0 else None,
        "lsh": {
            "num_perm": cfg.dedup.num_perm,
            "bands": cfg.dedup.bands,
            "rows": cfg.dedup.rows,
            "candidate_probability_at_0.8": round(cfg.dedup.candidate_probability(0.8), 4),
        },
    }
