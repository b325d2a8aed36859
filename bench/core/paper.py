"""The CODiff paper's reported values (CSV transcriptions in `bench/data/paper_tables/`) in this harness's
names: claims to compare with, never measurements."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from bench.core.resources import embedded_file

PAPER_DIR = embedded_file("paper_tables")

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
