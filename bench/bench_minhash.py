"""MinHash signature throughput: our batched numpy signatures vs datasketch's per-document loops.

    .venv/bin/python bench/bench_minhash.py [--corpus data/extracted] [--docs 300] [--words 450]

On the same documents, in the same run, it times
  naive  `MinHash(num_perm=128)` + `update()` per shingle (SHA-1 per shingle, one numpy op each),
  bulk   `MinHash.bulk` (datasketch's batched path: SHA-1 per shingle, one numpy op per document),
  ours   `wikigpt.data.dedup.MinHasher.signatures` (polynomial shingle hashes and the 128
         affine32 permutations as numpy ops over the whole batch),
and prints docs/s and the ratios (target: ours >= 10x naive). Then it measures the whole
near-dedup step (signatures + LSH query/insert) in docs/s and the LSH index memory per document,
the figures behind the README estimate for full English Wikipedia.

Documents: the normalised texts of a Parquet corpus (`--corpus`, default data/extracted when it
exists), else deterministic synthetic prose (Zipf-distributed pseudo-words, `--words` per doc;
English Wikipedia articles average ~450 words / ~3,000 characters).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from datasketch import MinHash

from wikigpt.data.clean import normalize_text
from wikigpt.data.dedup import DedupConfig, Deduplicator, MinHasher
from wikigpt.data.shards import iter_rows


def synthetic_documents(n: int, words: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [1 / (i + 1) for i in range(len(letters))]
    vocab = sorted({"".join(rng.choices(letters, weights, k=rng.randint(1, 10))) for _ in range(30_000)})
    zipf = [1 / (rank + 1) ** 1.1 for rank in range(len(vocab))]
    docs = []
    for _ in range(n):
        ws = rng.choices(vocab, zipf, k=max(1, int(rng.gauss(words, words / 3))))
        sentences = [" ".join(ws[i : i + 12]).capitalize() + "." for i in range(0, len(ws), 12)]
        docs.append("\n\n".join(" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)))
    return docs


def load_documents(corpus: Path | None, n: int, words: int) -> tuple[list[str], str]:
    if corpus is not None and corpus.is_dir():
        docs = [normalize_text(r["text"] or "")[0] for r in iter_rows(corpus, ["text"])]
        docs = [d for d in docs if len(d) >= 200][:n]
        if docs:
            return docs, f"{corpus} (first {len(docs)} documents of >= 200 chars)"
    return synthetic_documents(n, words), f"synthetic, ~{words} words per document"


def char_shingles(text: str, k: int) -> list[bytes]:
    if len(text) < k:
        return [text.encode("utf-8")] if text else []
    return [text[i : i + k].encode("utf-8") for i in range(len(text) - k + 1)]


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path("data/extracted"))
    parser.add_argument("--docs", type=int, default=300, help="documents for the signature comparison")
    parser.add_argument("--words", type=int, default=450, help="words per synthetic document")
    parser.add_argument("--dedup-docs", type=int, default=5000, help="documents for the LSH measurement")
    parser.add_argument("--threads", type=int, default=2, help="threads for the threaded line")
    args = parser.parse_args()

    cfg = DedupConfig()
    k, num_perm = cfg.shingle_size, cfg.num_perm
    docs, source = load_documents(args.corpus, args.docs, args.words)
    chars = sum(map(len, docs))
    print(f"documents: {len(docs)} from {source}; mean {chars / len(docs):,.0f} characters")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (figures are per process)")
    print(f"MinHash: num_perm={num_perm}, char {k}-shingles, datasketch scheme affine32\n")

    def naive():
        for d in docs:
            m = MinHash(num_perm=num_perm)
            for s in char_shingles(d, k):
                m.update(s)

    def bulk():
        MinHash.bulk((char_shingles(d, k) for d in docs), num_perm=num_perm)

    hasher = MinHasher(num_perm=num_perm, seed=cfg.seed, shingle="char", shingle_size=k)

    threaded = MinHasher(num_perm=num_perm, seed=cfg.seed, shingle="char", shingle_size=k, threads=args.threads)

    def ours(h=hasher):
        for i in range(0, len(docs), 1024):
            h.signatures(docs[i : i + 1024])

    times = {
        "naive": best_of(naive, 1),
        "bulk": best_of(bulk, 2),
        "ours": best_of(ours, 3),
        "threads": best_of(lambda: ours(threaded), 3),
    }
    rate = {name: len(docs) / t for name, t in times.items()}
    print(f"{'method':<44}{'docs/s':>10}{'MB/s':>8}{'vs naive':>10}")
    for name, label in (
        ("naive", "naive: MinHash() + update() per shingle"),
        ("bulk", "datasketch MinHash.bulk"),
        ("ours", "ours: MinHasher.signatures (numpy, batched)"),
        ("threads", f"ours, {args.threads} threads"),
    ):
        mbps = rate[name] * chars / len(docs) / 1e6
        print(f"{label:<44}{rate[name]:>10,.0f}{mbps:>8.2f}{rate[name] / rate['naive']:>9.1f}x")
    ratio = rate["ours"] / rate["naive"]
    print(f"\nours (1 thread) / naive = {ratio:.1f}x (target >= 10x): {'PASS' if ratio >= 10 else 'FAIL'}")

    # Estimates agree: datasketch's SHA-1 shingle hashes and ours estimate the same Jaccard.
    rng = random.Random(1)
    pairs = []
    for d in docs[:40]:
        words = d.split(" ")
        for _ in range(max(1, len(words) // 25)):
            words[rng.randrange(len(words))] = "edited"
        pairs.append((d, " ".join(words)))
    diffs = []
    for a, b in pairs:
        sa, sb = hasher.signatures([a, b])
        ma, mb = MinHash.bulk([char_shingles(a, k), char_shingles(b, k)], num_perm=num_perm)
        diffs.append(abs((sa == sb).mean() - ma.jaccard(mb)))
    print(f"|Jaccard estimate ours - datasketch SHA-1| on {len(pairs)} edited pairs: mean {np.mean(diffs):.3f}")

    # Whole near-dedup step and LSH memory, on more documents.
    many, _ = load_documents(args.corpus, args.dedup_docs, args.words)
    if len(many) < args.dedup_docs:
        many = synthetic_documents(args.dedup_docs, args.words, seed=2)
    dedup = Deduplicator(cfg)
    start = time.perf_counter()
    for i in range(0, len(many), 1024):
        dedup.process(list(range(i, i + len(many[i : i + 1024]))), many[i : i + 1024])
    total = time.perf_counter() - start
    print(
        f"\nnear dedup, {len(many)} documents: {len(many) / total:,.0f} docs/s end to end "
        f"(signatures {dedup.signed / dedup.signature_seconds:,.0f} docs/s, "
        f"LSH query+insert {len(many) / (total - dedup.signature_seconds):,.0f} docs/s)"
    )
    n_mem = min(len(many), 5000)
    sigs = hasher.signatures(many[:n_mem])
    tracemalloc.start()
    measured = Deduplicator(cfg)
    base = tracemalloc.get_traced_memory()[0]
    for i in range(n_mem):
        measured._keep(i, sigs[i])
        measured._seen[i] = i  # one exact-dedup entry per document too
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    print(
        f"index memory: {used / n_mem:,.0f} bytes/doc (MinHashLSH dict storage, {cfg.bands} bands, "
        f"+ {num_perm * 4} B signature + exact-hash entry), measured on {n_mem} documents"
    )
    return 0 if ratio >= 10 else 1


if __name__ == "__main__":
    sys.exit(main())
