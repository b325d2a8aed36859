"""Validation scores of both stages: the harness's PSNR and PSNR-B on 8-bit outputs, averaged per QF."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch


def quantise(image: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the 8-bit grid an output is saved on."""
    return image.detach().float().clamp(0, 1).mul(255).round().div(255).cpu()


class ValidationScores:
    """Scores of restored validation images, reported as one row of means per QF."""

    def __init__(self) -> None:
        from bench.metrics import create_metric

        self.metrics = {name: create_metric(name) for name in ("psnr", "psnr_b")}
        self.values: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def add(self, qf: int, **scores: float) -> None:
        for key, value in scores.items():
            self.values[qf][key].append(float(value))

    def add_images(self, qf: int, out: torch.Tensor, hq: torch.Tensor, prefix: str = "") -> None:
        """PSNR and PSNR-B of `out` (1 x 3 x H x W in [0, 1]) against `hq`, quantised to 8 bits first."""
        out, hq = quantise(out), quantise(hq)
        self.add(qf, **{prefix + name: metric(out, hq).item() for name, metric in self.metrics.items()})

    def rows(self) -> list[dict[str, Any]]:
        return [{"qf": qf, "images": max(len(v) for v in values.values()),
                 **{k: sum(v) / len(v) for k, v in values.items()}} for qf, values in sorted(self.values.items())]
