"""Measured values beside the CODiff paper's (`bench.core.paper`): differences and whether the paper's
value lies inside the measured confidence interval."""

from __future__ import annotations

import math

import pandas as pd

from bench.core.paper import table1

QUALITY_COLUMNS = ["dataset", "method", "paper_method", "qf", "metric", "paper", "measured", "ci_low", "ci_high",
                   "n", "difference", "relative", "paper_in_ci", "note"]


def compare_quality(summary: pd.DataFrame, method_names: dict[str, str]) -> pd.DataFrame:
    """Measured means beside the paper's values wherever dataset, method, QF and metric match.

    `method_names` maps each run label to its registered method name (the name the paper mapping uses).
    """
    paper = table1()
    rows = []
    for r in summary.itertuples():
        hits = paper[(paper["dataset"] == r.dataset) & (paper["method"] == method_names.get(r.method, r.method))
                     & (paper["qf"] == r.qf) & (paper["metric"] == r.metric)]
        for p in hits.itertuples():
            diff = r.mean - p.value
            inside = bool(r.ci_low <= p.value <= r.ci_high) if math.isfinite(r.ci_low) else None
            rows.append((r.dataset, r.method, p.paper_method, int(r.qf), r.metric, p.value, r.mean, r.ci_low,
                         r.ci_high, int(r.n), diff, diff / p.value if p.value else math.nan, inside, p.note))
    return pd.DataFrame(rows, columns=QUALITY_COLUMNS)
