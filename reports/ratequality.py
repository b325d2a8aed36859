"""Rate-quality: every metric against the LQ's bits per pixel (the QF sweep as a curve), and Bjontegaard
deltas between two methods' curves, computed with the `bjontegaard` package.

BD-quality: interpolate quality over log10 rate for each method, integrate both over the rates both curves
cover and divide by that range: the average quality gain at equal rate. BD-rate: interpolate log10 rate over
quality instead and integrate over the qualities both cover; the average log difference d gives the rate
change 10^d - 1 (negative: less rate for the same quality). Two interpolations: pchip (piecewise cubic
Hermite, the default of today's common test conditions) and the cubic fit of VCEG-M33; the library fits a
cubic to four points or more, so with fewer a polynomial of degree n - 1 is fitted here.
"""

from __future__ import annotations

import math
import warnings
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

INTERPOLATIONS = {"pchip": "pchip", "cubic": "cubic, VCEG-M33"}  # the first is the default
DEFAULT_INTERPOLATION = next(iter(INTERPOLATIONS))
CUBIC_POINTS = 4

FORMULA = ("Bjontegaard deltas (the bjontegaard package): each method's mean metric at each QF is a point (bits "
           "per pixel of the LQ JPEG, quality). BD-quality interpolates quality over log10 bpp per method, "
           "integrates both curves over the bit rates both cover, and divides by that range: the average quality "
           "gain at equal rate (oriented so that positive is better). BD-rate interpolates log10 bpp over quality, "
           "integrates over the qualities both cover, and reports 10^d - 1 for the average log difference d: the "
           "rate change at equal quality (negative: the method needs fewer bits). The interpolation is named with "
           "each number: pchip (piecewise cubic Hermite through the points, monotone where they are; the default) "
           "and the cubic least-squares fit of VCEG-M33 (a polynomial of degree n-1 below four points).")
LIMITS = ("Limits: the deltas summarise the overlap of the two curves only (empty overlap: no delta); a "
          "cubic through 4 or fewer points can swing between them (pchip does not overshoot, which is why it is "
          "the default), so a curve that is not monotonic, or points far apart, make the numbers fragile; they "
          "compare means, so they carry no confidence interval; and every restoration method here starts from "
          "the same LQ file, so equal rate means equal input: the deltas say how much quality a method adds at "
          "a rate, or what rate the plain JPEG would need to match it.")


def _polynomial_gap(xa: np.ndarray, ya: np.ndarray, xb: np.ndarray, yb: np.ndarray, low: float, high: float) -> float:
    """Mean gap of least-squares polynomials of degree min(3, n - 1) over [low, high] (below four points,
    where the library's cubic is undetermined)."""
    ia, ib = (np.polynomial.Polynomial.fit(x, y, min(3, len(x) - 1)).integ() for x, y in ((xa, ya), (xb, yb)))
    return float((ib(high) - ib(low) - ia(high) + ia(low)) / (high - low))


def _average_gap(xa, ya, xb, yb, interpolation: str) -> float:
    """Mean of curve_b - curve_a over the overlap of the x ranges (NaN when there is none, a curve has fewer
    than two points, or one repeats an x)."""
    import bjontegaard

    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation {interpolation!r}: choose from {', '.join(INTERPOLATIONS)}")
    (xa, ya), (xb, yb) = (_sorted(x, y) for x, y in ((xa, ya), (xb, yb)))
    if len(xa) < 2 or len(xb) < 2 or len(np.unique(xa)) < len(xa) or len(np.unique(xb)) < len(xb):
        return math.nan
    low, high = max(xa.min(), xb.min()), min(xa.max(), xb.max())
    if not high > low:
        return math.nan
    if interpolation == "cubic" and min(len(xa), len(xb)) < CUBIC_POINTS:
        return _polynomial_gap(xa, ya, xb, yb, low, high)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the library warns about small overlaps: the limits note says it
        return float(bjontegaard.bd_linear(xa, ya, xb, yb, interpolation, require_matching_points=False,
                                           min_overlap=0))


def _sorted(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, float), np.asarray(y, float)
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def bd_quality(rate_a, quality_a, rate_b, quality_b, interpolation: str = DEFAULT_INTERPOLATION) -> float:
    """Average quality of B minus that of A at equal rate (rates in any unit, > 0)."""
    return _average_gap(np.log10(np.asarray(rate_a, float)), quality_a, np.log10(np.asarray(rate_b, float)),
                        quality_b, interpolation)


def bd_rate(rate_a, quality_a, rate_b, quality_b, interpolation: str = DEFAULT_INTERPOLATION) -> float:
    """Relative rate change of B against A at equal quality (-0.1: B needs 10% fewer bits)."""
    gap = _average_gap(quality_a, np.log10(np.asarray(rate_a, float)), quality_b,
                       np.log10(np.asarray(rate_b, float)), interpolation)
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
    """BD-quality and BD-rate of every method against `reference`, per dataset and metric: with the default
    interpolation (named in the `interpolation` column) and with each other one (columns suffixed by its name)."""
    rows = []
    for (dataset, metric), part in points.groupby(["dataset", "metric"], sort=False):
        ref = part[part["method"] == reference]
        if len(ref) < 2:
            continue
        sign = -1.0 if lower_better(metric) else 1.0
        for method, line in part[part["method"] != reference].groupby("method", sort=False):
            row = {"dataset": dataset, "metric": metric, "method": method, "reference": reference,
                   "points": len(line), "interpolation": DEFAULT_INTERPOLATION}
            for interpolation in INTERPOLATIONS:
                suffix = "" if interpolation == DEFAULT_INTERPOLATION else f"_{interpolation}"
                dq = bd_quality(ref["bpp"], ref["mean"], line["bpp"], line["mean"], interpolation)
                dr = bd_rate(ref["bpp"], ref["mean"], line["bpp"], line["mean"], interpolation)
                row.update({f"bd_quality_gain{suffix}": sign * dq, f"bd_rate_change_pct{suffix}": 100.0 * dr})
            rows.append(row)
    return pd.DataFrame(rows)


def _shown_columns() -> dict[str, str]:
    """The BD table's column titles, each naming its interpolation."""
    titles = {"points": "QF points"}
    for interpolation, label in INTERPOLATIONS.items():
        suffix = "" if interpolation == DEFAULT_INTERPOLATION else f"_{interpolation}"
        titles[f"bd_quality_gain{suffix}"] = f"BD-quality gain ({label})"
        titles[f"bd_rate_change_pct{suffix}"] = f"BD-rate change % ({label})"
    return titles


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
                             reference=table["reference"].map(data.labels.method)).drop(
            columns="interpolation").rename(columns=_shown_columns())
        section.tables.append(rows_table(f"Bjontegaard deltas against {data.labels.method(ref)}, "
                                         f"{DEFAULT_INTERPOLATION} interpolation first (gain: positive is better; "
                                         "rate change: negative needs fewer bits)", shown.to_dict("records"),
                                         "exports/bd_deltas.csv"))
    return section, written

