"""Display names and better directions of a run's metrics and datasets, from what the run recorded.

The run engine stores each metric's facts (label, direction; declared once, in `bench.metrics.specs`) and each
dataset's label (datasets.yaml) with its results, so reports keep no table of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Labels:
    """Names for display, looked up in the run's `metric_info` and `dataset_info` records."""

    metric_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset_info: dict[str, dict[str, Any]] = field(default_factory=dict)

    def metric(self, name: str) -> str:
        return str((self.metric_info.get(name) or {}).get("label") or name)

    def dataset(self, name: str) -> str:
        return str((self.dataset_info.get(name) or {}).get("label") or name)

    def lower_better(self, metric: str) -> bool:
        return bool((self.metric_info.get(metric) or {}).get("lower_better", False))

    def arrow(self, metric: str) -> str:
        return "\u2193" if self.lower_better(metric) else "\u2191"


def order_like(preferred: list[str], present: list[str] | set[str]) -> list[str]:
    """`present` ordered as in `preferred`, unknown names after them in sorted order."""
    present = set(present)
    first = [x for x in dict.fromkeys(preferred) if x in present]
    return first + sorted(present - set(first))
