"""Three small CaVEs trained for this project (`dual`, QF-only `explicit` and reconstruction-only `implicit`
learning, same data and budget) shipped with the package, and the `cave-small` method: the dual CaVE's gated
decoder restoration, the embedded default restorer.

The weights and their model card live in `weights/` (see weights/MODEL_CARD.md).
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_CAVES = ("cave-small-dual", "cave-small-explicit", "cave-small-implicit")
DEFAULT_CAVE = "cave-small-dual"


def shipped_cave(name: str) -> Path:
    """The tensors file of a shipped CaVE by name (it may be absent in a source tree that lacks the weights)."""
    if name not in SHIPPED_CAVES:
        raise KeyError(f"no shipped CaVE named {name!r}; shipped: {', '.join(SHIPPED_CAVES)}")
    return WEIGHTS_DIR / f"{name}.safetensors"


def default_cave(weights_dir: Path | None = None) -> Path:
    """The CaVE used when none is named: the released `cave.pth` in the weights folder when it is there, else
    the shipped small dual CaVE (so QF estimation works on a fresh install with nothing downloaded)."""
    from bench.core.weights import default_weights_dir

    release = (weights_dir or default_weights_dir()) / "cave.pth"
    return release if release.is_file() else shipped_cave(DEFAULT_CAVE)
