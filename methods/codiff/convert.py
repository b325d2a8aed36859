"""Converting CODiff (codiff.pkl) and CaVE (cave.pth) checkpoints between the official torch format and this
project's safetensors + JSON: `python -m methods.codiff.convert SRC DST [--format official|project]`."""

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


def main(argv: list[str] | None = None) -> int:
    """`python -m methods.codiff.convert SRC DST [--format official|project]`: convert a checkpoint."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="Convert a CODiff (codiff.pkl) or CaVE (cave.pth) checkpoint "
                                     "between the official torch format and this project's safetensors + JSON.")
    parser.add_argument("src", help="checkpoint to read (official file, or NAME.safetensors / NAME.json)")
    parser.add_argument("dst", help="where to write (.safetensors / .json: project format; else official)")
    parser.add_argument("--format", choices=("official", "project"), help="override the format chosen by suffix")
    args = parser.parse_args(argv)
    try:
        print(convert_checkpoint(args.src, args.dst, args.format))
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
