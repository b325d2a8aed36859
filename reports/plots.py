"""Figures of a report (matplotlib, Agg backend), each saved as PNG and SVG with atomic writes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.atomic import atomic_path
from reports.extras import number
from reports.names import Labels

PROFILE_PANELS = (("params_g", "Parameters (G)"), ("macs_t", "MACs (T)"), ("time_s", "Time (s)"))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plain(label: Any) -> str:
    """A label as literal text: '$' would otherwise start matplotlib's math mode."""
    return str(label).replace("$", r"\$")


def save(fig, folder: Path, stem: str) -> list[Path]:
    """Write `fig` as `<stem>.png` and `<stem>.svg` under `folder`; close it."""
    plt = _pyplot()
    paths = []
    try:
        # no creation date and fixed element ids: re-rendering the same results writes the same files
        with plt.rc_context({"svg.hashsalt": "codiff-bench"}):
            for fmt in ("png", "svg"):
                target = folder / f"{stem}.{fmt}"
                with atomic_path(target) as tmp:
                    fig.savefig(tmp, format=fmt, dpi=110, bbox_inches="tight",
                                metadata={"Date": None} if fmt == "svg" else {})
                paths.append(target)
    finally:
        plt.close(fig)
    return paths


def metric_vs_qf(summary: pd.DataFrame, dataset: str, methods: list[str], metrics: list[str],
                 labels: Labels, folder: Path, stem: str) -> list[Path]:
    """One panel per metric: mean with its 95% interval against QF (log axis ticked at the run's QFs), one line
    per method."""
    part = summary[summary["dataset"] == dataset]
    return _metric_lines(part, "qf", "JPEG quality factor (log scale)", methods, metrics, labels,
                         labels.dataset(dataset), folder, stem, ticks=sorted({int(q) for q in part["qf"]}))


def metric_vs_rate(points: pd.DataFrame, methods: list[str], metrics: list[str], labels: Labels, folder: Path,
                   stem: str) -> list[Path]:
    """One panel per metric: mean with its 95% interval against the LQ's bits per pixel (log scale)."""
    dataset = str(points["dataset"].iloc[0])
    return _metric_lines(points, "bpp", "bits per pixel of the LQ JPEG (log scale)", methods, metrics, labels,
                         labels.dataset(dataset), folder, stem, log_x=True)


def _metric_lines(part: pd.DataFrame, x: str, xlabel: str, methods: list[str], metrics: list[str], labels: Labels,
                  title: str, folder: Path, stem: str, *, log_x: bool = False,
                  ticks: list[int] | None = None) -> list[Path]:
    fig, axes = _panels(len(metrics), 3.6, 2.9)
    for ax, metric in zip(axes.flat, metrics):
        for method in methods:
            line = part[(part["metric"] == metric) & (part["method"] == method)].sort_values(x)
            if line.empty:
                continue
            low = (line["mean"] - line["ci_low"]).fillna(0).clip(lower=0)
            high = (line["ci_high"] - line["mean"]).fillna(0).clip(lower=0)
            ax.errorbar(line[x], line["mean"], yerr=[low, high], marker="o", ms=4, capsize=2,
                        label=plain(labels.method(method)))
        ax.set_title(f"{labels.metric(metric)} {labels.arrow(metric)}")
        ax.set_xlabel(xlabel)
        if ticks:
            at_values(ax, ticks)
        elif log_x:
            from matplotlib.ticker import FuncFormatter

            ax.set_xscale("log")
            for axis in (ax.xaxis.set_major_formatter, ax.xaxis.set_minor_formatter):
                axis(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.grid(alpha=0.3)
    return _finish(fig, axes, len(metrics), title, folder, stem)


def at_values(ax, values: list[int]) -> None:
    """A log x axis ticked at `values` only (the run's QFs: QF 1 ticked, no tick where there is no data)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ax.set_xscale("log")
    ax.set_xlim(min(values) / 1.3, max(values) * 1.3)
    ax.xaxis.set_major_locator(FixedLocator(values))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def drops(pooled: pd.DataFrame, methods: list[str], variants: list[str], metrics: list[str], labels: Labels,
          title: str, folder: Path, stem: str) -> list[Path]:
    """One panel per metric: each method's drop from the clean protocol per variant, with its 95% interval."""
    metrics = [m for m in metrics if m in set(pooled["metric"])]
    fig, axes = _panels(len(metrics), 3.8, 1.4 + 0.42 * len(variants))
    step = 0.8 / max(1, len(methods))
    for ax, metric in zip(axes.flat, metrics):
        for i, method in enumerate(methods):
            line = pooled[(pooled["metric"] == metric) & (pooled["method"] == method)].set_index("variant")
            line = line.reindex(variants)
            y = [j - 0.4 + step * (i + 0.5) for j in range(len(variants))]
            low = (line["drop"] - line["ci_low"]).fillna(0).clip(lower=0)
            high = (line["ci_high"] - line["drop"]).fillna(0).clip(lower=0)
            ax.errorbar(line["drop"], y, xerr=[low, high], fmt="o", ms=4, capsize=2,
                        label=plain(labels.method(method)))
        ax.axvline(0, color="tab:gray", lw=0.8)
        ax.set_yticks(range(len(variants)), [plain(v) for v in variants] if ax in axes[:, 0] else [])
        ax.invert_yaxis()
        ax.set_title(f"{labels.metric(metric)}: drop")
        ax.grid(axis="x", alpha=0.3)
    return _finish(fig, axes, len(metrics), title, folder, stem)


def _panels(count: int, width: float, height: float):
    """A figure with one panel per item, four to a row."""
    cols = min(4, count)
    rows = math.ceil(count / cols)
    return _pyplot().subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)


def _finish(fig, axes, used: int, title: str, folder: Path, stem: str) -> list[Path]:
    """Hide unused panels, put the first panel's legend and the title above, and save."""
    rows = axes.shape[0]
    for ax in list(axes.flat)[used:]:
        ax.set_visible(False)
    handles, legend = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, legend, loc="upper center", ncol=min(len(legend), 6), frameon=False,
                   bbox_to_anchor=(0.5, 1.0 + 0.06 / rows))
    fig.suptitle(plain(title), y=1.0 + 0.14 / rows)
    fig.tight_layout()
    return save(fig, folder, stem)


def complexity(rows: list[dict[str, Any]], folder: Path, stem: str) -> list[Path]:
    """Measured parameters, MACs and time per method, with the paper's Table 2 values beside them."""
    plt = _pyplot()
    panels = [(k, t) for k, t in PROFILE_PANELS if any(number(r.get(k)) is not None for r in rows)]
    if not panels:
        return []
    labels = [plain(Labels().method(str(r.get("method", "?")))) + (f" ({r['dtype']})" if r.get("dtype") else "") for r in rows]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (key, title) in zip(axes.flat, panels):
        x = range(len(rows))
        measured = [number(r.get(key)) or 0.0 for r in rows]
        paper = [number(r.get(f"paper_{key}")) for r in rows]
        ax.bar([i - 0.2 for i in x], measured, width=0.4, label="measured")
        ax.bar([i + 0.2 for i in x], [math.nan if p is None else p for p in paper], width=0.4, label="paper", hatch="//",
               fill=False, edgecolor="tab:gray")
        ax.set_xticks(list(x), labels, rotation=30, ha="right")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes.flat[0].legend(frameon=False)
    devices = sorted({str(r["device"]) for r in rows if r.get("device")})
    if devices:
        fig.suptitle(plain("measured on " + ", ".join(devices) + "; paper: A6000 at 1024 x 1024"), fontsize=9)
    fig.tight_layout()
    return save(fig, folder, stem)

