"""Display names and better directions of a run's metrics and datasets, from what the run recorded.

The run engine stores each metric's facts (label, direction; declared once, in `bench.metrics.specs`) and each
dataset's label (datasets.yaml) with its results. Methods are spelt as the paper spells them (JPEG, FBCNN, CODiff;
from `bench.core.paper`), the project's own small models as named in their documentation, and any other run label
as the user wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.core.paper import PAPER_METHODS

METHOD_SPELLINGS = {**{ours: paper for paper, ours in PAPER_METHODS.items() if not paper.endswith("*")},
                    "cave": "CaVE", "cave-small": "CaVE-small"}


@dataclass(frozen=True)
class Labels:
    """Names for display, looked up in the run's `metric_info` and `dataset_info` records."""

    metric_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset_info: dict[str, dict[str, Any]] = field(default_factory=dict)

    def metric(self, name: str) -> str:
        return str((self.metric_info.get(name) or {}).get("label") or name)

    def method(self, label: str) -> str:
        return METHOD_SPELLINGS.get(label, label)

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
