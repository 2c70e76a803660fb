"""Tokenizer stage: training, reserved tokens, round trips, saved files, bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from wikigpt.data.shards import ShardWriter
from wikigpt.errors import WikigptError
from wikigpt.specials import SPECIAL_TOKENS
from wikigpt.tokenizer import (
    HARD_UNICODE,
    TokenizerConfig,
    build_tokenizer,
    gpt2_reference_tokenizer,
    heldout_docs,
    is_heldout,
    load_tokenizer,
    tokenizer_sha256,
    train_tokenizer,
)

SMALL_VOCAB = 512
SYLLABLES = "ka to ri mu se na lo pe chi an der ung ist tion al re com pro ver sch".split()
EXTRAS = ["Zürich", "café", "naïve", "東京", "日本語", "ˈɪŋɡlɪʃ", "α-β", "x²", "3.14", "1987", "(born", "e.g.", "—"]


def make_docs(n: int, seed: int = 0, words: tuple[int, int] = (40, 160)) -> list[dict]:
    """Deterministic pseudo-articles: a Zipf-ish made-up vocabulary plus some Unicode and numbers."""
    rng = random.Random(seed)
    lexicon = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3))) for _ in range(300)] + EXTRAS
    weights = [1.0 / (rank + 1) for rank in range(len(lexicon))]
    docs = []
    for i in range(n):
        body = rng.choices(lexicon, weights, k=rng.randint(*words))
        sentences = [" ".join(body[k : k + 12]).capitalize() + "." for k in range(0, len(body), 12)]
        docs.append({"id": 1000 + 7 * i, "title": f"Doc {i}", "text": "\n".join(sentences)})
    return docs


def write_corpus(path: Path, docs: list[dict], rows_per_shard: int = 40) -> Path:
    with ShardWriter(path, rows_per_shard=rows_per_shard) as w:
        for d in docs:
            w.write(d)
    return path


def small_cfg(**kw) -> TokenizerConfig:
    base = dict(vocab_size=SMALL_VOCAB, heldout_fraction=0.1, gpt2_reference="/nonexistent/gpt2")
    return TokenizerConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("tok") / "clean", make_docs(120))


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tokout") / "tokenizer"
    metrics = build_tokenizer(corpus, out, small_cfg())
    return out, metrics


def test_vocab_size_is_exact_and_specials_are_reserved_and_atomic(built):
    out, metrics = built
    tok = load_tokenizer(out)
    assert tok.get_vocab_size() == SMALL_VOCAB == metrics["vocab_size"]
    assert metrics["merges"] == SMALL_VOCAB - 4 - 256
    for i, literal in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(literal) == i
        assert tok.encode(literal).ids == [i]
        # glued to text on both sides it still comes out as exactly one token
        ids = tok.encode(f"ka{literal}to").ids
        assert ids.count(i) == 1 and all(j >= 4 for j in ids if j != i)
    # a near-miss is ordinary text
    assert all(j >= 4 for j in tok.encode("<|user |> <|end> |end|").ids)


def test_round_trip_hard_unicode_and_every_latin1_char(built):
    tok = load_tokenizer(built[0])
    for text in [HARD_UNICODE, "".join(map(chr, range(1, 256))), "  leading and trailing  \n", "e\u0301 vs \u00e9"]:
        ids = tok.encode(text).ids
        assert tok.decode(ids, skip_special_tokens=False) == text
    # no normalizer: NFD and NFC forms stay different token sequences
    assert tok.encode("e\u0301").ids != tok.encode("\u00e9").ids


def test_heldout_docs_round_trip_and_are_excluded_from_training(corpus):
    cfg = small_cfg()
    held = heldout_docs(corpus, cfg)
    assert held and all(is_heldout(i, cfg.heldout_fraction) for i, _ in held)
    assert [i for i, _ in held] == [d["id"] for d in make_docs(120) if is_heldout(d["id"], 0.1)]
    tok, stats = train_tokenizer(corpus, cfg)
    assert stats["docs"] == 120 - len(held)
    for _, text in held:
        assert tok.decode(tok.encode(text).ids) == text


def test_training_is_deterministic(corpus, built, tmp_path):
    build_tokenizer(corpus, tmp_path / "again", small_cfg())
    assert (tmp_path / "again" / "tokenizer.json").read_bytes() == (built[0] / "tokenizer.json").read_bytes()
    assert tokenizer_sha256(tmp_path / "again") == built[1]["tokenizer_sha256"]


def test_files_metrics_and_vocab_report(built):
    out, metrics = built
    assert sorted(p.name for p in out.iterdir()) == [
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab_report.md",
    ]
    assert not list(out.parent.glob(".tokenizer.tmp-*"))  # atomic: no temp dir left behind
    fert = metrics["fertility"]
    assert fert["tokens"] > 0 and fert["words"] > 0
    assert fert["tokens_per_word"] == pytest.approx(fert["tokens"] / fert["words"], abs=1e-3)
    assert fert["bytes_per_token"] == pytest.approx(fert["bytes"] / fert["tokens"], abs=1e-3)
    assert metrics["gpt2"]["tokens_per_word"] is None and "not present" in metrics["gpt2"]["skipped"]
    report = (out / "vocab_report.md").read_text(encoding="utf-8")
    assert "20 longest tokens" in report and "last 40 merges" in report
    assert "<|" not in report.split("## The last")[0].split("```")[1]  # specials are not learned tokens
    special_map = json.loads((out / "special_tokens_map.json").read_text())
    assert special_map["eos_token"] == "<|end|>" and special_map["pad_token"] == "<|pad|>"


def test_transformers_loads_it_with_its_special_tokens(built):
    transformers = pytest.importorskip("transformers")
    hf = transformers.PreTrainedTokenizerFast.from_pretrained(str(built[0]))
    assert (hf.eos_token, hf.eos_token_id) == ("<|end|>", 0)
    assert (hf.pad_token, hf.pad_token_id) == ("<|pad|>", 3)
    assert hf("ka<|user|>to<|assistant|>")["input_ids"].count(1) == 1
    ours = load_tokenizer(built[0])
    assert hf(HARD_UNICODE)["input_ids"] == ours.encode(HARD_UNICODE).ids
    assert hf.decode(hf(HARD_UNICODE)["input_ids"]) == HARD_UNICODE


def test_gpt2_reference_tokenizer_matches_gpt2(gpt2_dir, corpus, tmp_path):
    gpt2 = gpt2_reference_tokenizer(gpt2_dir)
    assert gpt2.encode("Hello world").ids == [15496, 995]
    assert gpt2.get_vocab_size() == 50257
    metrics = build_tokenizer(corpus, tmp_path / "tok", small_cfg(gpt2_reference=str(gpt2_dir)))
    assert metrics["gpt2"]["tokens_per_word"] > 0 and metrics["gpt2"]["words"] == metrics["fertility"]["words"]


def test_corpus_too_small_for_the_vocab_says_how_large_it_got(tmp_path):
    corpus = write_corpus(tmp_path / "clean", make_docs(20, words=(10, 20)))
    with pytest.raises(WikigptError, match=r"corpus too small for tokenizer.vocab_size=6000: .* at \d+ tokens"):
        train_tokenizer(corpus, small_cfg(vocab_size=6000))


def test_bad_params_and_empty_corpus(tmp_path):
    corpus = write_corpus(tmp_path / "clean", make_docs(5))
    with pytest.raises(WikigptError, match="vocab_size=100 is below 260"):
        train_tokenizer(corpus, small_cfg(vocab_size=100))
    empty = write_corpus(tmp_path / "empty", [])
    with pytest.raises(WikigptError, match="no training text"):
        build_tokenizer(empty, tmp_path / "tok", small_cfg())
    assert not (tmp_path / "tok").exists()
    with pytest.raises(WikigptError, match="corpus directory not found"):
        build_tokenizer(tmp_path / "missing", tmp_path / "tok", small_cfg())


def test_load_tokenizer_rejects_missing_corrupt_and_foreign_files(built, tmp_path):
    with pytest.raises(WikigptError, match="tokenizer file not found"):
        load_tokenizer(tmp_path / "nope")
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"version": "1.0", "model": ')
    with pytest.raises(WikigptError, match=r"corrupt\.json: not a valid tokenizer.json"):
        load_tokenizer(corrupt)
    # a valid tokenizer whose specials are in another order (or absent) is not ours
    data = json.loads((built[0] / "tokenizer.json").read_text())
    vocab = data["model"]["vocab"]
    vocab["<|end|>"], vocab["<|user|>"] = vocab["<|user|>"], vocab["<|end|>"]
    for t in data["added_tokens"]:
        t["id"] = {0: 1, 1: 0}.get(t["id"], t["id"])
    swapped = tmp_path / "swapped" / "tokenizer.json"
    swapped.parent.mkdir()
    swapped.write_text(json.dumps(data))
    with pytest.raises(WikigptError, match=r"swapped/tokenizer.json: special token <\|end\|> has id 1, expected 0"):
        load_tokenizer(swapped.parent)
    # ids right but not registered as special tokens: the literal would be split into bytes
    data = json.loads((built[0] / "tokenizer.json").read_text())
    data["added_tokens"] = []
    unregistered = tmp_path / "unregistered.json"
    unregistered.write_text(json.dumps(data))
    with pytest.raises(WikigptError, match=r"unregistered.json: special token <\|end\|> encodes to \[.+\], expected \[0\]"):
        load_tokenizer(unregistered)
