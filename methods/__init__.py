"""Restoration methods behind one small interface (`methods.base.Method`: typed options, `restore` of a
`RestoreRequest`), created by name through `methods.registry.create_method`.

They import the harness's base layer and services only, never the run engine. `codiff/` is CODiff (models,
checkpoints, training, its analysis, benchmark and commands); `architectures/` describes full-size models for
profiling. This package's methods, analyses, architectures and commands are entry points in pyproject.toml.
"""

from bench.core.weights import WeightFile
from methods.base import Method, MethodError
from methods.registry import create_method, list_methods, method_class, register_method

__all__ = ["Method", "MethodError", "WeightFile", "create_method", "list_methods", "method_class", "register_method"]
