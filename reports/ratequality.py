"""Rate-quality: every metric against the LQ's bits per pixel (the QF sweep as a curve), and Bjontegaard
deltas between two methods' curves.

BD-quality: fit quality = p(log10 rate) for each method (a cubic, or of degree n - 1 below four points),
integrate both fits over the rates both curves cover and divide by that range: the average quality gain at
equal rate. BD-rate: fit log10 rate = p(quality) instead and integrate over the qualities both cover; the
average log difference d gives the rate change 10^d - 1 (negative: less rate for the same quality).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.core.atomic import atomic_write_text
from bench.core.paths import safe_component
from reports import plots
from reports.extras import Figure, Section, rows_table
from reports.rundata import RunData
from reports.stats import bootstrap_ci

FORMULA = ("Bjontegaard deltas: each method's mean metric at each QF is a point (bits per pixel of the LQ "
           "JPEG, quality). BD-quality fits quality = p(log10 bpp) per method (a cubic, or degree n-1 with fewer "
           "than 4 points), integrates both fits over the bit rates both curves cover, and divides by that "
           "range: the average quality gain at equal rate (oriented so that positive is better). BD-rate fits "
           "log10 bpp = p(quality), integrates over the qualities both cover, and reports 10^d - 1 for the "
           "average log difference d: the rate change at equal quality (negative: the method needs fewer bits).")
LIMITS = ("Limits: the deltas summarise the overlap of the two curves only (empty overlap: no delta); a "
          "polynomial through 4 or fewer points can swing between them, so a curve that is not monotonic, or "
          "points far apart, make the numbers fragile; they compare means, so they carry no confidence interval; "
          "and every restoration method here starts from the same LQ file, so equal rate means equal input: "
          "the deltas say how much quality a method adds at a rate, or what rate the plain JPEG would need to "
          "match it.")


def _fit(x: np.ndarray, y: np.ndarray) -> np.polynomial.Polynomial:
    degree = min(3, len(x) - 1)
    return np.polynomial.Polynomial.fit(x, y, degree)


def _average_gap(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray) -> float:
    """Mean of fit_b - fit_a over the overlap of the x ranges (NaN when there is none or too few points)."""
    if len(xa) < 2 or len(xb) < 2:
        return math.nan
    low, high = max(xa.min(), xb.min()), min(xa.max(), xb.max())
    if not high > low:
        return math.nan
    ia, ib = _fit(xa, ya).integ(), _fit(xb, yb).integ()
    return float((ib(high) - ib(low) - ia(high) + ia(low)) / (high - low))


def bd_quality(rate_a, quality_a, rate_b, quality_b) -> float:
    """Average quality of B minus that of A at equal rate (rates in any unit, > 0)."""
    return _average_gap(np.log10(np.asarray(rate_a, float)), np.asarray(quality_a, float),
                        np.log10(np.asarray(rate_b, float)), np.asarray(quality_b, float))


def bd_rate(rate_a, quality_a, rate_b, quality_b) -> float:
    """Relative rate change of B against A at equal quality (-0.1: B needs 10% fewer bits)."""
    gap = _average_gap(np.asarray(quality_a, float), np.log10(np.asarray(rate_a, float)),
                       np.asarray(quality_b, float), np.log10(np.asarray(rate_b, float)))
    return 10.0 ** gap - 1.0 if math.isfinite(gap) else math.nan


@dataclass
class Curves:
    """Per dataset, method, QF and metric: the mean bits per pixel and the mean metric value."""

    points: pd.DataFrame  # dataset, method, qf, metric, bpp, mean, ci_low, ci_high, n


def curves(data: RunData) -> Curves:
    """Join each result with its LQ's size and its image's pixel count."""
    columns = ["dataset", "method", "qf", "metric", "bpp", "mean", "ci_low", "ci_high", "n"]
    if data.results.empty or data.lq.empty or "bytes" not in data.lq:
        return Curves(pd.DataFrame(columns=columns))
    lq = data.lq.merge(data.images[["dataset", "image", "width", "height"]], on=["dataset", "image"])
    lq["bpp"] = 8.0 * lq["bytes"] / (lq["width"] * lq["height"])
    joined = data.results.merge(lq[["dataset", "image", "qf", "bpp"]], on=["dataset", "image", "qf"])
    rows = []
    for (dataset, method, qf, metric), group in joined.groupby(["dataset", "method", "qf", "metric"]):
        values = group["value"].to_numpy(float)
        low, high = bootstrap_ci(values)
        rows.append((dataset, method, int(qf), metric, float(group["bpp"].mean()), float(values.mean()), low, high,
                     len(values)))
    return Curves(pd.DataFrame(rows, columns=columns))


def bd_table(points: pd.DataFrame, reference: str, lower_better) -> pd.DataFrame:
    """BD-quality and BD-rate of every method against `reference`, per dataset and metric."""
    rows = []
    for (dataset, metric), part in points.groupby(["dataset", "metric"], sort=False):
        ref = part[part["method"] == reference].sort_values("bpp")
        if len(ref) < 2:
            continue
        sign = -1.0 if lower_better(metric) else 1.0
        for method, line in part[part["method"] != reference].groupby("method", sort=False):
            line = line.sort_values("bpp")
            dq = bd_quality(ref["bpp"], ref["mean"], line["bpp"], line["mean"])
            dr = bd_rate(ref["bpp"], ref["mean"], line["bpp"], line["mean"])
            rows.append({"dataset": dataset, "metric": metric, "method": method, "reference": reference,
                         "points": len(line), "bd_quality_gain": sign * dq, "bd_rate_change_pct": 100.0 * dr})
    return pd.DataFrame(rows)


def rate_quality_section(data: RunData, out: Path, reference: str | None) -> tuple[Section | None, list[Path]]:
    """The rate-quality section of a run's report (figures under `out/plots`, tables in `out/exports`)."""
    points = curves(data).points
    if points.empty or points["qf"].nunique() < 2:
        return None, []
    section = Section(title="Rate-quality", folder="")
    written: list[Path] = []
    for dataset in data.datasets:
        part = points[points["dataset"] == dataset]
        if part.empty:
            continue
        stem = f"rate_quality_{safe_component(dataset)}"
        written += plots.metric_vs_rate(part, data.method_order, data.metrics, data.labels, out / "plots", stem)
        section.figures.append(Figure(f"plots/{stem}.png", f"{data.labels.dataset(dataset)}: each metric against "
                                      "the LQ's bits per pixel, one point per QF (mean, 95% CI bars)",
                                      f"plots/{stem}.svg"))
    ref = reference or ("jpeg" if "jpeg" in data.method_order else (data.method_order or [None])[0])
    table = bd_table(points, ref, data.labels.lower_better) if ref else pd.DataFrame()
    section.notes = [FORMULA, LIMITS]
    if not table.empty:
        path = out / "exports" / "bd_deltas.csv"
        atomic_write_text(path, table.to_csv(index=False, float_format="%.6g"))
        written.append(path)
        shown = table.assign(dataset=table["dataset"].map(data.labels.dataset),
                             metric=table["metric"].map(data.labels.metric),
                             method=table["method"].map(data.labels.method),
                             reference=table["reference"].map(data.labels.method)).rename(columns={
            "points": "QF points", "bd_quality_gain": "BD-quality gain", "bd_rate_change_pct": "BD-rate change (%)"})
        section.tables.append(rows_table(f"Bjontegaard deltas against {data.labels.method(ref)} (gain: positive is better; rate "
                                         "change: negative needs fewer bits)", shown.to_dict("records"),
                                         "exports/bd_deltas.csv"))
    return section, written

