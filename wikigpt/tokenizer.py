"""Byte-level BPE: training on the clean corpus, self-checks, loading, fertility.

The tokenizer is the one artifact that cannot change once pretraining starts, so training ends
with checks that would otherwise surface weeks later as garbled text: the exact vocabulary size,
each control token encoding to exactly its reserved id (0-3, see `wikigpt.specials`), and a
lossless round trip on hard Unicode and on held-out documents.

Design: GPT-2 style byte-level BPE (HF `tokenizers`). No normalizer (text round-trips byte for
byte), no unknown token (all 256 bytes are in the base alphabet), and the four control tokens
are "special" added tokens, so their literals encode atomically and can never be split.
`vocab_size` counts everything: 4 specials + 256 bytes + merges.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from wikigpt.data.shards import iter_batches, list_shards
from wikigpt.errors import WikigptError
from wikigpt.io import atomic_dir, write_json
from wikigpt.specials import ASSISTANT, END, PAD, SPECIAL_TOKENS, USER

TOKENIZER_FILE = "tokenizer.json"
BYTE_ALPHABET = 256
MIN_VOCAB = len(SPECIAL_TOKENS) + BYTE_ALPHABET

# A string that exercises what byte-level BPE must survive: IPA, CJK, combining marks (NFD "é"
# must stay NFD: no normalizer), emoji with ZWJ sequences and skin tones, math symbols, RTL text,
# a BOM-like character, odd whitespace (tab, CRLF, NBSP, runs of spaces) and a leading space.
HARD_UNICODE = (
    " Pronunciation /ˌɪntərˈnæʃənəl/ [ʔɐ̃ˈθɛ̃ɲ] 日本語の文章、中文字符。한국어 "
    "e\u0301 n\u0303 A\u030a Z\u0335\u0336 👩\u200d👩\u200d👧 👍🏽 🇯🇵 "
    "∮ E⋅da = Q, ∀x∈ℝ: x² ≥ 0, ∑ᵢ aᵢ ≠ ∞ ⊗ ℵ₀ "
    "مرحبا שלום \ufeffΩmega\tTab\r\nCRLF\u00a0nbsp   three spaces\n\n  "
)


@dataclass(frozen=True)
class TokenizerConfig:
    """params.yaml `tokenizer:` section."""

    vocab_size: int = 4096  # specials + 256 bytes + merges; 32768 for a real dump
    min_frequency: int = 2  # a pair must occur this often to be merged
    sample_bytes: int = 500_000_000  # UTF-8 bytes of text to train on (the whole sample fits)
    seed: int = 1337  # shuffles shard order for the training sample
    heldout_fraction: float = 0.02  # documents held out of training (by hash of id) for checks
    heldout_bytes: int = 2_000_000  # cap on held-out text used for round trip and fertility
    gpt2_reference: str = "../shared/data/gpt2"  # GPT-2 files for the fertility comparison (optional)


def set_threads(threads: int) -> None:
    """Size the Rust thread pool; must run before the first parallel encode or training.

    Results are identical for any thread count (rayon is only used for data parallelism)."""
    if threads < 1:
        raise WikigptError(f"params.yaml: runtime.threads must be >= 1, got {threads}")
    os.environ["RAYON_NUM_THREADS"] = str(threads)


# ---------------------------------------------------------------------------------------------
# Loading


def tokenizer_file(path: str | Path) -> Path:
    """`path` is a tokenizer directory or a tokenizer.json file."""
    path = Path(path)
    return path / TOKENIZER_FILE if path.is_dir() else path


def check_specials(tok: Tokenizer, where: str | Path) -> None:
    """Each control token must be id 0-3 and encode atomically to exactly that id."""
    for expected, literal in enumerate(SPECIAL_TOKENS):
        got = tok.token_to_id(literal)
        if got != expected:
            raise WikigptError(
                f"{where}: special token {literal} has id {got}, expected {expected} "
                f"(not a wikigpt tokenizer, or trained without the reserved tokens)"
            )
        ids = tok.encode(literal, add_special_tokens=False).ids
        if ids != [expected]:
            raise WikigptError(
                f"{where}: special token {literal} encodes to {ids}, expected [{expected}] "
                f"(it is not registered as a special token)"
            )


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load `tokenizer.json` (or the directory holding it) and validate the reserved tokens."""
    file = tokenizer_file(path)
    if not file.is_file():
        raise WikigptError(f"{file}: tokenizer file not found (run the tokenizer stage first)")
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as e:  # the Rust side raises a bare Exception on bad JSON or schema
        raise WikigptError(f"{file}: not a valid tokenizer.json: {e}") from None
    check_specials(tok, file)
    return tok


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tokenizer_sha256(path: str | Path) -> str:
    """Hash of tokenizer.json: recorded by pack, checked by whoever reads the packed tokens."""
    file = tokenizer_file(path)
    if not file.is_file():
        raise WikigptError(f"{file}: tokenizer file not found (run the tokenizer stage first)")
    return sha256_file(file)


