"""One generic registry of named, lazily imported entries, open to plugins through entry points.

An entry is a `"module:attr"` string (imported on first use), or an object registered in code. Built-in
entries are given when a registry is made; installed distributions add theirs under the registry's
entry-point group (for example `codiff_bench.methods`), read once, on the first lookup. Loaded entries are
checked against the registry's base class, and an unknown name is an `UnknownNameError` with a "did you mean".
"""

from __future__ import annotations

import importlib
import importlib.metadata
from typing import Any, Callable, Generic, TypeVar

from bench.core.errors import BenchError, UnknownNameError

T = TypeVar("T")


class PluginError(BenchError):
    """A registered entry cannot be imported or is not what its registry holds."""


def load_target(target: str) -> Any:
    """The object a `"module:attr.sub"` string names."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise PluginError(f"{target!r} is not of the form 'module:attr'")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Registry(Generic[T]):
    """Named entries of one kind (`kind` is used in messages: 'method', 'metric', ...).

    `base`: a class, or a `"module:attr"` naming one, that every loaded entry must be a subclass (or an
    instance) of; `group`: the entry-point group that plugins use; `builtins`: name -> `"module:attr"`.
    """

    def __init__(self, kind: str, *, group: str | None = None, base: type | str | None = None,
                 builtins: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.group = group
        self._base = base
        self._targets: dict[str, Any] = dict(builtins or {})
        self._loaded: dict[str, T] = {}
        self._plugins_read = group is None

    # -- registering -----------------------------------------------------------------------------------
    def register(self, name: str, target: Any = None) -> Any:
        """Register `target` (an object or a `"module:attr"` string) under `name`; without a target, a
        decorator that registers what it decorates."""
        if target is None:
            def decorate(obj: Any) -> Any:
                self.register(name, obj)
                return obj
            return decorate
        self._targets[name] = target
        self._loaded.pop(name, None)
        return target

    # -- looking up --------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every registered name, built-in, plugin and in-code, sorted; nothing is imported."""
        self._read_plugins()
        return sorted(self._targets)

    def __contains__(self, name: object) -> bool:
        self._read_plugins()
        return name in self._targets

    def check(self, name: str) -> str:
        """`name` when it is registered, else UnknownNameError (with the known names and a suggestion)."""
        if name not in self:
            raise UnknownNameError(self.kind, name, self.names())
        return name

    def target(self, name: str) -> Any:
        """What `name` is registered as, not imported: a `"module:attr"` string, or the registered object."""
        return self._targets[self.check(name)]

    def get(self, name: str) -> T:
        """The entry registered under `name`, imported on first use and checked against the base class."""
        if name in self._loaded:
            return self._loaded[name]
        target = self._targets[self.check(name)]
        try:
            obj = load_target(target) if isinstance(target, str) else target
        except (ImportError, AttributeError) as exc:
            raise PluginError(f"{self.kind} {name!r}: cannot import {target!r}: {exc}") from exc
        self._check_base(name, obj)
        if isinstance(obj, type) and hasattr(obj, "name") and "name" not in vars(obj):
            obj.name = name  # a registered class knows the name it is registered under
        self._loaded[name] = obj
        return obj

    # -- state (tests restore it) -------------------------------------------------------------------------
    def snapshot(self) -> Callable[[], None]:
        """A function that puts the registry back as it is now."""
        self._read_plugins()
        targets, loaded = dict(self._targets), dict(self._loaded)

        def restore() -> None:
            self._targets, self._loaded = dict(targets), dict(loaded)
        return restore

    # -- internals ------------------------------------------------------------------------------------------
    def _read_plugins(self) -> None:
        if self._plugins_read:
            return
        self._plugins_read = True
        for point in importlib.metadata.entry_points(group=self.group):
            self._targets.setdefault(point.name, point.value)

    def _base_class(self) -> type | None:
        if isinstance(self._base, str):
            self._base = load_target(self._base)
        return self._base

    def _check_base(self, name: str, obj: Any) -> None:
        base = self._base_class()
        if base is None:
            return
        if not ((isinstance(obj, type) and issubclass(obj, base)) or isinstance(obj, base)):
            raise PluginError(f"{self.kind} {name!r} is {obj!r}, not a {base.__module__}.{base.__qualname__}")


REGISTRIES: dict[str, Registry[Any]] = {}


def registry(kind: str, **options: Any) -> Registry[Any]:
    """The process-wide registry of `kind`, made with `options` on first call (tests snapshot them all)."""
    if kind not in REGISTRIES:
        REGISTRIES[kind] = Registry(kind, **options)
    return REGISTRIES[kind]
