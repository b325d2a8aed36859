"""Methods that run an installed program on the LQ JPEG file itself, byte for byte: finding the program (a
required file, so an absent one skips the method with its install command, and its content hash keys the
cache), its versions, and one run per image in a temporary folder."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from abc import abstractmethod
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from bench.core.weights import WeightFile
from methods.base import Method, MethodError, RestoreRequest

TAIL_CHARS = 300


class ExternalProgram(Method):
    """Runs `program` (an option of the config class, with `timeout`) once per image on the LQ file."""

    steps = 0
    install: ClassVar[str] = ""  # the command that installs the program, for messages
    output_suffix: ClassVar[str] = ".png"

    @cached_property
    def program(self) -> Path | None:
        """The program's resolved path, None where it is not found."""
        found = shutil.which(self.opts.program)
        return Path(found).resolve() if found else None

    def required_weights(self) -> list[WeightFile]:
        name = self.opts.program
        expected = Path(name) if "/" in name else Path("/usr/bin") / name
        return [WeightFile(f"{Path(name).name} program", self.program or expected,
                           where=f"on PATH; install it with `{self.install}` (Debian, Ubuntu), or set `program` to it")]

    @cached_property
    def versions(self) -> dict[str, str | None]:
        """The program's version strings (part of the fingerprint and the provenance)."""
        return self.read_versions() if self.program is not None else {}

    @abstractmethod
    def read_versions(self) -> dict[str, str | None]:
        """Ask the program for its versions."""

    @abstractmethod
    def command_line(self, source: Path, target: Path, request: RestoreRequest) -> list[str]:
        """The arguments that restore `source` into `target`."""

    def ask(self, *arguments: str) -> str:
        """What a short informational call prints (stdout and stderr), empty when it cannot run."""
        try:
            done = subprocess.run([str(self.program), *arguments], stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return (done.stdout + done.stderr).decode(errors="replace")

    def restore(self, request: RestoreRequest):
        if request.jpeg_bytes is None:
            raise MethodError(f"{self.name}: restores JPEG files only (the request carries no JPEG file)")
        if request.lq.shape[0] != 1:
            raise MethodError(f"{self.name}: restores one image at a time, got a batch of {request.lq.shape[0]}")
        self.load()
        with tempfile.TemporaryDirectory(prefix=f"{self.name}.") as folder:
            source, target = Path(folder) / "input.jpg", Path(folder) / f"output{self.output_suffix}"
            source.write_bytes(request.jpeg_bytes)
            argv = self.command_line(source, target, request)
            try:
                done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=self.opts.timeout)
            except subprocess.TimeoutExpired:
                raise MethodError(f"{self.name}: {argv[0]} timed out after {self.opts.timeout} s") from None
            except OSError as exc:
                raise MethodError(f"{self.name}: could not start {argv[0]}: {exc}") from None
            if done.returncode != 0 or not target.is_file():
                said = (done.stderr or done.stdout).decode(errors="replace").strip()[-TAIL_CHARS:]
                raise MethodError(f"{self.name}: {Path(argv[0]).name} failed (exit status {done.returncode})"
                                  + (f": {said}" if said else ""))
            rgb = self.decode(target)
        height, width = request.lq.shape[-2:]
        if rgb.shape[:2] != (height, width):
            raise MethodError(f"{self.name}: the program returned {rgb.shape[1]}x{rgb.shape[0]} for a "
                              f"{width}x{height} input")
        from bench.core.imageio import to_tensor

        return to_tensor(rgb).to(request.lq.device)

    def decode(self, path: Path) -> Any:
        """The program's output as H x W x 3 uint8 RGB."""
        from bench.core.imageio import ImageError, read_rgb8

        try:
            return read_rgb8(path).rgb
        except ImageError as exc:
            raise MethodError(f"{self.name}: the program wrote no readable image: {exc}") from None
