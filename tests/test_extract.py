"""extract stage end to end: counts on real dumps, identical output across readers and worker
counts, failed pages, bad input through the stage entry point, the bundled sample."""

from __future__ import annotations

import bz2
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, SAMPLE_DIR, SHARED_DUMP_ARTICLES
from tests.test_dump import FOOTER, header, page_xml, sample_pages, write_multistream
from wikigpt.data import extract as extract_mod
from wikigpt.data.extract import OUTCOMES, ExtractConfig, extract
from wikigpt.data.shards import iter_rows, list_shards
from wikigpt.data.wikitext import Converter, count_leftover_markup
from wikigpt.errors import WikigptError

SAMPLE_DUMP = SAMPLE_DIR / "wikisample-pages-articles-multistream.xml.bz2"
ARTICLE_OUTCOMES = ("kept", "other_models", "disambiguation", "empty", "failed")


def run(tmp_path: Path, dump: Path, workers: int = 1, name: str = "out", **cfg) -> tuple[dict, list[dict], list[str]]:
    out = tmp_path / name
    metrics = extract(ExtractConfig(dump=str(dump), **cfg), out, workers=workers)
    rows = list(iter_rows(out))
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in list_shards(out)]
    return metrics, rows, digests


def check_metrics(m: dict) -> None:
    assert sum(m[k] for k in OUTCOMES) == m["pages_seen"], m
    assert m["failed"] == 0 and m["kept"] == m["articles"] > 0
    assert m["bytes_in"] > m["bytes_out"] > 0 and m["seconds"] > 0


@pytest.fixture(scope="module")
def shared_results(tmp_path_factory) -> dict[str, tuple[dict, list[dict]]]:
    from tests.conftest import shared_path

    dumps = shared_path("data", "wikidumps")
    tmp = tmp_path_factory.mktemp("shared")
    results = {}
    for i, name in enumerate(SHARED_DUMP_ARTICLES):
        m, rows, _ = run(tmp, dumps / name, name=f"o{i}")
        results[name] = (m, rows)
    return results


def test_shared_dumps_counts_add_up(shared_results):
    for name, articles in SHARED_DUMP_ARTICLES.items():
        m, rows = shared_results[name]
        check_metrics(m)
        # SOURCES.md's namespace-0 non-redirect count = kept + what we drop on purpose
        assert sum(m[k] for k in ARTICLE_OUTCOMES) == articles, (name, m)
        assert len(rows) == m["kept"] and len({r["id"] for r in rows}) == len(rows)
        assert all(r["text"].strip() == r["text"] and r["text"] for r in rows)


def test_shared_dumps_known_pages(shared_results):
    en_m, en_rows = shared_results["enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"]
    assert en_m["redirects"] == 99 and en_m["other_namespaces"] == 1 and en_m["pages_seen"] == 206
    titles = {r["title"] for r in en_rows}
    assert "Anarchism" in titles and "Austin (disambiguation)" not in titles and "Aberdeen (disambiguation)" not in titles
    assert en_m["disambiguation"] >= 6
    anarchism = next(r for r in en_rows if r["title"] == "Anarchism")["text"]
    assert anarchism.startswith("Anarchism is a political philosophy")
    assert "\nHistory\n" in anarchism and "References" not in anarchism.splitlines()

    ja_m, ja_rows = shared_results["jawiki-20250801-pages-articles-multistream_100k_lines.xml.bz2"]
    assert ja_m["redirects"] == 16 and ja_m["other_namespaces"] == 32 and ja_m["disambiguation"] >= 3
    assert "EU (曖昧さ回避)" not in {r["title"] for r in ja_rows}


def test_enwiki_has_no_leftover_markup_and_keeps_list_items(shared_results):
    _, rows = shared_results["enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"]
    text = "\n".join(r["text"] for r in rows)
    assert count_leftover_markup(text) == dict.fromkeys(count_leftover_markup(""), 0)
    # list items survive as their own lines, bullets and italics removed; See also lists do not
    albedo = next(r["text"] for r in rows if r["title"] == "Albedo").splitlines()
    assert any(line.startswith("Aerosol direct effect. Aerosols directly scatter") for line in albedo)
    assert "Daisyworld" not in albedo  # a "See also" item
    a = next(r["text"] for r in rows if r["title"] == "A").splitlines()
    assert "Ⲁ ⲁ: Coptic letter Alpha" in a
    _, tables = shared_results["enwiki-table-markup.xml.bz2"]
    assert not any(line.startswith(("|", "!", "{|")) for r in tables for line in r["text"].splitlines())


