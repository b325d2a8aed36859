"""The environment matches constraints.txt, the lock the Makefile installs with: results are measured with
exactly the library versions a fresh `make install` gives."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"
# The libraries whose versions change the numbers (models, metrics, image decoding, statistics).
MATTER = ["torch", "torchvision", "diffusers", "peft", "pyiqa", "timm", "transformers", "accelerate", "numpy",
          "opencv-python-headless", "pillow", "scikit-image", "pandas", "safetensors", "fvcore",
          "bjontegaard"]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for number, line in enumerate(CONSTRAINTS.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt:{number}: {line!r} is not NAME==VERSION"
            pins[_canonical(name)] = version.strip()
    return pins


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def test_the_libraries_that_matter_are_locked_and_installed_at_those_versions():
    pins = _pins()
    found = {name: (pins.get(_canonical(name)), _installed(name)) for name in MATTER}
    unpinned = [name for name, (pin, _) in found.items() if pin is None]
    assert not unpinned, f"not in constraints.txt: {unpinned} (run `make lock`)"
    wrong = {name: f"installed {have}, locked {pin}" for name, (pin, have) in found.items() if have != pin}
    assert not wrong, f"the environment differs from constraints.txt: {wrong} (`make install`, or `make lock`)"


def test_every_locked_distribution_that_is_installed_has_the_locked_version():
    wrong = {name: f"installed {have}, locked {pin}" for name, pin in _pins().items()
             if (have := _installed(name)) is not None and have != pin}
    assert not wrong, f"the environment differs from constraints.txt: {wrong} (`make install`, or `make lock`)"
    assert "codiff-bench" not in _pins(), "the project itself is not locked"
