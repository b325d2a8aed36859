"""Benchmarks (not tests): speed, memory and operation counts of methods on this machine."""
