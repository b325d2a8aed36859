"""`codiff-bench`: the command-line entry point.

Sub-commands are entries of the `command` registry: the harness's own (`bench.commands`), and those that
installed packages declare in the entry-point group `codiff_bench.commands` (CODiff's training and analysis
commands among them). Each entry is a `register(subparsers)` function that adds its parser and sets `func`
to a callable taking the parsed arguments and returning an exit status. Command modules import only light
dependencies at top level, so that `--help` starts fast.

Every user-facing error derives from `bench.core.errors.BenchError`: it is caught here, once, and printed as
one message with exit status 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from bench.core.errors import BenchError
from bench.core.registry import registry
from bench.core.terminal import EscapingFormatter, shown

COMMANDS = registry("command", group="codiff_bench.commands", builtins={
    name: f"bench.commands.{module}:register" for name, module in {
        "run": "run", "report": "report", "weights": "weights", "restore": "restore", "profile": "profile",
        "methods": "catalog", "metrics": "catalog", "compare": "compare",
        "scoring-benchmark": "scoring_benchmark"}.items()})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codiff-bench",
        description="Benchmark JPEG artifact removal: CODiff, its CaVE embedder and baselines, with "
                    "pyiqa metrics, complexity profiling and HTML reports.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    registered = set()
    for name in COMMANDS.names():
        register = COMMANDS.get(name)
        if register not in registered:  # one module may register several commands
            registered.add(register)
            register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter("%(levelname)s %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler])
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BenchError as exc:
        print(f"codiff-bench {args.command}: error: {shown(exc, multiline=True)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"codiff-bench {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return closed_pipe()


def closed_pipe() -> int:
    """The reader of stdout went away (`codiff-bench methods | head -1`): stop quietly, as a command killed by
    SIGPIPE does (exit status 141), with stdout pointed at /dev/null so that flushing it at exit cannot fail."""
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 128 + 13


if __name__ == "__main__":
    sys.exit(main())
