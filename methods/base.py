"""The one interface every restoration method implements, and the request it restores.

Images cross this boundary as float tensors B x 3 x H x W, RGB, in [0, 1]; a method converts to its own
range inside `restore` and returns the same layout and range, at the input's size. The module imports no
torch, so that listing methods stays fast.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from bench.core.config import NoOptions, from_dict, to_dict
from bench.core.errors import BenchError
from bench.core.weights import WeightFile, unusable_files

if TYPE_CHECKING:
    import torch


class MethodError(BenchError, RuntimeError):
    """A method cannot be built or run (missing or wrong weights, bad configuration)."""


@dataclass(frozen=True)
class Unit:
    """Which unit of a run a request belongs to: dataset, image id (extension included), file-safe stem, QF,
    the JPEG file (its folder holds the dataset's other LQ files at that QF) and a work folder for this
    method, dataset and QF inside the run folder."""

    dataset: str
    image: str
    stem: str
    qf: int
    lq_path: Path
    work_dir: Path


@dataclass(frozen=True)
class RestoreRequest:
    """One restoration: the decoded JPEG (B x 3 x H x W in [0, 1]), the true QF (non-blind methods may use
    it), the compressed file (for methods that read quantisation tables) and, inside a run, the unit."""

    lq: "torch.Tensor"
    qf: int | None = None
    jpeg_bytes: bytes | None = None
    unit: Unit | None = None


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

    Subclasses set `name` (the registry sets it), `blind` (True when the method never needs the QF), `steps`
    (diffusion steps, 1 for feed-forward models), `config_class` (a dataclass of their options, read with the
    typed config system), implement `restore`, and list their files in `required_weights`. Construction is
    cheap; weights are loaded on first use by `load()`.
    """

    name: ClassVar[str] = ""
    blind: ClassVar[bool] = True
    steps: ClassVar[int] = 1
    description: ClassVar[str] = ""
    config_class: ClassVar[type] = NoOptions
    example: ClassVar[dict[str, Any]] = {}  # options an example config entry sets beyond the defaults

    def __init__(self, *, device: Any = None, **config: Any) -> None:
        import torch

        try:
            self.opts = from_dict(self.config_class, config)
        except BenchError as exc:
            raise MethodError(f"method {self.name!r}: {exc}") from None
        self.device = torch.device(device or "cpu")
        self._loaded = False

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
        """A short hash of everything that changes this method's outputs: name, options, weight file contents.

        The run engine keys cached outputs on it, so changing a method's configuration invalidates only
        its own results. Weight files count by content (SHA-256), not by path: options naming a weight file,
        or a folder holding some, are left out, so moved weights or a moved repository reuse every result
        while a swapped checkpoint invalidates this method's.
        """
        required = self.required_weights()
        weights = [[w.label, w.sha256()] for w in required]
        config = without_weight_paths(self.output_config(), [w.path for w in required])
        payload = {"name": self.name, "config": config, "weights": weights}
        blob = json.dumps(payload, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def output_config(self) -> dict[str, Any]:
        """The options, all of them (defaults included): everything here may change outputs."""
        return to_dict(self.opts)

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for manifests and reports."""
        return {"name": self.name, "blind": self.blind, "steps": self.steps, "config": self.output_config(),
                "weights": [str(w.path) for w in self.required_weights()]}

    def preflight(self, units: list[Unit]) -> list[str]:
        """What is missing for these units, found without computing anything: used by dry runs. Weight files
        are reported separately (`missing_weights`)."""
        return []

    # -- work --------------------------------------------------------------------------------------
    @abstractmethod
    def restore(self, request: RestoreRequest) -> "torch.Tensor":
        """Restore `request.lq` (B x 3 x H x W in [0, 1]); return the same shape and range."""

    def __call__(self, lq: "torch.Tensor", *, qf: int | None = None, jpeg_bytes: bytes | None = None,
                 unit: Unit | None = None) -> "torch.Tensor":
        """`restore` of a request made from these arguments: `method(lq)` for use outside a run."""
        return self.restore(RestoreRequest(lq, qf=qf, jpeg_bytes=jpeg_bytes, unit=unit))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, config={self.output_config()!r})"
