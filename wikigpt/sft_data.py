"""SFT conversations: generated from the clean corpus, plus an optional user JSONL file.

Generated conversations are grounded in the articles, so the answers are real text the model has
seen during pretraining, and the SFT stage only has to teach the *format*: answer the question
asked, then stop with `<|end|>`. Per article (all choices seeded by the article id, so the output
is identical on every run and independent of corpus order):

- "What is <title>?"                                  -> the lead's first sentence(s)
- "Tell me about <title>."                            -> the lead paragraph
- "What does the article on <title> say about <h>?"   -> the first paragraph of section <h>
- multi-turn: "What is <title>?", then follow-ups ("What does it say about <h>?") that only make
  sense with the history, so the model learns to use earlier turns.

Held-out split BY ARTICLE (a hash of the article id), so no validation question is about an article
whose other questions were trained on. User conversations (`{"messages": [{"role", "content"}]}`
per line) are validated with the chat template's rules and split by a hash of their content.

Output: `train.jsonl`, `val.jsonl` (one `{"messages": [...], "source", "kind", "article_id"}` per
line) and `meta.json` with counts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
from pathlib import Path
from typing import Any, Iterator

from wikigpt.chat_template import normalize_messages
from wikigpt.data.shards import iter_rows
from wikigpt.errors import WikigptError
from wikigpt.io import atomic_dir, write_json

SPLITS = ("train", "val")

# Sentence ends: Latin punctuation followed by whitespace and a capital/digit/quote, or CJK full stops.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF])|(?<=[。！？])")
_TERMINAL_PUNCT = tuple(".!?:;,。！？、)]\"'")
_LIST_MARKER = re.compile(r"^\s*([*#\-•]|\d+[.)])\s")

WHAT_IS = ("What is {title}?", "What is {title}? Answer briefly.", "Can you tell me what {title} is?")
TELL_ME = ("Tell me about {title}.", "Give me an overview of {title}.", "Describe {title}.")
SECTION = (
    "What does the article on {title} say about {heading}?",
    "In the article on {title}, what is said about {heading}?",
)
FOLLOW_UP = ("What does it say about {heading}?", "And what about {heading}?", "Tell me about its {heading} section.")


@dataclasses.dataclass(frozen=True)
class SftDataConfig:
    """The data half of the `sft` params section (see `wikigpt.sft.SftConfig`)."""

    val_fraction: float = 0.1  # share of ARTICLES whose questions are held out
    answer_sentences: int = 2  # sentences in a "What is X?" answer
    max_answer_chars: int = 300  # longer answers are cut at a sentence boundary
    min_answer_chars: int = 20  # articles / sections with less text give no question
    section_questions: int = 2  # section questions per article (at most)
    multi_turn_fraction: float = 0.3  # share of articles that also get a multi-turn conversation
    user_jsonl: str | None = None  # extra conversations, {"messages": [...]} per line
    seed: int = 1234


@dataclasses.dataclass
class Article:
    id: int
    title: str
    lead: list[str]  # paragraphs before the first heading
    sections: list[tuple[str, list[str]]]  # (heading, paragraphs)


def stable_fraction(key: str) -> float:
    """A number in [0, 1) from a hash of `key`: the same on every machine and Python version."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def is_val_article(article_id: int, val_fraction: float) -> bool:
    return stable_fraction(f"sft-article:{article_id}") < val_fraction


def split_sentences(paragraph: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(paragraph.strip()) if s and s.strip()]


def _is_heading(line: str, next_line: str | None) -> bool:
    """Clean text keeps section headings as their own line: short, no closing punctuation,
    followed by more text. (Paragraphs are whole lines that end in punctuation.)"""
    if next_line is None or _LIST_MARKER.match(line):
        return False
    return len(line) <= 80 and len(line.split()) <= 10 and not line.endswith(_TERMINAL_PUNCT)