# ---------------------------------------------------------------------------------------------
# Training


def new_tokenizer() -> Tokenizer:
    """An untrained byte-level BPE with the wikigpt pipeline (no normalizer, no unk)."""
    tok = Tokenizer(models.BPE())
    # use_regex=True: GPT-2's split into words, numbers, punctuation and whitespace runs, so merges
    # never cross those boundaries. add_prefix_space=False: text round-trips without a leading space.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    # Offsets only (adds no tokens); lets transformers map tokens back to characters.
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def is_heldout(doc_id: int, fraction: float) -> bool:
    """Deterministic hold-out by hash of the article id: stable under any shard layout."""
    digest = hashlib.blake2b(str(int(doc_id)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < fraction * 2**64


def training_texts(corpus_dir: str | Path, cfg: TokenizerConfig, stats: dict[str, int]) -> Iterator[list[str]]:
    """Stream batches of training text: shards in seeded-shuffled order, held-out docs skipped,
    until `sample_bytes` of UTF-8 text. Fills `stats` (docs, bytes) as it goes."""
    shards = list_shards(corpus_dir)
    random.Random(cfg.seed).shuffle(shards)
    stats.update(docs=0, bytes=0)
    for shard in shards:
        for batch in iter_batches_of_shard(shard):
            texts = []
            for doc_id, text in zip(batch["id"].to_pylist(), batch["text"].to_pylist()):
                if not text or is_heldout(doc_id, cfg.heldout_fraction):
                    continue
                texts.append(text)
                stats["docs"] += 1
                stats["bytes"] += len(text.encode("utf-8"))
                if stats["bytes"] >= cfg.sample_bytes:
                    yield texts
                    return
            if texts:
                yield texts


def iter_batches_of_shard(shard: Path, batch_size: int = 1024) -> Iterator[pa.RecordBatch]:
    """Record batches (id, text) of one shard (training visits shards in shuffled order)."""
    try:
        pf = pq.ParquetFile(shard)
    except (pa.ArrowException, OSError) as e:
        raise WikigptError(f"{shard}: not a readable Parquet shard: {e}") from None
    missing = [c for c in ("id", "text") if c not in pf.schema_arrow.names]
    if missing:
        raise WikigptError(f"{shard}: shard lacks column(s) {missing}")
    yield from pf.iter_batches(batch_size=batch_size, columns=["id", "text"])


def heldout_docs(corpus_dir: str | Path, cfg: TokenizerConfig) -> list[tuple[int, str]]:
    """Held-out (id, text) in corpus order, up to `heldout_bytes` of text."""
    docs, total = [], 0
    for batch in iter_batches(corpus_dir, ["id", "text"]):
        for doc_id, text in zip(batch["id"].to_pylist(), batch["text"].to_pylist()):
            if text and is_heldout(doc_id, cfg.heldout_fraction):
                docs.append((doc_id, text))
                total += len(text.encode("utf-8"))
                if total >= cfg.heldout_bytes:
                    return docs
    return docs


def train_tokenizer(corpus_dir: str | Path, cfg: TokenizerConfig, progress: bool = False) -> tuple[Tokenizer, dict[str, int]]:
    """Train BPE on the deterministic sample of `corpus_dir`. Returns (tokenizer, sample stats)."""
    if cfg.vocab_size < MIN_VOCAB:
        raise WikigptError(
            f"params.yaml: tokenizer.vocab_size={cfg.vocab_size} is below {MIN_VOCAB} "
            f"({len(SPECIAL_TOKENS)} specials + {BYTE_ALPHABET} bytes)"
        )
    if not 0.0 <= cfg.heldout_fraction < 1.0:
        raise WikigptError(f"params.yaml: tokenizer.heldout_fraction must be in [0, 1), got {cfg.heldout_fraction}")
    tok = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=list(SPECIAL_TOKENS),  # first, so they get ids 0-3
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=progress,
    )
    stats: dict[str, int] = {}
    tok.train_from_iterator(training_texts(corpus_dir, cfg, stats), trainer=trainer)
    if stats["docs"] == 0:
        raise WikigptError(f"{corpus_dir}: no training text (empty corpus, or every document held out)")
    got = tok.get_vocab_size(with_added_tokens=True)
    if got < cfg.vocab_size:
        raise WikigptError(
            f"{corpus_dir}: corpus too small for tokenizer.vocab_size={cfg.vocab_size}: BPE ran out of "
            f"pairs seen >= {cfg.min_frequency} times at {got} tokens ({stats['docs']} documents, "
            f"{stats['bytes']:,} bytes sampled); lower tokenizer.vocab_size or min_frequency, or use more text"
        )
    return tok, stats


# ---------------------------------------------------------------------------------------------
# Self-checks and fertility


def self_check(tok: Tokenizer, vocab_size: int, heldout: list[tuple[int, str]], where: str) -> None:
    """Fail loudly on anything that would corrupt training data. `where` prefixes the message."""
    got = tok.get_vocab_size(with_added_tokens=True)
    if got != vocab_size:
        raise WikigptError(f"{where}: vocabulary has {got} tokens, expected exactly {vocab_size}")
    check_specials(tok, where)
    # Specials must also stay atomic when glued to text on both sides.
    glued = tok.encode(f"x{END}y{PAD}", add_special_tokens=False).ids
    if glued.count(0) != 1 or glued.count(3) != 1:
        raise WikigptError(f"{where}: special tokens are not atomic inside text: {glued}")
    for name, text in [("hard Unicode test string", HARD_UNICODE)] + [(f"held-out doc id={i}", t) for i, t in heldout]:
        ids = tok.encode(text, add_special_tokens=False).ids
        back = tok.decode(ids, skip_special_tokens=False)
        if back != text:
            at = next((k for k, (a, b) in enumerate(zip(back, text)) if a != b), min(len(back), len(text)))
            raise WikigptError(
                f"{where}: round trip is lossy on the {name} at char {at}: "
                f"{text[max(0, at - 10):at + 10]!r} -> {back[max(0, at - 10):at + 10]!r}"
            )


def fertility(tok: Tokenizer, texts: list[str]) -> dict[str, float | int]:
    """Tokens per whitespace-separated word and UTF-8 bytes per token over `texts`."""
    tokens = sum(len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False))
    words = sum(len(t.split()) for t in texts)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    return {
        "tokens": tokens,
        "words": words,
        "bytes": nbytes,
        "tokens_per_word": round(tokens / words, 4) if words else None,
        "bytes_per_token": round(nbytes / tokens, 4) if tokens else None,
    }


