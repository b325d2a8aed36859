"""The one interface every restoration method implements, and the description of the files it needs.

Images cross this boundary as float tensors B x 3 x H x W, RGB, in [0, 1]; a method converts to its own
range inside `restore` and returns the same layout and range, at the input's size.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from itertools import groupby
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

T = TypeVar("T")


class MethodError(RuntimeError):
    """A method cannot be built or run (missing or wrong weights, bad configuration)."""


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
        from bench.hashcache import content_sha256

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


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def without_weight_paths(config: dict[str, Any], weight_paths: list[Path]) -> dict[str, Any]:
    """`config` with each string entry that names one of `weight_paths`, or a folder above one, replaced by a
    marker (the files themselves are identified by content)."""
    resolved = [p.expanduser().resolve() for p in weight_paths]

    def names_weights(value: Any) -> bool:
        if not resolved or not isinstance(value, (str, os.PathLike)) or not str(value):
            return False
        target = Path(value).expanduser().resolve()
        return target.exists() and any(p == target or target in p.parents for p in resolved)

    return {k: "<weight files>" if names_weights(v) else v for k, v in config.items()}


class Method(ABC):
    """A JPEG artifact removal method.

    Subclasses set `name`, `blind` (True when the method never needs the QF), `steps` (diffusion steps,
    1 for feed-forward models), implement `restore`, and list their files in `required_weights`.
    Construction must be cheap; weights are loaded on first use by `load()`.
    """

    name: ClassVar[str] = ""
    blind: ClassVar[bool] = True
    steps: ClassVar[int] = 1
    description: ClassVar[str] = ""

    def __init__(self, **config: Any) -> None:
        self.config: dict[str, Any] = dict(config)
        self.device = torch.device(config.get("device") or "cpu")
        self.context: dict[str, Any] = {}
        self._loaded = False

    def options(self, cls: type[T]) -> T:
        """The configuration as the dataclass `cls` (device placement aside); unknown keys, usually typos,
        are a MethodError that lists the known ones."""
        known = {f.name for f in fields(cls)}
        values = self.output_config()
        unknown = sorted(set(values) - known)
        if unknown:
            raise MethodError(f"method {self.name!r}: unknown config keys {unknown}; known: {sorted(known)}")
        return cls(**values)

    # -- files -----------------------------------------------------------------------------------
    def required_weights(self) -> list[WeightFile]:
        """Every file this method reads. Empty for methods that need none."""
        return []

    def input_folders(self, datasets: list[str], qfs: list[int]) -> dict[Path, list[str]]:
        """Folders of files made elsewhere that this method reads for these datasets and QFs (precomputed
        restorations), each with what it must hold. Empty for methods that compute their outputs."""
        return {}

    def missing_weights(self) -> list[WeightFile]:
        """The required files that are absent or do not match their expected size or hash."""
        return [w for w in self.required_weights() if w.status() != "present"]

    # -- life cycle --------------------------------------------------------------------------------
    def load(self) -> None:
        """Load weights once; later calls do nothing. Raises MethodError naming any missing file."""
        if self._loaded:
            return
        missing = self.missing_weights()
        if missing:
            raise MethodError(f"method {self.name!r} cannot load, {unusable_files(missing)}")
        self._load()
        self._loaded = True

    def _load(self) -> None:
        """Build modules and read weights; override in methods that have any."""

    # -- identity ----------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """A short hash of everything that changes this method's outputs: name, config, weight file contents.

        The run engine keys cached outputs on it, so changing a method's configuration invalidates only
        its own results. Weight files count by content (SHA-256), not by path: config entries naming a
        weight file, or a folder holding some, are left out, so moved weights or a moved repository reuse
        every result while a swapped checkpoint invalidates this method's.
        """
        required = self.required_weights()
        weights = [[w.label, w.sha256()] for w in required]
        config = without_weight_paths(self.output_config(), [w.path for w in required])
        payload = {"name": self.name, "config": config, "weights": weights}
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def output_config(self) -> dict[str, Any]:
        """The configuration entries that change outputs (device placement excluded)."""
        return {k: v for k, v in self.config.items() if k not in {"device", "progress"}}

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for manifests and reports."""
        return {"name": self.name, "blind": self.blind, "steps": self.steps, "config": self.output_config(),
                "weights": [str(w.path) for w in self.required_weights()]}

    # -- run context (optional hooks) -------------------------------------------------------------
    def set_context(self, **context: Any) -> None:
        """Told by the run engine, before each `restore`, which unit it is: `dataset`, `image` (id, extension
        included), `stem` (file-safe name), `qf`, `lq_path` (the JPEG file; its folder holds the dataset's
        other LQ files at that QF) and `work_dir` (a folder inside the run folder for this method, dataset and QF).
        Methods that read or make files per image (precomputed outputs, external commands) use
        `self.context`; tensor-only methods ignore it.
        """
        self.context = dict(context)

    def preflight(self, contexts: list[dict[str, Any]]) -> list[str]:
        """What is missing for these units (contexts as `set_context` receives them), found without computing
        anything: used by dry runs. Weight files are reported separately (`missing_weights`)."""
        return []

    # -- work --------------------------------------------------------------------------------------
    @abstractmethod
    def restore(self, lq: torch.Tensor, *, qf: int | None = None, jpeg_bytes: bytes | None = None) -> torch.Tensor:
        """Restore a batch of decoded JPEG images (B x 3 x H x W in [0, 1]); return the same shape and range.

        `qf` is the true quality factor (non-blind methods may use it; blind ones ignore it);
        `jpeg_bytes` is the compressed file for methods that read the bitstream (quantisation tables).
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, config={self.output_config()!r})"


@dataclass
class MethodSpec:
    """A method as a run config names it: a display label, the registered method, and its config."""

    label: str
    method: str
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, entry: str | dict[str, Any]) -> "MethodSpec":
        """Accept 'jpeg' or {'name': 'codiff-fp32', 'method': 'codiff', 'dtype': 'fp32', ...}."""
        if isinstance(entry, str):
            return cls(label=entry, method=entry)
        entry = dict(entry)
        method = entry.pop("method", None) or entry.get("name")
        label = entry.pop("name", None) or method
        if not method:
            raise MethodError(f"method entry {entry!r} names no method")
        config = entry.pop("config", None) or {}
        config.update(entry)
        return cls(label=str(label), method=str(method), config=config)
