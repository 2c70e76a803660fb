"""The bundled sample dump: reproducible, in Wikimedia's multistream format, and as README describes."""

from __future__ import annotations

import bz2
import hashlib
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, SAMPLE_DIR
from wikigpt.data import sample_dump
from wikigpt.data.sample_dump import DUMP_NAME, INDEX_NAME, PAGES_PER_STREAM

DUMP = SAMPLE_DIR / DUMP_NAME
INDEX = SAMPLE_DIR / INDEX_NAME
README = SAMPLE_DIR / "README.md"


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def child(el: ET.Element, name: str) -> ET.Element | None:
    for c in el:
        if local(c.tag) == name:
            return c
    return None


def page_record(el: ET.Element) -> dict:
    rev = child(el, "revision")
    text = child(rev, "text")
    return {
        "id": int(child(el, "id").text),
        "title": child(el, "title").text,
        "ns": int(child(el, "ns").text),
        "redirect": None if child(el, "redirect") is None else child(el, "redirect").get("title"),
        "text": text.text or "",
        "bytes": int(text.get("bytes")),
        "text_sha1": text.get("sha1"),
        "sha1": child(rev, "sha1").text,
        "rev": {local(c.tag): c for c in rev},
    }


@pytest.fixture(scope="module")
def pages() -> list[dict]:
    """Every page of the committed dump, read the way a plain (non-multistream) reader would."""
    out = []
    with bz2.open(DUMP, "rb") as f:
        for _, el in ET.iterparse(f, events=("end",)):
            if local(el.tag) == "page":
                out.append(page_record(el))
                el.clear()
    return out


@pytest.fixture(scope="module")
def index() -> list[tuple[int, int, str]]:
    rows = []
    for line in bz2.open(INDEX, "rt", encoding="utf-8").read().splitlines():
        offset, page_id, title = line.split(":", 2)  # titles may contain ':'
        rows.append((int(offset), int(page_id), title))
    return rows


def readme_counts() -> dict[str, int]:
    """`| label | N |` rows of data/sample/README.md."""
    counts = {}
    for m in re.finditer(r"^\|\s*([^|]+?)\s*\|\s*([\d,]+)\s*\|", README.read_text(encoding="utf-8"), re.M):
        counts[m.group(1).strip("` ")] = int(m.group(2).replace(",", ""))
    return counts


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    sample_dump.write_sample(tmp_path)
    assert (tmp_path / DUMP_NAME).read_bytes() == DUMP.read_bytes()
    assert (tmp_path / INDEX_NAME).read_bytes() == INDEX.read_bytes()


def test_cli_regenerates_under_another_hash_seed(tmp_path: Path) -> None:
    # set iteration order changes with PYTHONHASHSEED; the output must not
    env = dict(os.environ, PYTHONHASHSEED="12345")
    cmd = [sys.executable, "-m", "wikigpt.cli", "make-sample", "--out", str(tmp_path / "s")]
    res = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "s" / DUMP_NAME).read_bytes() == DUMP.read_bytes()
    assert (tmp_path / "s" / INDEX_NAME).read_bytes() == INDEX.read_bytes()


def test_header_has_siteinfo_with_namespaces() -> None:
    data = DUMP.read_bytes()
    d = bz2.BZ2Decompressor()
    head = d.decompress(data).decode("utf-8")
    assert d.eof and head.startswith('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.11/"')
    assert "<page>" not in head  # stream 0 holds only the header, as in Wikimedia dumps
    siteinfo = ET.fromstring(head + "</mediawiki>")
    ns = {int(n.get("key")): (n.text or "") for n in siteinfo.iter("{http://www.mediawiki.org/xml/export-0.11/}namespace")}
    assert ns[0] == "" and ns[1] == "Talk" and ns[6] == "File" and ns[10] == "Template" and ns[14] == "Category"
    assert ns[4] == "Wikisample"
    tail = data[-200:]
    assert bz2.decompress(tail[tail.rfind(b"BZh9"):]) == b"</mediawiki>\n"


