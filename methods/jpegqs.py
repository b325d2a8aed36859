"""JPEG Quant Smooth (`jpegqs`, Debian and Ubuntu package `jpegqs`) as a method: a classical restorer that
works on the JPEG's own DCT coefficients and quantisation tables, so it is given the LQ file itself, byte for
byte, never re-encoded pixels. Its JPEG output is decoded as the harness decodes every JPEG.

The program is listed as a required file: where it is absent the method is skipped with the install
command, and its content hash (with its reported version) is part of the fingerprint, so cached results
follow an upgraded binary.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from bench.core.errors import ConfigError
from bench.core.weights import WeightFile
from methods.base import Method, MethodError, RestoreRequest

INSTALL = "apt-get install jpegqs"
TAIL_CHARS = 300


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


class JpegQs(Method):
    """Runs jpegqs on each LQ JPEG file and decodes its output."""

    blind = True  # reads the quantisation tables from the file, never the QF
    steps = 0
    description = "JPEG Quant Smooth (Debian jpegqs): DCT coefficients smoothed within their quantisation bins"
    config_class = JpegQsOptions

    # -- the program ---------------------------------------------------------------------------------
    @cached_property
    def program(self) -> Path | None:
        """The program's resolved path, None where it is not found."""
        found = shutil.which(self.opts.program)
        return Path(found).resolve() if found else None

    def required_weights(self) -> list[WeightFile]:
        expected = Path(self.opts.program) if "/" in self.opts.program else Path("/usr/bin") / self.opts.program
        return [WeightFile("jpegqs program", self.program or expected,
                           where=f"on PATH; install it with `{INSTALL}` (Debian, Ubuntu), or set `program` to it")]

    @cached_property
    def versions(self) -> dict[str, str | None]:
        """jpegqs's version (its help text) and the libjpeg it was built with (its verbose banner)."""
        if self.program is None:
            return {"version": None, "libjpeg": None}
        usage = _output([str(self.program), "--help"])
        banner = _output([str(self.program), "--verbose", "1"])
        version = re.search(r"Version:\s*(\S+)", usage) or re.search(r"JPEG Quant Smooth.*:\s*(\S+)\s*$", usage, re.M)
        libjpeg = re.search(r"Compiled with (.+?)\s*$", banner, re.M)
        return {"version": version.group(1) if version else None, "libjpeg": libjpeg.group(1) if libjpeg else None}

    def output_config(self) -> dict[str, Any]:
        """What changes outputs: quality, iterations and the program's versions (its file counts by content)."""
        return {"quality": self.opts.quality, "iterations": self.opts.iterations, **self.versions}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "threads": self.opts.threads}

    def command_line(self, source: Path, target: Path) -> list[str]:
        threads = ["-t", str(self.opts.threads)] if self.opts.threads else []
        return [str(self.program), "-q", str(self.opts.quality), "-n", str(self.opts.iterations), "-i", "0",
                *threads, str(source), str(target)]

    # -- work ----------------------------------------------------------------------------------------
    def restore(self, request: RestoreRequest):
        from bench.core.imageio import to_tensor
        from bench.core.protocol import ProtocolError, decode_jpeg

        if request.jpeg_bytes is None:
            raise MethodError(f"{self.name}: restores JPEG files only (the request carries no JPEG file)")
        if request.lq.shape[0] != 1:
            raise MethodError(f"{self.name}: restores one image at a time, got a batch of {request.lq.shape[0]}")
        self.load()
        with tempfile.TemporaryDirectory(prefix="jpegqs.") as folder:
            source, target = Path(folder) / "input.jpg", Path(folder) / "output.jpg"
            source.write_bytes(request.jpeg_bytes)
            argv = self.command_line(source, target)
            try:
                done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=self.opts.timeout)
            except subprocess.TimeoutExpired:
                raise MethodError(f"{self.name}: jpegqs timed out after {self.opts.timeout} s") from None
            except OSError as exc:
                raise MethodError(f"{self.name}: could not start {argv[0]}: {exc}") from None
            if done.returncode != 0 or not target.is_file():
                said = (done.stderr or done.stdout).decode(errors="replace").strip()[-TAIL_CHARS:]
                raise MethodError(f"{self.name}: jpegqs failed (exit status {done.returncode})"
                                  + (f": {said}" if said else ""))
            try:
                rgb = decode_jpeg(target.read_bytes())
            except ProtocolError as exc:
                raise MethodError(f"{self.name}: jpegqs wrote no readable JPEG: {exc}") from None
        height, width = request.lq.shape[-2:]
        if rgb.shape[:2] != (height, width):
            raise MethodError(f"{self.name}: jpegqs returned {rgb.shape[1]}x{rgb.shape[0]} for a {width}x{height} "
                              "input")
        return to_tensor(rgb).to(request.lq.device)


def _output(argv: list[str]) -> str:
    """What a short informational call prints (stdout and stderr), empty when it cannot run."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stdout + done.stderr).decode(errors="replace")
