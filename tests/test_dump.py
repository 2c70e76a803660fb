"""Dump reading: formats, schemas, multistream segments, bad input, the ../shared samples."""

from __future__ import annotations

import bz2
import tracemalloc
from pathlib import Path

import pytest

from wikigpt.data.dump import (
    Segment,
    SegmentError,
    default_index_path,
    iter_pages,
    iter_segment_pages,
    plan_segments,
    read_index_offsets,
    resolve_index,
    scan_stream_offsets,
)
from wikigpt.errors import WikigptError

NS = {v: f"http://www.mediawiki.org/xml/export-{v}/" for v in ("0.9", "0.10", "0.11")}


def page_xml(pid: int, title: str, text: str, ns: int = 0, redirect: str | None = None, model: str | None = "wikitext") -> str:
    red = f'<redirect title="{redirect}" />' if redirect else ""
    mod = f"<model>{model}</model><format>text/x-wiki</format>" if model else ""
    return (
        f"  <page>\n    <title>{title}</title>\n    <ns>{ns}</ns>\n    <id>{pid}</id>\n    {red}\n"
        f"    <revision>\n      <id>{pid * 10}</id>\n      <contributor><username>u</username><id>7</id></contributor>\n"
        f"      {mod}\n      <text bytes=\"{len(text)}\" xml:space=\"preserve\">{text}</text>\n    </revision>\n  </page>\n"
    )


def header(version: str = "0.10", siteinfo: bool = True) -> str:
    site = "  <siteinfo>\n    <sitename>Test</sitename>\n    <namespaces><namespace key=\"0\" /></namespaces>\n  </siteinfo>\n"
    return f'<mediawiki xmlns="{NS[version]}" version="{version}" xml:lang="en">\n' + (site if siteinfo else "")


FOOTER = "</mediawiki>\n"


def sample_pages(n: int = 12) -> list[str]:
    pages = []
    for i in range(1, n + 1):
        if i % 5 == 0:
            pages.append(page_xml(i, f"Talk:Page {i}", "talk", ns=1))
        elif i % 4 == 0:
            pages.append(page_xml(i, f"Redirect {i}", "#REDIRECT [[Page 1]]", redirect="Page 1"))
        else:
            pages.append(page_xml(i, f"Page {i}: part", f"Text of '''page''' {i} &amp; more."))
    return pages


def write_multistream(path: Path, pages: list[str], per_stream: int, index: bool = True) -> list[int]:
    """Wikimedia layout: stream 0 = header + siteinfo, then `per_stream` pages per stream, then a
    stream with the closing tag. Writes `<name>-index.txt.bz2` next to it when `index`."""
    blobs = [bz2.compress(header().encode())]
    offsets, lines = [], []
    pos = len(blobs[0])
    for k in range(0, len(pages), per_stream):
        group = pages[k : k + per_stream]
        blob = bz2.compress("".join(group).encode())
        offsets.append(pos)
        for p in group:
            pid = int(p.split("<id>")[1].split("<")[0])
            title = p.split("<title>")[1].split("<")[0]
            lines.append(f"{pos}:{pid}:{title}")
        blobs.append(blob)
        pos += len(blob)
    blobs.append(bz2.compress(FOOTER.encode()))
    path.write_bytes(b"".join(blobs))
    if index:
        default_index_path(path).write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    return offsets


@pytest.mark.parametrize("version", ["0.9", "0.10", "0.11"])
def test_schemas_and_local_names(tmp_path, version):
    xml = header(version) + "".join(sample_pages()) + FOOTER
    f = tmp_path / "d.xml"
    f.write_text(xml, encoding="utf-8")
    pages = list(iter_pages(f))
    assert [p.id for p in pages] == list(range(1, 13))
    p1 = pages[0]
    assert (p1.title, p1.ns, p1.redirect, p1.model, p1.text) == ("Page 1: part", 0, False, "wikitext", "Text of '''page''' 1 & more.")
    assert pages[3].redirect and pages[3].ns == 0  # page 4: <redirect> element
    assert pages[4].ns == 1


def test_no_namespace_no_siteinfo_no_model(tmp_path):
    xml = "<mediawiki>\n" + page_xml(3, "A", "x", model=None) + FOOTER
    f = tmp_path / "d.xml"
    f.write_text(xml, encoding="utf-8")
    [p] = iter_pages(f)
    assert (p.id, p.title, p.model, p.text) == (3, "A", "", "x")


def test_redirect_is_the_element_not_a_text_prefix(tmp_path):
    xml = header() + page_xml(1, "転送", "#転送 [[東京]]") + page_xml(2, "R", "#転送 [[東京]]", redirect="東京") + FOOTER
    f = tmp_path / "d.xml"
    f.write_text(xml, encoding="utf-8")
    assert [p.redirect for p in iter_pages(f)] == [False, True]