def test_plain_and_multistream_twins_identical(shared_dumps, tmp_path):
    plain = shared_dumps / "elwikivoyage-pages-articles-p2566p2583.xml.bz2"
    multi = shared_dumps / "elwikivoyage-pages-articles-p2566p2583.multistream.xml.bz2"
    mp, rp, dp = run(tmp_path, plain, name="plain", rows_per_shard=5)
    mm, rm, dm = run(tmp_path, multi, name="multi", rows_per_shard=5)
    mn, rn, dn = run(tmp_path, multi, name="noindex", rows_per_shard=5, index="none")
    assert (mp["reader"], mm["reader"], mn["reader"]) == ("single", "index", "scan")
    assert rp == rm == rn and dp == dm == dn and len(dp) == 4
    for k in ("pages_seen", *OUTCOMES, "bytes_in", "bytes_out"):
        assert mp[k] == mm[k] == mn[k], k
    assert mp["kept"] == 16 and mp["other_namespaces"] == 1


def test_one_and_two_workers_identical(shared_dumps, tmp_path):
    multi = shared_dumps / "elwikivoyage-pages-articles-p2566p2583.multistream.xml.bz2"
    m1, r1, d1 = run(tmp_path, multi, workers=1, name="w1", rows_per_shard=3)
    m2, r2, d2 = run(tmp_path, multi, workers=2, name="w2", rows_per_shard=3)
    assert m2["reader"] == "index" and m2["workers"] == 2
    assert r1 == r2 and d1 == d2 and len(d1) == 6
    # one-stream dump: the parent reads, workers convert batches
    plain = shared_dumps / "enwiki-table-markup.xml.bz2"
    m1, r1, d1 = run(tmp_path, plain, workers=1, name="p1", rows_per_shard=2)
    m2, r2, d2 = run(tmp_path, plain, workers=2, name="p2", rows_per_shard=2)
    assert m2["reader"] == "single" and r1 == r2 and d1 == d2 and len(r1) == 5


def test_synthetic_multistream_all_readers_agree(tmp_path, monkeypatch):
    dump = tmp_path / "s-multistream.xml.bz2"
    write_multistream(dump, sample_pages(40), per_stream=6)
    a = run(tmp_path, dump, name="a")
    b = run(tmp_path, dump, name="b", index="none")
    monkeypatch.setattr(extract_mod, "BATCH_BYTES", 50)  # many small conversion batches
    xml = tmp_path / "s.xml"
    xml.write_bytes(bz2.decompress(dump.read_bytes()))
    c = run(tmp_path, xml, name="c")
    assert a[1] == b[1] == c[1] and a[2] == b[2] == c[2]
    assert a[0]["kept"] == 24 and a[0]["redirects"] == 8 and a[0]["other_namespaces"] == 8
    assert a[1][0] == {"id": 1, "title": "Page 1: part", "text": "Text of page 1 & more.", "source_bytes": 28}


def test_unaligned_streams_fall_back_to_one_reader(tmp_path, capsys):
    xml = (header() + "".join(sample_pages(20)) + FOOTER).encode()
    cuts = [0, 700, 2100, len(xml)]
    dump = tmp_path / "cut.xml.bz2"
    dump.write_bytes(b"".join(bz2.compress(xml[a:b]) for a, b in zip(cuts, cuts[1:])))
    (tmp_path / "ref.xml").write_bytes(xml)
    m, rows, _ = run(tmp_path, dump, name="cut")
    _, ref, _ = run(tmp_path, tmp_path / "ref.xml", name="ref")
    assert m["reader"] == "single (after scan failed)" and rows == ref
    assert "re-reading with one reader" in capsys.readouterr().err


def test_failed_page_is_skipped_counted_and_named(tmp_path, monkeypatch, capsys):
    xml = header() + "".join(page_xml(i, f"P{i}", f"text {i}") for i in (1, 2, 3)) + FOOTER
    dump = tmp_path / "d.xml"
    dump.write_text(xml, encoding="utf-8")
    real = Converter.convert

    def flaky(self, wikitext, title=""):
        if title == "P2":
            raise RecursionError("too deep")
        return real(self, wikitext, title)

    monkeypatch.setattr(Converter, "convert", flaky)
    m, rows, _ = run(tmp_path, dump)
    assert [r["id"] for r in rows] == [1, 3] and m["failed"] == 1 and m["kept"] == 2
    err = capsys.readouterr().err
    assert "page id 2 ('P2'): conversion failed, skipped: RecursionError: too deep" in err


def test_empty_and_disambiguation_counted(tmp_path):
    pages = [
        page_xml(1, "A", "Real text."),
        page_xml(2, "B", "{{Infobox|x=1}}\n[[Category:Empty]]"),
        page_xml(3, "C (disambiguation)", "'''C''' may be:\n* [[C1]]\n{{disambiguation}}"),
        page_xml(4, "D", "css", model="css"),
    ]
    dump = tmp_path / "d.xml"
    dump.write_text(header() + "".join(pages) + FOOTER, encoding="utf-8")
    m, rows, _ = run(tmp_path, dump)
    assert [r["id"] for r in rows] == [1]
    assert (m["empty"], m["disambiguation"], m["other_models"], m["kept"]) == (1, 1, 1, 1)


