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


# --- sft helper: a tiny byte-level BPE tokenizer with the reserved chat tokens at ids 0-3 ---
TINY_TOKENIZER_TEXT = (
    "The quick brown fox jumps over the lazy dog. Paris is the capital of France. "
    "Wikipedia is a free online encyclopedia. Tell me about the history of science. "
    "What is the meaning of life? Photosynthesis converts light into chemical energy. "
    "Le café est très bon. Zürich, Москва, 東京 and emoji 🙂 appear in articles. "
) * 20


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A ~400-token byte-level BPE tokenizer trained in memory (< 1 s), shaped like the real one."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from wikigpt.specials import SPECIAL_TOKENS

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([TINY_TOKENIZER_TEXT], trainer=trainer)
    return tok


@pytest.fixture
def one_torch_thread():
    """Run torch on one thread: tiny matmuls with 2 threads on a busy 2-core box spin-wait and
    run many times slower, which only makes the suite slow (results are the same)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
