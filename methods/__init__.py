"""Restoration methods behind one small interface (`methods.base.Method`), created by name through
`methods.registry.create_method`."""

from bench.core.weights import WeightFile
from methods.base import Method, MethodError
from methods.registry import create_method, list_methods, method_class, register_method

__all__ = ["Method", "MethodError", "WeightFile", "create_method", "list_methods", "method_class", "register_method"]
