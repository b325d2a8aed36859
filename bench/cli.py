"""`codiff-bench`: the command-line entry point.

Each sub-command lives in its own module under `bench.commands` and defines
`register(subparsers) -> None`, which adds its parser and sets `func` to a callable taking the parsed
arguments and returning an exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import bench.commands
from bench.terminal import EscapingFormatter


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="codiff-bench",
        description="Benchmark JPEG artifact removal: CODiff, its CaVE embedder and baselines, with "
                    "pyiqa metrics, complexity profiling and HTML reports.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(bench.commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"bench.commands.{info.name}")
        module.register(subparsers)
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
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
