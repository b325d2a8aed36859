"""Converting CODiff (codiff.pkl) and CaVE (cave.pth) checkpoints between the official torch format and this
project's safetensors + JSON (`codiff-bench convert SRC DST [--format official|project]`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from methods.codiff.cave import load_cave, save_cave, save_cave_official
from methods.codiff.checkpoint import (
    CODIFF_KIND,
    PROJECT_SUFFIXES,
    CheckpointError,
    is_project_checkpoint,
    load_codiff_checkpoint,
    load_torch_file,
    project_paths,
    save_codiff_checkpoint,
)


def convert_checkpoint(src: str | Path, dst: str | Path, fmt: str | None = None) -> Path:
    """Convert a CODiff or CaVE checkpoint between the official and project formats (kind read from `src`)."""
    fmt = fmt or ("project" if Path(dst).suffix in PROJECT_SUFFIXES else "official")
    if _checkpoint_kind(src) == CODIFF_KIND:
        return save_codiff_checkpoint(load_codiff_checkpoint(src), dst, fmt)
    cave = load_cave(src)
    return save_cave(cave, dst) if fmt == "project" else save_cave_official(cave, dst)


def _checkpoint_kind(path: str | Path) -> str:
    """'codiff' or 'cave', from the project JSON or the official file's contents."""
    if is_project_checkpoint(path):
        _, config_path = project_paths(path)
        if not config_path.is_file():
            raise CheckpointError(f"{config_path} is missing")
        return str(json.loads(config_path.read_text()).get("kind"))
    obj = load_torch_file(path, "checkpoint")
    return CODIFF_KIND if isinstance(obj, Mapping) and "state_dict_unet" in obj else "cave"
