"""What a run reports when it ends: its counts, errors and skips, and `summary.csv` (means per block)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.atomic import atomic_write_text
from bench.engine.layout import RunLayout
from bench.store import ResultsStore


@dataclass
class RunSummary:
    run_dir: Path
    units: int = 0
    restored: int = 0
    reused: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    report: Path | None = None
    is_main: bool = True

    @property
    def exit_status(self) -> int:
        return 1 if self.errors else 0



def write_summary_csv(store: ResultsStore, layout: RunLayout) -> Path:
    """Means per dataset x method x QF x metric, with the image count, as `<run_dir>/summary.csv`."""
    frame = store.results_frame()
    if frame.empty:
        text = "dataset,method,qf,metric,mean,std,n\n"
    else:
        grouped = frame.groupby(["dataset", "method", "qf", "metric"])["value"]
        table = grouped.agg(["mean", "std", "count"]).reset_index().rename(columns={"count": "n"})
        text = table.to_csv(index=False, float_format="%.6g")
    path = layout / RunLayout.SUMMARY
    atomic_write_text(path, text)
    return path
