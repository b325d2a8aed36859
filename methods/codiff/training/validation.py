"""Validation scores of both stages on 8-bit outputs, averaged per QF: the harness's PSNR and PSNR-B by default,
any other harness metrics, and optional ones that are skipped (with the reason logged) when weights are absent."""

from __future__ import annotations

import copy
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import torch

log = logging.getLogger(__name__)


def quantise(image: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to the 8-bit grid an output is saved on."""
    return image.detach().float().clamp(0, 1).mul(255).round().div(255).cpu()


class ValidationScores:
    """Scores of restored validation images, reported as one row of means per QF."""

    def __init__(self, metrics: Iterable[str] = ("psnr", "psnr_b"), optional: Iterable[str] = (),
                 device: str | torch.device = "cpu") -> None:
        from bench.metrics import check_metrics, create_metric

        available, self.skipped = check_metrics(optional)
        for name, reason in self.skipped.items():
            log.warning("validation metric %s skipped: %s", name, reason)
        self.metrics = {name: create_metric(name, device) for name in dict.fromkeys([*metrics, *available])}
        self.values: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))

    def fresh(self) -> ValidationScores:
        """A copy with the same metrics and no values yet."""
        scores = copy.copy(self)
        scores.values = defaultdict(lambda: defaultdict(list))
        return scores

    def add(self, qf: int, **scores: float) -> None:
        for key, value in scores.items():
            self.values[qf][key].append(float(value))

    def add_images(self, qf: int, out: torch.Tensor, hq: torch.Tensor, prefix: str = "",
                   names: Iterable[str] | None = None) -> None:
        """The metrics (all, or those `names`) of `out` (1 x 3 x H x W in [0, 1]) against `hq`, both quantised to
        8 bits first."""
        out, hq = quantise(out), quantise(hq)
        chosen = self.metrics if names is None else {n: self.metrics[n] for n in names}
        self.add(qf, **{prefix + name: metric(out, hq).item() for name, metric in chosen.items()})

    def rows(self) -> list[dict[str, Any]]:
        return [{"qf": qf, "images": max(len(v) for v in values.values()),
                 **{k: sum(v) / len(v) for k, v in values.items()}} for qf, values in sorted(self.values.items())]
