"""Training logs: CSV tables rewritten atomically, and TensorBoard scalars.

Each table (`train.csv`, `val.csv`) keeps its rows in memory and is rewritten whole at every flush, so a
kill never leaves a torn line. On resume, rows after the checkpoint's step are dropped from both the CSV
files and TensorBoard (its `purge_step`), so a resumed run's logs read as one uninterrupted run.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path
from typing import Any

from bench.core.atomic import atomic_write_text

log = logging.getLogger(__name__)


class MetricsLog:
    """Rows of named tables, each with a `step`, mirrored to `<folder>/<table>.csv` and TensorBoard."""

    def __init__(self, folder: str | Path, *, resume_step: int = 0, tensorboard: bool = True) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.tables: dict[str, list[dict[str, Any]]] = {}
        for path in self.folder.glob("*.csv"):
            rows = _read_rows(path)
            self.tables[path.stem] = [r for r in rows if float(r.get("step", math.inf)) <= resume_step]
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is a declared dependency; a broken install only loses this view
                log.warning("tensorboard is not importable; logging to CSV only")
            else:
                self.writer = SummaryWriter(str(self.folder / "tensorboard"), purge_step=resume_step + 1)

    def add(self, table: str, row: dict[str, Any], tag: str | None = None) -> None:
        """Append a row; numeric values also go to TensorBoard as `<table>/<tag>/<key>` at the row's step."""
        self.tables.setdefault(table, []).append(dict(row))
        if self.writer is not None:
            prefix = f"{table}/{tag}/" if tag else f"{table}/"
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(prefix + key, value, int(row["step"]))

    def rows(self, table: str) -> list[dict[str, Any]]:
        return list(self.tables.get(table, []))

    def flush(self) -> None:
        for table, rows in self.tables.items():
            atomic_write_text(self.folder / f"{table}.csv", rows_to_csv(rows))
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV text of rows whose keys may differ (columns in order of first appearance)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _read_rows(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _number(text: str | None) -> Any:
    if text is None or text == "":
        return text
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
