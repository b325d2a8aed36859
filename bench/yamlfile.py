"""Reading YAML files that must hold a mapping (run configs, training configs, the dataset registry)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def read_mapping(path: str | os.PathLike, error: type[Exception], what: str) -> dict[str, Any]:
    """The mapping in a YAML file; `error` (naming the file and `what` it is) when absent or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} not found")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping in this {what}")
    return data
