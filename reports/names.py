"""Display names and better directions of metrics, datasets and methods, shared by tables, plots and exports."""

from __future__ import annotations

from typing import Any

# How the paper and common usage spell our metric and dataset names.
METRIC_LABELS = {"psnr": "PSNR", "ssim": "SSIM", "psnr_b": "PSNR-B", "lpips": "LPIPS", "dists": "DISTS",
                 "musiq": "MUSIQ", "maniqa": "MANIQA", "clipiqa": "CLIPIQA"}
DATASET_LABELS = {"live1": "LIVE-1", "urban100": "Urban100", "div2k-val": "DIV2K-val"}

# Used only when a run recorded no `metric_info` (older stores); the run's own record always wins.
KNOWN_LOWER_BETTER = {"psnr": False, "ssim": False, "psnr_b": False, "lpips": True, "dists": True,
                      "musiq": False, "maniqa": False, "clipiqa": False}


def metric_label(name: str) -> str:
    return METRIC_LABELS.get(name, name.upper())


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name, name)


def lower_better(metric: str, metric_info: dict[str, Any]) -> bool:
    """Whether smaller values of `metric` are better: from the run's record, else the known table."""
    info = metric_info.get(metric) or {}
    if "lower_better" in info:
        return bool(info["lower_better"])
    return KNOWN_LOWER_BETTER.get(metric, False)


def arrow(metric: str, metric_info: dict[str, Any]) -> str:
    return "\u2193" if lower_better(metric, metric_info) else "\u2191"


def order_like(preferred: list[str], present: list[str] | set[str]) -> list[str]:
    """`present` ordered as in `preferred`, unknown names after them in sorted order."""
    present = set(present)
    first = [x for x in dict.fromkeys(preferred) if x in present]
    return first + sorted(present - set(first))
