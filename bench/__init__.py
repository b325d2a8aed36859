"""codiff-bench harness: datasets, the JPEG protocol, metrics, the run engine, profiling and the CLI."""

__version__ = "0.1.0"
