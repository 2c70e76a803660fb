"""Streaming reader for MediaWiki XML export dumps (`.xml`, `.xml.bz2`, multistream `.xml.bz2`).

Memory stays bounded whatever the dump size: compressed bytes are read in chunks, decompressed
one bz2 stream at a time and fed to an incremental `XMLPullParser`; each `<page>` element is
turned into a `DumpPage` and cleared as soon as it ends.

Tags are matched by their LOCAL name (the part after `}`): export schemas 0.9-0.11 each use a
different XML namespace, pages decoded from one multistream chunk have no namespace at all
(`xmlns` is declared only on `<mediawiki>` in the first stream), and a dump need not have a
`<siteinfo>`.

Parallel reading splits the compressed file into *segments*: byte ranges made of whole bz2
streams that hold whole `<page>` elements. A multistream dump (`*-multistream.xml.bz2`, 100 pages
per stream) has such boundaries at every stream start:

* with its `-index.txt.bz2` (`offset:page_id:title` lines), the boundaries are the distinct index
  offsets (plus byte 0 for the `<siteinfo>` stream the index does not list);
* without the index, `scan_stream_offsets` finds every bz2 stream header (`BZh` + level digit +
  the block or end-of-stream magic, byte-aligned at a stream start) in one pass over the
  compressed bytes (no decompression). A false match inside compressed data has probability
  ~2^-80 per byte. Streams written by other tools (pbzip2, lbzip2) are NOT page-aligned; parsing
  such a segment fails with an unbalanced tag, and the caller then falls back to one reader
  (`SegmentError`).

A segment that does not start at byte 0 is wrapped in a synthetic `<pages>` root; a segment that
does start at byte 0 but ends before the end of the file gets its `<mediawiki>` root closed.
A plain single-stream `.xml.bz2` or `.xml` is one segment read by one reader.
"""

from __future__ import annotations

import bz2
import codecs
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from xml.etree.ElementTree import ParseError, XMLPullParser

from wikigpt.errors import WikigptError

CHUNK = 1 << 20  # bytes read from the file per step
OUT_CHUNK = 4 << 20  # at most this many decompressed bytes per step
BZ2_MAGIC = b"BZh"
# bz2 stream header: "BZh" + block-size digit, then a block header (pi) or, for an empty
# stream, the end-of-stream marker (sqrt(pi)). Both are byte-aligned only at a stream start.
_STREAM_HEADER = re.compile(rb"BZh[1-9](?:\x31\x41\x59\x26\x53\x59|\x17\x72\x45\x38\x50\x90)")


@dataclass(frozen=True)
class DumpPage:
    id: int
    title: str
    ns: int
    redirect: bool
    model: str  # "" when the dump has no <model> element (old schemas): treated as wikitext
    text: str


@dataclass(frozen=True)
class Segment:
    """Compressed byte range [start, end) of a dump; `start == 0` means it holds the XML prolog."""

    start: int
    end: int


class SegmentError(Exception):
    """A partial segment did not parse: its streams do not hold whole pages (index-less scan of a
    non-Wikimedia multistream file), or the XML is bad. Either way the caller re-reads the dump
    with one reader, which gives the right output or an exact, file-level error message."""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def is_bz2(path: str | Path) -> bool:
    with open(path, "rb") as f:
        return f.read(3) == BZ2_MAGIC


def check_dump_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise WikigptError(f"{path}: dump file not found")
    if not path.is_file():
        raise WikigptError(f"{path}: dump path is not a file")
    if path.stat().st_size == 0:
        raise WikigptError(f"{path}: dump file is empty")
    return path


