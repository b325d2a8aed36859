"""How a method's full-size architecture is described for complexity profiling, independent of any counter.

An `Architecture` lists the stored networks (`Part`), the computations run per restored image (`Stage`, each
a tensor-returning module over some parts, called once or several times with given input extents), and the
parts that cannot be built faithfully from public configurations (`MissingPart`), which make the method's
totals partial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import nn

from bench.core.registry import Registry, registry

Extents = Mapping[str, tuple[int, int]]


@dataclass(frozen=True)
class InputSpec:
    """One input tensor of a stage: its shape and kind ('float' follows the profiling dtype; 'long' is an index)."""

    shape: tuple[int, ...]
    kind: str = "float"

    def make(self, device: torch.device | str, dtype: torch.dtype) -> torch.Tensor:
        """A tensor of this shape on `device` (random floats, zero indices); no data on the meta device."""
        if self.kind == "long":
            return torch.zeros(self.shape, dtype=torch.long, device=device)
        if self.kind == "timestep":
            return torch.full(self.shape, 499, dtype=torch.long, device=device)
        return torch.randn(self.shape, device=device, dtype=dtype)


@dataclass(frozen=True)
class Call:
    """How often a stage runs per image, with which extents (named 2-D sizes, e.g. latent (128, 128))."""

    extents: Extents
    count: int = 1
    note: str = ""


@dataclass
class Part:
    """A stored network: `build()` makes it (on the current default device) with random weights; every parameter
    it holds counts, so a part leaves out modules that inference never runs (and its note says so)."""

    name: str
    build: Callable[[], nn.Module]
    note: str = ""


@dataclass
class Stage:
    """A computation per image: `module(parts)` returns an nn.Module whose forward returns a tensor (or a tuple
    of tensors) from the inputs `inputs(extents)` describes.

    `units` gives, for each extent name, the granularity its sides must respect (the network's total stride);
    a stage without extents has fixed-size inputs. `calls(height, width)` lists the calls per image.
    """

    name: str
    parts: tuple[str, ...]
    module: Callable[[Mapping[str, nn.Module]], nn.Module]
    inputs: Callable[[Extents], list[InputSpec]]
    calls: Callable[[int, int], list[Call]]
    units: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MissingPart:
    """A part of the method that is not built, and why: its cost is absent from every measured total."""

    name: str
    reason: str


@dataclass
class Architecture:
    """A method's full-size architecture for profiling.

    `paper_method` names its row in the paper's Table 2 (None when the paper has none); `steps` is the number of
    diffusion steps (0 for methods that run no network).
    """

    method: str
    label: str
    steps: int
    parts: list[Part]
    stages: list[Stage]
    missing: list[MissingPart] = field(default_factory=list)
    paper_method: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    def build_parts(self, names: list[str] | tuple[str, ...] | None = None) -> dict[str, nn.Module]:
        """Build the named parts (all by default) on the current default device, in eval mode."""
        wanted = [p for p in self.parts if names is None or p.name in names]
        return {p.name: p.build().eval() for p in wanted}


def image_calls(count: int = 1, note: str = "") -> Callable[[int, int], list[Call]]:
    """`calls` for a stage that reads the whole image once (or `count` times)."""
    return lambda h, w: [Call({"image": (h, w)}, count, note)]


def latent_calls(factor: int = 8, count: int = 1, note: str = "") -> Callable[[int, int], list[Call]]:
    """`calls` for a stage on the whole latent of an image downscaled by `factor`."""
    return lambda h, w: [Call({"latent": (h // factor, w // factor)}, count, note)]


def fixed_calls(count: int = 1, note: str = "") -> Callable[[int, int], list[Call]]:
    """`calls` for a stage whose inputs do not depend on the image size (a prompt, a resized thumbnail)."""
    return lambda h, w: [Call({}, count, note)]


ARCHITECTURES: Registry[Callable[[], Architecture]] = registry("architecture", group="codiff_bench.architectures")


def list_architectures() -> list[str]:
    return ARCHITECTURES.names()


def create_architecture(name: str) -> Architecture:
    """The architecture description registered under `name` (a factory taking no arguments, called here)."""
    return ARCHITECTURES.get(name)()
