"""Every module of the packages and every entry point of pyproject.toml imports: a moved name breaks a test,
not a user's command."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["bench", "methods", "reports"]


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        module = importlib.import_module(package)
        names += [info.name for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}.")]
    return sorted(names)


def _entry_points() -> list[tuple[str, str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    points = [("console", name, target) for name, target in project["scripts"].items()]
    points += [(group, name, target) for group, entries in project["entry-points"].items()
               for name, target in entries.items()]
    return points


def test_every_module_imports():
    failures = {}
    for name in _modules():
        try:
            if name.endswith(".__main__"):  # running it starts the program: it must be found, and compile
                spec = importlib.util.find_spec(name)
                compile(Path(spec.origin).read_text(), spec.origin, "exec")
                continue
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - every failure is reported with its module
            failures[name] = f"{type(exc).__name__}: {exc}"
    assert not failures, failures
    assert len(_modules()) > 50  # the walk found the packages' modules


@pytest.mark.parametrize("group,name,target", _entry_points(), ids=lambda v: str(v))
def test_every_entry_point_loads(group, name, target):
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    assert obj is not None
