"""`codiff-bench precision`: the error bf16 and fp16 put into CODiff's output against float32, in 8-bit levels,
and the speed each buys (methods.codiff.precision); on the parity vectors' tiny models, or with `--full-size
SIDE` on the SD-2.1-sized model with random weights."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.core.arguments import at_least


def register(subparsers) -> None:
    parser = subparsers.add_parser("precision", help="reduced precision against float32: 8-bit error and speed",
                                   description=__doc__)
    parser.add_argument("--full-size", dest="full_size", type=at_least(8), metavar="SIDE",
                        help="measure the full-size random-weight model on one SIDE x SIDE image instead")
    parser.add_argument("--parity", type=Path, help="parity vectors folder (default: ../shared/parity beside the "
                        "repository)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=at_least(1), default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=at_least(1), default=1, help="timed runs per dtype, the best kept (default 1)")
    parser.add_argument("--dtypes", nargs="+", default=["bf16", "fp16"], choices=["bf16", "fp16"],
                        help="reduced precisions to compare with fp32 (default bf16 fp16)")
    parser.set_defaults(func=precision_command)


def precision_command(args: argparse.Namespace) -> int:
    import json

    import torch

    from bench.core.device import checked_device
    from bench.core.errors import ConfigError
    from bench.core.terminal import shown
    from methods.codiff.precision import PARITY, full_size_case, measure, native_bf16_cpu, parity_cases

    device = checked_device(args.device)
    parity = args.parity or PARITY
    if args.full_size is None and not (parity / "official-tiny").is_dir():
        raise ConfigError(f"no parity vectors at {shown(parity / 'official-tiny')}: pass --parity DIR (the "
                          "folder holding official-tiny/), or --full-size SIDE to measure the full-size model")
    torch.set_num_threads(args.threads)
    if args.full_size is not None:
        cases = {f"full-size {args.full_size}x{args.full_size}": full_size_case(args.full_size, device)}
    else:
        cases = parity_cases(parity, device)
    report = {"device": device, "threads": args.threads, "native_bf16_cpu": native_bf16_cpu(), "cases": {}}
    with torch.inference_mode():
        for name, (build, lq) in cases.items():
            report["cases"][name] = measure(build, lq, args.dtypes, device, args.repeats)
            print(json.dumps({name: report["cases"][name]}), flush=True)
    print(json.dumps(report, indent=2))
    return 0
