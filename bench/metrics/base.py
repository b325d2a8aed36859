"""A ready-to-use image quality metric: what it measures, which files it read, and the callable itself."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from bench.core.weights import WeightFile
from bench.metrics.files import MetricFile
from bench.metrics.specs import MetricError, MetricSpec

RANGE_TOLERANCE = 1e-6  # as pyiqa's own input check: rounding may overshoot [0, 1] by this much


def checked_images(images: torch.Tensor, what: str) -> torch.Tensor:
    """`images` clamped to [0, 1]; MetricError unless it is a B x 3 x H x W batch within the tolerance."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise MetricError(f"{what} must be a B x 3 x H x W tensor, got {shape}")
    if images.device.type == "cpu" and images.dtype in (torch.float32, torch.float64):
        # numpy's one-thread reductions: no waiting on threads of busy cores
        values = images.detach().numpy()
        low, high = float(values.min()), float(values.max())
    else:
        low, high = (float(v) for v in torch.aminmax(images))
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise MetricError(f"{what} must lie in [0, 1], got values from {low:.4g} to {high:.4g}")
    return images if low >= 0 and high <= 1 else images.clamp(0, 1)


@dataclass
class Metric:
    """A created metric. Call it as `metric(out, ref)` with B x 3 x H x W batches in [0, 1] (`ref` may be None
    for no-reference metrics); it returns one float64 score per image, shape (B,), on the CPU."""

    spec: MetricSpec
    options: dict[str, Any] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    files: list[MetricFile] = field(default_factory=list, repr=False)
    compute: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor] | None = field(default=None, repr=False)
    network: torch.nn.Module | None = field(default=None, repr=False)  # pyiqa's model, when there is one
    version: str = ""
    converts: bool = False  # `compute` reads any float dtype exactly itself: no copy in `dtype` first

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def lower_better(self) -> bool:
        return self.spec.lower_better

    @property
    def full_reference(self) -> bool:
        return self.spec.full_reference

    @property
    def description(self) -> str:
        return self.spec.description

    @property
    def dtype(self) -> torch.dtype:
        return getattr(torch, self.spec.dtype)

    def info(self) -> dict[str, Any]:
        return self.spec.info()

    def required_files(self) -> list[WeightFile]:
        """Every weight file this metric read, with where it belongs."""
        return [f.weight for f in self.files]

    def fingerprint(self) -> str:
        """A short hash of what changes this metric's values: name, options, library version, its files'
        contents (SHA-256 through the hash cache; their paths do not count)."""
        files = [[f.weight.label, f.weight.sha256()] for f in self.files]
        blob = json.dumps({"name": self.name, "options": self.options, "version": self.version, "files": files},
                          sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def __call__(self, out: torch.Tensor, ref: torch.Tensor | None = None) -> torch.Tensor:
        out = checked_images(out, f"{self.name}: the image to score")
        if self.full_reference:
            if ref is None:
                raise MetricError(f"{self.name} is a full-reference metric and needs a reference image")
            ref = checked_images(ref, f"{self.name}: the reference")
            if ref.shape != out.shape:
                raise MetricError(f"{self.name}: image {tuple(out.shape)} and reference {tuple(ref.shape)} differ")
            ref = ref.to(self.device) if self.converts else ref.to(self.device, self.dtype)
        else:
            ref = None
        with torch.inference_mode():
            scores = self.compute(out.to(self.device) if self.converts else out.to(self.device, self.dtype), ref)
        return scores.reshape(out.shape[0]).to("cpu", torch.float64)
