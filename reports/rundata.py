"""Everything a report shows about a run, read once from its results store (read-only) and its folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from bench.core.errors import BenchError
from bench.store import ResultsStore
from reports.names import Labels, order_like


class ReportError(BenchError):
    """A report cannot be made: no results store in the folder, an unknown reference, an unwritable folder."""


@dataclass
class RunData:
    """A run's stored results and records, with the datasets, methods, QFs and metrics in display order."""

    run_dir: Path
    results: pd.DataFrame
    outputs: pd.DataFrame
    errors: pd.DataFrame
    images: pd.DataFrame
    lq: pd.DataFrame
    skipped: list[dict[str, str]]
    methods: dict[str, dict[str, Any]]
    manifest: dict[str, Any]
    protocol: dict[str, Any]
    config: dict[str, Any]
    metric_info: dict[str, dict[str, Any]]
    labels: Labels
    datasets: list[str] = field(default_factory=list)
    method_order: list[str] = field(default_factory=list)
    qfs: list[int] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    configured_methods: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    variant_results: pd.DataFrame = field(default_factory=pd.DataFrame)  # every protocol variant's, `variant` column
    variant_protocols: dict[str, dict[str, Any]] = field(default_factory=dict)  # label -> protocol, 'clean' first
    fingerprints: dict[str, str] = field(default_factory=dict)  # method label -> fingerprint

    @classmethod
    def load(cls, run_dir: str | Path) -> RunData:
        run_dir = Path(run_dir)
        if not (run_dir / ResultsStore.FILENAME).is_file():
            raise ReportError(f"{run_dir} is not a run folder: it holds no {ResultsStore.FILENAME} "
                              "(give the --run-dir of a `codiff-bench run`)")
        with ResultsStore.in_run_dir(run_dir, readonly=True) as store:
            data = cls(run_dir=run_dir, results=store.results_frame(), outputs=store.outputs_frame(),
                       errors=store.errors_frame(), images=store.images_frame(), lq=store.lq_frame(),
                       skipped=store.skipped(), methods=store.methods(),
                       manifest=store.get_meta("manifest", {}) or {}, protocol=store.get_meta("protocol", {}) or {},
                       config=store.get_meta("config", {}) or {},
                       metric_info=store.get_meta("metric_info", {}) or {},
                       labels=Labels(store.get_meta("metric_info", {}) or {}, store.get_meta("dataset_info", {}) or {}),
                       warnings=store.get_meta("warnings", []) or [],
                       variant_results=store.results_frame(variants=True), fingerprints=store.fingerprints(),
                       variant_protocols={label: v.get("protocol") or {}
                                          for label, v in (store.get_meta("variants", {}) or {}).items()})
        data._order()
        return data

    def _order(self) -> None:
        cfg = self.config
        self.datasets = order_like(list(cfg.get("datasets") or []),
                                   set(self.results["dataset"]) | set(self.images["dataset"]))
        self.configured_methods = [_label(m) for m in cfg.get("methods") or []]
        self.method_order = order_like(self.configured_methods,
                                       set(self.results["method"]) | set(self.outputs["method"]))
        self.qfs = sorted({int(q) for q in self.results["qf"]} | {int(q) for q in self.lq["qf"]})
        preferred = list(cfg.get("metrics") or []) + list(self.metric_info)
        self.metrics = order_like(preferred, set(self.results["metric"]))

    def method_name(self, label: str) -> str:
        """The registered method behind a run label (a label may name a configured variant)."""
        return str((self.methods.get(label) or {}).get("name") or label)

    def run_file(self, relative: str | None) -> Path | None:
        """A file of the run folder named by a stored relative path, or None when absent or outside the folder."""
        if not relative or not isinstance(relative, str):
            return None
        rel = PurePosixPath(relative)
        if rel.is_absolute() or ".." in rel.parts:
            return None
        path = self.run_dir / rel
        return path if path.is_file() else None


def _label(entry: Any) -> str:
    """The label a run config entry gives a method ('jpeg' or {'name': label, 'method': ...})."""
    if isinstance(entry, dict):
        return str(entry.get("name") or entry.get("method") or "")
    return str(entry)


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
