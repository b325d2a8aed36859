"""CODiff on this CPU with full-size random weights (the SD-2.1-base architecture from configs/, the release's
LoRA layout at rank 16, a full-size CaVE): seconds per image, peak memory, MACs and achieved GFLOP/s against
the same machine's matrix-product speed.

    python -m methods.codiff.benchmark                        # 512^2 and 1024^2; fp32 and bf16; LoRA merged or not
    python -m methods.codiff.benchmark --sizes 2040x1400 3840x2160 --dtypes fp32 --merge on   # large images

Each case runs in its own process, so that its peak RSS (ru_maxrss) is its own; `loaded` is the RSS once the
models are built, so peak - loaded is what inference itself needs (bounded by the tile sizes).
MACs: `total` counts every operator at the shapes actually run (torch FlopCounterMode on the meta device, no
compute; attention included); `fvcore` is fvcore's FlopCountAnalysis (convolutions and matrix products;
it skips attention), traced at 256^2 and scaled by the areas actually run, as those operators scale linearly.
Achieved GFLOP/s = 2 x total MACs / seconds. `gemm` is a 2048^3 matrix product in the case's dtype, and
`sgemm` one in float32, both timed in the same process with the same threads just before the run.
`diff` is the difference (8-bit levels, max and mean) from the first case of the same size (the reference).
fp16 is not run unless asked: this CPU has no fast fp16 matrix kernels (about 0.3 GFLOP/s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, astuple, dataclass
from pathlib import Path

import torch

from methods.codiff.options import TileConfig

FVCORE_SIDE = 256  # pixels; fvcore traces each stage at this size and scales by area


@dataclass
class Case:
    width: int
    height: int
    dtype: str = "fp32"
    merge: bool = True
    threads: int = 2
    tiles: tuple[int, ...] = astuple(TileConfig())
    save_output: str | None = None


# -- building the models ------------------------------------------------------------------------------
def full_size_pipeline(dtype: str, merge: bool, tiles, device: str = "cpu", seed: int = 0):
    """A CODiffPipeline with the full-size architecture and random weights (no downloads)."""
    from diffusers import DDPMScheduler

    from methods.codiff.cave import CaVE, init_cave_weights
    from methods.codiff.generator import CODiffGenerator, release_lora_spec
    from methods.codiff.pipeline import CODiffPipeline, PipelineConfig
    from methods.codiff.sd import SD21_CONFIGS, build_sd_from_configs
    from methods.codiff.standins import randomize_lora

    with torch.device(device):
        sd = build_sd_from_configs(SD21_CONFIGS, seed)
        generator = randomize_lora(CODiffGenerator(sd, release_lora_spec(sd.unet, sd.vae)), std=0.002)
        cave = init_cave_weights(CaVE())
    # the one-step update reads the scheduler's alphas as numbers: keep them off the meta device
    generator.scheduler = DDPMScheduler.from_config(DDPMScheduler.load_config(SD21_CONFIGS / "scheduler"))
    config = PipelineConfig(dtype=dtype, merge_lora=merge, tiles=TileConfig(*tiles))
    return CODiffPipeline(generator, cave, config, device)


def sample_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    small = torch.rand(1, 3, max(height // 16, 1), max(width // 16, 1))
    return torch.nn.functional.interpolate(small, size=(height, width), mode="bicubic").clamp(0, 1)


# -- measurements -------------------------------------------------------------------------------------
def current_rss_gb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def gemm_gflops(dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 3) -> float:
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


class _Call(torch.nn.Module):
    """A module around a function of a model, so that fvcore can trace it with the model's parameters."""

    def __init__(self, model: torch.nn.Module, fn) -> None:
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, *args):
        return self.fn(*args)


def _stage_calls(pipeline):
    """The functions each stage runs: name -> (owner module, bound function, input area of its first arg)."""
    gen = pipeline.generator
    return {"cave": (pipeline.cave, pipeline.cave.embed_grid), "vae_encoder": (gen, gen.posterior_moments),
            "unet": (gen, gen.predict_noise), "vae_decoder": (gen, gen.decode)}


