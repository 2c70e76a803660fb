"""Evaluation of the base and SFT models: what `stages/eval.py` runs.

Per model (every figure lands in `metrics/eval.json` as {"base": {...}, "sft": {...}}):

- **val loss / perplexity / bits per byte** on `val.bin` (documents pack held out of
  pretraining), in non-overlapping windows of `block_size`. Loss and perplexity average over every
  predicted token. Bits per byte = summed nats / ln 2 / UTF-8 bytes of the predicted text; the
  `<|end|>` document separators carry no text, so they count neither nats nor bytes there. Bits
  per byte does not depend on the tokenizer, so runs with different vocabularies compare.
- **cloze**: from each held-out document, passages of a few sentences; the true next sentence
  competes with three sentences drawn from *other* held-out documents. The model picks the
  candidate with the highest MEAN log-likelihood per token given the passage (the total would
  favour short candidates, as each extra token only lowers it). Accuracy, chance = 0.25, n.
- **QA**: the held-out SFT conversations (articles never trained on in SFT): the model answers the
  last question greedily; token F1 and exact match against the reference after SQuAD
  normalisation (lowercase, no punctuation, no articles a/an/the, single spaces).
- **samples**: fixed prompts from params, answered by both models, written to a markdown report.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import random
import re
import string
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from wikigpt.chat_template import STOP_IDS, truncate_history
from wikigpt.errors import WikigptError
from wikigpt.model import GPT
from wikigpt.sft_data import parse_article, read_sft_split, split_sentences
from wikigpt.specials import END_ID
from wikigpt.tokenizer import token_byte_lengths
from wikigpt.train.dist import autocast_for, pick_device

DEFAULT_PROMPTS = (
    "What is Tudiken?",
    "Tell me about the Kingdom of Batu.",
    "What does the article on Brobal say about its economy?",
)


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """params.yaml `eval:` section. Changing it reruns eval only (no training stage declares it)."""

    max_val_tokens: int = 200_000  # cap on val.bin tokens scored per model (0 = all)
    batch_size: int = 8  # windows per forward pass for val loss
    cloze_items: int = 200  # at most this many cloze questions
    cloze_context_sentences: int = 3  # sentences of passage before the candidate
    qa_questions: int = 60  # held-out SFT conversations answered per model, evenly spaced (0 = all)
    qa_max_new_tokens: int = 64
    sample_prompts: list[str] = dataclasses.field(default_factory=lambda: list(DEFAULT_PROMPTS))
    sample_max_new_tokens: int = 96
    sample_temperature: float = 0.0  # 0 = greedy, so the report is reproducible
    sample_top_k: int = 50
    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda | mps


# ---------------------------------------------------------------------------------------------
# Language-model figures on val.bin



@torch.no_grad()
def val_metrics(
    model: GPT,
    tokens: np.ndarray,
    byte_lengths: np.ndarray,
    batch_size: int,
    max_tokens: int = 0,
    progress: bool = False,
) -> dict[str, float | int]:
    """Mean loss, perplexity and bits per byte over non-overlapping block_size windows of `tokens`."""
    T = model.config.block_size
    n = len(tokens) if max_tokens <= 0 else min(len(tokens), max_tokens + 1)
    n_windows = (n - 1) // T
    if n_windows == 0:
        # A short val split still gets one (shorter) window rather than no figure at all.
        if n < 2:
            raise WikigptError(f"val split has {len(tokens)} tokens; need at least 2 to evaluate")
        T, n_windows = n - 1, 1
    device = next(model.parameters()).device
    total_nats = 0.0
    total_tokens = 0
    text_nats = 0.0
    text_bytes = 0
    byte_lengths_t = torch.as_tensor(byte_lengths, device=device)
    starts = list(range(0, n_windows * T, T))
    bar = _bar(len(starts), "val loss", progress)
    model.eval()
    for i in range(0, len(starts), batch_size):
        chunk = np.stack([np.asarray(tokens[s : s + T + 1], dtype=np.int64) for s in starts[i : i + batch_size]])
        xy = torch.from_numpy(chunk).to(device)
        x, y = xy[:, :-1], xy[:, 1:]
        with autocast_for(device):
            logits, _ = model(x, y)
        nats = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
        total_nats += float(nats.sum())
        total_tokens += nats.numel()
        nbytes = byte_lengths_t[y.reshape(-1)]
        text = nbytes > 0
        text_nats += float(nats[text].sum())
        text_bytes += int(nbytes.sum())
        bar.update(len(chunk))
    bar.close()
    loss = total_nats / total_tokens
    return {
        "val_loss": loss,
        "val_ppl": math.exp(loss),
        "val_bpb": text_nats / math.log(2) / max(text_bytes, 1),
        "val_tokens": total_tokens,
    }


# ---------------------------------------------------------------------------------------------
# Cloze


@dataclasses.dataclass(frozen=True)
class ClozeItem:
    context: str
    candidates: tuple[str, ...]  # four candidates
    answer: int  # index of the true continuation


def split_documents(tokens: np.ndarray, max_docs: int | None = None) -> list[np.ndarray]:
    """Documents of a packed token file: pack appends <|end|> after each one."""
    ends = np.flatnonzero(np.asarray(tokens) == END_ID)
    docs, start = [], 0
    for e in ends:
        if e > start:
            docs.append(np.asarray(tokens[start:e]))
        start = e + 1
        if max_docs and len(docs) >= max_docs:
            break
    return docs


def build_cloze(doc_texts: Sequence[str], n_items: int, context_sentences: int, seed: int) -> list[ClozeItem]:
    """Cloze questions from held-out documents; each true continuation is a sentence of the same
    document, each distractor a sentence of another document. Deterministic given `seed`."""
    rng = random.Random(seed)
    docs = [[s for s in _prose_sentences(t) if len(s) >= 15] for t in doc_texts]
    docs = [d for d in docs if len(d) > context_sentences]
    if len(docs) < 2:
        raise WikigptError(f"cloze needs at least 2 held-out documents with more than {context_sentences} sentences, found {len(docs)}")
    positions = [(d, j) for d, sents in enumerate(docs) for j in range(context_sentences, len(sents))]
    rng.shuffle(positions)
    items = []
    for d, j in positions[:n_items]:
        others = [(o, k) for o in range(len(docs)) if o != d for k in range(len(docs[o]))]
        truth = docs[d][j]
        picks = [docs[o][k] for o, k in rng.sample(others, min(len(others), 12))]
        distractors = list(dict.fromkeys(p for p in picks if p != truth))[:3]
        if len(distractors) < 3:
            continue
        answer = rng.randrange(4)
        candidates = distractors[:answer] + [truth] + distractors[answer:]
        items.append(ClozeItem(" ".join(docs[d][j - context_sentences : j]), tuple(candidates), answer))
    return items


def _prose_sentences(text: str) -> list[str]:
    """Sentences of the lead and section paragraphs, in order; heading lines left out (they would
    otherwise glue onto the next sentence)."""
    article = parse_article(0, "", text)
    paragraphs = article.lead + [p for _, ps in article.sections for p in ps]
    return [s for p in paragraphs for s in split_sentences(p)]


@torch.no_grad()
def continuation_logprobs(model: GPT, context: list[int], continuation: list[int]) -> torch.Tensor:
    """Log-probabilities of each continuation token given context (context cropped from the left)."""
    T = model.config.block_size
    continuation = continuation[:T - 1]
    ids = (context + continuation)[-(T + 1) :]
    device = next(model.parameters()).device
    x = torch.tensor([ids[:-1]], device=device)
    y = torch.tensor([ids[1:]], device=device)
    with autocast_for(device):
        logits, _ = model(x, y)
    logp = torch.log_softmax(logits.float()[0], dim=-1).gather(1, y[0].unsqueeze(1)).squeeze(1)
    return logp[-len(continuation) :]


def cloze_accuracy(model: GPT, tokenizer: Any, items: Sequence[ClozeItem], progress: bool = False) -> dict[str, float | int]:
    correct = 0
    bar = _bar(len(items), "cloze", progress)
    for item in items:
        ctx = _encode(tokenizer, item.context)
        scores = []
        for cand in item.candidates:
            cont = _encode(tokenizer, " " + cand)
            scores.append(float(continuation_logprobs(model, ctx, cont).mean()))
        correct += int(int(np.argmax(scores)) == item.answer)
        bar.update(1)
    bar.close()
    n = len(items)
    return {"cloze_acc": correct / n if n else 0.0, "cloze_n": n, "cloze_chance": 0.25}


# ---------------------------------------------------------------------------------------------
# QA on held-out SFT questions


_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and English articles, collapse spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = collections.Counter(pred) & collections.Counter(ref)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def generate_answer(
    model: GPT,
    tokenizer: Any,
    messages: list[dict[str, str]],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> str:
    """One assistant reply (history kept inside the context window), decoded to text."""
    _, ids = truncate_history(tokenizer, messages, max(2, model.config.block_size - max_new_tokens))
    out = list(
        model.generate_stream(
            ids, max_new_tokens, temperature=temperature, top_k=top_k, stop_ids=STOP_IDS, generator=generator
        )
    )
    return tokenizer.decode(out, skip_special_tokens=True).strip()


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the body with `n` intra-op threads (None: unchanged)."""
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def qa_scores(
    model: GPT, tokenizer: Any, conversations: Sequence[dict[str, Any]], max_new_tokens: int, progress: bool = False
) -> tuple[dict[str, float | int], list[dict[str, str]]]:
    f1s, ems, examples = [], [], []
    bar = _bar(len(conversations), "qa", progress)
    for conv in conversations:
        *history, reference = conv["messages"]
        answer = generate_answer(model, tokenizer, history, max_new_tokens)
        f1s.append(token_f1(answer, reference["content"]))
        ems.append(exact_match(answer, reference["content"]))
        if len(examples) < 3:
            examples.append({"question": history[-1]["content"], "reference": reference["content"], "answer": answer})
        bar.update(1)
    bar.close()
    n = len(conversations)
    return {"qa_f1": float(np.mean(f1s)) if n else 0.0, "qa_em": float(np.mean(ems)) if n else 0.0, "qa_n": n}, examples


