"""Figures of the CaVE analysis: t-SNE panels per checkpoint (paper Figs. 2 and 4) and QF-estimate MSE per
QF (Fig. 7), each saved atomically as PNG and SVG."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from bench.core.atomic import atomic_path

UNSEEN_EDGE = "#d62728"
UNSEEN_COLOURS = ("#d62728", "#ff7f0e", "#e377c2", "#8c564b", "#bcbd22")  # apart from the seen QFs' viridis


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _qf_colours(qfs: list[int], unseen: list[int]) -> dict[int, tuple | str]:
    """Seen QFs along viridis; unseen QFs in warm colours that stand apart from it."""
    cmap = _pyplot().get_cmap("viridis")
    seen = [q for q in sorted(qfs) if q not in unseen]
    span = max(len(seen) - 1, 1)
    colours: dict[int, tuple | str] = {qf: cmap(i / span) for i, qf in enumerate(seen)}
    hidden = [q for q in sorted(qfs) if q in unseen]
    colours.update({qf: UNSEEN_COLOURS[i % len(UNSEEN_COLOURS)] for i, qf in enumerate(hidden)})
    return colours


def save_figure(fig, stem: Path) -> list[Path]:
    """Write `fig` as STEM.png and STEM.svg atomically and close it."""
    paths = []
    for suffix in (".png", ".svg"):
        target = stem.with_suffix(suffix)
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format=suffix[1:])
        paths.append(target)
    _pyplot().close(fig)
    return paths


def tsne_figure(layouts: Mapping[str, np.ndarray], qfs: np.ndarray, unseen: list[int],
                scores: Mapping[str, Mapping[str, float | None]]):
    """One t-SNE panel per checkpoint, side by side; points coloured by QF, unseen QFs as black-edged stars."""
    plt = _pyplot()
    labels = list(layouts)
    levels = sorted(int(q) for q in np.unique(qfs))
    colours = _qf_colours(levels, unseen)
    fig, axes = plt.subplots(1, len(labels), figsize=(4.6 * len(labels) + 1.2, 4.6), squeeze=False)
    for ax, label in zip(axes[0], labels):
        xy = layouts[label]
        for qf in levels:
            sel = qfs == qf
            hidden = qf in unseen
            ax.scatter(xy[sel, 0], xy[sel, 1], s=42 if hidden else 12, marker="*" if hidden else "o",
                       color=colours[qf], edgecolors="black" if hidden else "none", linewidths=0.4,
                       label=f"QF {qf}" + (" (unseen)" if hidden else ""), zorder=3 if hidden else 2)
        s = scores.get(label, {})
        ax.set_title(f"{label}\nsilhouette {_fmt(s.get('all'))}, unseen-only {_fmt(s.get('unseen_only'))}",
                     fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def mse_figure(mse: Mapping[str, Mapping[int, float]], unseen: list[int]):
    """QF-estimate MSE (1-100 scale, symmetric-log axis: linear below 1) against the true QF, one curve per checkpoint; unseen QFs
    shaded and drawn with hollow markers."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for qf in unseen:
        ax.axvspan(qf - 1.5, qf + 1.5, color=UNSEEN_EDGE, alpha=0.12, lw=0)
    for label, values in mse.items():
        xs = sorted(values)
        ax.plot(xs, [values[q] for q in xs], marker="o", ms=4, label=label)
        hidden = [q for q in xs if q in unseen]
        ax.plot(hidden, [values[q] for q in hidden], ls="none", marker="o", ms=9, mfc="none",
                mec=UNSEEN_EDGE, mew=1.4)
    ax.plot([], [], ls="none", marker="o", ms=9, mfc="none", mec=UNSEEN_EDGE, label="unseen QF")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("true JPEG quality factor")
    ax.set_ylabel("QF-estimate MSE (1-100 scale)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
