"""`codiff-bench profile`: parameters, MACs, latency and memory of full-size architectures (the paper's Table 2)."""

from __future__ import annotations

import argparse

from bench.core.arguments import at_least, image_size

DEFAULT_METHODS = "codiff,osediff,diffbir,supir,fbcnn,jpeg"


def _csv(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "profile", help="parameters, MACs, latency and memory (Table 2)", description=__doc__,
        epilog="Counting needs no weights: every network is built at full size from public configurations with "
               "random weights (the meta device where nothing runs). Outputs: profile.json, profile.csv, "
               "stages.csv, parts.csv, profile.tex, summary.json in --out.")
    parser.add_argument("--methods", type=_csv, default=_csv(DEFAULT_METHODS),
                        help=f"comma-separated architectures (default {DEFAULT_METHODS}; --list shows all)")
    parser.add_argument("--size", type=image_size(8), default=(1024, 1024), help="input N or WxH (default 1024)")
    parser.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda when available)")
    parser.add_argument("--dtype", type=_csv, default=None,
                        help="latency precisions, comma-separated from fp16, bf16, fp32 (default fp16 on CUDA, "
                             "fp32 on CPU)")
    parser.add_argument("--runs", type=at_least(1), default=None, help="timed runs per call (default 20 on CUDA, 3 on CPU)")
    parser.add_argument("--warmup", type=at_least(0), default=None, help="untimed runs first (default 3 on CUDA, 1 on CPU)")
    parser.add_argument("--no-latency", dest="latency", action="store_false", help="count only; time nothing")
    parser.add_argument("--peak-tflops", type=at_least(1e-9, float), default=None,
                        help="the GPU's peak dense TFLOP/s for the MAC-bound floor (default: from a table of "
                             "known GPUs)")
    parser.add_argument("--threads", type=at_least(1), default=None, help="CPU threads for torch (default: torch's)")
    parser.add_argument("--out", default=None, help="output folder (default runs/profile-<size>)")
    parser.add_argument("--list", action="store_true", help="list the known architectures and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=profile_command)


def profile_command(args: argparse.Namespace) -> int:
    import time
    from dataclasses import replace

    import torch
    from tqdm import tqdm

    from bench.core.device import checked_device
    from bench.core.errors import ConfigError
    from bench.core.paths import check_output_folder
    from bench.core.terminal import shown
    from bench.profile import (
        ProfileOptions,
        format_rows,
        profile_methods,
        write_outputs,
    )
    from bench.profile.architecture import ARCHITECTURES
    from bench.provenance import device_info, git_state, library_versions

    if args.list:
        print("\n".join(ARCHITECTURES.names()))
        return 0
    for name in args.methods:
        ARCHITECTURES.check(name)
    device = checked_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.startswith("cuda")
    width, height = args.size
    try:
        options = ProfileOptions(
            methods=args.methods, height=height, width=width, device=device,
            dtypes=args.dtype or (["fp16"] if cuda else ["fp32"]), runs=args.runs or (20 if cuda else 3),
            warmup=args.warmup if args.warmup is not None else (3 if cuda else 1), latency=args.latency,
            peak_tflops=args.peak_tflops)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    size = str(width) if width == height else f"{width}x{height}"
    out = check_output_folder(args.out or f"runs/profile-{size}", "output folder (--out)")
    bar = tqdm(total=len(options.methods), desc="profile", unit="method", disable=args.quiet)

    def progress(message: str) -> None:
        bar.set_postfix_str(message[:60])

    profiles = []
    for name in options.methods:
        bar.set_description(name)
        profiles += profile_methods(replace(options, methods=[name]), progress)
        bar.update(1)
    bar.close()
    gpu = torch.cuda.get_device_name(torch.device(device)) if cuda else None
    provenance = {"git": git_state(), "versions": library_versions(), "device": device_info(device),
                  "arguments": {k: v for k, v in vars(args).items() if k != "func"},
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    document = write_outputs(profiles, options, out, provenance, gpu)
    print(format_rows(document["rows"]))
    for note in document["notes"]:
        print("-", note)
    print(f"wrote {shown(out)}/profile.json, profile.csv, stages.csv, parts.csv, profile.tex")
    return 1 if any(p.error for p in profiles) else 0
