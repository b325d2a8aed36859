"""Full-size architectures of the benchmarked methods, for parameter, MAC, latency and memory profiling.

`create_architecture(name)` builds the description (cheap: no network is built until a counter asks);
`list_architectures()` names those known. Built from public configurations with diffusers, transformers,
timm and spandrel, with random weights; a part that cannot be built faithfully is listed as missing.
"""

from __future__ import annotations

import importlib
from typing import Callable

from methods.architectures.base import Architecture, Call, InputSpec, MissingPart, Part, Stage

# name -> ("module:function", keyword arguments)
_BUILTIN: dict[str, tuple[str, dict]] = {
    "codiff": ("methods.architectures.codiff:build", {}),
    "codiff-merged": ("methods.architectures.codiff:build", {"merged": True}),
    "codiff-tiled": ("methods.architectures.codiff:build", {"tiled": True}),
    "codiff-merged-tiled": ("methods.architectures.codiff:build", {"merged": True, "tiled": True}),
    "osediff": ("methods.architectures.osediff:build", {}),
    "osediff-tiled": ("methods.architectures.osediff:build", {"tiled": True}),
    "diffbir": ("methods.architectures.diffbir:build", {}),
    "supir": ("methods.architectures.supir:build", {}),
    "fbcnn": ("methods.architectures.feedforward:fbcnn", {}),
    "jpeg": ("methods.architectures.feedforward:jpeg", {}),
}
_REGISTERED: dict[str, Callable[[], Architecture]] = {}


def register_architecture(name: str, factory: Callable[[], Architecture]) -> None:
    """Add (or replace) the architecture `name`, built by `factory()`."""
    _REGISTERED[name] = factory


def list_architectures() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def create_architecture(name: str) -> Architecture:
    """The architecture description registered under `name`; KeyError naming the known ones otherwise."""
    if name in _REGISTERED:
        return _REGISTERED[name]()
    if name not in _BUILTIN:
        raise KeyError(f"no architecture for {name!r}; known: {', '.join(list_architectures())}")
    target, kwargs = _BUILTIN[name]
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)(**kwargs)


__all__ = ["Architecture", "Call", "InputSpec", "MissingPart", "Part", "Stage", "create_architecture",
           "list_architectures", "register_architecture"]
