"""Paired comparison of every method with a reference over the same images, per dataset, QF and metric.

The reference is a chosen method, or by default the method with the best mean in that column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from reports.rundata import RunData
from reports.stats import Paired, paired_comparison

PAIRED_COLUMNS = ["dataset", "qf", "metric", "reference", "method", "n", "wins", "ties", "losses", "win_rate",
                  "mean_improvement", "ci_low", "ci_high", "p_wilcoxon"]


@dataclass
class PairedTable:
    """One dataset's comparisons: the reference of each (QF, metric) column and each method's result."""

    dataset: str
    methods: list[str]
    columns: list[tuple[int, str]]
    references: dict[tuple[int, str], str] = field(default_factory=dict)
    cells: dict[tuple[str, int, str], Paired] = field(default_factory=dict)

    def cell(self, method: str, qf: int, metric: str) -> Paired | None:
        return self.cells.get((method, qf, metric))


def paired_tables(data: RunData, summary: pd.DataFrame, reference: str | None = None) -> list[PairedTable]:
    tables = []
    for dataset in data.datasets:
        part = data.results[data.results["dataset"] == dataset]
        if part.empty:
            continue
        table = PairedTable(dataset, [m for m in data.method_order if m in set(part["method"])],
                            [(q, m) for q in data.qfs for m in data.metrics])
        for qf, metric in list(table.columns):
            column = part[(part["qf"] == qf) & (part["metric"] == metric)]
            values = column.pivot_table(index="image", columns="method", values="value")
            lower = data.labels.lower_better(metric)
            ref = reference or _best(summary, dataset, qf, metric, lower)
            if ref is None or ref not in values:
                table.columns.remove((qf, metric))
                continue
            table.references[(qf, metric)] = ref
            for method in table.methods:
                if method == ref or method not in values:
                    continue
                pair = values[[method, ref]].dropna()
                if not pair.empty:
                    table.cells[(method, qf, metric)] = paired_comparison(
                        pair[method].to_numpy(), pair[ref].to_numpy(), lower_better=lower)
        if table.cells:
            tables.append(table)
    return tables


def _best(summary: pd.DataFrame, dataset: str, qf: int, metric: str, lower: bool) -> str | None:
    rows = summary[(summary["dataset"] == dataset) & (summary["qf"] == qf) & (summary["metric"] == metric)]
    if rows.empty:
        return None
    return str(rows.sort_values("mean", ascending=lower).iloc[0]["method"])


def paired_frame(tables: list[PairedTable]) -> pd.DataFrame:
    """Every comparison as one long table (for the CSV export)."""
    rows = [(t.dataset, qf, metric, t.references[(qf, metric)], method, p.n, p.wins, p.ties, p.losses,
             p.win_rate, p.mean_diff, p.ci_low, p.ci_high, p.p_value)
            for t in tables for (method, qf, metric), p in t.cells.items()]
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def describe(p: Paired, reference: str, digits: int, *, with_p: bool = True) -> str:
    """A sentence for a cell's hover text."""
    ci = "n/a" if not math.isfinite(p.ci_low) else f"[{p.ci_low:+.{digits}f}, {p.ci_high:+.{digits}f}]"
    pval = "n/a" if not math.isfinite(p.p_value) else f"{p.p_value:.3g}"
    return (f"vs {reference} over {p.n} images: {p.wins} better, {p.ties} equal, {p.losses} worse; "
            f"mean improvement {p.mean_diff:+.{digits}f} (95% CI {ci})" + (f"; Wilcoxon p = {pval}" if with_p else ""))
