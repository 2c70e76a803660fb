"""The `wikigpt` console command: a thin dispatcher to subcommands that live with their code.

Each subcommand module exposes `cli(argv: list[str]) -> int` with its own argparse, and is
imported only when used, so `wikigpt chat` does not pay for FastAPI and vice versa.
"""

from __future__ import annotations

import importlib
import sys

from wikigpt.errors import WikigptError

SUBCOMMANDS = {
    "make-sample": ("wikigpt.data.sample_dump", "regenerate the bundled sample dump in data/sample/"),
    "chat": ("wikigpt.chat", "chat with a trained checkpoint (interactive or --prompt)"),
    "export": ("wikigpt.export", "export a checkpoint as a Hugging Face LlamaForCausalLM directory"),
    "serve": ("wikigpt.serve", "OpenAI-compatible HTTP server with a chat page"),
    "report": ("wikigpt.report", "render the run report from metrics/ and plots/"),
}


def usage() -> str:
    lines = ["usage: wikigpt <command> [options]", "", "commands:"]
    lines += [f"  {name:<12} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "Pipeline stages run through DVC: `dvc repro` (see README)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"wikigpt: unknown command '{name}'\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    try:
        return int(module.cli(rest) or 0)
    except WikigptError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
