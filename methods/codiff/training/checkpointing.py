"""Training checkpoints that a kill at any moment cannot corrupt.

A checkpoint is a folder `step-NNNNNNNN/` built under a temporary name, its files fsynced, a manifest of
their sizes written last, then renamed into place (an atomic rename). Only folders with that name and a
manifest matching their files are ever loaded; a folder being written at a kill keeps its temporary name and
is removed on the next start. Everything is read back with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.core.atomic import TMP_MARK
from bench.core.torchload import load_weights_only
from methods.codiff.checkpoint import CheckpointError

log = logging.getLogger(__name__)

PREFIX = "step-"
MANIFEST = "manifest.json"
STATE_FILE = "state.pt"
_STEP_RE = re.compile(rf"^{PREFIX}(\d+)$")


def fsync_path(path: Path) -> None:
    """Flush a file or a folder entry to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_tensors(obj: Any, path: Path) -> Path:
    """torch.save + fsync (atomicity comes from the enclosing folder's rename)."""
    torch.save(obj, path)
    fsync_path(path)
    return path


def load_tensors(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    return load_weights_only(path)


class CheckpointFolder:
    """The `checkpoints/` folder of a run: staging, committing, listing and pruning step folders."""

    def __init__(self, root: str | os.PathLike, keep: int = 3) -> None:
        self.root = Path(root)
        self.keep = max(1, int(keep))

    @staticmethod
    def step_of(path: Path) -> int | None:
        match = _STEP_RE.match(path.name)
        return int(match.group(1)) if match else None

    def path_for(self, step: int) -> Path:
        return self.root / f"{PREFIX}{step:08d}"

    def staging(self, step: int) -> Path:
        """The temporary folder a checkpoint of `step` is written into before its commit."""
        return self.root / f"{TMP_MARK}{PREFIX}{step:08d}"

    def remove_stale(self) -> None:
        """Delete folders left by writers that were killed (they were never complete)."""
        if not self.root.is_dir():
            return
        for path in self.root.iterdir():
            if path.name.startswith(TMP_MARK):
                log.info("removing incomplete checkpoint %s", path)
                shutil.rmtree(path, ignore_errors=True)

    def prepare_staging(self, step: int) -> Path:
        staging = self.staging(step)
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        return staging

    def commit(self, staging: Path, step: int, info: dict[str, Any] | None = None) -> Path:
        """Write the manifest of everything in `staging`, then rename it to its final name; prune old ones."""
        files = {p.relative_to(staging).as_posix(): p.stat().st_size for p in sorted(staging.rglob("*"))
                 if p.is_file()}
        manifest = staging / MANIFEST
        manifest.write_text(json.dumps({"step": step, "files": files, **(info or {})}, indent=2, sort_keys=True))
        fsync_path(manifest)
        for sub in sorted({p.parent for p in staging.rglob("*")}, key=lambda p: len(p.parts), reverse=True):
            fsync_path(sub)
        final = self.path_for(step)
        if final.exists():  # the same step saved again (a rerun): replace it
            shutil.rmtree(final)
        os.replace(staging, final)
        fsync_path(self.root)
        self.prune()
        return final

    def is_complete(self, path: Path) -> bool:
        """True when the manifest exists, names this step and every file has its recorded size."""
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError):
            return False
        if manifest.get("step") != self.step_of(path):
            return False
        for name, size in manifest.get("files", {}).items():
            file = path / name
            if not file.is_file() or file.stat().st_size != size:
                return False
        return True

    def complete(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.iterdir() if p.is_dir() and self.step_of(p) is not None]
        good = []
        for path in sorted(found, key=self.step_of):
            if self.is_complete(path):
                good.append(path)
            else:
                log.warning("ignoring incomplete checkpoint %s", path)
        return good

    def latest(self) -> Path | None:
        done = self.complete()
        return done[-1] if done else None

    def prune(self) -> None:
        """Keep the newest `keep` complete checkpoints; older ones are renamed away first, then deleted."""
        for old in self.complete()[:-self.keep]:
            trash = self.root / f"{TMP_MARK}trash-{old.name}"
            os.replace(old, trash)
            shutil.rmtree(trash, ignore_errors=True)


# -- random number generators ------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Every global RNG this process uses, in a form `torch.load(weights_only=True)` reads back."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["key"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value
