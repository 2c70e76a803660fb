"""eval stage: val loss / perplexity / bits per byte, cloze, held-out QA and samples, base vs SFT."""

import torch

from wikigpt.config import load_runtime, load_section
from wikigpt.evaluate import EvalConfig, run_eval
from wikigpt.io import write_metrics
from wikigpt.stage import stage_main


@stage_main
def main() -> None:
    cfg = load_section("eval", EvalConfig)
    rt = load_runtime()
    torch.set_num_threads(rt.threads)
    results = run_eval(
        tokens_dir="data/tokens",
        tokenizer_path="data/tokenizer",
        model_dirs={"base": "data/models/base", "sft": "data/models/sft"},
        sft_dir="data/sft",
        samples_path="reports/samples.md",
        cfg=cfg,
        progress=rt.progress,
        decode_threads=rt.decode_threads,
    )
    write_metrics("eval", results)
    for name, m in results.items():
        print(
            f"[eval] {name}: val loss {m['val_loss']:.3f} (ppl {m['val_ppl']:.1f}, {m['val_bpb']:.3f} bits/byte), "
            f"cloze {m['cloze_acc']:.3f} (chance {m['cloze_chance']}, n={m['cloze_n']}), "
            f"QA F1 {m['qa_f1']:.3f} EM {m['qa_em']:.3f} (n={m['qa_n']})"
        )


if __name__ == "__main__":
    main()