def test_xml_and_single_stream_bz2_agree(tmp_path):
    xml = (header() + "".join(sample_pages()) + FOOTER).encode()
    (tmp_path / "d.xml").write_bytes(xml)
    (tmp_path / "d.xml.bz2").write_bytes(bz2.compress(xml))
    assert list(iter_pages(tmp_path / "d.xml")) == list(iter_pages(tmp_path / "d.xml.bz2"))
    segs, how = plan_segments(tmp_path / "d.xml.bz2", None)
    assert how == "single" and segs == [Segment(0, (tmp_path / "d.xml.bz2").stat().st_size)]


def test_multistream_with_and_without_index(tmp_path):
    f = tmp_path / "x-multistream.xml.bz2"
    offsets = write_multistream(f, sample_pages(23), per_stream=5)
    idx = resolve_index(f, "")
    assert idx == tmp_path / "x-multistream-index.txt.bz2"
    assert read_index_offsets(idx) == offsets
    expected = list(iter_pages(f))
    assert len(expected) == 23

    segs, how = plan_segments(f, idx)
    assert how == "index" and [s.start for s in segs] == [0, *offsets]
    assert [p for s in segs for p in iter_segment_pages(f, s)] == expected

    # no index: stream headers found by scanning, one more boundary for the closing-tag stream
    scanned = scan_stream_offsets(f)
    assert scanned[0] == 0 and scanned[1:-1] == offsets
    segs, how = plan_segments(f, None)
    assert how == "scan" and len(segs) == len(offsets) + 2
    assert [p for s in segs for p in iter_segment_pages(f, s)] == expected
    assert resolve_index(f, "none") is None


def test_streams_not_page_aligned_raise_segment_error(tmp_path):
    # pbzip2-style: streams cut at arbitrary byte positions; the single reader still works
    xml = (header() + "".join(sample_pages(20)) + FOOTER).encode()
    cuts = [0, 500, 1777, 3001, len(xml)]
    f = tmp_path / "cut.xml.bz2"
    f.write_bytes(b"".join(bz2.compress(xml[a:b]) for a, b in zip(cuts, cuts[1:])))
    assert len(list(iter_pages(f))) == 20
    segs, how = plan_segments(f, None)
    assert how == "scan" and len(segs) == 4
    with pytest.raises(SegmentError):
        for s in segs:
            list(iter_segment_pages(f, s))


def _peak_bytes_streaming(path: Path, pages: int) -> int:
    body = "word " * 400  # 2 KB per page
    with open(path, "w", encoding="utf-8") as out:
        out.write(header())
        for i in range(1, pages + 1):
            out.write(page_xml(i, f"P{i}", body))
        out.write(FOOTER)
    tracemalloc.start()
    n = sum(1 for _ in iter_pages(path))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == pages
    return peak


def test_memory_is_bounded(tmp_path):
    # 4x the dump, same peak: pages are cleared as they stream past
    small = _peak_bytes_streaming(tmp_path / "small.xml", 600)  # ~1.4 MB
    big = _peak_bytes_streaming(tmp_path / "big.xml", 2400)  # ~5.5 MB
    assert big < 1.25 * small + 500_000, (small, big)  # grows with the chunk size, not the dump
    assert big < 10_000_000


# ----- bad input: one WikigptError naming the file and where ---------------------------------


def test_missing_and_empty(tmp_path):
    with pytest.raises(WikigptError, match=r"nope\.xml\.bz2: dump file not found"):
        list(iter_pages(tmp_path / "nope.xml.bz2"))
    (tmp_path / "empty.xml").write_bytes(b"")
    with pytest.raises(WikigptError, match="empty.xml: dump file is empty"):
        list(iter_pages(tmp_path / "empty.xml"))


def test_truncated_bz2(tmp_path):
    data = bz2.compress((header() + "".join(sample_pages()) + FOOTER).encode())
    f = tmp_path / "t.xml.bz2"
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(WikigptError, match=rf"t\.xml\.bz2: truncated bz2 data: the stream starting at byte 0 ends at byte {len(data) // 2}"):
        list(iter_pages(f))


def test_corrupt_bz2(tmp_path):
    data = bytearray(bz2.compress((header() + "".join(sample_pages()) + FOOTER).encode()))
    data[200:260] = b"\x00" * 60
    f = tmp_path / "c.xml.bz2"
    f.write_bytes(bytes(data))
    with pytest.raises(WikigptError, match=r"c\.xml\.bz2: (corrupt bz2 data|truncated)"):
        list(iter_pages(f))


def test_malformed_xml_names_line_and_page(tmp_path):
    xml = header() + page_xml(1, "A", "ok") + page_xml(2, "B", "ok").replace("</title>", "</titel>") + FOOTER
    f = tmp_path / "m.xml"
    f.write_text(xml, encoding="utf-8")
    with pytest.raises(WikigptError) as e:
        list(iter_pages(f))
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"{f}: malformed XML at line ") and "after page id 1" in msg and "mismatched tag" in msg


