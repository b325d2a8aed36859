"""Everything a report shows about a run, read once from its results store (read-only) and its folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from bench.core.errors import BenchError
from bench.record import RunRecord
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
            try:
                record = store.record()
            except ValueError as exc:
                raise ReportError(f"{run_dir}: {exc}") from None
            metric_info = {m.name: m.info for m in record.metrics}
            data = cls(run_dir=run_dir, results=store.results_frame(), outputs=store.outputs_frame(),
                       errors=store.errors_frame(), images=store.images_frame(), lq=store.lq_frame(),
                       skipped=store.skipped(), methods={m.label: m.description for m in record.methods},
                       manifest=record.manifest, protocol=record.protocol, config=record.config,
                       metric_info=metric_info,
                       labels=Labels(metric_info, {d.name: {"label": d.label, "description": d.description}
                                                   for d in record.datasets}),
                       warnings=record.warnings, variant_results=store.results_frame(variants=True),
                       fingerprints={m.label: m.fingerprint for m in record.methods},
                       variant_protocols={v.label: v.protocol for v in record.variants})
        data._order(record)
        return data

    def _order(self, record: RunRecord) -> None:
        self.datasets = order_like([d.name for d in record.datasets],
                                   set(self.results["dataset"]) | set(self.images["dataset"]))
        self.configured_methods = [str(entry["name"]) for entry in record.config.get("methods") or []]
        self.method_order = order_like(self.configured_methods,
                                       set(self.results["method"]) | set(self.outputs["method"]))
        self.qfs = sorted({int(q) for q in self.results["qf"]} | {int(q) for q in self.lq["qf"]})
        self.metrics = order_like([m.name for m in record.metrics], set(self.results["metric"]))

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


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
