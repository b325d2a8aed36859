"""`codiff-bench estimate-qf INPUT...`: CaVE's estimate of each image's JPEG quality factor (1-100).

Prints one line per image: the path, the estimate and the estimator's measured error near that QF
(tab-separated), or JSON lines with --json. The error comes from the checkpoint's JSON (its evaluation on
photos never used in training); a CaVE without such a figure, or with a mean error above 10 QF, is flagged
on every line and in a warning. An input that is not a JPEG file is flagged `not-jpeg`: the estimate reads the
traces a decoded JPEG keeps, so it means something only if the image was JPEG-compressed before it was saved.
An image smaller than 32 x 32 pixels (one token of CaVE's grid; below it the estimate does not follow the
compression) is refused with an error line. Inputs that do not exist are a message and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MIN_SIDE = 32  # CaVE embeds on a 1/32 grid: smaller images give estimates that do not follow the QF
JPEG_MAGIC = b"\xff\xd8\xff"


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
    from bench.core.imageio import ImageError, read_rgb8, require_inputs, to_tensor
    from bench.core.terminal import print_image_error, print_input_problems, shown
    from methods.codiff.cave import load_cave
    from methods.codiff.cave_small import default_cave
    from methods.codiff.qf_error import POOR_MAE, checkpoint_qf_error

    device = checked_device(args.device)
    images, left_out = require_inputs(args.inputs)
    cave_path = args.cave or default_cave()
    cave = load_cave(cave_path).to(device)
    print_input_problems([], left_out)
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
    not_jpeg = [path for path, _ in images if not is_jpeg_file(path)]
    if not_jpeg:
        print(f"warning: {len(not_jpeg)} input(s) are not JPEG files (flagged not-jpeg): CaVE reads the traces a "
              "decoded JPEG keeps, so their estimates mean something only if they were JPEG-compressed before "
              "they were saved; an image that never was gets a meaningless number", file=sys.stderr)
    failed = 0
    for path, _ in images:
        try:
            rgb = read_rgb8(path).rgb
            if min(rgb.shape[:2]) < MIN_SIDE:
                raise ImageError(f"{rgb.shape[1]} x {rgb.shape[0]} pixels is too small for a QF estimate: CaVE needs "
                                 f"at least {MIN_SIDE} x {MIN_SIDE} (below that its estimate does not follow the "
                                 "compression); give the image at its full size")
            with torch.inference_mode():
                qf = float(cave.predict_qf(to_tensor(rgb).to(device)))
        except (ImageError, RuntimeError, OSError) as exc:
            print_image_error(path, exc)
            failed += 1
            continue
        mae = None if error is None else round(error.near(qf), 2)
        flags = ",".join(f for f in (flag, "not-jpeg" if path in not_jpeg else "") if f)
        if args.json:
            print(json.dumps({"path": str(path), "qf": round(qf, 2), "error_mae": mae, "flag": flags or None}))
        else:
            margin = "error unmeasured" if mae is None else f"±{mae:.1f} (measured MAE near this QF)"
            print(f"{shown(path)}\t{qf:.1f}\t{margin}" + (f"\t[{flags}]" if flags else ""))
    return 1 if failed else 0


def is_jpeg_file(path: Path) -> bool:
    """Whether the file is a JPEG by its content (the SOI marker), whatever its name."""
    try:
        with open(path, "rb") as handle:
            return handle.read(3) == JPEG_MAGIC
    except OSError:
        return False  # an unreadable file gets its own error line when it is read
