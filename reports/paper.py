"""The CODiff paper's reported values (CSV copies in `paper_tables/`) mapped onto this harness's names.

The CSVs are transcriptions of the paper's Tables 1 and 2: claims to compare with, never measurements.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import pandas as pd

PAPER_DIR = Path(__file__).resolve().parent / "paper_tables"

# Paper spelling -> registered method name. DiffBIR* and OSEDiff* in Table 1 were retrained by the paper's
# authors on their own training data, so a run with public weights measures a different model.
PAPER_METHODS = {"JPEG": "jpeg", "FBCNN": "fbcnn", "JDEC": "jdec", "PromptCIR": "promptcir", "SUPIR": "supir",
                 "DiffBIR": "diffbir", "DiffBIR*": "diffbir", "OSEDiff": "osediff", "OSEDiff*": "osediff",
                 "OSDiff*": "osediff", "CODiff": "codiff"}
PAPER_DATASETS = {"LIVE-1": "live1", "Urban100": "urban100", "DIV2K-val": "div2k-val"}
RETRAINED_NOTE = "retrained by the paper's authors on their training data"


def our_method(paper_name: str) -> str:
    return PAPER_METHODS.get(paper_name, paper_name.rstrip("*").lower())


def our_dataset(paper_name: str) -> str:
    return PAPER_DATASETS.get(paper_name, paper_name.lower())


@lru_cache(maxsize=1)
def table1() -> pd.DataFrame:
    """Table 1 in our names: dataset, method, qf, metric, value, paper_method, paper_dataset, note."""
    raw = pd.read_csv(PAPER_DIR / "table1_quality.csv")
    return pd.DataFrame({
        "dataset": raw["dataset"].map(our_dataset), "method": raw["method"].map(our_method),
        "qf": raw["qf"].astype(int), "metric": raw["metric"].str.lower(), "value": raw["value"].astype(float),
        "paper_method": raw["method"], "paper_dataset": raw["dataset"],
        "note": raw["method"].map(lambda m: RETRAINED_NOTE if m.endswith("*") else "")})


@lru_cache(maxsize=1)
def table2() -> pd.DataFrame:
    """Table 2 (complexity at 1024 x 1024) in our names: method, paper_method, steps, params_g, macs_t, time_s,
    input, gpu."""
    raw = pd.read_csv(PAPER_DIR / "table2_complexity.csv")
    return pd.DataFrame({"method": raw["method"].map(our_method), "paper_method": raw["method"],
                         "steps": raw["steps"], "params_g": raw["params_G"], "macs_t": raw["macs_T"],
                         "time_s": raw["time_s"], "input": raw["input"], "gpu": raw["gpu"]})


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
