"""`cave-small`: the `cave` method (CaVE decoder restoration) preset to the shipped dual-learning small CaVE,
so the default benchmark has a real restorer with nothing downloaded."""

from __future__ import annotations

from methods.codiff.cave_small import DEFAULT_CAVE, shipped_cave
from methods.codiff.method import CaveRestorer


class CaveSmall(CaveRestorer):
    """CaVE decoder restoration with the shipped small dual CaVE (weights/MODEL_CARD.md); `cave` overrides it."""

    description = "CaVE decoder, small dual-learning CaVE trained for this project (ships with the package)"

    def __init__(self, **config) -> None:
        if not config.get("cave"):
            config["cave"] = str(shipped_cave(DEFAULT_CAVE))
        super().__init__(**config)
