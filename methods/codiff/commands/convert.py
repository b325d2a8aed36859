"""`codiff-bench convert SRC DST`: convert a CODiff (codiff.pkl) or CaVE (cave.pth) checkpoint between the
official torch format and this project's safetensors + JSON; DST's suffix picks the format (.safetensors or
.json: this project's; anything else: the official one) unless `--format` says."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser("convert", help="convert a CODiff or CaVE checkpoint between formats",
                                   description=__doc__)
    parser.add_argument("src", metavar="SRC", help="checkpoint to read (official file, or NAME.safetensors / NAME.json)")
    parser.add_argument("dst", metavar="DST", help="where to write (.safetensors / .json: project format; else official)")
    parser.add_argument("--format", choices=("official", "project"), help="override the format chosen by suffix")
    parser.set_defaults(func=convert_command)


def convert_command(args: argparse.Namespace) -> int:
    from bench.core.paths import check_output_file
    from bench.core.terminal import shown
    from methods.codiff.convert import convert_checkpoint

    from methods.codiff.checkpoint import PROJECT_SUFFIXES, project_paths

    project = (args.format or ("project" if Path(args.dst).suffix in PROJECT_SUFFIXES else "official")) == "project"
    for target in (project_paths(args.dst) if project else [args.dst]):
        check_output_file(target, "destination")
    print(shown(convert_checkpoint(args.src, args.dst, args.format)))
    return 0
