"""JPEG Quant Smooth (`jpegqs`, Debian and Ubuntu package `jpegqs`) as a method: a classical restorer that
works on the JPEG's own DCT coefficients and quantisation tables, so it is given the LQ file itself, byte for
byte, never re-encoded pixels. Its JPEG output is decoded as the harness decodes every JPEG.

The program is a required file (`methods.program`): where it is absent the method is skipped with the
install command, and its content hash (with its reported versions) is part of the fingerprint, so cached
results follow an upgraded binary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.errors import ConfigError
from methods.base import MethodError, RestoreRequest
from methods.program import ExternalProgram


@dataclass(frozen=True)
class JpegQsOptions:
    """jpegqs's options: `quality` (-q, 1-6: higher smooths more), `iterations` (-n), `threads` (-t; the
    output does not depend on it), the `program` to run, and a `timeout` in seconds per image."""

    quality: int = 6
    iterations: int = 3
    threads: int | None = None
    program: str = "jpegqs"
    timeout: float | None = 600.0

    def validate(self) -> None:
        if not 1 <= self.quality <= 6:
            raise ConfigError(f"quality: {self.quality} is outside jpegqs's range 1-6")
        if self.iterations < 1:
            raise ConfigError(f"iterations: {self.iterations} must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads: {self.threads} must be at least 1 (or null: jpegqs decides)")


class JpegQs(ExternalProgram):
    """Runs jpegqs on each LQ JPEG file and decodes its output."""

    blind = True  # reads the quantisation tables from the file, never the QF
    description = "JPEG Quant Smooth (Debian jpegqs): DCT coefficients smoothed within their quantisation bins"
    config_class = JpegQsOptions
    install = "apt-get install jpegqs"
    output_suffix = ".jpg"

    def read_versions(self) -> dict[str, str | None]:
        """jpegqs's version (its help text) and the libjpeg it was built with (its verbose banner)."""
        usage, banner = self.ask("--help"), self.ask("--verbose", "1")
        version = re.search(r"Version:\s*(\S+)", usage) or re.search(r"JPEG Quant Smooth.*:\s*(\S+)\s*$", usage, re.M)
        libjpeg = re.search(r"Compiled with (.+?)\s*$", banner, re.M)
        return {"version": version.group(1) if version else None, "libjpeg": libjpeg.group(1) if libjpeg else None}

    def output_config(self) -> dict[str, Any]:
        """What changes outputs: quality, iterations and the program's versions (its file counts by content)."""
        return {"quality": self.opts.quality, "iterations": self.opts.iterations, **self.versions}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "threads": self.opts.threads}

    def command_line(self, source: Path, target: Path, request: RestoreRequest) -> list[str]:
        threads = ["-t", str(self.opts.threads)] if self.opts.threads else []
        return [str(self.program), "-q", str(self.opts.quality), "-n", str(self.opts.iterations), "-i", "0",
                *threads, str(source), str(target)]

    def decode(self, path: Path):
        """jpegqs writes JPEG: decoded as the harness decodes every JPEG."""
        from bench.core.protocol import ProtocolError, decode_jpeg

        try:
            return decode_jpeg(path.read_bytes())
        except ProtocolError as exc:
            raise MethodError(f"{self.name}: jpegqs wrote no readable JPEG: {exc}") from None
