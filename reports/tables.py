"""Table 1 style summaries: per dataset, rows = methods, columns = QF x metric, best and second marked.

One model (`QualityTable`) feeds the HTML page and every export, so all of them rank and round alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from reports.rundata import RunData
from reports.stats import LEVEL, bootstrap_ci

SUMMARY_COLUMNS = ["dataset", "method", "qf", "metric", "mean", "ci_low", "ci_high", "n"]


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, bootstrap interval and image count per dataset x method x QF x metric."""
    rows = []
    for (dataset, method, qf, metric), group in results.groupby(["dataset", "method", "qf", "metric"], sort=True):
        values = group["value"].to_numpy(dtype=float)
        low, high = bootstrap_ci(values)
        rows.append((dataset, method, int(qf), metric, float(values.mean()), low, high, int(values.size)))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def decimals(values: list[float]) -> int:
    """Digits after the point as the paper prints them: 2 for values of 10 and more (dB, MUSIQ), else 4."""
    finite = [abs(v) for v in values if math.isfinite(v)]
    return 2 if finite and max(finite) >= 10 else 4


def fmt(value: float, digits: int) -> str:
    return "\u2013" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


@dataclass
class Cell:
    """One mean of a table with its interval, image count and rank mark ('best', 'second' or '')."""

    mean: float
    low: float
    high: float
    n: int
    digits: int
    rank: str = ""
    partial: bool = False

    @property
    def text(self) -> str:
        return fmt(self.mean, self.digits)

    @property
    def ci_text(self) -> str:
        if not math.isfinite(self.low):
            return "n/a (one image)"
        return f"[{fmt(self.low, self.digits)}, {fmt(self.high, self.digits)}]"

    @property
    def title(self) -> str:
        note = " (fewer images than the column's maximum: some failed)" if self.partial else ""
        return f"mean {self.text}, {LEVEL:.0%} bootstrap CI {self.ci_text}, n = {self.n}{note}"


@dataclass
class QualityTable:
    """The Table 1 view of one dataset."""

    dataset: str
    methods: list[str]
    qfs: list[int]
    metrics: list[str]
    arrows: dict[str, str]
    dataset_label: str = ""
    metric_labels: dict[str, str] = field(default_factory=dict)
    method_labels: dict[str, str] = field(default_factory=dict)
    cells: dict[tuple[str, int, str], Cell] = field(default_factory=dict)

    def cell(self, method: str, qf: int, metric: str) -> Cell | None:
        return self.cells.get((method, qf, metric))

    def method_label(self, method: str) -> str:
        return self.method_labels.get(method, method)

    @property
    def marks(self) -> list[tuple[str, str]]:
        """The colour marks this table uses, as (rank, meaning): a legend true for any number of methods
        (one method: none; two: only 'best', which is then 'the better of the two')."""
        used = {c.rank for c in self.cells.values()}
        best = "best" if "second" in used else ("better of the two" if len(self.methods) == 2 else "best")
        return [(rank, meaning) for rank, meaning in (("best", best), ("second", "second")) if rank in used]

    @property
    def columns(self) -> list[tuple[int, str]]:
        return [(qf, metric) for qf in self.qfs for metric in self.metrics]


def quality_tables(data: RunData, summary: pd.DataFrame) -> list[QualityTable]:
    """One table per dataset that has results, in the run's dataset order."""
    tables = []
    for dataset in data.datasets:
        part = summary[summary["dataset"] == dataset]
        if part.empty:
            continue
        metrics = [m for m in data.metrics if m in set(part["metric"])]
        table = QualityTable(dataset=dataset, methods=[m for m in data.method_order if m in set(part["method"])],
                             qfs=sorted({int(q) for q in part["qf"]}), metrics=metrics,
                             arrows={m: data.labels.arrow(m) for m in metrics},
                             dataset_label=data.labels.dataset(dataset),
                             metric_labels={m: data.labels.metric(m) for m in metrics},
                             method_labels={m: data.labels.method(m) for m in data.method_order})
        for metric in metrics:
            rows = part[part["metric"] == metric]
            digits = decimals(rows["mean"].tolist())
            for r in rows.itertuples():
                table.cells[(r.method, int(r.qf), metric)] = Cell(r.mean, r.ci_low, r.ci_high, int(r.n), digits)
        for qf, metric in table.columns:
            _rank([c for m in table.methods if (c := table.cell(m, qf, metric))], data.labels.lower_better(metric))
        tables.append(table)
    return tables


def _rank(cells: list[Cell], lower: bool) -> None:
    """Mark the best and second values as printed (ties share a mark); mark cells over fewer images."""
    if not cells:
        return
    most = max(c.n for c in cells)
    for c in cells:
        c.partial = c.n < most
    if len(cells) < 2:
        return
    shown = sorted({round(c.mean, c.digits) for c in cells if math.isfinite(c.mean)}, reverse=not lower)
    for c in cells:
        value = round(c.mean, c.digits)
        if shown and value == shown[0]:
            c.rank = "best"
        elif len(shown) > 1 and value == shown[1] and len(cells) > 2:
            c.rank = "second"


def wide_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Means with one column per metric and QF (`metric@qfN`), one row per dataset and method."""
    if summary.empty:
        return pd.DataFrame(columns=["dataset", "method"])
    frame = summary.assign(column=summary["metric"] + "@qf" + summary["qf"].astype(str))
    wide = frame.pivot_table(index=["dataset", "method"], columns="column", values="mean", sort=False)
    return wide.reset_index().rename_axis(columns=None)


def per_image_wide(results: pd.DataFrame) -> pd.DataFrame:
    """Per-image values with one column per metric: dataset, image, qf, method, metrics..."""
    if results.empty:
        return pd.DataFrame(columns=["dataset", "image", "qf", "method"])
    wide = results.pivot_table(index=["dataset", "image", "qf", "method"], columns="metric", values="value",
                               sort=True)
    return wide.reset_index().rename_axis(columns=None)
