"""Shared test fixtures: repository paths and the optional ../shared data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
SHARED_DUMPS = SHARED_DIR / "data" / "wikidumps"
SHARED_GPT2 = SHARED_DIR / "data" / "gpt2"
SAMPLE_DIR = REPO_ROOT / "data" / "sample"

# name -> number of namespace-0, non-redirect pages in the file (from ../shared SOURCES.md)
SHARED_DUMP_ARTICLES = {
    "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2": 106,
    "enwiki-table-markup.xml.bz2": 5,
    "jawiki-20250801-pages-articles-multistream_100k_lines.xml.bz2": 186,
    "elwikivoyage-pages-articles-p2566p2583.multistream.xml.bz2": 16,
    "elwikivoyage-pages-articles-p2566p2583.xml.bz2": 16,
}


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the calling test with a reason when it is absent."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is optional)")
    return path


@pytest.fixture
def shared_dumps() -> Path:
    return shared_path("data", "wikidumps")


@pytest.fixture
def gpt2_dir() -> Path:
    return shared_path("data", "gpt2")
