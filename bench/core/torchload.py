"""Reading torch weight files without running code, and the refusal of files that would need to.

`torch.load(weights_only=True)` refuses a pickle that references Python callables (what a hostile file
uses to run a command), but its message advises retrying without that protection. `load_weights_only`
says instead, in this project's words, what the file holds, that it is refused, and what to do.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

from bench.core.errors import BenchError


class RefusedPickle(BenchError, ValueError):
    """A weights file holds pickled Python objects that would run code when loaded; it is never loaded."""


_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
ADVICE = ("get the file as safetensors or as a plain state dict of tensors (the form the official releases "
          "use), or check that the file at this path is the one named")


def load_weights_only(path: str | Path, **kwargs: Any) -> Any:
    """`torch.load(path, map_location="cpu", weights_only=True, **kwargs)`; a file torch refuses because it
    holds executable pickle content, or is a TorchScript archive, raises RefusedPickle naming the file."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, **kwargs)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" not in str(exc).lower():
            raise  # damaged data: the caller's own message applies
        found = _GLOBAL.search(str(exc))
        what = f" (it calls {found.group(1)})" if found else ""
        raise RefusedPickle(f"{path}: refused: it holds executable pickle content{what}, and loading it would run "
                            f"Python code, which codiff-bench never does; {ADVICE}") from None
    except RuntimeError as exc:
        if "TorchScript" not in str(exc):
            raise
        raise RefusedPickle(f"{path}: refused: it is a TorchScript archive (compiled code), not a file of "
                            f"tensors; {ADVICE}") from None
