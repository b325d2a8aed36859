"""Weight files: where a method or metric expects each one, how to recognise it, and its content hash."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

WEIGHTS_ENV = "CODIFF_BENCH_WEIGHTS"


def default_weights_dir() -> Path:
    """Where methods look for weight files they are not given a path for: $CODIFF_BENCH_WEIGHTS, else
    ~/.cache/codiff-bench/weights."""
    return Path(os.environ.get(WEIGHTS_ENV) or "~/.cache/codiff-bench/weights").expanduser()


@dataclass(frozen=True)
class WeightFile:
    """A file that a method or metric needs, where it must be, and how to recognise it.

    `where` explains in words which folder it belongs in (for messages); `url` is where it can be
    downloaded from, if the file is public; `sha256_prefix` and `size` (bytes) identify it when known.
    """

    label: str
    path: Path
    where: str = ""
    url: str | None = None
    sha256_prefix: str | None = None
    size: int | None = None

    def status(self) -> str:
        """'present', 'missing', or 'wrong size' / 'wrong hash' when the file exists but does not match."""
        if not self.path.is_file():
            return "missing"
        if self.size is not None and self.path.stat().st_size != self.size:
            return "wrong size"
        if self.sha256_prefix and not file_sha256(self.path).startswith(self.sha256_prefix):
            return "wrong hash"
        return "present"

    def describe(self) -> str:
        where = f" ({self.where})" if self.where else ""
        return f"{self.label}: {self.path}{where}"


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
