"""Weight files: where a method or metric expects each one, how to recognise it, and its content hash (from
`bench.core.hashcache`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from bench.core.hashcache import content_sha256

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
        if self.sha256_prefix and not self.sha256().startswith(self.sha256_prefix):
            return "wrong hash"
        return "present"

    def sha256(self) -> str | None:
        """The file's content hash (from the hash cache while the file is unchanged), None when it is absent."""
        return content_sha256(self.path) if self.path.is_file() else None

    def describe(self) -> str:
        where = f" ({self.where})" if self.where else ""
        return f"{self.label}: {self.path}{where}"


def unusable_files(files: list[WeightFile]) -> str:
    """A multi-line list of files that are missing or do not match: a headline, then one line per file with
    its path, and where the files belong written once under each run of files that share it."""
    lines = [f"{len(files)} weight file{'s' if len(files) != 1 else ''} not usable:"]
    for where, group in groupby(files, key=lambda w: w.where):
        lines += [f"  - {w.label} is {w.status()}: {w.path}" for w in group]
        if where:
            lines.append(f"    where: {where}")
    return "\n".join(lines)
