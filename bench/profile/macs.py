"""MACs per stage call under two conventions, with exactly what each one counts.

- fvcore (`FlopCountAnalysis`, the headline): convolutions, linear layers, matmuls, norms, upsampling;
  it skips operators it has no handle for, among them `aten::scaled_dot_product_attention` (attention is not
  counted) and elementwise ops. It traces real execution, so at full size it would run the network on the CPU.
  Instead each stage is traced at small probe sizes and extrapolated: fvcore's counts are affine in the area of
  each input extent (conv and linear cost grow with pixels or tokens; attention, the one quadratic term, is
  skipped when it runs through SDPA). Two probes per extent fix the line and one more probe must land exactly on
  it, per operator, or the stage is traced at its full size instead (as a stage whose attention fvcore counts
  would be). Stages with fixed-size inputs (a prompt, a 384 x 384 thumbnail) are traced once as they are.
  Weights are uninitialised CPU memory that is only read, so even the SDXL UNet traces without resident weight
  memory.
- torch.utils.flop_counter.FlopCounterMode on the meta device, at the full size directly (no computation):
  convolutions, matmuls and attention (as batched matmuls or SDPA), not norms or elementwise ops. It reports
  FLOPs, here halved to MACs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterable

import torch
from torch import nn

from bench.profile.architecture import Architecture, Call, Stage

ATTENTION_OPS = ("bmm", "scaled_dot_product")  # FlopCounterMode operators that are attention products here
PROBE_STEPS = ((1, 1), (2, 1), (3, 2))  # base, doubled area, verification (in units of each extent)


@dataclass
class Counts:
    """One counter's MACs for one call: total and per operator (and, for fvcore, the skipped operators)."""

    total: int
    by_op: dict[str, int]
    skipped: dict[str, int] = field(default_factory=dict)
    method: str = ""


@dataclass
class CallMacs:
    """MACs of one call of a stage (per call; `count` calls per image)."""

    stage: str
    extents: dict[str, tuple[int, int]]
    count: int
    note: str
    fvcore: Counts
    flopcounter: Counts

    @property
    def attention(self) -> int:
        return sum(v for k, v in self.flopcounter.by_op.items() if any(a in k for a in ATTENTION_OPS))

    @property
    def conv_agrees(self) -> bool:
        """fvcore's and FlopCounterMode's convolution MACs are equal (they must be: the same formula)."""
        return self.fvcore.by_op.get("conv", 0) == self.flopcounter.by_op.get("convolution", 0)

    @property
    def dense_agrees(self) -> bool | None:
        """fvcore's linear-layer MACs equal FlopCounterMode's (add)mm MACs; None when fvcore also counted
        matmuls that FlopCounterMode may book as attention."""
        if any(self.fvcore.by_op.get(k) for k in ("matmul", "bmm", "einsum")):
            return None
        fv = self.fvcore.by_op.get("linear", 0) + self.fvcore.by_op.get("addmm", 0)
        return fv == self.flopcounter.by_op.get("addmm", 0) + self.flopcounter.by_op.get("mm", 0)


def materialize_empty(module: nn.Module) -> nn.Module:
    """Move a meta-device module to the CPU without initialising it: weights are untouched allocations (read as
    zero pages), buffers are zeroed (they can be indices). For tracing shapes, never for results."""
    module.to_empty(device="cpu")
    with torch.no_grad():
        for buffer in module.buffers():
            buffer.zero_()
    return module


def fvcore_counts(module: nn.Module, inputs: Iterable[torch.Tensor]) -> Counts:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings say nothing about the counts
        from fvcore.nn import FlopCountAnalysis

        analysis = FlopCountAnalysis(module, tuple(inputs))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        analysis.tracer_warnings("none")
        total = int(analysis.total())
        by_op = {k: int(v) for k, v in analysis.by_operator().items() if v}
        skipped = {k: int(v) for k, v in analysis.unsupported_ops().items()}
    return Counts(total, by_op, skipped)


def flopcounter_counts(module: nn.Module, inputs: Iterable[torch.Tensor]) -> Counts:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    by_op = {str(op).removeprefix("aten.").split(".")[0]: int(v) // 2
             for op, v in counter.get_flop_counts().get("Global", {}).items() if v}
    return Counts(sum(by_op.values()), by_op, method="FlopCounterMode on the meta device at full size")


def _area(extent: tuple[int, int]) -> int:
    return extent[0] * extent[1]


def _aligned(stage: Stage, call: Call) -> bool:
    return bool(call.extents) and all(
        name in stage.units and all(side % stage.units[name] == 0 for side in extent)
        for name, extent in call.extents.items())


