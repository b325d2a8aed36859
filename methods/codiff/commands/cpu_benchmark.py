"""`codiff-bench cpu-benchmark`: CODiff on this CPU with full-size random weights (no downloads): seconds per image,
peak memory, MACs and GFLOP/s of each stage (CaVE, VAE encoder, UNet, VAE decoder) as a share of this machine's
float32 matrix-product speed (sgemm), measured in the same process just before the run."""

from __future__ import annotations

import argparse

from bench.core.arguments import at_least, image_size

DTYPES = ("fp32", "bf16", "fp16")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "cpu-benchmark", help="CODiff's speed on this CPU, stage by stage, against its sgemm", description=__doc__,
        epilog="Each case runs in its own process. `diff` is the largest and mean difference, in 8-bit levels, "
               "from the first case of the same size, or from the output of the same case kept in --outputs by "
               "an earlier run.")
    parser.add_argument("--sizes", nargs="+", type=image_size(64), default=[(512, 512), (1024, 1024)],
                        help="N (square) or WxH (default 512 1024)")
    parser.add_argument("--dtypes", nargs="+", choices=DTYPES, default=["fp32"], help="precisions (default fp32)")
    parser.add_argument("--merge", choices=("on", "off", "both"), default="on",
                        help="LoRA merged into the weights, separate, or both (default on)")
    parser.add_argument("--threads", type=at_least(1), default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--tile", action="append", default=[], metavar="KEY=VALUE",
                        help="a tile setting (a field of CODiff's `tiles` option, e.g. vae_decoder_tile=128); "
                             "repeatable")
    parser.add_argument("--outputs", default=None,
                        help="folder keeping each case's 8-bit output: a case whose output is already there is "
                             "compared with it (an earlier version's), otherwise its output is saved")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results to this JSON file")
    parser.set_defaults(func=cpu_benchmark_command)


def _tiles(pairs: list[str]) -> dict:
    """The --tile settings, checked against TileConfig before anything runs."""
    from dataclasses import fields

    from bench.core.errors import ConfigError
    from methods.codiff.options import TileConfig

    known = {f.name: f for f in fields(TileConfig)}
    tiles = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in known:
            raise ConfigError(f"--tile {pair!r}: expected KEY=VALUE with KEY one of {', '.join(known)}")
        tiles[key] = value if isinstance(getattr(TileConfig(), key), str) else _integer(pair, value)
    config = TileConfig(**tiles)
    unused = [key for key in tiles if key.startswith("vae_") and key.endswith("_overlap")]
    if unused and config.vae_tiling == "release":
        raise ConfigError(f"--tile {unused[0]}: the release's VAE tiler uses no overlap; add --tile vae_tiling=gaussian")
    return tiles


def _integer(pair: str, value: str) -> int:
    from bench.core.errors import ConfigError

    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"--tile {pair!r}: the value must be an integer") from None


def cpu_benchmark_command(args: argparse.Namespace) -> int:
    import json
    import tempfile
    from pathlib import Path

    import torch

    from bench.core.atomic import atomic_write_bytes, atomic_write_text
    from bench.core.errors import ConfigError
    from methods.codiff.benchmark import Case, run_child

    tiles = _tiles(args.tile)
    if args.outputs and Path(args.outputs).exists() and not Path(args.outputs).is_dir():
        raise ConfigError(f"--outputs {args.outputs} is not a folder")
    threads = args.threads or torch.get_num_threads()
    merges = {"both": (False, True), "on": (True,), "off": (False,)}[args.merge]
    print(f"CODiff, full-size random weights, {threads} threads, tiles {tiles or 'default'}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="cpu-benchmark-") as scratch:
        for width, height in args.sizes:
            first = None
            for dtype in args.dtypes:
                for merge in merges:
                    name = f"{width}x{height}-{dtype}-{'merged' if merge else 'separate'}.npy"
                    out = Path(scratch) / name
                    result = run_child(Case(width, height, dtype, merge, threads, tiles, str(out)))
                    if "error" not in result:
                        kept = Path(args.outputs) / name if args.outputs else None
                        earlier = kept if kept is not None and kept.is_file() else first
                        result["diff_levels"] = _diff_levels(earlier, out)
                        first = first or out
                        if kept is not None and not kept.is_file():
                            atomic_write_bytes(kept, out.read_bytes())
                    results.append(result)
                    print(format_row(result), flush=True)
    if args.json_path:
        atomic_write_text(args.json_path, json.dumps(results, indent=2) + "\n")
    return 1 if any("error" in r for r in results) else 0


def _diff_levels(reference, path) -> dict | None:
    """Largest and mean absolute difference from the reference output, in 8-bit levels (None: no reference)."""
    import numpy as np

    if reference is None:
        return None
    diff = np.abs(np.load(reference).astype(int) - np.load(path).astype(int))
    return {"max": int(diff.max()), "mean": float(diff.mean())}


def format_row(r: dict) -> str:
    name = f"{r['width']}x{r['height']} {r['dtype']:<4} LoRA {'merged' if r['merge'] else 'separate':<8}"
    if "error" in r:
        return f"{name}  FAILED: {r['error']}"
    diff = r.get("diff_levels")
    shown = "-" if diff is None else f"{diff['max']} max / {diff['mean']:.3f} mean"
    lines = [f"{name}  {r['seconds']:7.1f} s/image  peak {r['peak_gb']:5.2f} GB (loaded {r['loaded_gb']:4.2f})  "
             f"MACs {r['macs_total'] / 1e12:6.3f} T  {r['achieved_gflops']:6.1f} GFLOP/s = "
             f"{100 * r['of_sgemm']:3.0f}% of sgemm {r['sgemm_gflops']:.1f} ({r['dtype']} gemm {r['gemm_gflops']:.1f})"
             f"  diff {shown}"]
    after = r.get("sgemm_after_gflops", r["sgemm_gflops"])
    if abs(after - r["sgemm_gflops"]) > 0.2 * r["sgemm_gflops"]:
        lines.append(f"    sgemm was {after:.1f} GFLOP/s after the run: the cores were shared, the shares are unsure")
    for stage, v in r["stages"].items():
        lines.append(f"    {stage:<12} {v['seconds']:7.2f} s in {v['calls']} calls  {v['macs'] / 1e9:9.1f} GMAC  "
                     f"{v['gflops']:6.1f} GFLOP/s = {100 * v['of_sgemm']:3.0f}% of sgemm")
    return "\n".join(lines)
