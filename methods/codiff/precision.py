"""Reduced precision against float32: the error bf16 and fp16 put into CODiff's output, in 8-bit levels, and the
speed each buys. bf16 is measured on CPUs with native bf16 (avx512_bf16 or AMX in /proc/cpuinfo), fp16 on CUDA
only; elsewhere a dtype is reported as unmeasured, with the reason.

    codiff-bench precision                    # the parity vectors' tiny models (seconds)
    codiff-bench precision --full-size 512    # the full-size random-weight model at 512 x 512

Errors compare the pipeline's output (AdaIN colour fix, LoRA merged, the defaults) with float32's, both rounded
to 8 bits: the largest and mean absolute difference in levels, and the share of values off by more than 2.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
PARITY = REPO.parent / "shared" / "parity"
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (otherwise PyTorch emulates it, slowly)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def unmeasured_reason(dtype: str, device: str) -> str | None:
    """Why `dtype` is not measured on `device`, or None when it is."""
    if dtype == "fp16" and not device.startswith("cuda"):
        return "fp16 is measured on CUDA only (CPUs run it emulated)"
    if dtype == "bf16" and device == "cpu" and not native_bf16_cpu():
        return f"this CPU has no native bf16 ({' or '.join(NATIVE_BF16_FLAGS)} not in /proc/cpuinfo)"
    return None


def level_errors(out: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    """Differences of two images in [0, 1] after rounding both to 8 bits: max and mean in levels, share > 2."""
    diff = ((out.float().clamp(0, 1) * 255).round() - (ref.float().clamp(0, 1) * 255).round()).abs()
    return {"max_levels": float(diff.max()), "mean_levels": float(diff.mean()),
            "share_over_2": float((diff > 2).float().mean())}


def measure(build: Callable[[str], object], lq: torch.Tensor, dtypes: list[str], device: str,
            repeats: int = 1) -> dict[str, dict]:
    """Per dtype: seconds per image (best of `repeats`, after a warm-up) and the 8-bit error against fp32."""
    results: dict[str, dict] = {}
    reference = None
    for dtype in ["fp32", *[d for d in dtypes if d != "fp32"]]:
        reason = unmeasured_reason(dtype, device)
        if reason:
            results[dtype] = {"unmeasured": reason}
            continue
        pipeline = build(dtype)
        out = pipeline(lq)  # warm-up
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            out = pipeline(lq)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - start)
        results[dtype] = {"seconds": min(seconds)}
        if reference is None:
            reference = out
        else:
            results[dtype].update(level_errors(out, reference))
            results[dtype]["speedup"] = results["fp32"]["seconds"] / results[dtype]["seconds"]
        del pipeline
    return results


def parity_cases(parity: Path, device: str) -> dict[str, tuple[Callable[[str], object], torch.Tensor]]:
    """The release's tiny models on the parity inputs: untiled, and with the latent tiling engaged."""
    from PIL import Image

    from methods.codiff.cave import load_cave
    from methods.codiff.generator import load_generator
    from methods.codiff.options import PipelineConfig, TileConfig
    from methods.codiff.pipeline import CODiffPipeline

    tiny = parity / "official-tiny"
    cases = {}
    for name, tiles in (("official-tiny", TileConfig()),
                        ("official-tiny-tiled", TileConfig(latent_tile=32, latent_overlap=8))):
        rgb = np.asarray(Image.open(parity / name / "lq.png").convert("RGB"))
        lq = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255

        def build(dtype: str, tiles=tiles):
            return CODiffPipeline(load_generator(tiny / "tiny-sd", tiny / "codiff.pkl"), load_cave(tiny / "cave.pth"),
                                  PipelineConfig(dtype=dtype, tiles=tiles), device)
        cases[name] = (build, lq)
    return cases


def full_size_case(side: int, device: str) -> tuple[Callable[[str], object], torch.Tensor]:
    """SD-2.1-sized CODiff with random weights (methods.codiff.benchmark) on one smooth random image."""
    from methods.codiff.benchmark import full_size_pipeline, sample_image
    return (lambda dtype: full_size_pipeline(dtype, True, {}, device)), sample_image(side, side)
