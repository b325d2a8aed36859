"""`codiff-bench methods` and `codiff-bench metrics`: what can be named in a run config."""

from __future__ import annotations

import argparse
import typing


def register(subparsers) -> None:
    methods = subparsers.add_parser("methods", help="list the registered restoration methods, or one method's "
                                    "options (types, defaults) and an example config entry")
    methods.add_argument("name", nargs="?", help="a method's name: show its options and an example")
    methods.set_defaults(func=list_methods_command)
    metrics = subparsers.add_parser("metrics", help="list the metrics and their better direction")
    metrics.set_defaults(func=list_metrics_command)


def list_methods_command(args: argparse.Namespace) -> int:
    from methods.registry import list_methods, method_class

    if args.name:
        print(method_help(args.name))
        return 0
    for name in list_methods():
        cls = method_class(name)
        kind = "blind" if cls.blind else "uses the QF"
        doc = cls.description or _first_line(cls.__doc__)
        print(f"{name:14s} steps={cls.steps:<3d} {kind:12s} {doc}")
    return 0


def method_help(name: str) -> str:
    """One method's summary, documentation, options (type, default) and an example entry of a run config."""
    import dataclasses
    import inspect

    import yaml

    from methods.registry import METHODS, method_class

    cls = method_class(METHODS.check(name))
    options = cls.config_class
    hints = typing.get_type_hints(options)
    fields = [f for f in dataclasses.fields(options) if f.init]
    defaults = {f.name: _default(f) for f in fields}
    lines = [f"{name}: {cls.description or _first_line(cls.__doc__)}",
             f"  {'blind (never needs the QF)' if cls.blind else 'uses the QF'}, steps={cls.steps}", ""]
    doc = inspect.getdoc(inspect.getmodule(cls)) or ""
    lines += [doc, ""] if doc else []
    if fields:
        lines.append("Options (keys of its entry under `methods:` in a run config):")
        width = max(len(f.name) for f in fields)
        type_width = max(len(_type_name(hints[f.name])) for f in fields)
        lines += [f"  {f.name:{width}s}  {_type_name(hints[f.name]):{type_width}s}  default: "
                  f"{yaml.safe_dump(defaults[f.name], default_flow_style=True).strip().removesuffix('...').strip()}"
                  for f in fields]
    else:
        lines.append("Options: none")
    shown = cls.example or {k: v for k, v in defaults.items() if v not in ("", None, {}, [])}
    example = {"name": name, "method": name, **shown}
    lines += ["", "Example (a run config):", "  methods:"]
    entry = yaml.safe_dump([example], sort_keys=False, default_flow_style=False, width=1000)
    lines += ["    " + line for line in entry.splitlines()]
    return "\n".join(lines)


def _default(field) -> typing.Any:
    import dataclasses

    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _type_name(hint) -> str:
    """`int`, `str | None`, `dict[str, str]`: a type as written in the code."""
    return hint.__name__ if isinstance(hint, type) and not typing.get_args(hint) else \
        str(hint).replace("typing.", "").replace("NoneType", "None")


def _first_line(text: str | None) -> str:
    return ((text or "").strip().splitlines() or [""])[0]


def list_metrics_command(args: argparse.Namespace) -> int:
    from bench.metrics import list_metrics, metric_spec

    for name in list_metrics():
        spec = metric_spec(name)
        kind = "full-reference" if spec.full_reference else "no-reference"
        print(f"{name:8s} {'lower' if spec.lower_better else 'higher'} is better, {kind:14s} {spec.summary}")
    return 0
