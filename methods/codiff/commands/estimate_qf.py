"""`codiff-bench estimate-qf INPUT...`: CaVE's estimate of each image's JPEG quality factor (1-100).

Prints one line per image: the path, the estimate and the estimator's measured error near that QF
(tab-separated), or JSON lines with --json. The error comes from the checkpoint's JSON (its evaluation on
photos never used in training); a CaVE without such a figure, or with a mean error above 10 QF, is flagged
on every line and in a warning.
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
    parser.add_argument("--json", action="store_true",
                        help="JSON lines: {\"path\": ..., \"qf\": ..., \"error_mae\": ..., \"flag\": ...}")
    parser.set_defaults(func=estimate_qf_command)


def estimate_qf_command(args: argparse.Namespace) -> int:
    import torch

    from bench.core.device import checked_device
    from bench.core.imageio import ImageError, collect_images, read_rgb8, to_tensor
    from bench.core.terminal import print_input_problems, shown
    from methods.codiff.cave import load_cave
    from methods.codiff.cave_small import default_cave
    from methods.codiff.qf_error import POOR_MAE, checkpoint_qf_error

    device = checked_device(args.device)
    cave_path = args.cave or default_cave()
    cave = load_cave(cave_path).to(device)
    images, problems, left_out = collect_images(args.inputs)
    print_input_problems(problems, left_out)
    if not args.cave:
        print(f"CaVE: {shown(cave_path)}", file=sys.stderr)
    error = checkpoint_qf_error(cave_path)
    if error is None:
        flag = "unverified"
        print(f"warning: {shown(cave_path)} records no measured QF error; its estimates are unverified",
              file=sys.stderr)
    elif error.poor:
        flag = "poor"
        print(f"warning: {shown(cave_path)}: {error.summary()}, above {POOR_MAE:g}: treat its estimates as rough",
              file=sys.stderr)
    else:
        flag = ""
        print(f"CaVE {error.summary()}", file=sys.stderr)
    failed = 0
    for path, _ in images:
        try:
            with torch.inference_mode():
                qf = float(cave.predict_qf(to_tensor(read_rgb8(path).rgb).to(device)))
        except (ImageError, RuntimeError, OSError) as exc:
            print(f"error: {shown(path)}: {shown(exc, multiline=True)}", file=sys.stderr)
            failed += 1
            continue
        mae = None if error is None else round(error.near(qf), 2)
        if args.json:
            print(json.dumps({"path": str(path), "qf": round(qf, 2), "error_mae": mae, "flag": flag or None}))
        else:
            margin = "error unmeasured" if mae is None else f"±{mae:.1f} (measured MAE near this QF)"
            print(f"{shown(path)}\t{qf:.1f}\t{margin}" + (f"\t[{flag}]" if flag else ""))
    return 1 if failed or problems else 0
