"""clean stage: data/extracted -> data/clean (normalised, filtered, deduplicated) + metrics/clean.json."""

from wikigpt.config import load_runtime, load_section
from wikigpt.data.clean import CleanConfig, clean_corpus
from wikigpt.io import write_metrics
from wikigpt.stage import stage_main

IN_DIR = "data/extracted"
OUT_DIR = "data/clean"


@stage_main
def main() -> None:
    cfg = load_section("clean", CleanConfig)
    rt = load_runtime()
    metrics = clean_corpus(IN_DIR, OUT_DIR, cfg, progress=rt.progress, threads=rt.threads)
    write_metrics("clean", metrics)
    print(
        f"clean: {metrics['documents_in']} -> {metrics['documents_out']} documents "
        f"({metrics['exact_duplicates']} exact, {metrics['near_duplicates']} near duplicates) "
        f"in {metrics['seconds']:.1f}s"
    )


if __name__ == "__main__":
    main()
