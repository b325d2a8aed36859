"""Profile architectures: parameters (meta device), MACs (fvcore and FlopCounterMode), latency and memory."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from bench.profile.architecture import Architecture, create_architecture
from bench.profile.latency import DTYPES, Timing, measure_latency
from bench.profile.macs import CallMacs, count_stage_macs
from bench.profile.params import PartParams, count_parameters

log = logging.getLogger(__name__)


@dataclass
class ProfileOptions:
    """What to profile and how. `dtypes` apply to latency only (counts do not depend on precision)."""

    methods: list[str]
    height: int = 1024
    width: int = 1024
    device: str = "cpu"
    dtypes: list[str] = field(default_factory=lambda: ["fp32"])
    runs: int = 3
    warmup: int = 1
    latency: bool = True
    peak_tflops: float | None = None

    def __post_init__(self) -> None:
        unknown = [d for d in self.dtypes if d not in DTYPES]
        if unknown:
            raise ValueError(f"unknown dtype(s) {unknown}; choose from {sorted(DTYPES)}")
        if self.height < 8 or self.width < 8 or self.runs < 1 or self.warmup < 0:
            raise ValueError("need a size of at least 8 px, runs >= 1 and warmup >= 0")


@dataclass
class MethodProfile:
    """Everything measured for one architecture."""

    arch: Architecture
    params: list[PartParams] = field(default_factory=list)
    macs: list[CallMacs] = field(default_factory=list)
    timings: dict[str, Timing] = field(default_factory=dict)
    latency_note: str = ""
    error: str = ""

    @property
    def params_total(self) -> int:
        return sum(p.total for p in self.params)

    @property
    def params_lora(self) -> int:
        return sum(p.lora for p in self.params)

    def macs_total(self, counter: str) -> int:
        """MACs per image under `counter` ('fvcore' or 'flopcounter'), calls x per-call MACs summed."""
        return sum(c.count * getattr(c, counter).total for c in self.macs)

    @property
    def attention_macs(self) -> int:
        return sum(c.count * c.attention for c in self.macs)


def profile_architecture(arch: Architecture, options: ProfileOptions,
                         progress: Callable[[str], Any] | None = None) -> MethodProfile:
    """Count and (optionally) time one architecture; a failure becomes the profile's `error`."""
    result = MethodProfile(arch)
    try:
        result.params = count_parameters(arch)
        result.macs = count_stage_macs(arch, options.height, options.width, progress)
        if not options.latency:
            result.latency_note = "latency not measured (--no-latency)"
        elif not arch.stages:
            result.latency_note = "no network runs"
        elif not arch.complete:
            result.latency_note = ("latency not measured: parts of the method are not built, so a time would not be "
                                   "the method's")
        else:
            result.timings = measure_latency(arch, options.height, options.width, options.device, options.dtypes,
                                             runs=options.runs, warmup=options.warmup, progress=progress)
    except Exception as exc:  # one method's failure is recorded; the others still run
        log.exception("profiling %s failed", arch.method)
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def profile_methods(options: ProfileOptions, progress: Callable[[str], Any] | None = None) -> list[MethodProfile]:
    """Profile every method named in `options` (an unknown name becomes a profile with an error)."""
    profiles = []
    for name in options.methods:
        try:
            arch = create_architecture(name)
        except KeyError as exc:
            profiles.append(MethodProfile(Architecture(name, name, 0, [], []), error=str(exc.args[0])))
            continue
        profiles.append(profile_architecture(arch, options, progress))
    return profiles
