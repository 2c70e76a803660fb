"""Pack the clean corpus into the flat token files that training reads at GPU speed.

Layout of `data/tokens/`:
- `train.bin`, `val.bin`: every document's token ids followed by `<|end|>` (id 0), concatenated,
  as flat little-endian uint16 (uint32 when the vocabulary does not fit in 16 bits). Training
  memory-maps them and samples windows; no document boundaries other than the `<|end|>` ids.
- `meta.json`: dtype, vocab size, token and document counts per split, the sha256 of the
  tokenizer.json that produced the ids, and the split rule.

Split rule: documents are numbered in corpus order (empty texts skipped); document i goes to val
when `i % val_every == 0`, so document 0 is always in val and any non-empty corpus has a
non-empty val split (the bundled sample, ~350 articles, gets 2 with the default of 200).

Encoding: HF tokenizers is the reference. tiktoken built from the same ranks gives identical ids
several times faster, so `pack.encoder: auto` uses it when installed and the tokenizer converts
exactly (`wikigpt.tokenizer.tiktoken_encoding`), and spot-checks it on this corpus by
re-encoding every 64th document with HF (a mismatch fails). `bench/bench_pack.py` checks every
document. The output is the same bytes either way; metrics record which encoder ran.

Guard: control tokens (ids 0-3) must never come from corpus text, or training would learn that
"<|user|>" can appear inside an article. The clean stage strips their literals; pack re-checks
every encoded document and fails naming the document id.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
from tqdm import tqdm

from wikigpt.data.shards import count_rows, iter_batches, list_shards
from wikigpt.errors import WikigptError
from wikigpt.io import atomic_dir, write_json
from wikigpt.specials import END_ID, SPECIAL_TOKENS
from wikigpt.tokenizer import load_tokenizer, tiktoken_encoding, tokenizer_file, tokenizer_sha256

SPLITS = ("train", "val")
META_FILE = "meta.json"
META_KEYS = ("dtype", "vocab_size", "train_tokens", "val_tokens", "train_docs", "val_docs", "tokenizer_sha256")
# Documents per encode_batch call: large enough to keep every Rust thread busy, small enough
# that one batch of long articles stays a few MB. Does not change the output.
ENCODE_BATCH_DOCS = 256
# With tiktoken, documents i % VERIFY_EVERY == 0 are also encoded by HF tokenizers and compared
# (~1.5% of the text): the fast path must give the reference ids, not merely similar ones.
VERIFY_EVERY = 64
HEAD_TOKENS = 64


@dataclass(frozen=True)
class PackConfig:
    """params.yaml `pack:` section."""

    val_every: int = 200  # document i (corpus order) goes to val.bin when i % val_every == 0
    dtype: Literal["auto", "uint16", "uint32"] = "auto"  # auto: uint16 when the vocab fits
    # auto: tiktoken when installed and the tokenizer converts exactly, else HF tokenizers.
    encoder: Literal["auto", "tiktoken", "hf"] = "auto"


def choose_dtype(vocab_size: int, requested: str = "auto") -> np.dtype:
    """Little-endian uint16 when every id fits (vocab <= 65536), else uint32."""
    fits16 = vocab_size <= 2**16
    if requested == "auto":
        return np.dtype("<u2" if fits16 else "<u4")
    if requested == "uint16":
        if not fits16:
            raise WikigptError(
                f"params.yaml: pack.dtype=uint16 cannot hold vocab_size={vocab_size} "
                f"(ids up to {vocab_size - 1} > 65535); use uint32 or auto"
            )
        return np.dtype("<u2")
    if requested == "uint32":
        return np.dtype("<u4")
    raise WikigptError(f"params.yaml: pack.dtype must be auto, uint16 or uint32, got {requested!r}")


def dtype_name(dtype: np.dtype) -> str:
    return {2: "uint16", 4: "uint32"}[np.dtype(dtype).itemsize]


# ---------------------------------------------------------------------------------------------
# Reading packed tokens (used by pretrain and eval)


def read_meta(tokens_dir: str | Path) -> dict[str, Any]:
    """meta.json of a packed token directory, checked for the keys readers rely on."""
    path = Path(tokens_dir) / META_FILE
    if not path.is_file():
        raise WikigptError(f"{path}: not found (run the pack stage first)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WikigptError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(meta, dict):
        raise WikigptError(f"{path}: expected a JSON object")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise WikigptError(f"{path}: missing key(s) {missing}")
    if meta["dtype"] not in ("uint16", "uint32"):
        raise WikigptError(f"{path}: unknown dtype {meta['dtype']!r} (expected uint16 or uint32)")
    return meta


def open_tokens(tokens_dir: str | Path, split: str) -> np.memmap:
    """Read-only memmap of `<split>.bin` with the dtype from meta.json, after checking its size."""
    if split not in SPLITS:
        raise WikigptError(f"unknown token split {split!r} (expected one of {list(SPLITS)})")
    meta = read_meta(tokens_dir)
    path = Path(tokens_dir) / f"{split}.bin"
    if not path.is_file():
        raise WikigptError(f"{path}: not found (run the pack stage first)")
    dtype = np.dtype("<u2" if meta["dtype"] == "uint16" else "<u4")
    size = path.stat().st_size
    if size % dtype.itemsize:
        raise WikigptError(f"{path}: {size} bytes is not a multiple of {dtype.itemsize} ({meta['dtype']}); file is corrupt")
    expected = int(meta[f"{split}_tokens"])
    if size // dtype.itemsize != expected:
        raise WikigptError(
            f"{path}: holds {size // dtype.itemsize} tokens but meta.json says {expected} (truncated or stale; rerun pack)"
        )
    if expected == 0:
        raise WikigptError(f"{path}: the {split} split is empty")
    return np.memmap(path, dtype=dtype, mode="r")


def check_tokenizer_matches(meta: dict[str, Any], tokenizer_path: str | Path) -> None:
    """Fail if the tokens were packed with a different tokenizer.json than `tokenizer_path`."""
    file = tokenizer_file(tokenizer_path)
    sha = tokenizer_sha256(file)
    if sha != meta.get("tokenizer_sha256"):
        raise WikigptError(
            f"{file}: sha256 {sha[:12]}... differs from the tokenizer the tokens were packed with "
            f"({str(meta.get('tokenizer_sha256'))[:12]}...); rerun pack (dvc repro pack)"
        )


# ---------------------------------------------------------------------------------------------
# Packing


class Encoder:
    """Batch encoder without special-token handling: HF tokenizers (the reference) or tiktoken
    built from the same ranks. Both give the same ids; `name` records which one ran."""

    def __init__(self, tok, choice: str, threads: int, log: Callable[[str], None] = print):
        self.tok, self.threads, self.tiktoken = tok, threads, None
        if choice in ("auto", "tiktoken"):
            try:
                self.tiktoken = tiktoken_encoding(tok)
            except ImportError:
                if choice == "tiktoken":
                    raise WikigptError("params.yaml: pack.encoder=tiktoken but tiktoken is not installed (pip install tiktoken, or set pack.encoder: hf)") from None
                log("pack: tiktoken not installed, encoding with HF tokenizers")
            except WikigptError as e:
                if choice == "tiktoken":
                    raise WikigptError(f"params.yaml: pack.encoder=tiktoken: {e}") from None
                log(f"pack: {e}; encoding with HF tokenizers")
        self.name = "tiktoken" if self.tiktoken is not None else "hf"

        self.verified = 0

    def hf(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=False)]

    def documents(self, texts: list[str], doc_ids: list[int], first_index: int, where: Path) -> list[Sequence[int]]:
        """Encode documents number first_index, first_index+1, ... of the corpus."""
        if self.tiktoken is None:
            return self.hf(texts)
        # tiktoken encodes control-token literals as plain text: look for them in the text instead.
        for text, doc_id in zip(texts, doc_ids):
            for special_id, literal in enumerate(SPECIAL_TOKENS):
                if literal in text:
                    raise _special_in_doc(special_id, doc_id, where)
        # Straight into numpy (uint32 buffers): skips building a Python int per token.
        with ThreadPoolExecutor(self.threads) as pool:
            encoded = list(pool.map(lambda t: self.tiktoken.encode_to_numpy(t, disallowed_special=()), texts))
        check = [j for j in range(len(texts)) if (first_index + j) % VERIFY_EVERY == 0]
        for j, ref in zip(check, self.hf([texts[j] for j in check])):
            if encoded[j].tolist() != ref:
                raise WikigptError(f"{where}: tiktoken and HF tokenizers disagree on document id={doc_ids[j]}; set pack.encoder: hf")
        self.verified += len(check)
        return encoded


def _special_in_doc(special_id: int, doc_id: int, corpus_dir: Path) -> WikigptError:
    return WikigptError(
        f"{corpus_dir}: document id={doc_id} contains the control token {SPECIAL_TOKENS[special_id]} (id {special_id}) "
        f"in its text; the clean stage must strip special-token literals (wikigpt.specials.strip_special_literals)"
    )


def verify_split(path: Path, dtype: np.dtype, vocab_size: int, docs: int) -> None:
    """Re-read a written file: every id < vocab size and one <|end|> per document."""
    size = path.stat().st_size
    if size == 0:
        return
    data = np.memmap(path, dtype=dtype, mode="r")
    chunk = 1 << 24
    ends, top = 0, 0
    for start in range(0, len(data), chunk):
        part = np.asarray(data[start : start + chunk])
        ends += int(np.count_nonzero(part == END_ID))
        top = max(top, int(part.max()))
    del data
    if top >= vocab_size:
        raise WikigptError(f"{path}: token id {top} >= vocab_size {vocab_size}")
    if ends != docs:
        raise WikigptError(f"{path}: {ends} <|end|> tokens for {docs} documents")


def decoded_head(tok, path: Path, dtype: np.dtype, n: int = HEAD_TOKENS) -> str:
    """The first `n` tokens of a packed file as text, then the text around the first document
    seam, control tokens shown: a quick eyeball check that ids decode and seams are `<|end|>`."""
    if path.stat().st_size == 0:
        return ""
    data = np.memmap(path, dtype=dtype, mode="r")
    head = tok.decode([int(i) for i in data[:n]], skip_special_tokens=False)
    seam = ""
    window = np.asarray(data[: 1 << 22])
    ends = np.flatnonzero(window == END_ID)
    if ends.size and ends[0] >= n:  # the head above does not already show it
        e = int(ends[0])
        seam = " ... " + tok.decode([int(i) for i in data[max(0, e - n // 2) : e + n // 2]], skip_special_tokens=False)
    del window, data
    return head + seam


def pack_corpus(
    corpus_dir: str | Path,
    tokenizer_path: str | Path,
    out_dir: str | Path,
    cfg: PackConfig,
    progress: bool = False,
    log: Callable[[str], None] = print,
    threads: int = 2,
) -> dict[str, Any]:
    """Encode `corpus_dir` into `out_dir/{train,val}.bin + meta.json` (atomically). Returns metrics."""
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    if cfg.val_every < 2:
        raise WikigptError(f"params.yaml: pack.val_every must be >= 2 (1 would put every document in val), got {cfg.val_every}")
    tok = load_tokenizer(tokenizer_path)
    tok_sha = tokenizer_sha256(tokenizer_path)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    dtype = choose_dtype(vocab_size, cfg.dtype)
    encode = Encoder(tok, cfg.encoder, threads, log)
    shards = list_shards(corpus_dir)
    total_rows = count_rows(corpus_dir)

    start = time.perf_counter()
    tokens = {s: 0 for s in SPLITS}
    docs = {s: 0 for s in SPLITS}
    text_bytes = empty_docs = 0
    end = np.array([END_ID], dtype=dtype)
    with atomic_dir(out_dir) as tmp:
        files = {s: open(tmp / f"{s}.bin", "wb") for s in SPLITS}
        bar = tqdm(total=total_rows, unit="doc", desc="pack", disable=not progress, dynamic_ncols=True)
        try:
            index = 0  # document number in corpus order (non-empty documents only)
            for batch in iter_batches(corpus_dir, ["id", "text"], batch_size=ENCODE_BATCH_DOCS):
                doc_ids = batch["id"].to_pylist()
                texts = batch["text"].to_pylist()
                keep = [k for k, t in enumerate(texts) if t]
                empty_docs += len(texts) - len(keep)
                encoded = encode.documents([texts[k] for k in keep], [doc_ids[k] for k in keep], index, corpus_dir)
                out: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
                for k, doc in zip(keep, encoded):
                    ids = doc.astype(dtype) if isinstance(doc, np.ndarray) else np.array(doc, dtype=dtype)
                    if ids.size and ids.min() < len(SPECIAL_TOKENS):
                        raise _special_in_doc(int(ids[ids < len(SPECIAL_TOKENS)][0]), doc_ids[k], corpus_dir)
                    split = "val" if index % cfg.val_every == 0 else "train"
                    out[split] += (ids, end)
                    tokens[split] += ids.size + 1
                    docs[split] += 1
                    text_bytes += len(texts[k].encode("utf-8"))
                    index += 1
                for s in SPLITS:
                    if out[s]:
                        files[s].write(np.concatenate(out[s]).tobytes())
                bar.update(len(texts))
                elapsed = time.perf_counter() - start
                bar.set_postfix_str(f"{(tokens['train'] + tokens['val']) / max(elapsed, 1e-9):,.0f} tok/s")
        finally:
            bar.close()
            for f in files.values():
                f.close()
        seconds = time.perf_counter() - start

        if docs["val"] == 0:
            raise WikigptError(f"{corpus_dir}: no documents to pack (empty corpus: {total_rows} rows, {empty_docs} empty)")
        if docs["train"] == 0:
            raise WikigptError(
                f"{corpus_dir}: only {docs['val']} document(s): all went to val with pack.val_every={cfg.val_every}; "
                f"the corpus needs at least 2 documents"
            )
        for s in SPLITS:
            verify_split(tmp / f"{s}.bin", dtype, vocab_size, docs[s])
            log(f"{s}.bin head: {decoded_head(tok, tmp / f'{s}.bin', dtype)!r}")
        meta = {
            "dtype": dtype_name(dtype),
            "vocab_size": vocab_size,
            "train_tokens": tokens["train"],
            "val_tokens": tokens["val"],
            "train_docs": docs["train"],
            "val_docs": docs["val"],
            "end_id": END_ID,
            "val_every": cfg.val_every,
            "tokenizer_sha256": tok_sha,
            "source": {"corpus": corpus_dir.as_posix(), "shards": len(shards), "rows": total_rows, "empty_docs": empty_docs},
        }
        write_json(tmp / META_FILE, meta)

    all_tokens = tokens["train"] + tokens["val"]
    return {
        "dtype": meta["dtype"],
        "vocab_size": vocab_size,
        "train_tokens": tokens["train"],
        "val_tokens": tokens["val"],
        "train_docs": docs["train"],
        "val_docs": docs["val"],
        "documents": docs["train"] + docs["val"],
        "empty_docs": empty_docs,
        "encoder": encode.name,
        "docs_verified_against_hf": encode.verified,
        "text_bytes": text_bytes,
        "bytes_per_token": round(text_bytes / max(all_tokens - docs["train"] - docs["val"], 1), 4),
        "seconds": round(seconds, 2),
        "tokens_per_s": round(all_tokens / max(seconds, 1e-9)),
        "mb_per_s": round(text_bytes / 1e6 / max(seconds, 1e-9), 3),
    }