class FvcoreProbe:
    """fvcore counts of one stage at any extents, from probes (affine in each extent's area, verified)."""

    def __init__(self, stage: Stage, module: nn.Module, extent_names: list[str]) -> None:
        self.stage, self.module = stage, module
        self.names = extent_names
        self.fit: tuple[dict[str, Fraction], dict[str, dict[str, Fraction]]] | None = None
        self.skipped: dict[str, int] = {}
        self.failure = ""
        self.probes: list[dict[str, tuple[int, int]]] = []

    def _trace(self, extents: dict[str, tuple[int, int]]) -> Counts:
        return fvcore_counts(self.module, [s.make("cpu", torch.float32) for s in self.stage.inputs(extents)])

    def _at(self, steps: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
        return {n: (self.stage.units[n] * steps[n][0], self.stage.units[n] * steps[n][1]) for n in self.names}

    def prepare(self) -> None:
        """Trace the probes and fit intercept and per-extent slopes, per operator; verify on one more probe."""
        base_steps = {n: PROBE_STEPS[0] for n in self.names}
        base_ext = self._at(base_steps)
        base = self._trace(base_ext)
        self.skipped = base.skipped
        ops = set(base.by_op)
        slopes: dict[str, dict[str, Fraction]] = {}
        self.probes = [base_ext]
        for name in self.names:
            ext = self._at({**base_steps, name: PROBE_STEPS[1]})
            probe = self._trace(ext)
            self.probes.append(ext)
            ops |= set(probe.by_op)
            d_area = _area(ext[name]) - _area(base_ext[name])
            slopes[name] = {op: Fraction(probe.by_op.get(op, 0) - base.by_op.get(op, 0), d_area) for op in ops}
        intercept = {op: base.by_op.get(op, 0) - sum(slopes[n].get(op, 0) * _area(base_ext[n]) for n in self.names)
                     for op in ops}
        self.fit = (intercept, slopes)
        check_ext = self._at({n: PROBE_STEPS[2] for n in self.names})
        self.probes.append(check_ext)
        check = self._trace(check_ext)
        predicted = self._predict(check_ext)
        actual = {op: check.by_op.get(op, 0) for op in set(predicted) | set(check.by_op)}
        if any(predicted.get(op, 0) != actual[op] for op in actual):
            self.failure = (f"fvcore counts of {self.stage.name} are not affine in the extents' areas "
                            f"(probe {check_ext}: predicted {sum(predicted.values())}, traced {check.total})")
            self.fit = None

    def _predict(self, extents: dict[str, tuple[int, int]]) -> dict[str, int | Fraction]:
        intercept, slopes = self.fit
        return {op: intercept[op] + sum(slopes[n].get(op, 0) * _area(extents[n]) for n in self.names)
                for op in intercept}

    def counts(self, extents: dict[str, tuple[int, int]]) -> Counts | None:
        """Extrapolated counts at `extents`, or None when the fit failed or is not exact there."""
        if self.fit is None:
            return None
        predicted = self._predict(extents)
        if any(Fraction(v).denominator != 1 for v in predicted.values()):
            return None
        by_op = {op: int(v) for op, v in predicted.items() if v}
        probes = "; ".join(", ".join(f"{n} {e[0]}x{e[1]}" for n, e in p.items()) for p in self.probes)
        return Counts(sum(by_op.values()), by_op, dict(self.skipped),
                      f"fvcore traced at probes [{probes}], affine in area verified on the last, extrapolated")


def count_stage_macs(arch: Architecture, height: int, width: int,
                     progress: Callable[[str], Any] | None = None) -> list[CallMacs]:
    """Both counters for every call of every stage of `arch` on a height x width image."""
    needed = sorted({p for s in arch.stages for p in s.parts})
    with torch.device("meta"):
        parts = arch.build_parts(needed)
    modules = {s.name: s.module(parts).eval() for s in arch.stages}
    plan = [(s, call) for s in arch.stages for call in s.calls(height, width)]
    fc_counts = []
    for stage, call in plan:
        inputs = [spec.make("meta", torch.float32) for spec in stage.inputs(call.extents)]
        fc_counts.append(flopcounter_counts(modules[stage.name], inputs))
    for module in parts.values():
        materialize_empty(module)
    probes: dict[str, FvcoreProbe] = {}
    results = []
    for (stage, call), fc in zip(plan, fc_counts, strict=True):
        if progress:
            progress(f"{arch.method}: {stage.name}")
        fv = None
        if _aligned(stage, call):
            if stage.name not in probes:
                probe = FvcoreProbe(stage, modules[stage.name], sorted(call.extents))
                probe.prepare()
                probes[stage.name] = probe
            fv = probes[stage.name].counts(dict(call.extents))
        if fv is None:
            fv = fvcore_counts(modules[stage.name], [s.make("cpu", torch.float32) for s in stage.inputs(call.extents)])
            reason = probes[stage.name].failure if stage.name in probes else ""
            fv.method = ("fvcore traced at the call's own size" + (" (fixed-size inputs)" if not call.extents else "")
                         + (f"; {reason}" if reason else ""))
        results.append(CallMacs(stage.name, dict(call.extents), call.count, call.note, fv, fc))
    return results
