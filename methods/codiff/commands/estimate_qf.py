"""`codiff-bench estimate-qf INPUT...`: CaVE's estimate of each image's JPEG quality factor (1-100).

Prints one line per image: the path and the estimate (tab-separated), or JSON lines with --json.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    parser = subparsers.add_parser("estimate-qf", help="estimate the JPEG quality factor of images with CaVE",
                                   description=__doc__)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("--cave", help="cave.pth or a project checkpoint (default: cave.pth in $CODIFF_BENCH_WEIGHTS, "
                                       "else ~/.cache/codiff-bench/weights, when present; else the shipped small "
                                       "dual CaVE)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    parser.add_argument("--json", action="store_true", help="JSON lines: {\"path\": ..., \"qf\": ...}")
    parser.set_defaults(func=estimate_qf_command)


def estimate_qf_command(args: argparse.Namespace) -> int:
    import torch

    from bench.core.device import checked_device
    from bench.core.imageio import ImageError, collect_images, read_rgb8, to_tensor
    from bench.core.terminal import print_input_problems, shown
    from methods.codiff.cave import load_cave
    from methods.codiff.cave_small import default_cave

    device = checked_device(args.device)
    cave_path = args.cave or default_cave()
    cave = load_cave(cave_path).to(device)
    images, problems, left_out = collect_images(args.inputs)
    print_input_problems(problems, left_out)
    if not args.cave:
        print(f"CaVE: {shown(cave_path)}", file=sys.stderr)
    failed = 0
    for path, _ in images:
        try:
            with torch.inference_mode():
                qf = float(cave.predict_qf(to_tensor(read_rgb8(path).rgb).to(device)))
        except (ImageError, RuntimeError, OSError) as exc:
            print(f"error: {shown(path)}: {shown(exc, multiline=True)}", file=sys.stderr)
            failed += 1
            continue
        print(json.dumps({"path": str(path), "qf": round(qf, 2)}) if args.json else f"{shown(path)}\t{qf:.1f}")
    return 1 if failed or problems else 0
