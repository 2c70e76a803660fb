"""`wikigpt chat`: talk to a trained checkpoint in the terminal.

    wikigpt chat                               # interactive, the SFT model (data/models/sft)
    wikigpt chat --model base                  # the pretrained model (data/models/base)
    wikigpt chat --prompt "What is Veloria?"   # one-shot: print the answer and exit
    echo "What is Veloria?" | wikigpt chat     # stdin works too (one line per user turn)

Tokens are printed as they are generated (KV-cached decoding); a multi-byte character split
across tokens is held back until complete. The answer ends at `<|end|>` (or any other control
token) or after --max-new-tokens. A long conversation keeps the most recent turns: the oldest
user/assistant exchanges are dropped so the prompt plus the answer fit in the model's context.
In the interactive session, `/reset` starts a new conversation and `/quit` (or Ctrl-D) leaves.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

import torch

from wikigpt.chat_template import STOP_IDS, StreamDecoder, truncate_history
from wikigpt.errors import WikigptError
from wikigpt.model import GPT
from wikigpt.tokenizer import load_tokenizer
from wikigpt.train.checkpoint import load_model
from wikigpt.train.dist import pick_device

MODEL_DIRS = {"base": Path("data/models/base"), "sft": Path("data/models/sft")}
DEFAULT_TOKENIZER = Path("data/tokenizer")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wikigpt chat", description="Chat with a trained wikigpt checkpoint.")
    p.add_argument("--model", choices=sorted(MODEL_DIRS), default="sft", help="pipeline model to load (default: sft)")
    p.add_argument("--checkpoint", type=Path, help="a model directory (model.safetensors + config.json); overrides --model")
    p.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER, help="tokenizer directory or tokenizer.json")
    p.add_argument("--prompt", help="one-shot: answer this message and exit")
    p.add_argument("--system", help="instructions folded into the first user turn")
    p.add_argument("--temperature", type=float, default=0.7, help="0 = greedy (default 0.7)")
    p.add_argument("--top-k", type=int, default=50, help="sample from the k most likely tokens (0 = off)")
    p.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling threshold (1 = off)")
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--seed", type=int, help="random seed for reproducible sampling")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    p.add_argument("--threads", type=int, default=1, help="torch threads on CPU (default 1: fastest for token-by-token decoding of small models)")
    return p


def load_chat_model(model_dir: Path, tokenizer_path: Path, device: torch.device) -> tuple[GPT, Any]:
    """Load and cross-check tokenizer and checkpoint; errors say which file and what to do."""
    if not model_dir.exists():
        raise WikigptError(f"{model_dir}: no checkpoint there (run `dvc repro` first, or pass --checkpoint DIR)")
    tokenizer = load_tokenizer(tokenizer_path)
    model = load_model(model_dir, device=device)
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    if model.config.vocab_size != vocab:
        raise WikigptError(
            f"{model_dir}: checkpoint has vocab_size {model.config.vocab_size} but tokenizer {tokenizer_path} has {vocab} "
            "tokens: they come from different runs (pass the matching --tokenizer)"
        )
    return model, tokenizer


class ChatSession:
    """A conversation with a model: history, context-window truncation, streamed replies."""

    def __init__(self, model: GPT, tokenizer: Any, args: argparse.Namespace, out: TextIO, err: TextIO):
        self.model, self.tokenizer, self.args, self.out, self.err = model, tokenizer, args, out, err
        self.messages: list[dict[str, str]] = []
        self.generator = None
        if args.seed is not None:
            self.generator = torch.Generator(device=next(model.parameters()).device).manual_seed(args.seed)
        block = model.config.block_size
        # Leave room for the answer, but never shrink the prompt below half the context.
        self.max_prompt = max(block - args.max_new_tokens, block // 2)

    def reset(self) -> None:
        self.messages = []

    def reply(self, text: str) -> str:
        """Add a user turn, stream the answer to `out`, keep it in the history, return it."""
        content = text if self.messages or not self.args.system else f"{self.args.system}\n\n{text}"
        self.messages.append({"role": "user", "content": content})
        try:
            kept, ids = truncate_history(self.tokenizer, self.messages, self.max_prompt)
        except WikigptError:
            self.messages.pop()
            raise
        if len(kept) < len(self.messages):
            dropped = (len(self.messages) - len(kept)) // 2
            print(f"(dropped the {dropped} oldest exchange(s) to fit the {self.model.config.block_size}-token context)", file=self.err)
            self.messages = kept
        decoder = StreamDecoder(self.tokenizer)
        pieces = []
        stream = self.model.generate_stream(
            ids,
            self.args.max_new_tokens,
            temperature=self.args.temperature,
            top_k=self.args.top_k or None,
            top_p=self.args.top_p if self.args.top_p < 1.0 else None,
            stop_ids=STOP_IDS,
            generator=self.generator,
        )
        for token in stream:
            piece = decoder.push(token)
            if not pieces:
                piece = piece.lstrip()  # a base model often opens with a space; drop it
            if piece:
                pieces.append(piece)
                self.out.write(piece)
                self.out.flush()
        tail = decoder.flush()
        if tail and not pieces:
            tail = tail.lstrip()
        if tail:
            pieces.append(tail)
            self.out.write(tail)
        self.out.write("\n")
        self.out.flush()
        answer = "".join(pieces).strip()
        self.messages.append({"role": "assistant", "content": answer})
        return answer


def repl(session: ChatSession, stdin: TextIO, out: TextIO) -> None:
    interactive = stdin.isatty()
    if interactive:
        print("wikigpt chat: /reset starts over, /quit or Ctrl-D leaves.", file=out)
    while True:
        if interactive:
            try:
                line = input("you> ")
            except EOFError:
                print(file=out)
                return
        else:
            line = stdin.readline()
            if not line:
                return
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit"):
            return
        if line == "/reset":
            session.reset()
            print("(new conversation)", file=out)
            continue
        out.write("assistant> ")
        out.flush()
        try:
            session.reply(line)
        except WikigptError as e:
            out.write("\n")
            print(f"error: {e}", file=sys.stderr)


def cli(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.max_new_tokens < 1:
        raise WikigptError("--max-new-tokens must be >= 1")
    if args.temperature < 0:
        raise WikigptError("--temperature must be >= 0")
    if not 0.0 < args.top_p <= 1.0:
        raise WikigptError("--top-p must be in (0, 1]")
    if args.seed is not None:
        torch.manual_seed(args.seed)
    device = pick_device(args.device)
    if device.type == "cpu" and args.threads > 0:
        torch.set_num_threads(args.threads)
    model_dir = args.checkpoint if args.checkpoint is not None else MODEL_DIRS[args.model]
    model, tokenizer = load_chat_model(model_dir, args.tokenizer, device)
    session = ChatSession(model, tokenizer, args, sys.stdout, sys.stderr)
    if args.prompt is not None:
        session.reply(args.prompt)
        return 0
    repl(session, sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
