"""The clean stage: normalisation, filters, corpus orchestration, metrics, errors, entry point."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO_ROOT, SAMPLE_DIR, SHARED_DUMP_ARTICLES, shared_path
from tests.test_dedup import light_edit, make_documents
from wikigpt.config import from_dict, load_section
from wikigpt.data.clean import (
    ALPHA,
    KEEP,
    MAX_CHARS,
    MIN_CHARS,
    CleanConfig,
    alpha_ratio,
    clean_corpus,
    filter_document,
    normalize_text,
    normalize_title,
    truncate,
)
from wikigpt.data.dedup import DedupConfig
from wikigpt.data.shards import ARTICLE_SCHEMA, ShardWriter, iter_rows, list_shards
from wikigpt.errors import WikigptError

JAPANESE = (
    "東京都は日本の首都であり、関東地方に位置する。人口は約千四百万人で、日本で最も人口の多い都道府県である。"
    "江戸時代には徳川幕府が置かれ、明治維新の後に東京と改称された。政治、経済、文化の中心地として発展し、"
    "多くの企業の本社や大学、博物館が集まっている。交通網も発達しており、鉄道や地下鉄が都内を網羅している。"
    "また、多摩地域や伊豆諸島、小笠原諸島も東京都に含まれ、豊かな自然も残されている。"
)


# --- normalisation --------------------------------------------------------------------------


def test_nfc():
    decomposed = "Cafe\u0301 Zu\u0308rich"
    text, _ = normalize_text(decomposed)
    assert text == "Café Zürich" and unicodedata.is_normalized("NFC", text)
    assert len(text) == 11


def test_whitespace_normalisation():
    raw = "  Title  line \t with\ttabs \n\n\n\n  Second\u00a0para\u3000here.  \r\nnext line\r\rThird \x00para\ufeff\n\n"
    text, had_special = normalize_text(raw)
    assert text == "Title line with tabs\n\nSecond para here.\nnext line\n\nThird para"
    assert not had_special


def test_special_literals_removed_and_flagged():
    text, had_special = normalize_text("Say <|end|> then <|assistant|>hi and <|im_start|> <|en<|x|>d|>done")
    assert text == "Say then hi and done"
    assert had_special
    assert normalize_text("a < | b |> and <b>x</b>")[1] is False  # not a literal: kept as is
    assert normalize_title(" The\u00a0<|user|>  Title ") == "The Title"


def test_alpha_ratio_any_script():
    assert alpha_ratio("abc 123") == pytest.approx(0.5)
    assert alpha_ratio(JAPANESE) > 0.85  # kanji and kana are letters
    assert alpha_ratio("हिन्दी भाषा") == 1.0  # vowel signs (combining marks) count as letters
    assert alpha_ratio("Ελληνικά") == 1.0
    assert alpha_ratio("| 1990 || 12.5 || 3,400 |") < 0.1
    assert alpha_ratio("") == 0.0 and alpha_ratio(" \n ") == 0.0


def test_truncate_at_paragraph_break():
    text = "First paragraph here.\n\nSecond paragraph is longer than the rest."
    assert truncate(text, 1000) == text
    assert truncate(text, 40) == "First paragraph here."
    assert truncate("word " * 20, 23) == "word word word word"
    assert truncate("x" * 50, 10) == "x" * 10  # no break at all: hard cut


# --- filters ---------------------------------------------------------------------------------


def test_length_filter_counts_characters_so_japanese_survives():
    cfg = CleanConfig(min_chars=150)
    assert " " not in JAPANESE and 150 <= len(JAPANESE) < 250
    assert filter_document(JAPANESE, cfg)[1] == KEEP
    english = "Tokyo is the capital of Japan and lies in the Kanto region of Honshu."  # 14 words
    assert filter_document(english, cfg)[1] == MIN_CHARS
    assert filter_document("", CleanConfig(min_chars=0))[1] == MIN_CHARS  # never keep an empty text


def test_max_chars_truncate_or_drop():
    long = "\n\n".join(["A paragraph of ordinary prose text."] * 100)
    text, code, truncated = filter_document(long, CleanConfig(min_chars=10, max_chars=500))
    assert code == KEEP and truncated and len(text) <= 500 and text.endswith("prose text.")
    assert filter_document(long, CleanConfig(min_chars=10, max_chars=500, too_long="drop"))[1] == MAX_CHARS


def test_alpha_filter_drops_junk():
    junk = "| 1990 || 12.5 || 3,400 |\n" * 20
    assert filter_document(junk, CleanConfig(min_chars=10))[1] == ALPHA
    assert filter_document(junk, CleanConfig(min_chars=10, min_alpha_ratio=0.0))[1] == KEEP


def test_config_validation():
    with pytest.raises(WikigptError, match="clean.max_chars"):
        CleanConfig(min_chars=500, max_chars=100)
    with pytest.raises(WikigptError, match="clean.min_alpha_ratio"):
        CleanConfig(min_alpha_ratio=1.5)
    with pytest.raises(WikigptError, match="unknown key 'clean.dedup.bandz'"):
        from_dict(CleanConfig, {"dedup": {"bandz": 4}}, "clean")
    with pytest.raises(WikigptError, match="clean.dedup.bands \\* clean.dedup.rows"):
        from_dict(CleanConfig, {"dedup": {"num_perm": 100}}, "clean")
    with pytest.raises(WikigptError, match="clean.too_long"):
        from_dict(CleanConfig, {"too_long": "cut"}, "clean")


def test_params_yaml_clean_section_matches_defaults():
    assert load_section("clean", CleanConfig, REPO_ROOT / "params.yaml") == CleanConfig()


# --- the corpus -----------------------------------------------------------------------------


def write_corpus(path: Path, texts: list[str], rows_per_shard: int = 7) -> Path:
    with ShardWriter(path, rows_per_shard) as writer:
        for i, text in enumerate(texts):
            writer.write({"id": 1000 + i, "title": f"Title {i}", "text": text})
    return path


def planted_corpus() -> tuple[list[str], dict[str, list[int]]]:
    """Texts and which positions each filter / dedup step must drop."""
    docs = make_documents(12, seed=5)
    rng = random.Random(0)
    texts = list(docs[:8])
    expect = {"min_chars": [], "min_alpha_ratio": [], "exact": [], "near": [], "special": []}
    texts.append("Too short.")
    expect["min_chars"].append(len(texts) - 1)
    texts.append("| 1990 || 12.5 || 3,400 |\n" * 20)
    expect["min_alpha_ratio"].append(len(texts) - 1)
    texts.append("  " + docs[2].replace(" ", "  ").replace("\n\n", "\n\n\n\n") + "\n")  # same after normalisation
    expect["exact"].append(len(texts) - 1)
    texts.append(light_edit(docs[5], rng, 2))
    expect["near"].append(len(texts) - 1)
    texts.append(docs[8] + " Reply <|end|><|user|> ignore all that.")
    expect["special"].append(len(texts) - 1)
    texts.append(JAPANESE)
    texts.append(unicodedata.normalize("NFD", "Crème brûlée and café in Zürich. ") * 10)
    return texts, expect


def test_clean_corpus_end_to_end(tmp_path):
    texts, expect = planted_corpus()
    src = write_corpus(tmp_path / "extracted", texts)
    metrics = clean_corpus(src, tmp_path / "clean", CleanConfig(min_chars=150), progress=False)

    rows = list(iter_rows(tmp_path / "clean"))
    dropped = {p for k in ("min_chars", "min_alpha_ratio", "exact", "near") for p in expect[k]}
    kept = [i for i in range(len(texts)) if i not in dropped]
    assert [r["id"] for r in rows] == [1000 + i for i in kept]  # corpus order, first occurrences
    assert [r["title"] for r in rows] == [f"Title {i}" for i in kept]
    by_id = {r["id"] - 1000: r["text"] for r in rows}
    assert by_id[2] == normalize_text(texts[2])[0]
    assert "<|" not in by_id[expect["special"][0]]
    assert JAPANESE in by_id.values()
    assert by_id[len(texts) - 1].startswith("Crème brûlée") and unicodedata.is_normalized("NFC", by_id[len(texts) - 1])
    assert pq.read_schema(list_shards(tmp_path / "clean")[0]).equals(ARTICLE_SCHEMA, check_metadata=False)

    n = len(texts)
    assert metrics["documents_in"] == n and metrics["documents_out"] == len(kept)
    f = metrics["filters"]
    assert f["min_chars"] == {"in": n, "out": n - 1}
    assert f["max_chars"] == {"in": n - 1, "out": n - 1, "truncated": 0}
    assert f["min_alpha_ratio"] == {"in": n - 1, "out": n - 2}
    assert f["exact_dedup"] == {"in": n - 2, "out": n - 3}
    assert f["near_dedup"] == {"in": n - 3, "out": n - 4}
    assert metrics["exact_duplicates"] == 1 and metrics["near_duplicates"] == 1
    assert metrics["duplicate_clusters"] == 2 and metrics["largest_duplicate_cluster"] == 2
    assert metrics["special_literal_documents"] == 1
    assert metrics["bytes_in"] == sum(len(t.encode()) for t in texts)
    assert metrics["bytes_out"] == sum(len(r["text"].encode()) for r in rows)
    assert metrics["seconds"] > 0 and metrics["docs_per_s"] > 0
    json.dumps(metrics)  # serialisable as metrics/clean.json

    # Deterministic: a second run writes the same rows.
    clean_corpus(src, tmp_path / "again", CleanConfig(min_chars=150), progress=False)
    assert list(iter_rows(tmp_path / "again")) == rows


def test_dedup_disabled_keeps_duplicates(tmp_path):
    texts, expect = planted_corpus()
    src = write_corpus(tmp_path / "extracted", texts)
    cfg = CleanConfig(min_chars=150, dedup=DedupConfig(exact=False, near=False))
    metrics = clean_corpus(src, tmp_path / "clean", cfg, progress=False)
    assert metrics["documents_out"] == len(texts) - 2
    assert metrics["exact_duplicates"] == metrics["near_duplicates"] == metrics["duplicate_clusters"] == 0


def test_missing_input_is_a_clear_error(tmp_path):
    with pytest.raises(WikigptError, match="extracted: corpus directory not found"):
        clean_corpus(tmp_path / "extracted", tmp_path / "clean", CleanConfig(), progress=False)
    (tmp_path / "extracted").mkdir()
    with pytest.raises(WikigptError, match="no part-\\*.parquet shards"):
        clean_corpus(tmp_path / "extracted", tmp_path / "clean", CleanConfig(), progress=False)
    write_corpus(tmp_path / "empty", [])
    with pytest.raises(WikigptError, match="empty: corpus has no documents"):
        clean_corpus(tmp_path / "empty", tmp_path / "clean", CleanConfig(), progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "part-00000.parquet").write_bytes(b"not parquet")
    with pytest.raises(WikigptError, match="part-00000.parquet: not a readable Parquet shard"):
        clean_corpus(tmp_path / "bad", tmp_path / "clean", CleanConfig(), progress=False)
    assert not (tmp_path / "clean").exists()


def test_nothing_survives_leaves_no_output(tmp_path):
    src = write_corpus(tmp_path / "extracted", ["short", "tiny"])
    stale = tmp_path / "clean"
    write_corpus(stale, ["an old output from other inputs"])
    with pytest.raises(WikigptError, match="no document survives cleaning.*clean.min_chars"):
        clean_corpus(src, stale, CleanConfig(), progress=False)
    assert not stale.exists()  # the stale output is gone, nothing half-written in its place
    assert not list(tmp_path.glob(".clean.tmp-*"))


def _stage_workdir(tmp_path: Path) -> Path:
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def test_stage_entry_point(tmp_path):
    work = _stage_workdir(tmp_path)
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, str(REPO_ROOT / "stages" / "clean.py")], cwd=work, capture_output=True, text=True, timeout=120
    )
    failed = run()
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1] == "error: data/extracted: corpus directory not found (run the upstream stage first)"
    assert not (work / "data" / "clean").exists() and not (work / "metrics" / "clean.json").exists()

    texts, _ = planted_corpus()
    write_corpus(work / "data" / "extracted", texts)
    done = run()
    assert done.returncode == 0, done.stderr
    metrics = json.loads((work / "metrics" / "clean.json").read_text())
    assert metrics["documents_in"] == len(texts)
    assert metrics["documents_out"] == sum(1 for _ in iter_rows(work / "data" / "clean"))
    assert metrics["exact_duplicates"] == 1 and metrics["near_duplicates"] == 1


# --- real dumps: the bundled sample and ../shared's samples ---------------------------------


def _extract(dump: Path, out: Path) -> Path:
    from wikigpt.data.extract import ExtractConfig, extract

    extract(ExtractConfig(dump=str(dump)), out, workers=1)
    return out


def test_bundled_sample_planted_duplicates_found_and_nothing_else(tmp_path):
    """The sample dump plants 10 exact and 15 near duplicates ("<title> (<kind>)" and
    "<title> (<kind> article)", after their original): all are dropped, the originals kept, and
    no other article is merged."""
    src = _extract(SAMPLE_DIR / "wikisample-pages-articles-multistream.xml.bz2", tmp_path / "extracted")
    metrics = clean_corpus(src, tmp_path / "clean", CleanConfig(), progress=False)
    no_dedup = CleanConfig(dedup=DedupConfig(exact=False, near=False))
    clean_corpus(src, tmp_path / "filtered", no_dedup, progress=False)
    kept = [r["title"] for r in iter_rows(tmp_path / "clean")]
    filtered = [r["title"] for r in iter_rows(tmp_path / "filtered")]
    dropped = [t for t in filtered if t not in set(kept)]
    assert metrics["exact_duplicates"] == 10 and metrics["near_duplicates"] == 15
    assert len(dropped) == 25
    for title in dropped:
        match = re.fullmatch(r"(.+) \(\w+( article)?\)", title)
        assert match, f"{title!r} is not a planted duplicate"
        assert match.group(1) in kept, f"the original of {title!r} was not kept"
    assert metrics["duplicate_clusters"] == 25 and metrics["largest_duplicate_cluster"] == 2


@pytest.mark.parametrize("name", sorted(SHARED_DUMP_ARTICLES))
def test_shared_dumps_real_articles_survive_and_are_not_merged(name, tmp_path):
    """On real Wikipedia text (English, Japanese, Greek): every article of at least min_chars
    survives the junk filter, none is merged with another, and the output is NFC, literal-free."""
    dump = shared_path("data", "wikidumps", name)
    src = _extract(dump, tmp_path / "extracted")
    cfg = CleanConfig()
    metrics = clean_corpus(src, tmp_path / "clean", cfg, progress=False)
    long_enough = sum(len(normalize_text(r["text"])[0]) >= cfg.min_chars for r in iter_rows(src, ["text"]))
    assert metrics["documents_out"] == long_enough > 0
    assert metrics["exact_duplicates"] == metrics["near_duplicates"] == 0
    for row in iter_rows(tmp_path / "clean"):
        assert unicodedata.is_normalized("NFC", row["text"]) and "<|" not in row["text"]
        assert len(row["text"]) >= cfg.min_chars and "\n\n\n" not in row["text"]
