"""FFmpeg's `spp` filter (simple postprocessing: the image shifted over the 8x8 grid, each shift's DCT
coefficients thresholded at the quantiser, the shifts averaged) as a method, from Debian's `ffmpeg`.

FFmpeg does not read a JPEG's quantisation tables into the filter, so the quantiser comes from the QF:
qp = round(qp_scale / QF), clamped to 1..63 (JPEG's quantisation steps scale as 1 / QF below QF 50). The
default `qp_scale` 150 was chosen on three scikit-image photos that no dataset here uses (ihc,
motorcycle_right, camera). The output is converted to RGB with exact rounding and full chroma interpolation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.errors import ConfigError
from methods.base import MethodError, RestoreRequest
from methods.program import ExternalProgram

MAX_QP = 63


@dataclass(frozen=True)
class SppOptions:
    """`quality` (spp's, 0-6: 2^quality grid shifts), `qp_scale` (qp = qp_scale / QF), `mode` (hard or soft
    thresholding), the `program` to run and a `timeout` in seconds per image."""

    quality: int = 6
    qp_scale: float = 150.0
    mode: str = "hard"
    program: str = "ffmpeg"
    timeout: float | None = 600.0

    def validate(self) -> None:
        if not 0 <= self.quality <= 6:
            raise ConfigError(f"quality: {self.quality} is outside spp's range 0-6")
        if not self.qp_scale > 0:
            raise ConfigError(f"qp_scale: {self.qp_scale} must be positive")
        if self.mode not in ("hard", "soft"):
            raise ConfigError(f"mode: {self.mode!r} is not 'hard' or 'soft'")


class FfmpegSpp(ExternalProgram):
    """Runs `ffmpeg -vf spp` on each LQ JPEG file with a quantiser from its QF."""

    blind = False
    description = "FFmpeg's spp deblocking filter (Debian ffmpeg), its quantiser from the QF"
    config_class = SppOptions
    install = "apt-get install ffmpeg"

    def qp(self, qf: int) -> int:
        return max(1, min(MAX_QP, round(self.opts.qp_scale / qf)))

    def read_versions(self) -> dict[str, str | None]:
        found = re.search(r"ffmpeg version (\S+)", self.ask("-version"))
        return {"version": found.group(1) if found else None}

    def output_config(self) -> dict[str, Any]:
        """What changes outputs: the filter's settings and ffmpeg's version (its file counts by content)."""
        return {"quality": self.opts.quality, "qp_scale": self.opts.qp_scale, "mode": self.opts.mode,
                **self.versions}

    def command_line(self, source: Path, target: Path, request: RestoreRequest) -> list[str]:
        if request.qf is None:
            raise MethodError(f"{self.name}: needs the QF (its quantiser comes from it)")
        spp = f"spp=quality={self.opts.quality}:qp={self.qp(int(request.qf))}:mode={self.opts.mode}"
        return [str(self.program), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
                "-vf", f"{spp},scale=flags=accurate_rnd+full_chroma_int+bicubic,format=rgb24", "-frames:v", "1",
                str(target)]
