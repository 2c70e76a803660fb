"""extract stage: the MediaWiki dump in params `extract.dump` -> data/extracted/part-*.parquet.

Reads params `extract` (and `runtime.extract_workers`, which never changes the output).
"""

from pathlib import Path

from wikigpt.config import load_runtime, load_section
from wikigpt.data.extract import ExtractConfig, extract
from wikigpt.io import METRICS_DIR, write_metrics
from wikigpt.stage import stage_main

OUT = Path("data/extracted")


@stage_main
def main() -> None:
    cfg = load_section("extract", ExtractConfig)
    rt = load_runtime()
    # a failed run must not leave the previous run's metrics next to a missing output
    (METRICS_DIR / "extract.json").unlink(missing_ok=True)
    metrics = extract(cfg, OUT, workers=rt.extract_workers, progress=rt.progress)
    write_metrics("extract", metrics)
    print(
        f"extract: {metrics['kept']} articles from {metrics['pages_seen']} pages "
        f"({metrics['mb_per_s']} MB/s of wikitext, {metrics['workers']} workers, reader: {metrics['reader']})"
    )


if __name__ == "__main__":
    main()