GPT2_VOCAB, GPT2_MERGES = "gpt2_vocab.json", "gpt2_merges.txt"


def gpt2_reference_tokenizer(gpt2_dir: str | Path) -> Tokenizer:
    """GPT-2's tokenizer built offline from OpenAI's encoder.json / vocab.bpe (no download)."""
    gpt2_dir = Path(gpt2_dir)
    vocab, merges = gpt2_dir / GPT2_VOCAB, gpt2_dir / GPT2_MERGES
    for f in (vocab, merges):
        if not f.is_file():
            raise WikigptError(f"{f}: GPT-2 reference file not found")
    tok = Tokenizer(models.BPE.from_file(str(vocab), str(merges)))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


# GPT-2's split regex, as HF's ByteLevel(use_regex=True) applies it, in tiktoken's syntax.
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def tiktoken_encoding(tok: Tokenizer):
    """The same tokenizer as a `tiktoken.Encoding` (~4-7x faster encoding on the same ranks).

    tiktoken merges the adjacent pair whose *result* has the lowest rank; HF BPE merges the pair
    with the lowest *merge* rank. They agree when every token is made by exactly one merge and
    ids grow with merge order, which is what BpeTrainer produces; anything else (another
    pre-tokenizer, a normalizer, hand-edited merges) raises WikigptError with the reason, and
    callers fall back to HF. Pack additionally re-encodes a sample of documents with HF.
    """
    import tiktoken

    data = json.loads(tok.to_str())
    model = data["model"]
    why = None
    if data.get("normalizer") is not None:
        why = "it has a normalizer"
    elif data.get("pre_tokenizer") != {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}:
        why = f"its pre-tokenizer is {data.get('pre_tokenizer')}, not ByteLevel(add_prefix_space=False, use_regex=True)"
    elif model.get("type") != "BPE" or model.get("dropout") or model.get("continuing_subword_prefix") or model.get(
        "end_of_word_suffix"
    ) or model.get("byte_fallback") or model.get("ignore_merges"):
        why = "its BPE model has options tiktoken cannot express"
    if why is None:
        vocab = model["vocab"]
        last = MIN_VOCAB - 1
        for m in model["merges"]:
            a, b = m if isinstance(m, list) else m.split(" ", 1)
            rank = vocab.get(a + b, -1)
            if rank <= last:
                why = f"merge {a!r} + {b!r} does not create a new token after the previous merge's"
                break
            last = rank
        else:
            if len(model["merges"]) != len(vocab) - MIN_VOCAB:
                why = f"{len(vocab) - MIN_VOCAB} non-byte tokens but {len(model['merges'])} merges"
    if why is not None:
        raise WikigptError(f"tokenizer cannot be converted to tiktoken: {why}")
    table = _byte_decoder()
    n_special = len(SPECIAL_TOKENS)
    ranks = {token_bytes(t, table): i for t, i in model["vocab"].items() if i >= n_special}
    return tiktoken.Encoding(
        "wikigpt",
        pat_str=GPT2_SPLIT_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={s: i for i, s in enumerate(SPECIAL_TOKENS)},
    )


