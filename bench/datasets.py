"""Named evaluation sets (`datasets.yaml`) and ad hoc folders of images, resolved to file lists.

A registered set either ships inside an installed package (`package` + `files`) or lives under a data root
the user sets (`--data-root` or CODIFF_BENCH_DATA); its expected image count is checked on load.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.imageio import list_images
from bench.core.config import read_mapping
from bench.core.resources import embedded_file
from bench.core.errors import BenchError, UnknownNameError

DATA_ROOT_ENV = "CODIFF_BENCH_DATA"
DATASETS_FILE_ENV = "CODIFF_BENCH_DATASETS"


class DatasetError(BenchError, ValueError):
    """A dataset is unknown, missing or incomplete; the message says what was expected where."""


class UnknownDatasetError(UnknownNameError, DatasetError):
    """A dataset name that datasets.yaml does not register."""

    def __init__(self, name: str, registry: dict[str, Any]) -> None:
        super().__init__("dataset", name, registry)
        self.args = (f"{self} (or pass a folder of images with --images)",)


@dataclass(frozen=True)
class Dataset:
    """A resolved evaluation set: a name and its image files, with stable per-image ids."""

    name: str
    root: Path
    files: tuple[Path, ...]
    description: str = ""
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)

    def image_id(self, path: Path) -> str:
        """The image's path relative to the set's root (unique within the set, extension included)."""
        return path.relative_to(self.root).as_posix()

    def items(self) -> list[tuple[str, Path]]:
        return [(self.image_id(p), p) for p in self.files]


def default_datasets_file() -> Path:
    """datasets.yaml: $CODIFF_BENCH_DATASETS, else the current folder's, else the one the package ships."""
    if os.environ.get(DATASETS_FILE_ENV):
        return Path(os.environ[DATASETS_FILE_ENV])
    local = Path.cwd() / "datasets.yaml"
    if local.is_file():
        return local
    return embedded_file("datasets.yaml")


def load_registry(path: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    return read_mapping(path or default_datasets_file(), "dataset registry", DatasetError)


def data_root(explicit: str | os.PathLike | None = None) -> Path | None:
    value = explicit or os.environ.get(DATA_ROOT_ENV)
    return Path(value).expanduser() if value else None


def resolve_dataset(name: str, *, root: str | os.PathLike | None = None,
                    registry: dict[str, dict[str, Any]] | None = None) -> Dataset:
    """Resolve a registered dataset name to its files, checking presence and the expected count."""
    registry = registry if registry is not None else load_registry()
    if name not in registry:
        raise UnknownDatasetError(name, registry)
    entry = registry[name]
    description, label = entry.get("description", ""), entry.get("label", name)
    if "package" in entry:
        spec = importlib.util.find_spec(entry["package"])
        if spec is None or not spec.submodule_search_locations:
            raise DatasetError(f"dataset {name!r} ships with the package {entry['package']!r}, which is not installed")
        folder = Path(list(spec.submodule_search_locations)[0]) / entry.get("subdir", "")
        files = tuple(folder / f for f in entry["files"])
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise DatasetError(f"dataset {name!r}: files missing from the installed package: {missing}")
        return Dataset(name, folder, files, description, label)
    base = data_root(root)
    if base is None:
        raise DatasetError(f"dataset {name!r} lives under a data root: set {DATA_ROOT_ENV} or pass --data-root, "
                           f"with the images in <root>/{entry['root']}/")
    folder = base / entry["root"]
    if not folder.is_dir():
        raise DatasetError(f"dataset {name!r}: folder {folder} not found (expected {entry.get('count', '?')} "
                           f"images there)")
    files = tuple(list_images(folder))
    expected = entry.get("count")
    if expected is not None and len(files) != int(expected):
        raise DatasetError(f"dataset {name!r}: expected {expected} images in {folder}, found {len(files)}")
    return Dataset(name, folder, files, description, label)


def folder_dataset(folder: str | os.PathLike, name: str | None = None) -> Dataset:
    """Any folder of images as an ad hoc dataset (named after the folder unless `name` is given)."""
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise DatasetError(f"image folder {folder} not found")
    files = tuple(list_images(folder))
    if not files:
        raise DatasetError(f"no images in {folder}")
    return Dataset(name or folder.name, folder, files, f"images in {folder}")