def load_qa_conversations(sft_dir: str | Path, limit: int) -> list[dict[str, Any]]:
    """Held-out SFT conversations; with `limit`, evenly spaced over the file so every kind of
    question and many articles are represented (the file is in corpus order)."""
    convs = list(read_sft_split(sft_dir, "val"))
    if not convs:
        raise WikigptError(f"{sft_dir}/val.jsonl: no held-out SFT conversations to evaluate")
    if limit and len(convs) > limit:
        convs = [convs[i] for i in np.linspace(0, len(convs) - 1, limit).round().astype(int)]
    return convs


# ---------------------------------------------------------------------------------------------
# Samples report


def sample_generations(model: GPT, tokenizer: Any, cfg: EvalConfig) -> list[tuple[str, str]]:
    out = []
    device = next(model.parameters()).device
    for prompt in cfg.sample_prompts:
        gen = torch.Generator(device=device).manual_seed(cfg.seed)
        answer = generate_answer(
            model,
            tokenizer,
            [{"role": "user", "content": prompt}],
            cfg.sample_max_new_tokens,
            temperature=cfg.sample_temperature,
            top_k=cfg.sample_top_k,
            generator=gen,
        )
        out.append((prompt, answer))
    return out


def samples_markdown(samples: dict[str, list[tuple[str, str]]], qa_examples: dict[str, list[dict[str, str]]], cfg: EvalConfig) -> str:
    how = "greedy" if cfg.sample_temperature <= 0 else f"temperature {cfg.sample_temperature}, top-k {cfg.sample_top_k}, seed {cfg.seed}"
    lines = [
        "# Sample generations",
        "",
        f"Both models get the same chat-formatted prompt (`<|user|>...<|end|><|assistant|>`); decoding: {how}, "
        f"at most {cfg.sample_max_new_tokens} new tokens, stopping at a control token (`<|end|>`). "
        "The base model never saw the chat tokens in pretraining: the contrast is what SFT taught.",
        "",
    ]
    names = list(samples)
    for i, prompt in enumerate(cfg.sample_prompts):
        lines += [f"## {prompt}", ""]
        for name in names:
            lines += [f"**{name}:**", "", _quote(samples[name][i][1]), ""]
    lines += ["# Held-out QA examples", ""]
    for name in names:
        for ex in qa_examples.get(name, []):
            lines += [f"**{name}** - Q: {ex['question']}", "", f"- reference: {ex['reference']}", f"- answer: {ex['answer'] or '(empty)'}", ""]
    return "\n".join(lines).rstrip() + "\n"