def test_index_offsets_are_stream_starts_holding_those_pages(pages: list[dict], index: list[tuple[int, int, str]]) -> None:
    data = DUMP.read_bytes()
    assert [(i, t) for _, i, t in index] == [(p["id"], p["title"]) for p in pages]
    offsets = sorted({o for o, _, _ in index})
    assert len(offsets) == -(-len(pages) // PAGES_PER_STREAM) > 10
    for offset in offsets:
        d = bz2.BZ2Decompressor()
        chunk = d.decompress(data[offset:])
        assert d.eof
        # a chunk is raw <page> elements without any namespace declaration
        assert b"xmlns" not in chunk
        root = ET.fromstring(b"<pages>" + chunk + b"</pages>")
        got = [(int(child(p, "id").text), child(p, "title").text) for p in root]
        assert got == [(i, t) for o, i, t in index if o == offset]
        assert all(p.tag == "page" for p in root)


def test_page_elements_are_complete(pages: list[dict]) -> None:
    ids = [p["id"] for p in pages]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for p in pages:
        for name in ("id", "timestamp", "contributor", "model", "format", "text", "sha1"):
            assert name in p["rev"], (p["title"], name)
        assert p["rev"]["model"].text == "wikitext" and p["rev"]["format"].text == "text/x-wiki"
        assert p["bytes"] == len(p["text"].encode("utf-8"))
        assert p["sha1"] == p["text_sha1"] == sample_dump.sha1_base36(p["text"])
        assert int(p["sha1"], 36) == int(hashlib.sha1(p["text"].encode("utf-8")).hexdigest(), 16)


def test_counts_match_readme(pages: list[dict]) -> None:
    stated = readme_counts()
    ns0 = [p for p in pages if p["ns"] == 0]
    assert stated["pages"] == len(pages)
    assert stated["ns-0 articles (non-redirect)"] == sum(p["redirect"] is None for p in ns0)
    assert stated["ns-0 redirects"] == sum(p["redirect"] is not None for p in ns0)
    assert stated["other namespaces"] == sum(p["ns"] != 0 for p in pages)
    kinds = sample_dump.count_kinds(sample_dump.build_pages())
    for kind, n in kinds.items():
        assert stated[kind] == n, kind
    by_ns = Counter(p["ns"] for p in pages if p["ns"] != 0)
    assert len(by_ns) >= 6  # Talk, User, project, File, Template, Category, ...


def test_page_kinds(pages: list[dict]) -> None:
    by_title = {p["title"]: p for p in pages}
    redirects = [p for p in pages if p["redirect"] is not None]
    assert len(redirects) >= 25
    for p in redirects:
        assert p["text"].lower().startswith("#redirect")
        assert p["redirect"] in by_title, p["redirect"]
    # a text that starts like a (German) redirect but has no <redirect> element is an article
    weird = [p for p in pages if p["text"].startswith("#WEITERLEITUNG")]
    assert len(weird) == 1 and weird[0]["redirect"] is None and "''' is a " in weird[0]["text"]
    dabs = [p for p in pages if "{{disambiguation}}" in p["text"]]
    assert len(dabs) == 5 and all(p["title"].endswith(" (disambiguation)") for p in dabs)
    texts = Counter(p["text"] for p in pages if p["ns"] == 0 and p["redirect"] is None)
    assert sum(n - 1 for n in texts.values() if n > 1) == 10  # planted exact duplicates
    scripts = {"Greek": "[\u0370-\u03ff]", "Japanese": "[\u30a0-\u30ff]", "German": r"\bist eine Stadt\b",
               "French": r"\best une ville\b"}
    for name, pattern in scripts.items():
        assert any(re.search(pattern, p["text"]) for p in pages if p["ns"] == 0), name
    assert any(":" in p["title"] for p in pages if p["ns"] == 0 and p["redirect"] is None)


MARKUP = {
    "infobox": r"\{\{Infobox settlement\n\| name = ",
    "nested template": r"\| native_name = \{\{lang\|",
    "convert 2 args": r"\{\{convert\|\d+\|km\}\}",
    "convert 3 args": r"\{\{convert\|\d+\|m\|ft\}\}",
    "lang": r"\{\{lang\|[a-z]+\|",
    "cite web in ref": r'<ref name="[a-z]+">\{\{cite web\|',
    "ref reuse": r'<ref name="[a-z]+" />',
    "reflist": r"\{\{reflist\}\}",
    "references tag": r"<references />",
    "wikitable": r'\{\| class="wikitable',
    "file thumb with link in caption": r"\[\[File:[^|\]]+\|thumb\|\d+px\|[^\n]*\[\[[^\]]+\]\][^\n]*\]\]",
    "image prefix": r"\[\[Image:[^|\]]+\|thumb",
    "category": r"\[\[Category:",
    "interlanguage de": r"\n\[\[de:",
    "interlanguage fr": r"\n\[\[fr:",
    "piped link": r"\[\[[^|\]\n]+\|[^\]\n]+\]\]",
    "plain link": r"\[\[[A-Z][^|\]:\n]+\]\]",
    "external link": r"\[http://example\.org/\S+ [^\]]+\]",
    "bold": r"'''[^']+'''",
    "italic": r"(?<!')''[^']+''(?!')",
    "bullet": r"\n\* ",
    "nested bullet": r"\n\*\* ",
    "numbered": r"\n# ",
    "definition list": r"\n; [^\n]+\n: ",
    "heading 2": r"\n== [^=\n]+ ==\n",
    "heading 3": r"\n=== [^=\n]+ ===\n",
    "heading 4": r"\n==== [^=\n]+ ====\n",
    "math": r"<math>[^<]+</math>",
    "entity amp": r"&amp;",
    "entity nbsp": r"&nbsp;",
    "entity ndash": r"&ndash;",
    "numeric entity": r"&#\d+;",
    "literal NBSP": "\u00a0",
    "comment": r"<!--[^>]*-->",
    "NOTOC": r"__NOTOC__",
    "TOC": r"__TOC__",
    "DEFAULTSORT": r"\{\{DEFAULTSORT:[^}]+\}\}",
    "nowiki": r"<nowiki>[^<]+</nowiki>",
    "br": r"<br />",
    "small": r"<small>[^<]+</small>",
    "sup": r"<sup>[^<]+</sup>",
    "See also": r"\n== See also ==\n",
    "References": r"\n== References ==\n",
    "External links": r"\n== External links ==\n",
    "Further reading": r"\n== Further reading ==\n",
    "Notes": r"\n== Notes ==\n",
    "Bibliography": r"\n== Bibliography ==\n",
}


@pytest.mark.parametrize("name", list(MARKUP))
def test_markup_class_occurs(pages: list[dict], name: str) -> None:
    articles = "\n".join(p["text"] for p in pages if p["ns"] == 0 and p["redirect"] is None)
    assert re.search(MARKUP[name], articles), name


def test_english_leads_define_the_title() -> None:
    skip = {"disambiguation", "empty", "non_english", "redirect", "other_ns", "exact_dup", "near_dup", "redirect_like"}
    n = 0
    for p in sample_dump.build_pages():
        if p.kind in skip:
            continue
        first = next(line for line in p.text.split("\n\n")
                     if line.startswith("'''") or line.startswith("__TOC__\n'''"))
        first = first.removeprefix("__TOC__\n")
        assert re.match(r"'''+" + re.escape(p.title) + r"'''+ is (a|an|the) ", first), (p.title, first[:120])
        n += 1
    assert n >= 300
