"""Exact and near-duplicate detection: content hashes, batched MinHash signatures, LSH.

Exact duplicates are found with a 64-bit blake2b hash of the normalised text. Near duplicates
are found with MinHash + LSH (datasketch's `MinHashLSH`), with signatures computed here in
numpy, a whole batch of documents at a time, instead of one `MinHash.update()` per shingle.

Our signatures ARE datasketch 2.0 "affine32" MinHash signatures (the default scheme since
2.0.0): the permutation parameters `(a, b)` come from `MinHash(num_perm, seed).permutations`,
each shingle hash is pre-mixed with the 32-bit MurmurHash3 finalizer, permuted as
`a * h + b mod 2^32`, and the minimum is kept per permutation. Feeding the same shingle hashes
to `MinHash(..., hashfunc=int).update_batch()` gives bit-identical hash values
(tests/test_dedup.py checks it), so they mix freely with datasketch sketches of that scheme.
What differs from datasketch's default is only how a shingle becomes a 32-bit hash: a
vectorised polynomial hash of its code points instead of SHA-1 per shingle in Python.

Decisions are made in corpus order and only kept documents enter the index, so the first
occurrence of every duplicate cluster is the one kept.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, NamedTuple, Sequence

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH

from wikigpt.errors import WikigptError

SCHEME = "affine32"  # datasketch >= 2.0 default scheme; pinned with datasketch==2.0.0

# Polynomial shingle hash: an odd 64-bit multiplier (2^64 / golden ratio), arithmetic mod 2^64.
_POLY = np.uint64(0x9E3779B97F4A7C15)
_POLY_INV = np.uint64(pow(0x9E3779B97F4A7C15, -1, 1 << 64))

# Shingles per chunk in signature computation: 2^17 uint32 (512 KiB) keeps the working set in
# a core's L2 cache; a whole batch at once was 3-5x slower (memory bound).
_CHUNK = 1 << 17

# Code points `str.split()` treats as whitespace, for word shingles computed on code points.
_WHITESPACE = np.array(
    sorted({ord(c) for c in map(chr, range(0x3001)) if c.isspace()}), dtype=np.uint32
)


@dataclass(frozen=True)
class DedupConfig:
    """`clean.dedup` in params.yaml."""

    exact: bool = True  # drop exact duplicates (same normalised text)
    near: bool = True  # drop near duplicates (MinHash LSH)
    num_perm: int = 128  # MinHash permutations; bands * rows must equal it
    bands: int = 16  # LSH bands; with rows=8 a pair at Jaccard 0.8 is a candidate 95% of the time
    rows: int = 8  # rows per band
    similarity: float = 0.7  # candidates are confirmed only if their estimated Jaccard >= this
    shingle: Literal["char", "word"] = "char"  # character shingles work for every script
    shingle_size: int = 5  # characters (or words) per shingle
    seed: int = 1  # seed of the permutations (datasketch MinHash seed)

    def __post_init__(self) -> None:
        if self.bands * self.rows != self.num_perm:
            raise WikigptError(
                f"params.yaml: clean.dedup.bands * clean.dedup.rows = {self.bands} * {self.rows} = "
                f"{self.bands * self.rows}, must equal clean.dedup.num_perm = {self.num_perm}"
            )
        if self.bands < 2:
            raise WikigptError(f"params.yaml: clean.dedup.bands must be >= 2, got {self.bands}")
        if self.shingle_size < 1:
            raise WikigptError(f"params.yaml: clean.dedup.shingle_size must be >= 1, got {self.shingle_size}")
        if not 0.0 <= self.similarity <= 1.0:
            raise WikigptError(f"params.yaml: clean.dedup.similarity must be in [0, 1], got {self.similarity}")

    def candidate_probability(self, jaccard: float) -> float:
        """Probability that LSH makes a pair with this Jaccard similarity a candidate."""
        return 1.0 - (1.0 - jaccard**self.rows) ** self.bands


def content_hash(text: str) -> int:
    """64-bit hash of a document's text for exact dedup (collision odds ~1e-6 at 6.5M docs)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3 32-bit finalizer, exactly as datasketch's affine32 scheme pre-mixes inputs."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _codepoints(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All texts as one uint64 code point array, and each text's start offset (len n+1)."""
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    cps = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(np.uint64)
    return cps, offsets


