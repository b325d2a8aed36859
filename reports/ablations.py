"""The paper's ablations (Table 3: prompt source, Table 4: CaVE training, Table 5: generator losses) from a run of
configs/ablations.yaml: each row's measured means, per dataset and QF, beside the paper's values.

Rows are found by the run labels that configs/ablations.yaml gives them (each the folder its training config
writes under runs/train/). The paper states neither QF (Tables 3-5) nor dataset (Table 5; its full-model row
matches LIVE-1 at QF 5), so its values stand beside every QF, and Table 5's beside LIVE-1 only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bench.core.paper import PAPER_DIR, our_dataset
from reports.extras import DataTable, Section, text
from reports.names import Labels

FULL_MODEL = "codiff"
TABLE5_DATASET = "live1"
DAPE_NOTE = ("codiff-prompt-dape: not in this run; DAPE (SeeSR's prompt extractor) is not part of this harness: "
             "add its restorations as an `outputs` row of that name (see configs/ablations.yaml)")


@dataclass(frozen=True)
class AblationRow:
    paper: str               # the row as the paper names it
    label: str               # its run label in configs/ablations.yaml
    key: dict[str, object]   # the paper CSV's columns that select the row
    absent: str = ""         # what the report says when the run lacks it (default: "<label>: not in this run")


@dataclass(frozen=True)
class AblationTable:
    title: str
    csv: str
    rows: tuple[AblationRow, ...]


TABLES = (
    AblationTable("Table 3: prompt source", "table3_prompt_ablation.csv", (
        AblationRow("Empty", "codiff-prompt-empty", {"prompt": "Empty"}),
        AblationRow("Learnable", "codiff-prompt-learnable", {"prompt": "Learnable"}),
        AblationRow("DAPE", "codiff-prompt-dape", {"prompt": "DAPE"}, DAPE_NOTE),
        AblationRow("CaVE", FULL_MODEL, {"prompt": "CaVE"}))),
    AblationTable("Table 4: CaVE training", "table4_dual_learning_ablation.csv", (
        AblationRow("explicit", "codiff-cave-explicit", {"cave_training": "explicit"}),
        AblationRow("implicit", "codiff-cave-implicit", {"cave_training": "implicit"}),
        AblationRow("dual", FULL_MODEL, {"cave_training": "dual"}))),
    AblationTable("Table 5: generator losses", "table5_loss_ablation.csv", (
        AblationRow("L2", "codiff-mse-only", {"l2": 1, "dists": 0, "gan": 0}),
        AblationRow("L2 + DISTS", "codiff-no-gan", {"l2": 1, "dists": 1, "gan": 0}),
        AblationRow("L2 + GAN", "codiff-no-dists", {"l2": 1, "dists": 0, "gan": 1}),
        AblationRow("L2 + DISTS + GAN", FULL_MODEL, {"l2": 1, "dists": 1, "gan": 1}))),
)
ABLATION_LABELS = {row.label for table in TABLES for row in table.rows if row.label != FULL_MODEL}
LONG_COLUMNS = ["table", "row", "method", "dataset", "qf", "metric", "measured", "n", "paper", "note"]


def paper_values(table: AblationTable, row: AblationRow) -> dict[str, dict[str, float]]:
    """{our dataset: {metric: value}} of one paper row."""
    raw = pd.read_csv(PAPER_DIR / table.csv)
    hits = raw[pd.concat([raw[k] == v for k, v in row.key.items()], axis=1).all(axis=1)]
    metrics = [c for c in raw.columns if c not in row.key and c != "dataset"]
    found: dict[str, dict[str, float]] = {}
    for record in hits.to_dict("records"):
        dataset = our_dataset(record["dataset"]) if "dataset" in record else TABLE5_DATASET
        found[dataset] = {m.lower(): float(record[m]) for m in metrics}
    return found


def ablation_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """Every row of Tables 3-5 in long format: one line per measured dataset x QF x metric, or one line saying
    why a row has no measurement."""
    lines = []
    for table in TABLES:
        for row in table.rows:
            paper = paper_values(table, row)
            measured = summary[summary["method"] == row.label]
            if measured.empty:
                note = row.absent or f"{row.label}: not in this run"
                lines.append((table.title, row.paper, row.label, "", math.nan, "", math.nan, 0, math.nan, note))
            for r in measured.itertuples():
                value = paper.get(r.dataset, {}).get(r.metric, math.nan)
                lines.append((table.title, row.paper, row.label, r.dataset, int(r.qf), r.metric, r.mean, int(r.n),
                              value, ""))
    return pd.DataFrame(lines, columns=LONG_COLUMNS)


def ablation_section(summary: pd.DataFrame, labels: Labels) -> Section | None:
    """The report section of Tables 3-5, or None when the run holds none of the ablation rows."""
    if not ABLATION_LABELS & set(summary["method"]):
        return None
    frame = ablation_frame(summary)
    note = ("Rows are the run labels of configs/ablations.yaml; the paper's values (in brackets) stand beside every "
            "QF (the paper states none) and, for Table 5, beside LIVE-1 only (it states no dataset).")
    section = Section(title="Paper ablations (Tables 3-5)", folder="ablations", notes=[note])
    for title, group in frame.groupby("table", sort=False):
        metrics = [m for m in dict.fromkeys(group["metric"]) if m]
        cells: dict[tuple, dict[str, str]] = {}
        for r in group.itertuples():
            line = cells.setdefault((r.row, r.method, r.dataset, r.qf), {"note": r.note})
            if r.metric:
                paper = f" ({text(r.paper)})" if math.isfinite(r.paper) else ""
                line[r.metric] = f"{text(r.measured)}{paper}"
        rows = [[paper_row, method, dataset, "" if math.isnan(qf) else str(int(qf)),
                 *(values.get(m, "") for m in metrics), values["note"]]
                for (paper_row, method, dataset, qf), values in cells.items()]
        section.tables.append(DataTable(str(title), ["row", "method", "dataset", "QF",
                                                     *(labels.metric(m) for m in metrics), "note"], rows))
    return section
