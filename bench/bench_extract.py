"""Benchmark the extract stage: text quality and speed against mwparserfromhell, same run.

    .venv/bin/python bench/bench_extract.py [--dump ENWIKI_SAMPLE] [--skip-baseline]

1. Leftover markup on ../shared's enwiki sample (106 articles): counts per class for our
   converter and for mwparserfromhell's plain `strip_code()`, side by side (target: 0 for ours),
   plus how many source list items survive as lines.
2. Conversion speed per core (one process): MB/s of wikitext and articles/s, both converters.
3. Parallel reading: wall time of the whole extract with 1 and 2 workers on multistream input
   (elwikivoyage multistream, the bundled sample, and the enwiki sample recompressed here into a
   multistream file with 10 pages per stream, since the first two are too small to show much).
"""

from __future__ import annotations

import argparse
import bz2
import os
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "wikidumps"
ENWIKI = SHARED / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
ELWIKIVOYAGE_MS = SHARED / "elwikivoyage-pages-articles-p2566p2583.multistream.xml.bz2"
SAMPLE = REPO / "data" / "sample" / "wikisample-pages-articles-multistream.xml.bz2"

sys.path.insert(0, str(REPO))
from wikigpt.data.dump import iter_pages  # noqa: E402
from wikigpt.data.extract import ExtractConfig, extract  # noqa: E402
from wikigpt.data.wikitext import Converter, count_leftover_markup  # noqa: E402

_LIST_LINE = re.compile(r"^[*#]+\s*(.+)$", re.M)


def articles(dump: Path):
    return [p for p in iter_pages(dump) if p.ns == 0 and not p.redirect]


def timed(fn, pages) -> tuple[list[str], float]:
    start = time.process_time()  # CPU time of this process: per-core speed, robust to a busy machine
    out = [fn(p) for p in pages]
    return out, time.process_time() - start


def list_items_kept(pages, outputs, line_fn) -> tuple[int, int]:
    """(source list items whose converted text is a line of the output, source list items)."""
    kept = total = 0
    for page, out in zip(pages, outputs):
        lines = set(out.splitlines())
        for m in _LIST_LINE.finditer(page.text):
            item = line_fn(m.group(1)).strip()
            if not item:
                continue
            total += 1
            kept += item in lines
    return kept, total


