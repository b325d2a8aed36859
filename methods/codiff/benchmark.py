"""CODiff on this CPU with full-size random weights (the SD-2.1-base architecture from configs/, the release's
LoRA layout at rank 16, a full-size CaVE): seconds per image, peak memory, MACs and achieved GFLOP/s of each
stage (CaVE, VAE encoder, UNet, VAE decoder) against the same machine's float32 matrix product (sgemm).

`codiff-bench cpu-benchmark` runs each case in its own process (`python -m methods.codiff.benchmark CASE`), so
that its peak RSS (ru_maxrss) is its own; `loaded` is the RSS once the models are built. MACs count every
operator at the shapes actually run, stage by stage (torch's FlopCounterMode on the meta device: no compute).
Achieved GFLOP/s = 2 x MACs / seconds. `gemm` is a 2048^3 matrix product in the case's dtype and `sgemm` one in
float32, both timed in the same process with the same threads just before the run; sgemm is timed again after
it, so that a machine whose cores were shared meanwhile shows.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from methods.codiff.options import TileConfig


@dataclass
class Case:
    width: int
    height: int
    dtype: str = "fp32"
    merge: bool = True
    threads: int = 2
    tiles: dict[str, Any] = field(default_factory=dict)  # TileConfig fields other than the defaults
    save_output: str | None = None


# -- building the models ------------------------------------------------------------------------------
def full_size_pipeline(dtype: str, merge: bool, tiles: dict[str, Any], device: str = "cpu", seed: int = 0):
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
    config = PipelineConfig(dtype=dtype, merge_lora=merge, tiles=TileConfig(**tiles))
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


def _stage_calls(pipeline):
    """The functions each stage runs: name -> (owner module, bound function)."""
    gen = pipeline.generator
    return {"cave": (pipeline.cave, pipeline.cave.embed_grid), "vae_encoder": (gen, gen.posterior_moments),
            "unet": (gen, gen.predict_noise), "vae_decoder": (gen, gen.decode)}


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


def meta_macs(case: Case) -> tuple[float, dict[str, float]]:
    """Every MAC of `pipeline.generate` at this case's size and settings, and those of each stage, counted on
    the meta device."""
    from torch.utils.flop_counter import FlopCounterMode

    pipeline = full_size_pipeline("fp32", case.merge, case.tiles, device="meta")
    stages = {name: 0.0 for name in _stage_calls(pipeline)}
    for name, (owner, fn) in _stage_calls(pipeline).items():
        def counted(*args, _fn=fn, _name=name):
            with FlopCounterMode(display=False) as counter:
                out = _fn(*args)
            stages[_name] += counter.get_total_flops() / 2
            return out
        setattr(owner, fn.__name__, counted)
    with FlopCounterMode(display=False) as counter:
        pipeline.generate(torch.zeros(1, 3, case.height, case.width, device="meta"))
    return counter.get_total_flops() / 2, stages


def run_case(case: Case) -> dict:
    """Build, measure and run one case in this process; return its measurements."""
    import numpy as np

    from methods.codiff.pipeline import DTYPES

    torch.set_num_threads(case.threads)
    start = time.perf_counter()
    pipeline = full_size_pipeline(case.dtype, case.merge, case.tiles)
    build_s, loaded = time.perf_counter() - start, current_rss_gb()
    record = record_stages(pipeline)
    lq = sample_image(case.height, case.width)
    sgemm, gemm = gemm_gflops(torch.float32), gemm_gflops(DTYPES[case.dtype])
    start = time.perf_counter()
    with torch.inference_mode():
        out = pipeline(lq)
    seconds, peak = time.perf_counter() - start, peak_rss_gb()
    sgemm_after = gemm_gflops(torch.float32)  # far from `sgemm` when other work took the cores meanwhile
    if case.save_output:
        np.save(case.save_output, (out[0].clamp(0, 1) * 255).round().to(torch.uint8).numpy())
    total, stage_macs = meta_macs(case)
    for name, entry in record.items():
        entry["macs"] = stage_macs[name]
        entry["gflops"] = 2 * stage_macs[name] / entry["seconds"] / 1e9 if entry["seconds"] else 0.0
        entry["of_sgemm"] = entry["gflops"] / sgemm
    achieved = 2 * total / seconds / 1e9
    return {**asdict(case), "seconds": seconds, "build_s": build_s, "loaded_gb": loaded, "peak_gb": peak,
            "macs_total": total, "stages": record, "sgemm_gflops": sgemm, "sgemm_after_gflops": sgemm_after,
            "gemm_gflops": gemm,
            "achieved_gflops": achieved, "of_sgemm": achieved / sgemm, "of_gemm": achieved / gemm}


def run_child(case: Case) -> dict:
    """Run `case` in a process of its own; its measurements, or {"error": the last line it printed}."""
    cmd = [sys.executable, "-m", "methods.codiff.benchmark", json.dumps(asdict(case))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return {**asdict(case), "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


if __name__ == "__main__":
    print(json.dumps(run_case(Case(**json.loads(sys.argv[1])))))
