"""The `harness` command: the only module that prints.

Exit codes (shared/design.md): 0 every check valid, 1 a check invalid, 2 bad scenario or usage,
3 infrastructure error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

import trio

from . import __version__
from .errors import HarnessError

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_INTERRUPTED = 130


def _say(line: str) -> None:
    print(line, flush=True)


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    trio.run(run_demo, _say)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harness", description="Chaos testing for Phoenix-Channels-style real-time systems."
    )
    parser.add_argument("--version", action="version", version=f"harness {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="two real nodes, a cross-node exchange, a kill")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except HarnessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INFRA
