"""Files that ship inside the installed packages (the embedded default config, the dataset registry), read
through importlib.resources so that a wheel install finds them wherever it lives."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_file(package: str, *parts: str) -> Path:
    """A data file of an installed package, as a path (packages install as folders, never zipped)."""
    return Path(str(files(package).joinpath(*parts)))


def embedded_file(*parts: str) -> Path:
    """A file of the harness's embedded data, `bench/data/...`: default.yaml, datasets.yaml, paper_tables/."""
    return package_file("bench", "data", *parts)
