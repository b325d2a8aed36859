"""Peak dense tensor throughput of known GPUs (vendor datasheets, without sparsity), for the MAC-bound floor.

floor = MACs x 2 / peak FLOP/s: the time the arithmetic alone would take at the datasheet peak. The measured
latency over the floor says how far a run is from compute-bound; memory traffic, attention kernels, launches
and non-matmul work make the ratio larger than 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GpuPeak:
    """Peak dense TFLOP/s by precision: fp16/bf16 tensor cores (fp32 accumulate), tf32 tensor cores, fp32 FMA."""

    name: str
    match: tuple[str, ...]
    fp16: float
    bf16: float
    tf32: float
    fp32: float


# Matched against torch.cuda.get_device_name(), first hit wins (more specific names first).
KNOWN_GPUS = (
    GpuPeak("NVIDIA H200", ("h200",), 989.4, 989.4, 494.7, 66.9),
    GpuPeak("NVIDIA H100 PCIe", ("h100 pcie",), 756.5, 756.5, 378.0, 51.2),
    GpuPeak("NVIDIA H100 SXM", ("h100",), 989.4, 989.4, 494.7, 66.9),
    GpuPeak("NVIDIA A100", ("a100",), 312.0, 312.0, 156.0, 19.5),
    GpuPeak("NVIDIA L40S", ("l40s",), 362.1, 362.1, 183.0, 91.6),
    GpuPeak("NVIDIA RTX A6000", ("rtx a6000", "a6000"), 154.8, 154.8, 77.4, 38.7),
)


def find_gpu(device_name: str) -> GpuPeak | None:
    lowered = device_name.lower()
    for gpu in KNOWN_GPUS:
        if any(key in lowered for key in gpu.match):
            return gpu
    return None


def precision_for(dtype: str) -> str:
    """The peak that bounds `dtype`: fp32 convolutions run on TF32 tensor cores when cuDNN allows it
    (PyTorch's default), so fp32 uses the TF32 peak then."""
    if dtype == "fp32":
        return "tf32" if torch.backends.cudnn.allow_tf32 else "fp32"
    return dtype


def peak_flops(device_name: str, dtype: str, override_tflops: float | None = None) -> tuple[float | None, str]:
    """(peak FLOP/s, where it comes from) for a GPU and dtype; (None, reason) when unknown."""
    if override_tflops:
        return override_tflops * 1e12, f"given: {override_tflops} TFLOP/s"
    gpu = find_gpu(device_name)
    if gpu is None:
        return None, f"no peak known for {device_name!r}; pass --peak-tflops"
    precision = precision_for(dtype)
    value = getattr(gpu, precision)
    return value * 1e12, f"{gpu.name} datasheet, dense {precision}: {value} TFLOP/s"


def mac_floor_s(macs: int, peak: float) -> float:
    """Seconds the MACs take at the peak (2 FLOPs per MAC)."""
    return 2.0 * macs / peak