# ----- bad input through `python stages/extract.py` ---------------------------------------


def _bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    good = (header() + "".join(sample_pages(30)) + FOOTER).encode()
    comp = bz2.compress(good)
    cases: dict[str, tuple[Path, str]] = {}
    cases["missing"] = (tmp / "nope.xml.bz2", r"dump file not found")
    (tmp / "trunc.xml.bz2").write_bytes(comp[: len(comp) - 100])
    cases["truncated"] = (tmp / "trunc.xml.bz2", rf"truncated bz2 data: the stream starting at byte 0 ends at byte {len(comp) - 100}")
    (tmp / "bad.xml.bz2").write_bytes(bz2.compress(good.replace(b"Page 3: part</title>", b"Page 3: part</titl>")))
    cases["malformed"] = (tmp / "bad.xml.bz2", r"malformed XML at line \d+, column \d+, after page id 2: mismatched tag")
    none = header() + page_xml(1, "R", "#REDIRECT [[X]]", redirect="X") + page_xml(2, "Talk:T", "t", ns=1) + FOOTER
    (tmp / "none.xml").write_text(none, encoding="utf-8")
    cases["no_articles"] = (tmp / "none.xml", r"no articles extracted from 2 pages \(redirects=1, other_namespaces=1\)")
    utf8 = good.replace(b"Text of", b"Te\xffxt of", 1)
    (tmp / "utf8.xml.bz2").write_bytes(bz2.compress(utf8))
    bad_at = utf8.index(b"\xff")
    cases["invalid_utf8"] = (tmp / "utf8.xml.bz2", rf"invalid UTF-8 at byte {bad_at} of the decompressed XML")
    # a multistream dump with its index, last stream cut off: the worker reports it
    ms = tmp / "ms-multistream.xml.bz2"
    write_multistream(ms, sample_pages(30), per_stream=5)
    data = ms.read_bytes()
    ms.write_bytes(data[:-40])
    cases["truncated_multistream"] = (ms, r"truncated bz2 data: the stream starting at byte \d+ ends at byte " + str(len(data) - 40))
    return cases


def test_bad_input_through_stage(tmp_path):
    cases = _bad_inputs(tmp_path)
    for name, (dump, pattern) in cases.items():
        work = tmp_path / f"run_{name}"
        (work / "data" / "extracted").mkdir(parents=True)
        (work / "data" / "extracted" / "part-00000.parquet").write_bytes(b"stale output of an earlier run")
        (work / "metrics").mkdir()
        (work / "metrics" / "extract.json").write_text("{}")
        (work / "params.yaml").write_text(
            f"extract:\n  dump: {dump}\nruntime:\n  extract_workers: {2 if name == 'truncated_multistream' else 1}\n  progress: false\n"
        )
        proc = subprocess.run(
            [sys.executable, str(REPO_ROOT / "stages" / "extract.py")], cwd=work, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 1, (name, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, (name, proc.stderr)
        assert lines[0].startswith(f"error: {dump}: "), (name, lines[0])
        assert re.search(pattern, lines[0]), (name, lines[0])
        # nothing left that a later stage (or DVC) could take for a finished output
        assert not (work / "data" / "extracted").exists(), name
        assert not (work / "metrics" / "extract.json").exists(), name
        assert [p.name for p in (work / "data").iterdir()] == [], name


def test_bad_params(tmp_path):
    with pytest.raises(WikigptError, match="rows_per_shard must be >= 1"):
        extract(ExtractConfig(dump="x", rows_per_shard=0), tmp_path / "o")


# ----- the bundled sample ------------------------------------------------------------------


@pytest.mark.skipif(not SAMPLE_DUMP.exists(), reason="bundled sample not committed yet")
def test_bundled_sample(tmp_path):
    m, rows, digests = run(tmp_path, SAMPLE_DUMP, workers=2)
    check_metrics(m)
    assert m["reader"] == "index" and m["segments"] > 1
    assert m["redirects"] > 0 and m["other_namespaces"] > 0 and m["disambiguation"] > 0
    text = "\n".join(r["text"] for r in rows)
    leftovers = count_leftover_markup(text)
    # `''` written inside <nowiki> is literal text by definition; everything else must be gone
    source = "".join(p for p in _sample_wikitext())
    literal = sum(s.count("''") for s in re.findall(r"<nowiki>(.*?)</nowiki>", source, re.S))
    assert leftovers.pop("''") == literal
    assert leftovers == dict.fromkeys(leftovers, 0)
    assert sum(line.startswith(("*", "#")) for r in rows for line in r["text"].splitlines()) == 0
    _, rows1, digests1 = run(tmp_path, SAMPLE_DUMP, workers=1, name="one", index="none")
    assert rows1 == rows and digests1 == digests


def _sample_wikitext():
    from wikigpt.data.dump import iter_pages

    for p in iter_pages(SAMPLE_DUMP):
        if p.ns == 0 and not p.redirect:
            yield p.text
