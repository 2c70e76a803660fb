"""The chat format: the ONE place in the code that knows how a conversation becomes tokens.

Each turn is wrapped in reserved control tokens (ids 0-3, see `wikigpt.specials`)::

    <|user|>{user text}<|end|><|assistant|>{assistant text}<|end|>

repeated per turn, with nothing in between and no BOS token. A prompt for generation is the
history followed by `<|user|>{text}<|end|><|assistant|>`; the model answers and closes with `<|end|>`.

Training labels (`encode_conversation`) are -1 everywhere except the assistant's text and its
closing `<|end|>`: the model learns to answer and to stop, never to imitate the user, and never
to predict the `<|assistant|>` marker that the template itself inserts. Padding uses `<|pad|>`
(id 3) with label -1.

System messages: a leading run of `system` messages is folded into the first user turn as
`{system}\\n\\n{user}` (several system messages are joined with a blank line). The model has no
separate system role; folding keeps the instruction visible to it without inventing a fourth
control token. A system message anywhere else is rejected with a clear error.

Prompt-injection guard: every content string goes through `strip_special_literals`, so a user (or
a Wikipedia article) writing `<|assistant|>` gets plain text, never the control token. Ids of
control tokens are only ever inserted here, by id.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from wikigpt.errors import WikigptError
from wikigpt.specials import (
    ASSISTANT,
    ASSISTANT_ID,
    END,
    END_ID,
    PAD_ID,
    USER,
    USER_ID,
    strip_special_literals,
)

IGNORE_INDEX = -1  # label value the loss skips (matches the model's ignore_index)
# Generation stops at any control token: a fine-tuned model closes with <|end|>, but a base (or
# confused) model may open a new turn with <|user|> instead; none of them is ever shown as text.
STOP_IDS = (END_ID, USER_ID, ASSISTANT_ID, PAD_ID)
ROLES = ("system", "user", "assistant")
SYSTEM_SEPARATOR = "\n\n"


def normalize_messages(messages: Sequence[Any], where: str = "messages") -> list[dict[str, str]]:
    """Validate a message list and return `[{"role": "user"|"assistant", "content": str}, ...]`.

    Leading system messages are folded into the first user turn; content has special-token
    literals stripped; roles must alternate user, assistant, user, ... starting with user.
    `where` prefixes error messages (e.g. "data/my.jsonl:12").
    """
    if not isinstance(messages, (list, tuple)):
        raise WikigptError(f"{where}: 'messages' must be a list, got {type(messages).__name__}")
    system_parts: list[str] = []
    turns: list[dict[str, str]] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise WikigptError(f"{where}: message {i} must be an object with 'role' and 'content'")
        role, content = msg.get("role"), msg.get("content")
        if role not in ROLES:
            raise WikigptError(f"{where}: message {i} has role {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise WikigptError(f"{where}: message {i} ({role}) content must be a string, got {type(content).__name__}")
        content = strip_special_literals(content)
        if role == "system":
            if turns:
                raise WikigptError(
                    f"{where}: message {i} is a system message after the conversation started; "
                    "system messages are only allowed at the beginning (they are folded into the first user turn)"
                )
            system_parts.append(content)
            continue
        expected = "user" if len(turns) % 2 == 0 else "assistant"
        if role != expected:
            raise WikigptError(f"{where}: message {i} has role {role!r} but {expected!r} was expected (turns must alternate user/assistant, starting with user)")
        turns.append({"role": role, "content": content})
    if not turns:
        raise WikigptError(f"{where}: conversation has no user message")
    if system_parts:
        turns[0] = {"role": "user", "content": SYSTEM_SEPARATOR.join(system_parts + [turns[0]["content"]])}
    return turns


def _require_last(turns: list[dict[str, str]], role: str, where: str) -> None:
    if turns[-1]["role"] != role:
        what = "an assistant answer (to train on)" if role == "assistant" else "a user message (to answer)"
        raise WikigptError(f"{where}: conversation must end with {what}, but it ends with a {turns[-1]['role']} message")


def render_text(messages: Sequence[Any], add_generation_prompt: bool = False) -> str:
    """The exact template string. Tokenizing it yields the same ids as `encode_conversation` /
    `encode_prompt` (the tokenizer splits on the control tokens first); the HF export's jinja
    `chat_template` must reproduce it character for character."""
    turns = normalize_messages(messages)
    parts = []
    for t in turns:
        parts.append(f"{USER}{t['content']}{END}" if t["role"] == "user" else f"{ASSISTANT}{t['content']}{END}")
    if add_generation_prompt:
        _require_last(turns, "user", "messages")
        parts.append(ASSISTANT)
    return "".join(parts)


def _encode_text(tokenizer: Any, text: str) -> list[int]:
    if not text:
        return []
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


def _encode_turns(tokenizer: Any, turns: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    ids: list[int] = []
    labels: list[int] = []
    for t in turns:
        body = _encode_text(tokenizer, t["content"])
        if t["role"] == "user":
            piece = [USER_ID, *body, END_ID]
            ids += piece
            labels += [IGNORE_INDEX] * len(piece)
        else:
            ids += [ASSISTANT_ID, *body, END_ID]
            # The marker is the template's doing; the text and the closing <|end|> are the answer.
            labels += [IGNORE_INDEX, *body, END_ID]
    return ids, labels


def encode_conversation(tokenizer: Any, messages: Sequence[Any], where: str = "messages") -> tuple[list[int], list[int]]:
    """Token ids of a whole conversation and its training labels (same length).

    `labels[i]` is the target for position i of the *input*: the caller shifts (x = ids[:-1],
    y = labels[1:]) so that each assistant token is predicted from everything before it.
    """
    turns = normalize_messages(messages, where)
    _require_last(turns, "assistant", where)
    return _encode_turns(tokenizer, turns)


def encode_prompt(tokenizer: Any, messages: Sequence[Any], where: str = "messages") -> list[int]:
    """History + `<|user|>{text}<|end|><|assistant|>`: ids ready for the model to generate the answer."""
    turns = normalize_messages(messages, where)
    _require_last(turns, "user", where)
    ids, _ = _encode_turns(tokenizer, turns)
    return ids + [ASSISTANT_ID]


def truncate_history(
    tokenizer: Any, messages: Sequence[Any], max_prompt_tokens: int
) -> tuple[list[dict[str, str]], list[int]]:
    """Drop the oldest user/assistant exchanges until the prompt fits in `max_prompt_tokens`.

    Returns (kept messages, prompt ids). System messages are folded into the first user turn, so
    they are dropped with it: a long chat keeps its most recent context, which is what matters for
    a small-context model. Raises WikigptError if the last user message alone does not fit.
    """
    turns = normalize_messages(messages)
    _require_last(turns, "user", "messages")
    if max_prompt_tokens < 2:
        raise WikigptError(f"context too small for a prompt: max_prompt_tokens={max_prompt_tokens}")
    # Encode each turn once; drop whole exchanges (user + assistant) from the front.
    pieces = [_encode_turns(tokenizer, [t])[0] for t in turns]
    total = sum(len(p) for p in pieces) + 1  # + the <|assistant|> generation marker
    start = 0
    while total > max_prompt_tokens and start < len(turns) - 1:
        total -= len(pieces[start]) + len(pieces[start + 1])
        start += 2
    if total > max_prompt_tokens:
        raise WikigptError(
            f"message too long: the prompt needs {total} tokens but the context allows {max_prompt_tokens}; shorten it"
        )
    kept = turns[start:]
    ids = [tok for p in pieces[start:] for tok in p] + [ASSISTANT_ID]
    return kept, ids


def pad_batch(
    sequences: Iterable[tuple[list[int], list[int]]], length: int | None = None
) -> tuple[list[list[int]], list[list[int]]]:
    """Right-pad (ids, labels) pairs to a common length with `<|pad|>` / -1."""
    seqs = list(sequences)
    width = length if length is not None else max(len(ids) for ids, _ in seqs)
    ids_out, labels_out = [], []
    for ids, labels in seqs:
        if len(ids) != len(labels):
            raise ValueError("ids and labels differ in length")
        if len(ids) > width:
            raise ValueError(f"sequence of {len(ids)} tokens does not fit in {width}")
        pad = width - len(ids)
        ids_out.append(list(ids) + [PAD_ID] * pad)
        labels_out.append(list(labels) + [IGNORE_INDEX] * pad)
    return ids_out, labels_out


class StreamDecoder:
    """Turn a stream of token ids into text pieces as soon as they are complete UTF-8.

    A byte-level BPE token can hold part of a multi-byte character (an emoji, a CJK ideograph);
    decoding it alone gives U+FFFD. We decode the pending ids together and emit only once the
    text no longer ends in a replacement character, so streamed output equals the full decode.
    """

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self.pending: list[int] = []
        self.max_pending = 8  # a UTF-8 character spans at most 4 bytes; beyond that, flush anyway

    def push(self, token_id: int) -> str:
        self.pending.append(int(token_id))
        text = self.tokenizer.decode(self.pending, skip_special_tokens=False)
        if text.endswith("\ufffd") and len(self.pending) < self.max_pending:
            return ""
        self.pending = []
        return text

    def flush(self) -> str:
        text = self.tokenizer.decode(self.pending, skip_special_tokens=False) if self.pending else ""
        self.pending = []
        return text