def parse_article(article_id: int, title: str, text: str) -> Article:
    """Split clean article text into lead paragraphs and (heading, paragraphs) sections."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    lead: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if _is_heading(line, nxt):
            sections.append((line, []))
        elif _LIST_MARKER.match(line):
            continue  # list items are not answers on their own
        elif sections:
            sections[-1][1].append(line)
        else:
            lead.append(line)
    sections = [(h, ps) for h, ps in sections if ps]
    return Article(article_id, title, lead, sections)


def clip_sentences(sentences: list[str], max_chars: int) -> str:
    """Join whole sentences up to `max_chars` (always at least the first, cut hard if it alone is longer)."""
    out: list[str] = []
    size = 0
    for s in sentences:
        if out and size + 1 + len(s) > max_chars:
            break
        out.append(s)
        size += len(s) + (1 if size else 0)
    text = " ".join(out)
    return text if len(text) <= max_chars else text[:max_chars].rstrip()


def heading_phrase(heading: str) -> str:
    """"Later history" -> "later history" inside a question; keep names and acronyms ("Kingdom of X", "NATO")."""
    first = heading.split()[0]
    if len(first) > 1 and first[0].isupper() and first[1:].islower() and len(heading.split()) <= 4:
        return heading[0].lower() + heading[1:]
    return heading


def _qa(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def article_conversations(article: Article, cfg: SftDataConfig) -> list[dict[str, Any]]:
    """The deterministic conversations for one article (may be empty for stub articles)."""
    rng = random.Random(f"{cfg.seed}:{article.id}")
    title = article.title
    convs: list[dict[str, Any]] = []

    def add(kind: str, messages: list[dict[str, str]]) -> None:
        convs.append({"messages": messages, "source": "wiki", "kind": kind, "article_id": article.id})

    lead_sentences = split_sentences(article.lead[0]) if article.lead else []
    what_is = clip_sentences(lead_sentences[: cfg.answer_sentences], cfg.max_answer_chars) if lead_sentences else ""
    if len(what_is) >= cfg.min_answer_chars:
        add("what_is", _qa(rng.choice(WHAT_IS).format(title=title), what_is))
        overview = clip_sentences(split_sentences(article.lead[0]), cfg.max_answer_chars)
        if len(overview) > len(what_is):
            add("tell_me", _qa(rng.choice(TELL_ME).format(title=title), overview))
    section_answers = []
    for heading, paragraphs in article.sections:
        answer = clip_sentences(split_sentences(paragraphs[0]), cfg.max_answer_chars)
        if len(answer) >= cfg.min_answer_chars:
            section_answers.append((heading, answer))
    chosen = rng.sample(section_answers, min(cfg.section_questions, len(section_answers)))
    for heading, answer in chosen:
        add("section", _qa(rng.choice(SECTION).format(title=title, heading=heading_phrase(heading)), answer))
    if len(what_is) >= cfg.min_answer_chars and section_answers and rng.random() < cfg.multi_turn_fraction:
        messages = _qa(rng.choice(WHAT_IS).format(title=title), what_is)
        for heading, answer in rng.sample(section_answers, min(2, len(section_answers))):
            messages += _qa(rng.choice(FOLLOW_UP).format(heading=heading_phrase(heading)), answer)
        add("multi_turn", messages)
    return convs


def iter_user_conversations(path: str | Path) -> Iterator[dict[str, Any]]:
    """Read a `{"messages": [...]}` JSONL file; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise WikigptError(f"{path}: sft.user_jsonl file not found")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise WikigptError(f"{where}: not valid JSON: {e.msg} (column {e.colno})") from None
            if not isinstance(obj, dict) or "messages" not in obj:
                raise WikigptError(f'{where}: expected an object {{"messages": [{{"role": ..., "content": ...}}, ...]}}')
            turns = normalize_messages(obj["messages"], where)
            if turns[-1]["role"] != "assistant":
                raise WikigptError(f"{where}: conversation must end with an assistant message (nothing to learn otherwise)")
            yield {"messages": turns, "source": "user", "kind": "user", "article_id": None, "line": lineno}


def build_sft_data(clean_dir: str | Path, out_dir: str | Path, cfg: SftDataConfig) -> dict[str, Any]:
    """Write train.jsonl / val.jsonl / meta.json into `out_dir` (atomically). Returns the meta."""
    if not 0.0 < cfg.val_fraction < 1.0:
        raise WikigptError(f"params.yaml: sft.val_fraction must be in (0, 1), got {cfg.val_fraction}")
    counts = {s: {"conversations": 0, "turns": 0, "articles": 0, "by_kind": {}} for s in SPLITS}
    articles_seen = articles_without = 0
    with atomic_dir(out_dir) as tmp:
        files = {s: open(tmp / f"{s}.jsonl", "w", encoding="utf-8") for s in SPLITS}
        try:

            def write(split: str, conv: dict[str, Any]) -> None:
                files[split].write(json.dumps(conv, ensure_ascii=False) + "\n")
                c = counts[split]
                c["conversations"] += 1
                c["turns"] += len(conv["messages"]) // 2
                c["by_kind"][conv["kind"]] = c["by_kind"].get(conv["kind"], 0) + 1

            for row in iter_rows(clean_dir, ["id", "title", "text"]):
                articles_seen += 1
                convs = article_conversations(parse_article(row["id"], row["title"], row["text"]), cfg)
                if not convs:
                    articles_without += 1
                    continue
                split = "val" if is_val_article(row["id"], cfg.val_fraction) else "train"
                counts[split]["articles"] += 1
                for conv in convs:
                    write(split, conv)
            if cfg.user_jsonl:
                for conv in iter_user_conversations(cfg.user_jsonl):
                    key = json.dumps(conv["messages"], ensure_ascii=False, sort_keys=True)
                    split = "val" if stable_fraction(f"sft-user:{key}") < cfg.val_fraction else "train"
                    write(split, conv)
        finally:
            for f in files.values():
                f.close()
        if counts["train"]["conversations"] == 0:
            raise WikigptError(f"{clean_dir}: no SFT conversations could be built for the train split (corpus too small?)")
        if counts["val"]["conversations"] == 0:
            raise WikigptError(f"{clean_dir}: no held-out SFT conversations (raise sft.val_fraction or use a bigger corpus)")
        meta = {
            "articles_seen": articles_seen,
            "articles_without_questions": articles_without,
            "user_jsonl": cfg.user_jsonl,
            **{s: counts[s] for s in SPLITS},
        }
        write_json(tmp / "meta.json", meta)
    return meta


def read_sft_split(sft_dir: str | Path, split: str) -> Iterator[dict[str, Any]]:
    """Stream the conversations of one split written by `build_sft_data`."""
    path = Path(sft_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise WikigptError(f"{path}: SFT data not found (run the sft stage first)")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise WikigptError(f"{path}:{lineno}: corrupt SFT data: {e.msg}") from None