def test_unterminated_xml(tmp_path):
    f = tmp_path / "u.xml"
    f.write_text(header() + page_xml(1, "A", "ok"), encoding="utf-8")
    with pytest.raises(WikigptError, match=r"u\.xml: malformed XML at line \d+, column \d+, after page id 1: no element found"):
        list(iter_pages(f))


def test_invalid_utf8_names_byte_offset(tmp_path):
    head = (header() + page_xml(1, "A", "ok")).encode()
    bad = head + page_xml(2, "B", "caf\udce9", ).encode("utf-8", "surrogateescape") + FOOTER.encode()
    f = tmp_path / "bad.xml.bz2"
    f.write_bytes(bz2.compress(bad))
    offset = bad.index(b"caf\xe9") + 3
    with pytest.raises(WikigptError, match=rf"bad\.xml\.bz2: invalid UTF-8 at byte {offset} of the decompressed XML"):
        list(iter_pages(f))


def test_bad_index(tmp_path):
    f = tmp_path / "x-multistream.xml.bz2"
    write_multistream(f, sample_pages(), per_stream=5)
    idx = tmp_path / "x-multistream-index.txt.bz2"
    idx.write_bytes(bz2.compress(b"12:3:ok\nnot an index line\n"))
    with pytest.raises(WikigptError, match=r"x-multistream-index\.txt\.bz2: line 2: expected 'offset:page_id:title'"):
        plan_segments(f, idx)
    with pytest.raises(WikigptError, match="multistream index file not found"):
        resolve_index(f, str(tmp_path / "missing-index.txt.bz2"))


# ----- the real samples in ../shared -------------------------------------------------------


def test_shared_multistream_index_segments(shared_dumps):
    ms = shared_dumps / "elwikivoyage-pages-articles-p2566p2583.multistream.xml.bz2"
    plain = shared_dumps / "elwikivoyage-pages-articles-p2566p2583.xml.bz2"
    idx = resolve_index(ms, "")
    assert idx is not None and idx.name == "elwikivoyage-pages-articles-p2566p2583.multistream-index.txt.bz2"
    assert read_index_offsets(idx) == [718, 4735, 8475, 12237]
    segs, how = plan_segments(ms, idx)
    assert how == "index"
    from_segments = [p for s in segs for p in iter_segment_pages(ms, s)]
    assert from_segments == list(iter_pages(plain)) and len(from_segments) == 17
    # without the index: the 14-byte empty stream at the end is found too
    assert scan_stream_offsets(ms) == [0, 718, 4735, 8475, 12237, 15407, 15462]


def test_index_of_another_dump(tmp_path):
    f = tmp_path / "x-multistream.xml.bz2"
    offsets = write_multistream(f, sample_pages(), per_stream=5)
    idx = tmp_path / "x-multistream-index.txt.bz2"
    idx.write_bytes(bz2.compress(f"{offsets[0] + 3}:1:Page 1\n".encode()))
    with pytest.raises(WikigptError, match=rf"index\.txt\.bz2: offset {offsets[0] + 3} is not the start of a bz2 stream"):
        plan_segments(f, idx)
    idx.write_bytes(bz2.compress(f"{f.stat().st_size + 10}:1:Page 1\n".encode()))
    with pytest.raises(WikigptError, match=r"x-multistream\.xml\.bz2: truncated or not the dump of this index"):
        plan_segments(f, idx)


def test_trailing_garbage_after_last_stream(tmp_path):
    f = tmp_path / "g.xml.bz2"
    data = bz2.compress((header() + "".join(sample_pages()) + FOOTER).encode())
    f.write_bytes(data + b"garbage")
    with pytest.raises(WikigptError, match=rf"g\.xml\.bz2: unexpected non-bz2 data at byte {len(data)}"):
        list(iter_pages(f))


def test_small_read_and_output_steps_give_the_same_pages(tmp_path, monkeypatch):
    from wikigpt.data import dump as dump_mod

    f = tmp_path / "x-multistream.xml.bz2"
    write_multistream(f, sample_pages(23), per_stream=5)
    expected = list(iter_pages(f))
    monkeypatch.setattr(dump_mod, "CHUNK", 97)
    monkeypatch.setattr(dump_mod, "OUT_CHUNK", 1000)  # decompressed output is bounded per step
    sizes = [len(c) for c in dump_mod._decompressed_chunks(f, Segment(0, f.stat().st_size), True)]
    assert max(sizes) <= 1000 and sum(sizes) == len(bz2.decompress(f.read_bytes()))
    assert list(iter_pages(f)) == expected
    segs, _ = plan_segments(f, resolve_index(f, ""))
    assert [p for s in segs for p in iter_segment_pages(f, s)] == expected
