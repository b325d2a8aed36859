"""The method registry: `create_method(name, **config)` for every method, built in or installed.

Methods are entries of the generic registry (`bench.core.registry`) in the entry-point group
`codiff_bench.methods`: this project's own methods are declared there in pyproject.toml exactly as a
third-party package declares its own, and imported only when used. Code can also `@register_method(name)`.
"""

from __future__ import annotations

from typing import Any

from bench.core.registry import Registry, registry
from methods.base import Method

METHODS: Registry[type[Method]] = registry("method", group="codiff_bench.methods", base=Method)


def register_method(name: str):
    """Class decorator that registers a Method subclass under `name`."""

    def decorate(cls: type[Method]) -> type[Method]:
        METHODS.register(name, cls)
        return cls

    return decorate


def list_methods() -> list[str]:
    """Names of every known method."""
    return METHODS.names()


def method_class(name: str) -> type[Method]:
    """The class registered under `name`, importing its module if needed (UnknownNameError otherwise)."""
    return METHODS.get(name)


def create_method(name: str, **config: Any) -> Method:
    """Create the method registered under `name` with its configuration (cheap: no weights are read)."""
    return method_class(name)(**config)