def _quote(text: str) -> str:
    text = text.strip() or "(empty)"
    return "\n".join("> " + line if line else ">" for line in text.splitlines())


# ---------------------------------------------------------------------------------------------
# One model, everything


def evaluate_model(
    model: GPT,
    tokenizer: Any,
    val_tokens: np.ndarray,
    cloze_items: Sequence[ClozeItem],
    qa_convs: Sequence[dict[str, Any]],
    cfg: EvalConfig,
    progress: bool = False,
    decode_threads: int | None = None,
) -> tuple[dict[str, float | int], list[tuple[str, str]], list[dict[str, str]]]:
    start = time.perf_counter()
    metrics: dict[str, float | int] = {}
    metrics.update(val_metrics(model, val_tokens, token_byte_lengths(tokenizer), cfg.batch_size, cfg.max_val_tokens, progress))
    with torch_threads(decode_threads if next(model.parameters()).device.type == "cpu" else None):
        metrics.update(cloze_accuracy(model, tokenizer, cloze_items, progress))  # one short sequence per pass
        qa, examples = qa_scores(model, tokenizer, qa_convs, cfg.qa_max_new_tokens, progress)
        samples = sample_generations(model, tokenizer, cfg)
    metrics.update(qa)
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    return metrics, samples, examples


def check_compatible(model: GPT, tokenizer: Any, meta: dict[str, Any], where: str) -> None:
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    if model.config.vocab_size < vocab:
        raise WikigptError(f"{where}: model vocab_size {model.config.vocab_size} is smaller than the tokenizer's {vocab} (checkpoint from another tokenizer?)")
    if int(meta.get("vocab_size", vocab)) != vocab:
        raise WikigptError(f"{where}: tokens were packed with vocab_size {meta['vocab_size']}, tokenizer has {vocab}")


