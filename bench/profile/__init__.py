"""Complexity profiling (`codiff-bench profile`): parameters, MACs, latency and memory of full-size architectures,
beside the paper's Table 2. `architecture` defines what an architecture is and the `architecture` registry
(entries: factories, declared as entry points; this project's are in `methods.architectures`).

`profile_methods(ProfileOptions(...))` measures; `write_outputs(...)` writes profile.json / .csv / .tex and the
breakdowns; `format_rows` prints the table.
"""

from bench.profile.core import (
           MethodProfile,
           ProfileOptions,
           profile_architecture,
           profile_methods,
)
from bench.profile.table import format_rows, write_outputs

__all__ = ["MethodProfile", "ProfileOptions", "format_rows", "profile_architecture", "profile_methods",
           "write_outputs"]
