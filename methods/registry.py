"""The method registry and its one entry point, `create_method(name, **config)`.

Built-in methods are listed lazily (module paths), so that importing the registry stays cheap and a
method's heavy dependencies load only when it is used. Third-party code can add its own with
`@register_method`.
"""

from __future__ import annotations

import importlib
from typing import Any

from methods.base import Method, MethodError

# name -> "module:ClassName"; imported on first use.
_BUILTIN: dict[str, str] = {
    "jpeg": "methods.jpeg:JpegIdentity",
    "fbcnn": "methods.fbcnn:Fbcnn",
    "outputs": "methods.outputs:PrecomputedOutputs",
    "command": "methods.command:ExternalCommand",
    "codiff": "methods.codiff.method:Codiff",
    "cave": "methods.codiff.method:CaveRestorer",
    "cave-small": "methods.cave_small.method:CaveSmall",
}
_REGISTERED: dict[str, type[Method]] = {}


def register_method(name: str):
    """Class decorator that registers a Method subclass under `name`."""

    def decorate(cls: type[Method]) -> type[Method]:
        if not issubclass(cls, Method):
            raise TypeError(f"{cls!r} is not a Method")
        cls.name = name
        _REGISTERED[name] = cls
        return cls

    return decorate


def list_methods() -> list[str]:
    """Names of every known method, built-in and registered."""
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def method_class(name: str) -> type[Method]:
    """The class registered under `name`, importing its module if needed."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name not in _BUILTIN:
        raise MethodError(f"unknown method {name!r}; known: {', '.join(list_methods())}")
    module_name, _, attr = _BUILTIN[name].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    _REGISTERED.setdefault(name, cls)
    return cls


def create_method(name: str, **config: Any) -> Method:
    """Create the method registered under `name` with its configuration (cheap: no weights are read)."""
    return method_class(name)(**config)
