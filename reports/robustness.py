"""Robustness: each method's metric drop from the clean protocol under every protocol variant of the run
(double compression, a shifted grid, other subsampling or encoder, resizing), paired per image and QF."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from bench.core.atomic import atomic_write_text
from bench.core.paths import safe_component
from reports import plots
from reports.extras import DataTable, Figure, Section, rows_table
from reports.rundata import RunData
from reports.stats import bootstrap_ci
from reports.tables import decimals, fmt

CLEAN = "clean"
DROP_COLUMNS = ["dataset", "method", "variant", "metric", "qf", "n", "drop", "ci_low", "ci_high"]
ALL_QFS = "all"


def drops(results: pd.DataFrame, lower_better: Callable[[str], bool]) -> pd.DataFrame:
    """Per dataset, method, variant, metric and QF (and over all QFs, qf 'all'): the mean drop from the clean
    case over the image x QF pairs both have, oriented so that positive is worse, with a bootstrap CI."""
    if results.empty or "variant" not in results or results["variant"].nunique() < 2:
        return pd.DataFrame(columns=DROP_COLUMNS)
    wide = results.pivot_table(index=["dataset", "method", "metric", "qf", "image"], columns="variant",
                               values="value").reset_index()
    rows = []
    for variant in [v for v in results["variant"].dropna().unique() if v != CLEAN]:
        pairs = wide.dropna(subset=[CLEAN, variant])
        for (dataset, method, metric), part in pairs.groupby(["dataset", "method", "metric"], sort=False):
            sign = -1.0 if lower_better(metric) else 1.0
            diff = sign * (part[CLEAN] - part[variant])
            groups = [(ALL_QFS, diff)] + [(int(q), diff[part["qf"] == q]) for q in sorted(part["qf"].unique())]
            for qf, values in groups:
                low, high = bootstrap_ci(values.to_numpy(float))
                rows.append((dataset, method, variant, metric, qf, len(values), float(values.mean()), low, high))
    return pd.DataFrame(rows, columns=DROP_COLUMNS)


def describe_variant(protocol: dict[str, Any], clean: dict[str, Any]) -> str:
    """What a variant changes in the clean protocol, in words."""
    parts = []
    for key, value in protocol.items():
        if key in ("quality", "before") or value == clean.get(key):
            continue
        parts.append(f"{key} {value}")
    steps = [" ".join(f"{name} {_values(options)}" for name, options in step.items())
             for step in protocol.get("before") or []]
    if steps:
        parts.append("before the last compression: " + ", then ".join(steps))
    return "; ".join(parts) or "as the clean protocol"


def _values(options: Any) -> str:
    if isinstance(options, dict):
        return ", ".join(f"{k}={v}" for k, v in options.items() if v is not None)
    return str(options)


def robustness_section(data: RunData, out: Path) -> tuple[Section | None, list[Path]]:
    """The robustness section of a run's report (figure per dataset, a table per dataset, a CSV export)."""
    frame = drops(data.variant_results, data.labels.lower_better)
    if frame.empty:
        return None, []
    section = Section(title="Robustness to real-world JPEG", folder="")
    written: list[Path] = []
    clean = (data.variant_protocols.get(CLEAN) or {})
    variants = [v for v in data.variant_protocols if v != CLEAN and v in set(frame["variant"])]
    section.notes = [
        "Each variant prepares the same images another way before its last JPEG compression at the run's QF; "
        "the drop is the clean score minus the variant's score for the same image, method and QF (for metrics "
        "where lower is better, the other way round), so a positive drop means the method does worse than on "
        "the clean protocol. Means with 95% bootstrap intervals over the image x QF pairs; variants that shift "
        "or resize also change the reference they are scored against."]
    section.tables.append(rows_table("Variants", [{"variant": v, "what differs from the clean protocol":
                                                   describe_variant(data.variant_protocols[v], clean)}
                                                  for v in variants]))
    path = out / "exports" / "robustness.csv"
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.6g"))
    written.append(path)
    for dataset in data.datasets:
        part = frame[frame["dataset"] == dataset]
        if part.empty:
            continue
        stem = f"robustness_{safe_component(dataset)}"
        pooled = part[part["qf"] == ALL_QFS]
        written += plots.drops(pooled, [m for m in data.method_order if m in set(pooled["method"])], variants,
                               data.metrics, data.labels, data.labels.dataset(dataset), out / "plots", stem)
        section.figures.append(Figure(f"plots/{stem}.png", f"{data.labels.dataset(dataset)}: drop from the clean "
                                      "protocol per variant over all QFs (positive: worse; 95% CI bars)",
                                      f"plots/{stem}.svg"))
        section.tables.append(_table(part, data, dataset))
    return section, written


def _table(part: pd.DataFrame, data: RunData, dataset: str) -> DataTable:
    qfs = [q for q in part["qf"].unique() if q != ALL_QFS]
    rows = []
    for (method, variant, metric), group in part.groupby(["method", "variant", "metric"], sort=False):
        digits = decimals(data.results.loc[data.results["metric"] == metric, "value"].tolist() or [0.0])
        cells = {q: _cell(r, digits) for q, r in zip(group["qf"], group.itertuples())}
        rows.append({"method": data.labels.method(method), "variant": variant, "metric": data.labels.metric(metric),
                     "all QFs": cells.get(ALL_QFS, ""), **{f"QF {q}": cells.get(q, "") for q in qfs}})
    order = {data.labels.method(m): i for i, m in enumerate(data.method_order)}
    rows.sort(key=lambda r: order.get(r["method"], len(order)))
    return rows_table(f"{data.labels.dataset(dataset)}: drop from the clean protocol, mean [95% CI] (positive: "
                      "worse)", rows, "exports/robustness.csv")


def _cell(row: Any, digits: int) -> str:
    ci = "" if not np.isfinite(row.ci_low) else f" [{fmt(row.ci_low, digits)}, {fmt(row.ci_high, digits)}]"
    return f"{row.drop:+.{digits}f}{ci}"
