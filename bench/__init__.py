"""The codiff-bench harness, which knows no particular model.

Layers, each importing only those below it (import-linter contracts in pyproject.toml): `core` (the base
layer: errors, typed configs, the generic registry, IO, the JPEG protocol, weight files); the services
`datasets`, `metrics`, `analysis` and `profile`; the run engine (`config`, `store`, `record`, `engine`,
`dryrun`, `provenance`, `distributed`); and the command line (`cli`, `commands`). Methods plug in through
the registries.
"""

__version__ = "0.1.0"
