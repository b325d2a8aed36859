"""The one typed configuration system: YAML files mapped onto dataclasses, with every key checked.

Used by run configs, method options, the JPEG protocol, analyses and training configs alike:
- `load_config(cls, path, overrides)` reads a YAML file into dataclass `cls`;
- a top-level `base: other.yaml` (relative to the file) is read first and the file is merged over it;
- `${VAR}` and `${VAR:-default}` in strings are replaced from the environment;
- `--set a.b=c` overrides (`apply_overrides`) are parsed as YAML values, one syntax everywhere; a list of
  entries is indexed by position or by an entry's name (`--set methods.codiff-fp16.dtype=fp16`);
- a dataclass with a `from_entry(value, key)` classmethod reads its own shorthand (a method given by name);
- an unknown key or a value of the wrong kind is a ConfigError naming the key, with a "did you mean".
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar

from bench.core.errors import ConfigError, did_you_mean

T = TypeVar("T")
_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_UNSET = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The config class of a part that takes no options (every key given to it is an error)."""


# -- files ------------------------------------------------------------------------------------------------
def read_mapping(path: str | os.PathLike, what: str, error: type[Exception] = ConfigError) -> dict[str, Any]:
    """The mapping in a YAML file; `error` naming the file and `what` it is when it is absent, not YAML,
    or not a mapping."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} not found")
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise error(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{what} {path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping in this {what}")
    return data


def read_yaml(path: str | os.PathLike, what: str = "config", seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config mapping with `base:` inheritance resolved and `${VAR}` expanded."""
    path = Path(path)
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'base' configs form a cycle")
    data = expand_env(read_mapping(path, what))
    base = data.pop("base", None)
    if base is None:
        return data
    return merge(read_yaml(path.parent / str(base), what, seen + (path.resolve(),)), data)


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`, recursing into mappings (lists and scalars are replaced whole)."""
    out = dict(base)
    for key, value in top.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def expand_env(value: Any) -> Any:
    """`${VAR}` and `${VAR:-default}` replaced in every string (lists and mappings too). A variable that is
    unset (or empty) and has no default stays as written, so messages about the path show what to set."""
    if isinstance(value, str):
        return _ENV_VAR.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) if m.group(2) is not None
                                                                      else m.group(0)), value)
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    return value


def unset_variables(value: Any, where: str = "") -> list[tuple[str, list[str]]]:
    """`${VAR}` references left in a loaded config (unset, no default), with the config keys using each."""
    found: dict[str, list[str]] = {}

    def walk(v: Any, path: str) -> None:
        if isinstance(v, str):
            for var in _UNSET.findall(v):
                found.setdefault(var, []).append(path or "config")
        elif isinstance(v, list):
            for i, item in enumerate(v):
                walk(item, f"{path}[{i}]")
        elif isinstance(v, dict):
            for k, item in v.items():
                walk(item, f"{path}.{k}" if path else str(k))

    walk(value, where)
    return list(found.items())


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` overrides (values parsed as YAML) to a raw config mapping."""
    import yaml

    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        node: Any = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = _list_entry(node, part, item) if isinstance(node, list) else node.setdefault(part, {})
            if not isinstance(node, (dict, list)):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        if isinstance(node, list):
            raise ConfigError(f"override {item!r}: {parts[-2]} is a list: name an entry and its key, e.g. "
                              f"{parts[-2]}.NAME.key=value")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except yaml.YAMLError:
            node[parts[-1]] = raw
    return data


def entry_name(entry: Any) -> str | None:
    """The name a list entry goes by: a string entry itself, or a mapping's `name` (else its `method`)."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict):
        name = entry.get("name") or entry.get("method")
        return None if name is None else str(name)
    return None


def _list_entry(entries: list[Any], part: str, item: str) -> dict[str, Any]:
    """The mapping of a list's entry named `part` (or at index `part`); a string entry becomes a mapping."""
    names = [entry_name(e) for e in entries]
    if part in names:
        index = names.index(part)
    elif part.isdigit() and int(part) < len(entries):
        index = int(part)
    else:
        known = [n for n in names if n]
        raise ConfigError(f"override {item!r}: no entry named {part!r}{did_you_mean(part, known)}; "
                          f"entries: {', '.join(known) or 'none'}")
    if isinstance(entries[index], str):
        entries[index] = {"name": entries[index]}
    if not isinstance(entries[index], dict):
        raise ConfigError(f"override {item!r}: entry {part!r} is not a mapping")
    return entries[index]


def load_config(cls: type[T], path: str | os.PathLike | None, overrides: list[str] | None = None,
                what: str = "config") -> T:
    """Read a YAML config into dataclass `cls` (defaults only when `path` is None), then apply overrides."""
    data = read_yaml(path, what) if path is not None else {}
    return from_dict(cls, apply_overrides(data, list(overrides or [])))


# -- mappings <-> dataclasses ---------------------------------------------------------------------------------
def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass `cls` from a mapping, recursing into nested dataclasses; unknown keys are errors.

    A class may define `validate(self)` (called after construction) to check values across fields.
    """
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: expected a mapping, got {data!r}")
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown key {where}{unknown[0]}{did_you_mean(unknown[0], names)}"
                          + (f" (and {', '.join(where + k for k in unknown[1:])})" if unknown[1:] else "")
                          + f"; allowed under {where.rstrip('.') or 'the top level'}: {', '.join(sorted(names))}")
    values = {name: _convert(hints[name], value, where + name) for name, value in data.items()}
    try:
        config = cls(**values)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: {exc}") from exc
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()
    return config


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain YAML-able values."""
    return dataclasses.asdict(config)


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any or hint is object:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_describe(hint)}, got {value!r}")
    if dataclasses.is_dataclass(hint):
        if dataclasses.is_dataclass(value) and isinstance(value, hint):
            return value
        if hasattr(hint, "from_entry"):
            return hint.from_entry(value, key)
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(hint, value, key + ".")
    if origin is Literal:
        if value not in args and str(value) in args:
            return str(value)  # YAML reads 420 as a number
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                return float(value)  # YAML reads 2e-5 without a dot as a string
            except (TypeError, ValueError):
                raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        return float(value)
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "true or false", list: "a list",
          dict: "a mapping", type(None): "null"}


def _describe(hint: Any) -> str:
    """`int | None` as 'an integer or null', for messages."""
    return " or ".join(_KINDS.get(typing.get_origin(a) or a, getattr(a, "__name__", str(a)))
                       for a in typing.get_args(hint))
