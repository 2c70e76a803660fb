"""Reserved control tokens, shared by the tokenizer, clean, pack, sft and serve.

Their ids are fixed (0-3) so that every artifact downstream (packed tokens, checkpoints, the
HF export) can rely on them without reading the tokenizer.
"""

import re

END, USER, ASSISTANT, PAD = "<|end|>", "<|user|>", "<|assistant|>", "<|pad|>"
SPECIAL_TOKENS = [END, USER, ASSISTANT, PAD]
END_ID, USER_ID, ASSISTANT_ID, PAD_ID = 0, 1, 2, 3

# Anything that looks like a control token, reserved or not: `<|...|>` with no whitespace inside.
# Removing the whole family (not only our four) keeps future specials safe too.
SPECIAL_LITERAL = re.compile(r"<\|[^\s<>|]{0,64}\|>")


def strip_special_literals(text: str) -> str:
    """Remove control-token look-alikes so user or corpus text can never become a control token."""
    # Loop: removing one literal can join two halves into a new one ("<|en<|x|>d|>").
    while True:
        stripped = SPECIAL_LITERAL.sub("", text)
        if stripped == text:
            return stripped
        text = stripped


def has_special_literal(text: str) -> bool:
    return SPECIAL_LITERAL.search(text) is not None
