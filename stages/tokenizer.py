"""tokenizer stage: data/clean -> data/tokenizer (byte-level BPE + transformers files + vocab report)."""

from wikigpt.config import load_runtime, load_section
from wikigpt.io import write_metrics
from wikigpt.stage import stage_main
from wikigpt.tokenizer import TokenizerConfig, build_tokenizer, set_threads

CORPUS_DIR = "data/clean"
OUT_DIR = "data/tokenizer"


@stage_main
def main() -> None:
    cfg = load_section("tokenizer", TokenizerConfig)
    rt = load_runtime()
    set_threads(rt.threads)  # before the first Rust-side parallel call
    metrics = build_tokenizer(CORPUS_DIR, OUT_DIR, cfg, progress=rt.progress)
    write_metrics("tokenizer", metrics)
    ours, gpt2 = metrics["fertility"], metrics["gpt2"]
    print(
        f"tokenizer: {metrics['vocab_size']} tokens from {metrics['train_docs']} docs "
        f"({metrics['train_bytes']:,} bytes) in {metrics['train_seconds']}s; held-out fertility "
        f"{ours['tokens_per_word']} tokens/word, {ours['bytes_per_token']} bytes/token "
        f"(GPT-2: {gpt2['tokens_per_word']}, {gpt2['bytes_per_token']})"
    )


if __name__ == "__main__":
    main()
