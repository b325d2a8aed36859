"""The measured error of a CaVE's QF estimates, as its checkpoint's JSON records it, for honest reporting.

A shipped CaVE's JSON holds `evaluation.qf_estimate`: the mean absolute error of its estimates per true QF
(`mae_by_qf`), their mean over QF 10-90 (`mae_10_90`) and a description of the images they were measured on
(`data`). A checkpoint without these figures (the release's cave.pth, a fresh training run) is unverified.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

POOR_MAE = 10.0  # a mean error over QF 10-90 above this is too coarse to act on


@dataclass(frozen=True)
class QFError:
    """Measured MAE of the QF estimates per true QF and over QF 10-90, and on what data."""

    mae_by_qf: dict[int, float]
    mae_10_90: float
    data: str

    @classmethod
    def from_evaluation(cls, evaluation: dict[str, Any]) -> "QFError | None":
        """The figures of a checkpoint's `evaluation` mapping, or None when it has no usable ones."""
        block = evaluation.get("qf_estimate") if isinstance(evaluation, dict) else None
        try:
            by_qf = {int(q): float(v) for q, v in block["mae_by_qf"].items()}
            return cls(by_qf, float(block["mae_10_90"]), str(block.get("data", "")))
        except (TypeError, KeyError, ValueError, AttributeError):
            return None

    @property
    def poor(self) -> bool:
        return self.mae_10_90 > POOR_MAE

    def near(self, estimate: float) -> float:
        """The measured MAE at the evaluated QF nearest to `estimate` (the true QF being unknown)."""
        nearest = min(self.mae_by_qf, key=lambda q: (abs(q - estimate), q))
        return self.mae_by_qf[nearest]

    def summary(self) -> str:
        return f"measured QF error: MAE {self.mae_10_90:.1f} over QF 10-90 ({self.data})"


def checkpoint_qf_error(path: str | Path) -> QFError | None:
    """The measured QF error stored with a CaVE checkpoint, or None when it has none."""
    from methods.codiff.checkpoint import project_evaluation

    return QFError.from_evaluation(project_evaluation(path))