def default_index_path(dump: str | Path) -> Path:
    """`x-multistream.xml.bz2` -> `x-multistream-index.txt.bz2` (Wikimedia's naming)."""
    dump = Path(dump)
    name = dump.name
    for suffix in (".xml.bz2", ".bz2", ".xml"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return dump.with_name(f"{name}-index.txt.bz2")


def read_index_offsets(index: str | Path) -> list[int]:
    """Distinct stream offsets of a multistream index (`offset:page_id:title` per line), sorted."""
    index = Path(index)
    offsets: set[int] = set()
    try:
        opener = bz2.open if is_bz2(index) else open
        with opener(index, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line:
                    continue
                # titles may contain ':' themselves, so split at most twice
                parts = line.split(":", 2)
                if len(parts) != 3 or not parts[0].isdigit():
                    raise WikigptError(f"{index}: line {lineno}: expected 'offset:page_id:title', got {line[:80]!r}")
                offsets.add(int(parts[0]))
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise WikigptError(f"{index}: unreadable multistream index: {e}") from None
    if not offsets:
        raise WikigptError(f"{index}: multistream index has no entries")
    return sorted(offsets)


def scan_stream_offsets(path: str | Path) -> list[int]:
    """Byte offsets of every bz2 stream header in `path` (one pass, no decompression)."""
    offsets = []
    overlap = 9  # a header may straddle two reads
    with open(path, "rb") as f:
        base = 0
        prev = b""
        while True:
            block = f.read(16 * CHUNK)
            if not block:
                break
            data = prev + block
            start = base - len(prev)
            for m in _STREAM_HEADER.finditer(data):
                pos = start + m.start()
                if not offsets or pos > offsets[-1]:
                    offsets.append(pos)
            prev = data[-overlap:]
            base += len(block)
    return offsets


def plan_segments(path: str | Path, index: str | Path | None) -> tuple[list[Segment], str]:
    """Split a dump into page-aligned segments. Returns (segments, how) where `how` is one of
    "index", "scan" (index-less multistream: boundaries found by scanning) or "single"."""
    path = Path(path)
    size = path.stat().st_size
    if not is_bz2(path):
        return [Segment(0, size)], "single"
    if index is not None:
        offsets = read_index_offsets(index)
        if offsets[-1] >= size:
            raise WikigptError(
                f"{path}: truncated or not the dump of this index: {index} lists a stream at byte "
                f"{offsets[-1]}, the file has {size} bytes"
            )
        with open(path, "rb") as f:
            for off in offsets:
                f.seek(off)
                if not _STREAM_HEADER.match(f.read(10)):
                    raise WikigptError(f"{index}: offset {off} is not the start of a bz2 stream in {path} (index of another dump?)")
        how = "index"
    else:
        offsets = scan_stream_offsets(path)
        how = "scan"
    bounds = sorted({0, *offsets})
    if len(bounds) == 1:
        return [Segment(0, size)], "single"
    bounds.append(size)
    return [Segment(a, b) for a, b in zip(bounds, bounds[1:]) if b > a], how


class _Utf8Check:
    """Incremental UTF-8 validation, so invalid bytes get their exact offset in the message
    (expat would only say 'not well-formed (invalid token)')."""

    def __init__(self, path: Path, where: str):
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.path = path
        self.where = where
        self.offset = 0  # decompressed bytes checked so far

    def feed(self, data: bytes, final: bool = False) -> None:
        try:
            self.decoder.decode(data, final)
        except UnicodeDecodeError as e:
            pending = len(self.decoder.getstate()[0])
            pos = self.offset - pending + e.start if e.start >= 0 else self.offset
            raise WikigptError(
                f"{self.path}: invalid UTF-8 at byte {max(pos, 0)} of the decompressed XML{self.where}"
            ) from None
        self.offset += len(data)


def _decompressed_chunks(path: Path, seg: Segment, compressed: bool) -> Iterator[bytes]:
    """Yield the decompressed bytes of `seg`, one bz2 stream after another."""
    with open(path, "rb") as f:
        f.seek(seg.start)
        remaining = seg.end - seg.start
        if not compressed:
            while remaining > 0:
                block = f.read(min(CHUNK, remaining))
                if not block:
                    break
                remaining -= len(block)
                yield block
            return
        pos = seg.start  # absolute offset of the next byte to read from the file
        stream_start = seg.start
        dec: bz2.BZ2Decompressor | None = None
        pending = b""  # compressed bytes read but not yet given to a decompressor

        def read() -> bytes:
            nonlocal remaining, pos
            block = f.read(min(CHUNK, remaining)) if remaining > 0 else b""
            remaining -= len(block)
            pos += len(block)
            return block

        while True:
            if dec is None:
                if not pending:
                    pending = read()
                    if not pending:
                        return
                stream_start = pos - len(pending)
                if not pending.startswith(BZ2_MAGIC[: len(pending)]):
                    raise WikigptError(f"{path}: unexpected non-bz2 data at byte {stream_start}")
                dec = bz2.BZ2Decompressor()
                data, pending = pending, b""
            elif dec.needs_input:
                data = read()
                if not data:
                    raise WikigptError(
                        f"{path}: truncated bz2 data: the stream starting at byte {stream_start} ends at byte {pos} "
                        "before its end-of-stream marker"
                    )
            else:
                data = b""  # output still buffered inside the decompressor
            try:
                # max_length bounds memory even for a highly compressible (bomb-like) stream
                out = dec.decompress(data, max_length=OUT_CHUNK)
            except OSError as e:
                raise WikigptError(f"{path}: corrupt bz2 data in the stream starting at byte {stream_start}: {e}") from None
            if out:
                yield out
            if dec.eof:
                pending = dec.unused_data
                dec = None


def iter_segment_pages(path: str | Path, seg: Segment, file_size: int | None = None) -> Iterator[DumpPage]:
    """Stream the pages of one segment (the whole file when seg covers it)."""
    path = Path(path)
    if file_size is None:
        file_size = path.stat().st_size
    compressed = is_bz2(path)
    wrap = seg.start > 0  # no prolog: give the page fragments a root
    close_root = seg.start == 0 and seg.end < file_size  # prolog, but the rest lies in other segments
    partial = wrap or close_root
    where = f" (segment at compressed byte {seg.start})" if partial else ""

    parser = XMLPullParser(events=("start", "end"))
    utf8 = _Utf8Check(path, where)
    depth = 0
    root = None
    root_name = ""
    last_id: int | None = None
    tail = b""  # held back so a final `</mediawiki>` can be dropped from wrapped segments

    def fail(e: Exception) -> Exception:
        if partial:
            return SegmentError(f"{path}{where}: {e}")
        if isinstance(e, WikigptError):
            return e
        line, col = getattr(e, "position", (0, 0))
        after = f", after page id {last_id}" if last_id is not None else ", before the first page"
        msg = str(e).split(":")[0]  # expat's message without its own position suffix
        return WikigptError(f"{path}: malformed XML at line {line}, column {col}{after}: {msg}")

    def events() -> Iterator[DumpPage]:
        nonlocal depth, root, root_name, last_id
        for event, elem in parser.read_events():
            if event == "start":
                if depth == 0:
                    root, root_name = elem, _local(elem.tag)
                depth += 1
                continue
            depth -= 1
            if depth == 1 and _local(elem.tag) == "page":
                page = _page_from_element(elem, path, last_id)
                last_id = page.id
                elem.clear()
                root.remove(elem)
                yield page
            elif depth == 1:
                # <siteinfo> and anything else at top level: not needed
                elem.clear()
                root.remove(elem)

    try:
        if wrap:
            parser.feed(b"<pages>")
        for chunk in _decompressed_chunks(path, seg, compressed):
            try:
                utf8.feed(chunk)
            except WikigptError as e:
                raise fail(e) from None
            if wrap:
                chunk = tail + chunk
                tail = chunk[-64:]
                chunk = chunk[:-64]
            parser.feed(chunk)
            yield from events()
        try:
            utf8.feed(b"", final=True)
        except WikigptError as e:
            raise fail(e) from None
        if wrap:
            stripped = tail.rstrip()
            if stripped.endswith(b"</mediawiki>"):
                stripped = stripped[: -len(b"</mediawiki>")]
            parser.feed(stripped + b"</pages>")
        elif close_root and root_name:
            parser.feed(f"</{root_name}>".encode())
        parser.close()
        yield from events()
    except ParseError as e:
        raise fail(e) from None
    if root is None:
        raise WikigptError(f"{path}: no XML content{where}")


def _page_from_element(elem, path: Path, prev_id: int | None) -> DumpPage:
    title = ""
    ns = 0
    page_id = None
    redirect = False
    model = ""
    text = ""
    for child in elem:
        name = _local(child.tag)
        if name == "title":
            title = child.text or ""
        elif name == "ns":
            ns = _int(child.text, path, "ns", prev_id)
        elif name == "id":
            page_id = _int(child.text, path, "id", prev_id)
        elif name == "redirect":
            redirect = True
        elif name == "revision":
            for sub in child:
                sub_name = _local(sub.tag)
                if sub_name == "model":
                    model = (sub.text or "").strip()
                elif sub_name == "text":
                    text = sub.text or ""
    if page_id is None:
        after = f" (after page id {prev_id})" if prev_id is not None else ""
        raise WikigptError(f"{path}: <page> {title!r} has no <id>{after}")
    return DumpPage(id=page_id, title=title, ns=ns, redirect=redirect, model=model, text=text)


def _int(value: str | None, path: Path, what: str, prev_id: int | None) -> int:
    try:
        return int((value or "").strip())
    except ValueError:
        after = f" (after page id {prev_id})" if prev_id is not None else ""
        raise WikigptError(f"{path}: <{what}> is not an integer: {value!r}{after}") from None


def iter_pages(path: str | Path) -> Iterator[DumpPage]:
    """All pages of a dump, in file order, with one reader (any format)."""
    path = check_dump_path(path)
    size = path.stat().st_size
    yield from iter_segment_pages(path, Segment(0, size), size)


def resolve_index(dump: str | Path, index: str) -> Path | None:
    """`index` param: "" = auto-detect next to the dump, "none" = never use one, else a path."""
    if index == "none":
        return None
    if index:
        p = Path(index)
        if not p.is_file():
            raise WikigptError(f"{p}: multistream index file not found")
        return p
    candidate = default_index_path(dump)
    return candidate if candidate.is_file() else None


def file_size(path: str | Path) -> int:
    return os.stat(path).st_size
