"""`codiff-bench restore INPUT... -o OUTDIR`: restore your own JPEGs (files or folders) with any method.

Each input image is written as OUTDIR/<name>.png (folders keep their relative layout). The method is any
registered one (`--method`, default codiff); the flags below set its config when given, and `--set KEY=VALUE`
sets any other config key. A failing image is reported and skipped; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# flag destination -> method config key (only flags the user gave are passed to the method)
_CONFIG_FLAGS = {
    "sd_path": "sd_path", "codiff": "codiff", "cave": "cave", "dtype": "dtype", "color_fix": "color_fix",
    "merge_lora": "merge_lora", "vae_encoder_tile": "vae_encoder_tile", "vae_decoder_tile": "vae_decoder_tile",
    "latent_tile": "latent_tile", "latent_overlap": "latent_overlap",
}


def collect_images(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(image path, output name relative to OUTDIR as .png) for every file and every image inside folders,
    plus messages for inputs that do not exist or hold no images."""
    from bench.imageio import list_images

    found: list[tuple[Path, Path]] = []
    problems: list[str] = []
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_dir():
            images = list_images(path)
            if not images:
                problems.append(f"{path}: folder holds no images")
            found += [(p, p.relative_to(path).with_suffix(".png")) for p in images]
        elif path.is_file():
            found.append((path, Path(path.stem + ".png")))
        else:
            problems.append(f"{path}: no such file or folder")
    return found, problems


def _value(text: str):
    import yaml

    return yaml.safe_load(text)


def method_config(args: argparse.Namespace) -> dict:
    """The method config from the flags that were given and `--set` pairs."""
    config = {key: getattr(args, dest) for dest, key in _CONFIG_FLAGS.items() if getattr(args, dest, None) is not None}
    for pair in args.set or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        config[key.strip()] = _value(value)
    if args.device:
        config["device"] = args.device
    return config


def register(subparsers) -> None:
    parser = subparsers.add_parser("restore", help="restore JPEG images (files or folders) to PNG",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    parser.add_argument("-o", "--output", required=True, help="output folder for the PNGs")
    parser.add_argument("--method", default="codiff", help="registered method (default codiff; see `methods`)")
    parser.add_argument("--sd-path", dest="sd_path", help="stable-diffusion-2-1-base folder or cached hub id")
    parser.add_argument("--codiff", help="codiff.pkl or a project checkpoint (.safetensors + .json)")
    parser.add_argument("--cave", help="cave.pth or a project checkpoint")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--dtype", choices=("auto", "fp32", "fp16", "bf16"),
                        help="precision (codiff; default auto: fp32 on CPUs, fp16 on CUDA)")
    parser.add_argument("--color-fix", dest="color_fix", choices=("adain", "wavelet", "none"),
                        help="colour correction (codiff; default adain)")
    parser.add_argument("--no-merge-lora", dest="merge_lora", action="store_false", default=None,
                        help="keep LoRA adapters separate instead of merging them (codiff)")
    parser.add_argument("--vae-encoder-tile", dest="vae_encoder_tile", type=int, help="pixels; 0 = no tiling")
    parser.add_argument("--vae-decoder-tile", dest="vae_decoder_tile", type=int, help="latent pixels; 0 = none")
    parser.add_argument("--latent-tile", dest="latent_tile", type=int, help="UNet tile, latent pixels; 0 = none")
    parser.add_argument("--latent-overlap", dest="latent_overlap", type=int, help="UNet tile overlap")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other method config entry")
    parser.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=restore_command)


def restore_command(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from bench.imageio import ImageError, read_rgb8, save_png, to_tensor
    from methods.base import MethodError
    from methods.registry import create_method

    images, problems = collect_images(args.inputs)
    for message in problems:
        print(f"error: {message}", file=sys.stderr)
    try:
        method = create_method(args.method, **method_config(args))
        method.load()
    except (MethodError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out_dir = Path(args.output)
    failed = 0
    written: set[Path] = set()
    for path, name in tqdm(images, desc=f"restore ({args.method})", unit="image", disable=args.quiet):
        target = out_dir / name
        if target in written:
            print(f"error: {path}: output {target} would overwrite another input's result", file=sys.stderr)
            failed += 1
            continue
        written.add(target)
        if args.skip_existing and target.is_file():
            continue
        try:
            lq = to_tensor(read_rgb8(path).rgb)
            jpeg = path.read_bytes() if path.suffix.lower() in (".jpg", ".jpeg") else None
            save_png(method.restore(lq, jpeg_bytes=jpeg), target)
        except (ImageError, MethodError, RuntimeError, ValueError, OSError) as exc:
            print(f"error: {path}: {exc}", file=sys.stderr)
            failed += 1
    print(f"{len(images) - failed} of {len(images)} images restored into {out_dir}"
          + (f"; {failed} failed" if failed else ""))
    return 1 if failed or problems else 0
