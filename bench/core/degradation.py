"""Degradation steps: what happened to an image before its last JPEG compression, as real files went through
(an earlier compression, a crop that moves the 8 x 8 grid, a resize).

A protocol's `before` list holds steps; each is a frozen dataclass registered in the `degradation` registry
(entry-point group `codiff_bench.degradations`) and written in a config as a one-key mapping: `{jpeg: 90}`,
`{shift: [4, 4]}`, `{resize: 0.5}` (a scalar or a list gives the fields in order, a mapping names them).
Geometric steps change the HQ reference as well; the others only the LQ.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

from bench.core.config import from_dict
from bench.core.errors import ConfigError
from bench.core.registry import Registry, registry


class Step:
    """One degradation step; subclasses are frozen dataclasses."""

    name: ClassVar[str] = ""
    geometric: ClassVar[bool] = False  # True when the HQ reference undergoes it too

    def apply(self, rgb: np.ndarray, protocol: Any) -> np.ndarray:
        """The H x W x 3 uint8 RGB image after this step (`protocol` encodes and decodes JPEG steps)."""
        raise NotImplementedError

    def to_spec(self) -> dict[str, Any]:
        return {self.name: dataclasses.asdict(self)}  # type: ignore[call-overload]


@dataclasses.dataclass(frozen=True)
class JpegStep(Step):
    """An earlier JPEG compression (encoded and decoded); codec and subsampling default to the protocol's."""

    quality: int
    codec: str | None = None
    subsampling: str | None = None
    name: ClassVar[str] = "jpeg"

    def __post_init__(self) -> None:
        if isinstance(self.quality, bool) or not isinstance(self.quality, int) or not 1 <= self.quality <= 100:
            raise ConfigError(f"jpeg step: quality must be a whole number within 1..100, not {self.quality!r}")
        if self.subsampling is not None:
            object.__setattr__(self, "subsampling", str(self.subsampling).replace(":", ""))

    def apply(self, rgb: np.ndarray, protocol: Any) -> np.ndarray:
        return protocol.round_trip(rgb, self.quality, codec=self.codec, subsampling=self.subsampling)


@dataclasses.dataclass(frozen=True)
class ShiftStep(Step):
    """Crop `dx` columns off the left and `dy` rows off the top: the next compression's 8 x 8 grid no longer
    falls on the earlier one's (a shift by a multiple of 8 keeps them aligned)."""

    dx: int = 0
    dy: int = 0
    name: ClassVar[str] = "shift"
    geometric: ClassVar[bool] = True

    def __post_init__(self) -> None:
        for value in (self.dx, self.dy):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"shift step: dx and dy must be whole numbers of pixels >= 0, not {value!r}")

    def apply(self, rgb: np.ndarray, protocol: Any) -> np.ndarray:
        return np.ascontiguousarray(rgb[self.dy:, self.dx:])


@dataclasses.dataclass(frozen=True)
class ResizeStep(Step):
    """Resize by `scale` (LANCZOS, as the official test prepares its images), as a web upload or a
    messenger does before compressing."""

    scale: float
    name: ClassVar[str] = "resize"
    geometric: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not 0 < self.scale <= 4:
            raise ConfigError(f"resize step: scale must be a number within (0, 4], not {self.scale!r}")
        object.__setattr__(self, "scale", float(self.scale))

    def apply(self, rgb: np.ndarray, protocol: Any) -> np.ndarray:
        from PIL import Image

        h, w = rgb.shape[:2]
        size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        return np.asarray(Image.fromarray(rgb).resize(size, Image.LANCZOS))


STEPS: Registry[type[Step]] = registry("degradation", group="codiff_bench.degradations", base=Step, builtins={
    "jpeg": "bench.core.degradation:JpegStep", "shift": "bench.core.degradation:ShiftStep",
    "resize": "bench.core.degradation:ResizeStep"})


def parse_step(spec: Any) -> Step:
    """A step from its config form (`{jpeg: 90}`, `{shift: [4, 4]}`, `{jpeg: {quality: 90, subsampling: 444}}`)
    or a step object."""
    if isinstance(spec, Step):
        return spec
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"a degradation step is a one-key mapping such as {{jpeg: 90}}, {{shift: [4, 4]}} or "
                          f"{{resize: 0.5}}, not {spec!r}")
    (name, value), = spec.items()
    cls = STEPS.get(str(name))
    if not isinstance(value, dict):
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        fields = [f.name for f in dataclasses.fields(cls) if f.init]
        if len(values) > len(fields):
            raise ConfigError(f"{name} step: at most {len(fields)} values ({', '.join(fields)}), got {value!r}")
        value = dict(zip(fields, values))
    return from_dict(cls, value, f"{name}.")
