"""pack stage: data/clean + data/tokenizer -> data/tokens (train.bin, val.bin, meta.json)."""

from wikigpt.config import load_runtime, load_section
from wikigpt.io import write_metrics
from wikigpt.pack import PackConfig, pack_corpus
from wikigpt.stage import stage_main
from wikigpt.tokenizer import set_threads

CORPUS_DIR = "data/clean"
TOKENIZER_DIR = "data/tokenizer"
OUT_DIR = "data/tokens"


@stage_main
def main() -> None:
    cfg = load_section("pack", PackConfig)
    rt = load_runtime()
    set_threads(rt.threads)  # before the first encode_batch; output is identical for any count
    metrics = pack_corpus(CORPUS_DIR, TOKENIZER_DIR, OUT_DIR, cfg, progress=rt.progress, threads=rt.threads)
    write_metrics("pack", metrics)
    print(
        f"pack: {metrics['train_tokens']:,} train / {metrics['val_tokens']:,} val tokens "
        f"({metrics['train_docs']} / {metrics['val_docs']} documents, {metrics['dtype']}) "
        f"in {metrics['seconds']}s, {metrics['tokens_per_s']:,} tokens/s ({metrics['encoder']})"
    )


if __name__ == "__main__":
    main()