# ---------------------------------------------------------------------------------------------
# helpers


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False).ids)



class _NoBar:
    def update(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


def _bar(total: int, desc: str, progress: bool):
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False)


def _decode_docs(tokenizer: Any, docs: Iterable[np.ndarray]) -> list[str]:
    return [tokenizer.decode([int(t) for t in d], skip_special_tokens=True) for d in docs]


def cloze_from_tokens(tokenizer: Any, val_tokens: np.ndarray, cfg: EvalConfig) -> list[ClozeItem]:
    """Cloze items from the documents of val.bin (held out of pretraining)."""
    docs = split_documents(val_tokens)
    return build_cloze(_decode_docs(tokenizer, docs), cfg.cloze_items, cfg.cloze_context_sentences, cfg.seed)


# ---------------------------------------------------------------------------------------------
# The eval stage


def run_eval(
    tokens_dir: str | Path,
    tokenizer_path: str | Path,
    model_dirs: dict[str, str | Path],
    sft_dir: str | Path,
    samples_path: str | Path,
    cfg: EvalConfig,
    progress: bool = False,
    decode_threads: int | None = None,
) -> dict[str, Any]:
    """Evaluate every model in `model_dirs` (name -> model directory) on the same held-out data.

    Returns {"<name>": {val_loss, val_ppl, val_bpb, val_tokens, cloze_acc, cloze_n, cloze_chance,
    qa_f1, qa_em, qa_n, seconds}, ...} and writes the sample generations to `samples_path`."""
    from wikigpt.io import atomic_file
    from wikigpt.pack import check_tokenizer_matches, open_tokens, read_meta
    from wikigpt.tokenizer import load_tokenizer
    from wikigpt.train.checkpoint import load_model

    torch.manual_seed(cfg.seed)
    device = pick_device(cfg.device)
    tokenizer = load_tokenizer(tokenizer_path)
    meta = read_meta(tokens_dir)
    check_tokenizer_matches(meta, tokenizer_path)
    val_tokens = open_tokens(tokens_dir, "val")
    cloze_items = cloze_from_tokens(tokenizer, val_tokens, cfg)
    qa_convs = load_qa_conversations(sft_dir, cfg.qa_questions)
    results: dict[str, Any] = {}
    samples: dict[str, list[tuple[str, str]]] = {}
    examples: dict[str, list[dict[str, str]]] = {}
    for name, model_dir in model_dirs.items():
        model = load_model(model_dir, device=device)
        check_compatible(model, tokenizer, meta, str(model_dir))
        results[name], samples[name], examples[name] = evaluate_model(
            model, tokenizer, val_tokens, cloze_items, qa_convs, cfg, progress, decode_threads
        )
        del model
    with atomic_file(samples_path, "w", encoding="utf-8") as f:
        f.write(samples_markdown(samples, examples, cfg))
    return results
