"""`codiff-bench restore INPUT... -o OUTDIR --method NAME`: restore your own JPEGs (files or folders).

Each input image is written as OUTDIR/<name>.png (folders keep their relative layout). The method is any
registered one (`codiff-bench methods`); `--set KEY=VALUE` sets its options as a run config's method entry
does (YAML values; dotted keys for nested options, e.g. `--set dtype=bf16 --set tiles.latent_tile=64`).
A failing image is reported and skipped; the exit status is 1 if any failed. An input that does not exist or
a folder without images, an output folder that is a file, an unknown method or option is a message and exit
status 2 before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def method_config(args: argparse.Namespace) -> dict:
    """The method options from `--set KEY=VALUE` pairs (dotted keys reach nested options)."""
    from bench.core.config import apply_overrides

    return apply_overrides({}, list(args.set or []))


def register(subparsers) -> None:
    parser = subparsers.add_parser("restore", help="restore JPEG images (files or folders) to PNG",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("-o", "--output", required=True, help="output folder for the PNGs")
    parser.add_argument("--method", required=True, help="registered method (see `codiff-bench methods`)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="a method option, e.g. --set sd_path=... --set dtype=bf16 (repeatable)")
    parser.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=restore_command)


def restore_command(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from bench.core.device import checked_device
    from bench.core.imageio import ImageError, read_rgb8, require_inputs, save_png, to_tensor
    from bench.core.paths import check_output_folder
    from bench.core.terminal import print_image_error, print_input_problems, shown
    from methods.base import MethodError, RestoreRequest
    from methods.registry import create_method

    method = create_method(args.method, device=checked_device(args.device), **method_config(args))
    check_output_folder(args.output, "output folder (-o)")
    images, left_out = require_inputs(args.inputs)
    method.load()
    print_input_problems([], left_out)
    out_dir = Path(args.output)
    failed = 0
    written: set[Path] = set()
    for path, name in tqdm(images, desc=f"restore ({args.method})", unit="image", disable=args.quiet):
        target = out_dir / name
        if target in written:
            print(f"error: {shown(path)}: output {shown(target)} would overwrite another input's result",
                  file=sys.stderr)
            failed += 1
            continue
        written.add(target)
        if args.skip_existing and target.is_file():
            continue
        try:
            lq = to_tensor(read_rgb8(path).rgb)
            jpeg = path.read_bytes() if path.suffix.lower() in (".jpg", ".jpeg") else None
            save_png(method.restore(RestoreRequest(lq, jpeg_bytes=jpeg)), target)
        except (ImageError, MethodError, RuntimeError, ValueError, OSError) as exc:
            print_image_error(path, exc)
            failed += 1
    print(f"{len(images) - failed} of {len(images)} images restored into {shown(out_dir)}"
          + (f"; {failed} failed" if failed else ""))
    return 1 if failed else 0