# ---------------------------------------------------------------------------------------------
# Saving


def _byte_decoder() -> dict[str, int]:
    """ByteLevel's printable-character alphabet -> the byte it stands for (GPT-2's table)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_bytes(token: str, table: dict[str, int] | None = None) -> bytes:
    """The raw bytes a ByteLevel vocabulary entry stands for."""
    table = table or _byte_decoder()
    return bytes(table[c] for c in token)


def token_byte_lengths(tok: Tokenizer) -> np.ndarray:
    """UTF-8 bytes each token id stands for (0 for the control tokens), for bits-per-byte.

    Byte-level BPE tokens may hold part of a character, so decoding a token alone does not give
    its bytes. Each character of a ByteLevel vocabulary entry stands for exactly one byte, so the
    entry's length is its byte count; summed over a text it equals the length of the UTF-8 of the
    decoded text. Added (non-ByteLevel) tokens stand for their own UTF-8."""
    vocab = tok.get_vocab(with_added_tokens=True)
    added = {i: t.content for i, t in tok.get_added_tokens_decoder().items()}
    lengths = np.zeros(max(vocab.values()) + 1, dtype=np.int64)
    specials = set(SPECIAL_TOKENS)
    for token, i in vocab.items():
        if token not in specials:
            lengths[i] = len(added[i].encode("utf-8")) if i in added else len(token)
    return lengths


def vocab_report(tok: Tokenizer, n_longest: int = 20, n_merges: int = 40) -> str:
    """Markdown: the longest tokens and the last merges, where extraction leftovers show up."""
    table = _byte_decoder()
    model = json.loads(tok.to_str())["model"]
    entries = [(i, token_bytes(t, table)) for t, i in model["vocab"].items() if i >= len(SPECIAL_TOKENS)]
    longest = sorted(entries, key=lambda e: (-len(e[1]), e[0]))[:n_longest]
    merges = model["merges"][-n_merges:]

    def show(b: bytes) -> str:
        return repr(b.decode("utf-8", errors="backslashreplace"))

    lines = [
        "# Tokenizer vocabulary report",
        "",
        f"{tok.get_vocab_size()} tokens: {len(SPECIAL_TOKENS)} specials, {BYTE_ALPHABET} bytes, "
        f"{len(model['merges'])} merges. Look here for markup that leaked through extraction "
        "(`[[`, `{{`, `|`, `=`, `thumb`, `Category:` ...).",
        "",
        f"## The {len(longest)} longest tokens (by bytes)",
        "",
        "```",
        *[f"{i:>7}  {len(b):>3} B  {show(b)}" for i, b in longest],
        "```",
        "",
        f"## The last {len(merges)} merges (rarest pairs that still made it)",
        "",
        "```",
    ]
    for m in merges:
        a, b = m if isinstance(m, list) else m.split(" ", 1)
        lines.append(f"{show(token_bytes(a, table))} + {show(token_bytes(b, table))}")
    lines += ["```", ""]
    return "\n".join(lines)


def hf_files(tok: Tokenizer) -> dict[str, dict[str, Any]]:
    """What `transformers.PreTrainedTokenizerFast.from_pretrained(dir)` needs besides tokenizer.json."""
    specials = {"eos_token": END, "pad_token": PAD, "additional_special_tokens": [USER, ASSISTANT]}
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        **specials,
        "bos_token": None,
        "unk_token": None,
        "add_prefix_space": False,
        "clean_up_tokenization_spaces": False,
    }
    return {"tokenizer_config.json": config, "special_tokens_map.json": specials}


def save_tokenizer(tok: Tokenizer, out_dir: Path) -> None:
    """Write tokenizer.json + the transformers side files into an existing directory."""
    tok.save(str(out_dir / TOKENIZER_FILE), pretty=True)
    for name, obj in hf_files(tok).items():
        write_json(out_dir / name, obj)


def build_tokenizer(
    corpus_dir: str | Path, out_dir: str | Path, cfg: TokenizerConfig, progress: bool = False
) -> dict[str, Any]:
    """Train, self-check and save into `out_dir` (atomically). Returns the metrics dict."""
    out_dir = Path(out_dir)
    start = time.perf_counter()
    tok, sample = train_tokenizer(corpus_dir, cfg, progress)
    train_s = time.perf_counter() - start

    heldout = heldout_docs(corpus_dir, cfg)
    if not heldout:
        raise WikigptError(
            f"{corpus_dir}: no held-out documents for the round-trip and fertility checks "
            f"(corpus too small for tokenizer.heldout_fraction={cfg.heldout_fraction}; raise it)"
        )
    self_check(tok, cfg.vocab_size, heldout, f"{out_dir / TOKENIZER_FILE} (self-check)")
    texts = [t for _, t in heldout]

    gpt2: dict[str, Any]
    ref_dir = Path(cfg.gpt2_reference)
    if (ref_dir / GPT2_VOCAB).is_file() and (ref_dir / GPT2_MERGES).is_file():
        gpt2 = fertility(gpt2_reference_tokenizer(ref_dir), texts)
    else:
        gpt2 = {"tokens_per_word": None, "bytes_per_token": None, "skipped": f"{ref_dir}: GPT-2 files not present"}

    with atomic_dir(out_dir) as tmp:
        save_tokenizer(tok, tmp)
        (tmp / "vocab_report.md").write_text(vocab_report(tok), encoding="utf-8")
        # Re-load what was written: a saved file that loads differently is caught here, not in pack.
        check_specials(Tokenizer.from_file(str(tmp / TOKENIZER_FILE)), out_dir / TOKENIZER_FILE)
    return {
        "vocab_size": tok.get_vocab_size(),
        "merges": len(json.loads(tok.to_str())["model"]["merges"]),
        "train_docs": sample["docs"],
        "train_bytes": sample["bytes"],
        "train_seconds": round(train_s, 2),
        "heldout_docs": len(heldout),
        "fertility": fertility(tok, texts),
        "gpt2": gpt2,
        "seconds": round(time.perf_counter() - start, 2),
        "tokenizer_sha256": tokenizer_sha256(out_dir),
    }
