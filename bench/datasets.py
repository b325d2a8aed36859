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

from bench.core.config import read_mapping
from bench.core.errors import BenchError, UnknownNameError
from bench.core.imageio import IMAGE_SUFFIXES, FolderScan, scan_images
from bench.core.resources import embedded_file

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
    """A resolved evaluation set: a name and its image files, with stable per-image ids, and the files of its
    folder left out (`left_out`: (file id, reason) for hidden files skipped and non-image files ignored)."""

    name: str
    root: Path
    files: tuple[Path, ...]
    description: str = ""
    label: str = ""
    left_out: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @classmethod
    def scanned(cls, name: str, root: Path, scan: FolderScan, description: str = "", label: str = "") -> "Dataset":
        """A dataset of the images `scan_images(root)` found, with what it skipped or ignored and why."""
        left_out = {**scan.skipped, **{p: f"ignored: {r}" for p, r in scan.ignored.items()}}
        return cls(name, root, tuple(scan.images), description, label,
                   tuple((p.relative_to(root).as_posix(), r) for p, r in sorted(left_out.items())))

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
    dataset = Dataset.scanned(name, folder, scan_images(folder), description, label)
    expected = entry.get("count")
    if expected is not None and len(dataset.files) != int(expected):
        raise DatasetError(f"dataset {name!r}: expected {expected} images in {folder}, found {len(dataset.files)} "
                           "(hidden files, AppleDouble `._*` files and non-image files are not counted)")
    return dataset


def folder_dataset(folder: str | os.PathLike, name: str | None = None) -> Dataset:
    """Any folder of images as an ad hoc dataset (named after the folder unless `name` is given)."""
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise DatasetError(f"image folder {folder} not found")
    dataset = Dataset.scanned(name or folder.name, folder, scan_images(folder), f"images in {folder}")
    if not dataset.files:
        raise DatasetError(f"no images in {folder} ({len(dataset.left_out)} other files: hidden files and files "
                           f"without an image extension {', '.join(IMAGE_SUFFIXES)} are left out)")
    return dataset