def multistream_from(dump: Path, out: Path, pages_per_stream: int) -> Path:
    """Recompress a one-stream dump into Wikimedia's multistream layout (+ index)."""
    xml = bz2.decompress(dump.read_bytes())
    first = xml.index(b"<page>")
    head, body = xml[:first], xml[first:]
    ends = [m.end() for m in re.finditer(rb"</page>\s*", body)]
    blobs = [bz2.compress(head)]
    index, pos, start = [], len(blobs[0]), 0
    for k in range(0, len(ends), pages_per_stream):
        chunk = body[start : ends[min(k + pages_per_stream, len(ends)) - 1]]
        start = ends[min(k + pages_per_stream, len(ends)) - 1]
        for m in re.finditer(rb"<page>\s*<title>(.*?)</title>.*?<id>(\d+)</id>", chunk, re.S):
            index.append(f"{pos}:{int(m.group(2))}:{m.group(1).decode()}")
        blob = bz2.compress(chunk)
        blobs.append(blob)
        pos += len(blob)
    blobs.append(bz2.compress(body[start:]))  # "</mediawiki>"
    out.write_bytes(b"".join(blobs))
    out.with_name(out.name.replace(".xml.bz2", "-index.txt.bz2")).write_bytes(bz2.compress("\n".join(index).encode()))
    return out


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def worker_ratio(dump: Path, tmp: Path, repeats: int = 2) -> tuple[float, float, dict, float, float]:
    """Best wall time with 1 and 2 workers, plus the CPU seconds of the parent and of the workers
    in the last 2-worker run (load-independent: shows how much of the work is parallel)."""
    best = {}
    metrics = {}
    parent = children = 0.0
    for workers in (1, 2):
        times = []
        for r in range(repeats):
            start, cpu0, kids0 = time.perf_counter(), time.process_time(), _children_cpu()
            metrics = extract(ExtractConfig(dump=str(dump)), tmp / f"out{workers}_{r}", workers=workers)
            times.append(time.perf_counter() - start)
            parent, children = time.process_time() - cpu0, _children_cpu() - kids0
        best[workers] = min(times)
    return best[1], best[2], metrics, parent, children


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dump", type=Path, default=ENWIKI)
    ap.add_argument("--skip-baseline", action="store_true", help="do not run mwparserfromhell (slow)")
    args = ap.parse_args()
    if not args.dump.exists():
        sys.exit(f"{args.dump}: not found (../shared is needed for this benchmark)")

    pages = articles(args.dump)
    nbytes = sum(len(p.text.encode()) for p in pages)
    conv = Converter()
    ours, ours_s = timed(lambda p: conv.convert(p.text, p.title), pages)
    results = {"ours": (ours, ours_s, lambda s: conv.convert(s))}
    if not args.skip_baseline:
        import mwparserfromhell

        base, base_s = timed(lambda p: mwparserfromhell.parse(p.text).strip_code(), pages)
        results["mwparserfromhell strip_code"] = (base, base_s, lambda s: mwparserfromhell.parse(s).strip_code())

    print(f"# {args.dump.name}: {len(pages)} articles, {nbytes / 1e6:.2f} MB of wikitext\n")
    names = list(results)
    counts = {n: count_leftover_markup("\n".join(results[n][0])) for n in names}
    width = max(len(n) for n in names) + 2
    print(f"{'leftover markup':<22}" + "".join(f"{n:>{width}}" for n in names))
    for cls in counts[names[0]]:
        print(f"{cls:<22}" + "".join(f"{counts[n][cls]:>{width}}" for n in names))
    print(f"{'TOTAL':<22}" + "".join(f"{sum(counts[n].values()):>{width}}" for n in names))
    for n in names:
        k, t = list_items_kept(pages, results[n][0], results[n][2])
        print(f"{'list-item lines kept':<22}{n}: {k} of {t} source list items ({k / max(t, 1):.0%}; the rest sit in "
              "dropped reference/link sections or hold only links/templates)" if n == "ours" else
              f"{'list-item lines kept':<22}{n}: {k} of {t} source list items ({k / max(t, 1):.0%})")
    print()
    print(f"{'converter':<30}{'CPU s':>8}{'MB/s/core':>11}{'articles/s':>12}")
    for n in names:
        s = results[n][1]
        print(f"{n:<30}{s:>8.2f}{nbytes / 1e6 / s:>11.2f}{len(pages) / s:>12.1f}")
    if len(names) == 2:
        print(f"speed-up over baseline: {results[names[1]][1] / ours_s:.1f}x")
    print()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"extract stage wall time, 1 vs 2 workers, multistream input (best of 2; {os.cpu_count()} CPUs, "
          f"load average {load:.1f}: the ratio only means something on an otherwise idle machine)")
    print(f"{'dump':<58}{'1 worker s':>11}{'2 workers s':>12}{'ratio':>7}{'MB/s(2)':>9}"
          f"{'parent CPU s':>13}{'workers CPU s':>14}{'parent %':>9}")
    with tempfile.TemporaryDirectory(prefix="bench_extract_") as d:
        tmp = Path(d)
        inputs = [p for p in (ELWIKIVOYAGE_MS, SAMPLE) if p.exists()]
        inputs.append(multistream_from(args.dump, tmp / "enwiki-sample-multistream.xml.bz2", pages_per_stream=10))
        for dump in inputs:
            t1, t2, m, parent, kids = worker_ratio(dump, tmp)
            share = 100 * parent / max(parent + kids, 1e-9)
            print(f"{dump.name[:57]:<58}{t1:>11.2f}{t2:>12.2f}{t1 / t2:>7.2f}{m['bytes_in'] / 1e6 / t2:>9.2f}"
                  f"{parent:>13.2f}{kids:>14.2f}{share:>8.1f}%")
    print("(ratio = wall time with 1 worker / with 2, worker start-up included; parent % = the parent's share of the\n"
          " CPU time with 2 workers: reading the index, collecting rows, writing Parquet; the rest runs in the workers)")


if __name__ == "__main__":
    main()
