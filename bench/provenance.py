"""Provenance of a run: code version, library versions, device, and the identity of weight files."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "torchvision", "diffusers", "peft", "pyiqa", "transformers", "timm", "accelerate",
             "fvcore", "numpy", "opencv-python-headless", "pillow", "scikit-image", "codiff-bench")


def git_state(repo: Path | None = None) -> dict[str, Any]:
    """Commit hash and whether the working tree has changes; empty values outside a git checkout."""
    repo = repo or Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": dirty if commit else None}


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"device": device, "processor": platform.processor() or platform.machine(),
                            "cpu_threads": torch.get_num_threads(), "platform": platform.platform(),
                            "python": platform.python_version()}
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        info["gpu"] = torch.cuda.get_device_name(index)
        info["cuda"] = torch.version.cuda
    return info


def manifest(config: dict[str, Any], protocol: dict[str, Any], weight_files: dict[str, list[dict[str, Any]]],
             device: str, seed: int) -> dict[str, Any]:
    """The run manifest recorded with every result set."""
    return {"git": git_state(), "versions": library_versions(), "device": device_info(device),
            "protocol": protocol, "config": config, "weights": weight_files, "seed": seed,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