def _word_tokens(cps: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hash every whitespace-separated word of every text; return (word hashes, word offsets).

    Words are found and hashed on the code point array at once: a word's polynomial hash is
    read off a prefix sum (sum c_j P^j, rescaled by P^-start), so no Python loop over words.
    """
    n = len(cps)
    is_space = np.isin(cps, _WHITESPACE)
    # A text boundary also ends a word, so words never span two documents.
    boundary = np.zeros(n + 1, dtype=bool)
    boundary[offsets] = True
    in_word = np.concatenate([~is_space, [False]])
    prev_in_word = np.concatenate([[False], ~is_space])
    starts = np.flatnonzero(in_word & (~prev_in_word | boundary))
    ends = np.flatnonzero(prev_in_word & (~in_word | boundary))
    if n == 0 or len(starts) == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(len(offsets), dtype=np.int64)
    with np.errstate(over="ignore"):
        one = np.ones(1, dtype=np.uint64)
        powers = np.concatenate([one, np.cumprod(np.full(n - 1, _POLY, dtype=np.uint64))])  # P^j
        inv_powers = np.concatenate([one, np.cumprod(np.full(n - 1, _POLY_INV, dtype=np.uint64))])
        prefix = np.concatenate([[np.uint64(0)], np.cumsum(cps * powers, dtype=np.uint64)])
        words = (prefix[ends] - prefix[starts]) * inv_powers[starts]
    word_offsets = np.searchsorted(starts, offsets, side="left")
    return words, word_offsets


class MinHasher:
    """Batched datasketch-compatible (affine32) MinHash signatures of character or word shingles."""

    def __init__(
        self,
        num_perm: int = 128,
        seed: int = 1,
        shingle: str = "char",
        shingle_size: int = 5,
        chunk: int = _CHUNK,
        threads: int = 1,
    ):
        if shingle not in ("char", "word"):
            raise WikigptError(f"shingle kind must be 'char' or 'word', got {shingle!r}")
        self.num_perm = num_perm
        self.seed = seed
        self.shingle = shingle
        self.shingle_size = shingle_size
        self.chunk = chunk  # shingles per chunk (speed only; results are identical for any value)
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="minhash") if threads > 1 else None
        # Exactly the permutations datasketch draws for this seed and scheme.
        self.permutations = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME).permutations
        self._a = self.permutations[0].astype(np.uint32)
        self._b = self.permutations[1].astype(np.uint32)

    @classmethod
    def from_config(cls, cfg: DedupConfig, threads: int = 1) -> "MinHasher":
        return cls(cfg.num_perm, cfg.seed, cfg.shingle, cfg.shingle_size, threads=threads)

    def shingle_hashes(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """32-bit hashes of every shingle of every text, and each text's start offset into them.

        A shingle is `shingle_size` consecutive code points (or words); a text shorter than that
        is one shingle. An empty text has no shingles (its signature stays "empty").
        """
        cps, offsets = _codepoints(texts)
        if self.shingle == "word":
            tokens, offsets = _word_tokens(cps, offsets)
        else:
            tokens = cps
        k = self.shingle_size
        starts, ends = offsets[:-1], offsets[1:]
        lengths = ends - starts
        # Polynomial hash of the window of k tokens at every position of the batch at once...
        m = max(len(tokens) - k + 1, 0)
        window = tokens[:m].copy()
        with np.errstate(over="ignore"):
            for j in range(1, k):
                window *= _POLY
                window += tokens[j : j + m]
        # ...minus the windows that run past their text's end (the last k-1 positions of each).
        valid = np.ones(m, dtype=bool)
        nonempty = lengths > 0
        tails = ends[nonempty, None] - np.arange(1, k)[None, :]
        tails = np.maximum(tails, starts[nonempty, None]).ravel()
        valid[tails[tails < m]] = False
        hashes = window[valid]
        counts = np.maximum(lengths - k + 1, 0)
        # A non-empty text shorter than one shingle is one shingle (rare: the length filter runs
        # first), inserted in place.
        short = np.flatnonzero(nonempty & (lengths < k))
        if len(short):
            before = np.concatenate([[0], np.cumsum(counts)])[short]
            values = []
            with np.errstate(over="ignore"):
                for d in short:
                    h = np.uint64(0)
                    for t in tokens[starts[d] : ends[d]]:
                        h = h * _POLY + t
                    values.append(h)
            hashes = np.insert(hashes, before, np.array(values, dtype=np.uint64))
            counts[short] = 1
        out_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(counts, out=out_offsets[1:])
        # Fold to the 32 bits the affine32 scheme takes; its fmix32 pre-mix does the avalanche.
        return (hashes ^ (hashes >> np.uint64(32))).astype(np.uint32), out_offsets

    def signatures_from_hashes(self, hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """(n_texts, num_perm) uint32 signatures: per permutation, the min of a*fmix32(h)+b.

        The shingles of the whole batch are processed in cache-sized chunks; within a chunk, one
        permutation at a time is three numpy passes (multiply, add, segmented min per text), so
        there is no Python per shingle or per text, and temporaries stay in cache. numpy releases
        the GIL in these loops, so chunks run on `threads` threads; results do not depend on it.
        """
        n = len(offsets) - 1
        sig = np.full((n, self.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        mixed = _fmix32(hashes.astype(np.uint32))
        bounds = [(lo, min(lo + self.chunk, len(mixed))) for lo in range(0, len(mixed), self.chunk)]
        if self._pool is not None and len(bounds) > 1:
            parts = self._pool.map(lambda b: self._chunk_mins(mixed, offsets, *b), bounds)
        else:
            parts = (self._chunk_mins(mixed, offsets, *b) for b in bounds)
        for texts, mins in parts:
            # A text spanning chunks gets the min over its parts (each text once per chunk).
            sig[texts] = np.minimum(sig[texts], mins.T)
        return sig

    def _chunk_mins(self, mixed: np.ndarray, offsets: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-text minima over the shingles [lo, hi): (text indices, (num_perm, n) minima)."""
        chunk = mixed[lo:hi]
        out = np.empty_like(chunk)
        # Texts with shingles in [lo, hi) and where their shingles start inside the chunk; an
        # empty text shares its start with the next one, so keep the last of equal starts.
        first, last = np.searchsorted(offsets, lo, "right") - 1, np.searchsorted(offsets, hi, "left")
        starts = np.maximum(offsets[first:last], lo) - lo
        texts = np.arange(first, last)
        nonempty = np.append(starts[1:] > starts[:-1], True)
        starts, texts = starts[nonempty], texts[nonempty]
        mins = np.empty((self.num_perm, len(starts)), dtype=np.uint32)
        for k in range(self.num_perm):
            np.multiply(chunk, self._a[k], out=out)
            np.add(out, self._b[k], out=out)
            np.minimum.reduceat(out, starts, out=mins[k])
        return texts, mins

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        return self.signatures_from_hashes(*self.shingle_hashes(texts))

    def lean(self, signature: np.ndarray) -> LeanMinHash:
        """Wrap a signature for MinHashLSH without copying or re-validating it (the constructor
        checks the value range, ~40 us a call; this is what `LeanMinHash.copy()` does)."""
        lean = object.__new__(LeanMinHash)
        lean.seed, lean.scheme, lean.hashvalues = self.seed, SCHEME, signature
        return lean


class Decision(NamedTuple):
    kind: Literal["keep", "exact", "near"]
    of: int  # row of the kept document of its cluster (the row itself when kept)


class Deduplicator:
    """Streaming exact + near dedup in corpus order: feed batches, get one decision per document.

    State: a dict content-hash -> representative row (exact dedup), the datasketch LSH index of
    the kept documents, and their signatures (to confirm LSH candidates by estimated Jaccard).
    """

    def __init__(self, cfg: DedupConfig, threads: int = 1):
        self.cfg = cfg
        self.hasher = MinHasher.from_config(cfg, threads)
        self.lsh = MinHashLSH(num_perm=cfg.num_perm, params=(cfg.bands, cfg.rows))
        self._seen: dict[int, int] = {}  # content hash -> row of the kept document it maps to
        self._sigs = np.empty((1024, cfg.num_perm), dtype=np.uint32)  # by kept ordinal
        self._kept_rows: list[int] = []  # kept ordinal -> row index
        self.cluster_sizes: dict[int, int] = {}  # kept row -> cluster size, only clusters > 1
        self.exact_duplicates = 0
        self.near_duplicates = 0
        self.signature_seconds = 0.0
        self.signed = 0  # documents whose signature was computed

    def process(self, rows: Sequence[int], texts: Sequence[str]) -> list[Decision]:
        """Decide each (row, text), in corpus order: kept, or an exact/near duplicate of a kept row."""
        hashes = [content_hash(t) for t in texts]
        need_sig: list[int] = []
        if self.cfg.near:
            # Exact copies of a document already decided (or earlier in this batch) need no
            # signature: the exact check settles them.
            seen_in_batch: set[int] = set()
            for i, h in enumerate(hashes):
                if not self.cfg.exact or (h not in self._seen and h not in seen_in_batch):
                    need_sig.append(i)
                    seen_in_batch.add(h)
        sigs: dict[int, np.ndarray] = {}
        if need_sig:
            start = time.perf_counter()
            block = self.hasher.signatures([texts[i] for i in need_sig])
            self.signature_seconds += time.perf_counter() - start
            self.signed += len(need_sig)
            sigs = {i: block[j] for j, i in enumerate(need_sig)}

        decisions: list[Decision] = []
        for i, (row, h) in enumerate(zip(rows, hashes)):
            if self.cfg.exact and h in self._seen:
                self.exact_duplicates += 1
                self._join(self._seen[h])
                decisions.append(Decision("exact", self._seen[h]))
                continue
            root = self._near_duplicate_of(sigs[i]) if self.cfg.near else None
            if root is not None:
                self.near_duplicates += 1
                self._join(root)
                decisions.append(Decision("near", root))
            else:
                root = row
                if self.cfg.near:
                    self._keep(row, sigs[i])
                decisions.append(Decision("keep", row))
            if self.cfg.exact:
                self._seen[h] = root  # later exact copies join the same cluster
        return decisions

    def _join(self, root: int) -> None:
        self.cluster_sizes[root] = self.cluster_sizes.get(root, 1) + 1

    def _near_duplicate_of(self, sig: np.ndarray) -> int | None:
        candidates = self.lsh.query(self.hasher.lean(sig))
        if not candidates:
            return None
        candidates = np.sort(np.asarray(candidates, dtype=np.int64))
        similarity = (self._sigs[candidates] == sig).mean(axis=1)
        best = int(np.argmax(similarity))  # ties: the earliest kept document
        if similarity[best] < self.cfg.similarity:
            return None
        return self._kept_rows[int(candidates[best])]

    def _keep(self, row: int, sig: np.ndarray) -> None:
        ordinal = len(self._kept_rows)
        if ordinal == len(self._sigs):
            grown = np.empty((2 * len(self._sigs), self.cfg.num_perm), dtype=np.uint32)
            grown[:ordinal] = self._sigs
            self._sigs = grown
        self._sigs[ordinal] = sig
        self._kept_rows.append(row)
        self.lsh.insert(ordinal, self.hasher.lean(sig), check_duplication=False)

    def stats(self) -> dict[str, int | float]:
        return {
            "exact_duplicates": self.exact_duplicates,
            "near_duplicates": self.near_duplicates,
            "duplicate_clusters": len(self.cluster_sizes),
            "largest_duplicate_cluster": max(self.cluster_sizes.values(), default=1),
        }
