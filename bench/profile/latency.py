"""Latency and peak memory of every stage call, on full-size networks with random weights.

CUDA: CUDA events around each call after warm-up, median and 90th percentile over the runs; memory is
`torch.cuda.max_memory_allocated` from the moment the weights are in place through the last call, minus what was
allocated before (weights plus the largest activations). CPU: wall time (time.perf_counter), labelled CPU with
the thread count; memory is the growth of the process's peak resident set (VmHWM, reset through
/proc/self/clear_refs once the weights are built) over the resident set before the build, after freed heap memory
is returned to the OS. Per-image figures sum calls x per-call statistic over the stages (the stages are timed one
by one, so the glue between them, a scheduler step or a tile blend, is not included). The networks are built once
and cast to each dtype in turn.
"""

from __future__ import annotations

import ctypes
import gc
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from bench.profile.architecture import Architecture

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class CallTiming:
    stage: str
    extents: dict[str, tuple[int, int]]
    count: int
    times_s: list[float]

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)

    @property
    def p90_s(self) -> float:
        return percentile(self.times_s, 90)


@dataclass
class Timing:
    """Per-call timings of one architecture at one dtype, with the peak memory and how both were measured."""

    calls: list[CallTiming]
    memory_bytes: int
    memory_kind: str
    time_kind: str

    @property
    def median_s(self) -> float:
        return sum(c.count * c.median_s for c in self.calls)

    @property
    def p90_s(self) -> float:
        return sum(c.count * c.p90_s for c in self.calls)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default) of a non-empty list."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _release_free_heap() -> None:
    """Return freed heap memory to the OS (glibc malloc_trim), so that memory a previous model freed is not
    reused unseen by the next one's resident-set growth."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class _CpuMemory:
    """Peak resident set growth of this process (Linux /proc); the process-lifetime peak where it cannot reset."""

    STATUS = Path("/proc/self/status")

    def __init__(self) -> None:
        gc.collect()
        _release_free_heap()
        self.baseline = self._field("VmRSS")
        self.resettable = False

    def reset_peak(self) -> None:
        """Start the peak from the current resident set (after the weights are built)."""
        self.resettable = self._reset()

    @staticmethod
    def _reset() -> bool:
        try:
            Path("/proc/self/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def _field(self, name: str) -> int:
        try:
            for line in self.STATUS.read_text().splitlines():
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def peak(self) -> tuple[int, str]:
        grown = max(self._field("VmHWM") - self.baseline, 0)
        kind = ("CPU peak RSS growth (VmHWM after reset, minus RSS before building)" if self.resettable else
                "CPU process-lifetime peak RSS minus RSS before building (peak could not be reset)")
        return grown, kind


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_call(module: torch.nn.Module, inputs: list[torch.Tensor], device: torch.device, warmup: int,
               runs: int) -> list[float]:
    with torch.inference_mode():
        for _ in range(warmup):
            module(*inputs)
        _synchronize(device)
        times = []
        for _ in range(runs):
            if device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                module(*inputs)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1000.0)
            else:
                t0 = time.perf_counter()
                module(*inputs)
                times.append(time.perf_counter() - t0)
    return times


def measure_latency(arch: Architecture, height: int, width: int, device: str, dtypes: list[str], *, runs: int,
                    warmup: int, progress: Callable[[str], Any] | None = None) -> dict[str, Timing]:
    """Build every part on `device` once (random weights), then, per dtype, cast and time each stage call."""
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(dev)
    else:
        cpu_memory = _CpuMemory()
    with torch.device(dev):
        parts = arch.build_parts()
    timings = {}
    for dtype in dtypes:
        for module in parts.values():
            module.to(DTYPES[dtype])
        if dev.type == "cuda":  # the peak starts with the weights in place, not with their build or cast
            torch.cuda.reset_peak_memory_stats(dev)
        else:
            cpu_memory.reset_peak()
        calls = []
        for stage in arch.stages:
            module = stage.module(parts).eval()
            for call in stage.calls(height, width):
                if progress:
                    progress(f"{arch.method}: timing {stage.name} ({dtype})")
                inputs = [spec.make(dev, DTYPES[dtype]) for spec in stage.inputs(call.extents)]
                calls.append(CallTiming(stage.name, dict(call.extents), call.count,
                                        _time_call(module, inputs, dev, warmup, runs)))
                del inputs
        if dev.type == "cuda":
            memory, kind = (torch.cuda.max_memory_allocated(dev) - base,
                            "CUDA max allocated (weights + activations)")
            time_kind = f"CUDA events, {torch.cuda.get_device_name(dev)}"
        else:
            (memory, kind), time_kind = cpu_memory.peak(), f"CPU wall time, {torch.get_num_threads()} thread(s)"
        timings[dtype] = Timing(calls, memory, kind, time_kind)
    del parts
    gc.collect()
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return timings
