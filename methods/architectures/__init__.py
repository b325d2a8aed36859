"""Full-size architectures of the benchmarked methods, for parameter, MAC, latency and memory profiling.

Each is a factory returning a `bench.profile.architecture.Architecture` (cheap: no network is built until a
counter asks), registered in the entry-point group `codiff_bench.architectures` (pyproject.toml). Built from
public configurations with diffusers, transformers, timm and spandrel, with random weights; a part that
cannot be built faithfully is listed as missing.
"""
