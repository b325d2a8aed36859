"""`codiff-bench methods` and `codiff-bench metrics`: what can be named in a run config."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    methods = subparsers.add_parser("methods", help="list the registered restoration methods")
    methods.set_defaults(func=list_methods_command)
    metrics = subparsers.add_parser("metrics", help="list the metrics and their better direction")
    metrics.set_defaults(func=list_metrics_command)


def list_methods_command(args: argparse.Namespace) -> int:
    from methods.registry import list_methods, method_class

    for name in list_methods():
        cls = method_class(name)
        kind = "blind" if cls.blind else "uses the QF"
        doc = cls.description or ((cls.__doc__ or "").strip().splitlines() or [""])[0]
        print(f"{name:14s} steps={cls.steps:<3d} {kind:12s} {doc}")
    return 0


def list_metrics_command(args: argparse.Namespace) -> int:
    from bench.metrics import list_metrics, metric_spec

    for name in list_metrics():
        spec = metric_spec(name)
        kind = "full-reference" if spec.full_reference else "no-reference"
        print(f"{name:8s} {'lower' if spec.lower_better else 'higher'} is better, {kind:14s} {spec.summary}")
    return 0