def fvcore_rates(pipeline) -> dict[str, float]:
    """fvcore MACs per input pixel of each stage, traced at 256^2 pixels (32^2 latent)."""
    from fvcore.nn import FlopCountAnalysis

    gen, side = pipeline.generator, FVCORE_SIDE
    latent = side // gen.vae_factor
    image = torch.rand(1, 3, side, side)
    z = torch.randn(1, 4, latent, latent, dtype=gen.dtype)
    hidden = torch.randn(1, (side // 32) ** 2, gen.unet.config.cross_attention_dim, dtype=gen.dtype)
    inputs = {"cave": (image,), "vae_encoder": (image * 2 - 1,), "unet": (z, hidden), "vae_decoder": (z,)}
    rates = {}
    for name, (owner, fn) in _stage_calls(pipeline).items():
        analysis = FlopCountAnalysis(_Call(owner, fn), inputs[name])
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        rates[name] = analysis.total() / (inputs[name][0].shape[-2] * inputs[name][0].shape[-1])
    return rates


def record_stages(pipeline) -> dict[str, dict[str, float]]:
    """Wrap each stage so that it records its calls, input area and time; returns the live record."""
    record = {name: {"calls": 0, "area": 0, "seconds": 0.0} for name in _stage_calls(pipeline)}
    for name, (owner, fn) in _stage_calls(pipeline).items():
        def wrapped(x, *rest, _fn=fn, _entry=record[name]):
            start = time.perf_counter()
            out = _fn(x, *rest)
            _entry["calls"] += 1
            _entry["area"] += x.shape[-2] * x.shape[-1]
            _entry["seconds"] += time.perf_counter() - start
            return out
        setattr(owner, fn.__name__, wrapped)
    return record


def meta_macs(case: Case) -> float:
    """Every MAC of `pipeline.generate` at this case's size and settings, counted on the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    pipeline = full_size_pipeline("fp32", case.merge, case.tiles, device="meta")
    with FlopCounterMode(display=False) as counter:
        pipeline.generate(torch.zeros(1, 3, case.height, case.width, device="meta"))
    return counter.get_total_flops() / 2


def run_case(case: Case) -> dict:
    """Build, measure and run one case in this process; return its measurements."""
    import numpy as np

    from methods.codiff.pipeline import DTYPES

    torch.set_num_threads(case.threads)
    start = time.perf_counter()
    pipeline = full_size_pipeline(case.dtype, case.merge, case.tiles)
    build_s, loaded = time.perf_counter() - start, current_rss_gb()
    rates = fvcore_rates(pipeline)
    record = record_stages(pipeline)
    lq = sample_image(case.height, case.width)
    sgemm, gemm = gemm_gflops(torch.float32), gemm_gflops(DTYPES[case.dtype])
    start = time.perf_counter()
    with torch.inference_mode():
        out = pipeline(lq)
    seconds, peak = time.perf_counter() - start, peak_rss_gb()
    if case.save_output:
        np.save(case.save_output, (out[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    total = meta_macs(case)
    return {**asdict(case), "seconds": seconds, "build_s": build_s, "loaded_gb": loaded, "peak_gb": peak,
            "macs_total": total, "macs_fvcore": sum(rates[n] * record[n]["area"] for n in rates),
            "stages": record, "sgemm_gflops": sgemm, "gemm_gflops": gemm,
            "achieved_gflops": 2 * total / seconds / 1e9}


# -- the driver ---------------------------------------------------------------------------------------
def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height or width)


def _run_child(case: Case) -> dict:
    cmd = [sys.executable, "-m", "methods.codiff.benchmark", "--child", json.dumps(asdict(case))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return {**asdict(case), "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def format_row(r: dict) -> str:
    name = f"{r['width']}x{r['height']} {r['dtype']:<4} LoRA {'merged' if r['merge'] else 'separate':<8}"
    if "error" in r:
        return f"{name}  FAILED: {r['error']}"
    stages = " ".join(f"{k}={v['seconds']:.1f}s/{v['calls']}" for k, v in r["stages"].items())
    return (f"{name}  {r['seconds']:7.1f} s/image  peak {r['peak_gb']:5.2f} GB (loaded {r['loaded_gb']:4.2f})  "
            f"MACs {r['macs_total'] / 1e12:6.2f} T (fvcore {r['macs_fvcore'] / 1e12:5.2f} T)  "
            f"{r['achieved_gflops']:6.1f} GFLOP/s = {100 * r['achieved_gflops'] / r['gemm_gflops']:3.0f}% of "
            f"{r['dtype']} gemm {r['gemm_gflops']:.1f} (sgemm {r['sgemm_gflops']:.1f})  "
            f"diff {r.get('diff_levels', '-')}  [{stages}]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["512", "1024"], help="N (square) or WxH")
    parser.add_argument("--dtypes", nargs="+", default=["fp32", "bf16"], choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--merge", choices=("both", "on", "off"), default="both")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--tiles", type=int, nargs=8, default=list(Case(1, 1).tiles), metavar="N",
                        help="tile and overlap of the VAE encoder, VAE decoder, latent UNet and CaVE "
                             "(methods.codiff.tiling.TileConfig)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        fields = json.loads(args.child)
        print(json.dumps(run_case(Case(**{**fields, "tiles": tuple(fields["tiles"])}))))
        return 0
    merges = {"both": (False, True), "on": (True,), "off": (False,)}[args.merge]
    print(f"CODiff, full-size random weights, {args.threads} threads, tiles {args.tiles}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            width, height = _size(size)
            reference = None
            for dtype in args.dtypes:
                for merge in merges:
                    out_path = Path(tmp) / f"{width}x{height}-{dtype}-{merge}.npy"
                    case = Case(width, height, dtype, merge, args.threads, tuple(args.tiles), str(out_path))
                    result = _run_child(case)
                    if "error" not in result:
                        result["diff_levels"] = _diff_levels(reference, out_path)
                        reference = reference or out_path
                    results.append(result)
                    print(format_row(result), flush=True)
    if args.json:
        from bench.core.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(results, indent=2))
    return 1 if any("error" in r for r in results) else 0


def _diff_levels(reference: Path | None, path: Path) -> str:
    """Max and mean absolute difference from the reference output, in 8-bit levels."""
    import numpy as np

    if reference is None:
        return "ref"
    diff = np.abs(np.load(reference).astype(int) - np.load(path).astype(int))
    return f"{diff.max()} max / {diff.mean():.2f} mean"


if __name__ == "__main__":
    sys.exit(main())
