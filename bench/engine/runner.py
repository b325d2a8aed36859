"""The run: plan, then (and only then) lock the folder, prepare inputs, restore and score, record, analyse.

Every unit is keyed on content (see `bench.engine.planner`), so a killed run resumes where it stopped, a
second run with nothing changed recomputes nothing, and a change recomputes exactly what it touches.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench.analysis import AnalysisInputs
from bench.config import CLEAN, RunConfig
from bench.core.atomic import atomic_write_text, remove_stale_temporaries
from bench.core.lock import RunLock
from bench.core.paths import printable_id
from bench.core.weights import WeightFile
from bench.distributed import Shard, current_shard
from bench.engine.executor import Executor
from bench.engine.inputs import InputMaker
from bench.engine.layout import RunFolderError, RunLayout
from bench.engine.planner import ImageEntry, Planner, RunPlan
from bench.engine.stamp import record_finished
from bench.engine.summary import RunSummary, write_summary_csv
from bench.record import (
    DatasetRecord,
    MethodRecord,
    MetricRecord,
    RunRecord,
    VariantRecord,
)
from bench.store import ResultsStore

log = logging.getLogger(__name__)


class Runner:
    """Runs one `RunConfig` into its run folder; a finished run without errors leaves its stamp."""

    def __init__(self, config: RunConfig, *, progress: bool = True, shard: Shard | None = None) -> None:
        self.config = config
        self.shard = shard or current_shard()
        self.device = self.shard.device(config.device)
        self.layout = RunLayout(config.run_dir)
        self.progress = progress and self.shard.is_main

    def run(self) -> RunSummary:
        """Check everything the config names, then create the run folder and run."""
        plan = Planner(self.config, self.device).plan()  # every user mistake surfaces here, before any write
        self.layout.check_writable()
        with RunLock(self.layout.root, self.layout.lock_name(self.shard.rank)):
            if self.shard.is_main:  # one process creates the store (schema, WAL mode) before the others open it
                remove_stale_temporaries(self.layout.root)
                ResultsStore(self.layout / RunLayout.STORE).close()
            self.shard.barrier()
            try:
                with ResultsStore(self.layout / RunLayout.STORE) as store:
                    return self._run(store, plan)
            except sqlite3.Error as exc:
                raise RunFolderError(errno.EIO, f"results store in {self.layout.root}: {exc} (finished results "
                                                "are kept, rerun to resume)") from exc

    def _run(self, store: ResultsStore, plan: RunPlan) -> RunSummary:
        import torch

        from bench.metrics import create_metric

        torch.manual_seed(self.config.seed)
        metrics = {name: create_metric(name, device=self.device, **self.config.metric_options.get(name, {}))
                   for name in plan.metrics}
        executor = Executor(self.layout, store, metrics, self.device, block_ids(plan))
        record = self._record(plan, executor)
        if self.shard.is_main:
            self._write_plan(store, plan, record, executor.metric_fps)
        self.shard.barrier()
        mine = self.shard.take(plan.units)
        maker = InputMaker(self.layout, store, self.config.qf, self.config.max_pixels, self.progress)
        prepared = set()
        for variant in plan.variants:
            needed = {u.entry for u in mine if u.variant == variant}
            entries = [e for e in plan.entries if e in needed]
            prepared |= {(e, variant) for e in maker.prepare(entries, variant, clean=variant.label == CLEAN)}
        mine = [u for u in mine if (u.entry, u.variant) in prepared]
        executor.run(plan.methods, mine, total=len(plan.units), progress=self.progress,
                     count_all=self.shard.distributed)
        self.shard.barrier()
        summary = RunSummary(self.layout.root, len(mine), executor.restored, executor.reused,
                             store.errors_frame().to_dict("records"), is_main=self.shard.is_main)
        if self.shard.is_main:
            self._finish(store, plan, record, summary)
        return summary

    def _record(self, plan: RunPlan, executor: Executor) -> RunRecord:
        from bench.provenance import manifest

        weights = {name: [weight_record(w) for w in m.required_files()] for name, m in executor.metrics.items()}
        weights.update({label: [weight_record(w) for w in m.required_weights()] for label, m in plan.methods.items()})
        info = manifest(self.config.to_dict(), self.config.protocol.to_dict(), weights, self.device, self.config.seed)
        info["processes"] = self.shard.world
        specs = {s.label: s for s in self.config.method_specs()}
        return RunRecord(
            config=self.config.to_dict(), qfs=list(self.config.qf),
            variants=[VariantRecord(v.label, v.key, v.protocol.to_dict()) for v in plan.variants],
            methods=[MethodRecord(label, specs[label].method, m.fingerprint(), m.describe())
                     for label, m in plan.methods.items()],
            metrics=[MetricRecord(n, executor.metric_fps[n], m.info()) for n, m in executor.metrics.items()],
            datasets=[DatasetRecord(ds.name, ds.label, ds.description) for ds in plan.datasets],
            warnings=jpeg_reference_warnings(plan.entries), manifest=info)

    def _write_plan(self, store: ResultsStore, plan: RunPlan, record: RunRecord, metric_fps: dict[str, str]) -> None:
        for warning in record.warnings:
            log.warning(warning)
        store.set_skipped("metric", plan.skipped_metrics)
        store.set_skipped("method", plan.skipped_methods)
        store.set_skipped("variant", plan.skipped_variants)
        store.set_skipped("file", {f"{ds.name}/{printable_id(image)}": reason
                                   for ds in plan.datasets for image, reason in ds.left_out})
        store.set_record(record)
        images = [(v.label, e.dataset, e.image, e.image_id, v.key) for v in plan.variants for e in plan.entries]
        units = [(u.variant.label, u.entry.dataset, u.entry.image, u.method, u.qf, u.unit_id) for u in plan.units]
        store.set_plan(images, units, metric_fps)

    def _finish(self, store: ResultsStore, plan: RunPlan, record: RunRecord, summary: RunSummary) -> None:
        record.manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        store.set_record(record)
        atomic_write_text(self.layout / RunLayout.MANIFEST, json.dumps(record.manifest, indent=2, default=str))
        store.set_skipped("analysis", {**plan.skipped_analyses, **self._analyse(plan)})
        summary.skipped = store.skipped()
        write_summary_csv(store, self.layout)
        if not summary.errors:
            record_finished(self.config, plan)

    def _analyse(self, plan: RunPlan) -> dict[str, str]:
        """Run the analyses into `<run_dir>/analyses/<name>/`; what failed or was left out is returned as
        skipped items (`name` or `name:item`), never raised: an analysis never ends a run."""
        images = [(f"{e.dataset}/{e.image}", e.path) for e in plan.entries]
        skipped: dict[str, str] = {}
        for name, analysis in plan.analyses:
            inputs = AnalysisInputs(images, self.config.protocol, self.layout.analysis(name), progress=self.progress)
            try:
                skipped.update({f"{name}:{item}": why for item, why in analysis.run(inputs).items()})
            except Exception as exc:  # noqa: BLE001 - recorded as skipped
                log.error("analysis %s skipped: %s", name, exc)
                skipped[name] = f"{type(exc).__name__}: {exc}"
        return skipped


def block_ids(plan: RunPlan) -> dict[tuple[str, str, int], str]:
    """The identity of each block's images (dataset, protocol key, QF): a method's work folder for a block
    changes whenever any image of the block does."""
    qfs = {u.qf for u in plan.units}
    ids: dict[tuple[str, str, int], str] = {}
    for dataset in {e.dataset for e in plan.entries}:
        images = sorted(e.image_id for e in plan.entries if e.dataset == dataset)
        digest = hashlib.sha256(json.dumps(images).encode()).hexdigest()
        ids.update({(dataset, variant.key, qf): digest for variant in plan.variants for qf in qfs})
    return ids


def jpeg_reference_warnings(entries: list[ImageEntry]) -> list[str]:
    """One warning per dataset whose HQ references are JPEG files: the benchmark compresses them a second
    time, so its scores measure the restoration of doubly compressed images."""
    found: dict[str, list[ImageEntry]] = {}
    for entry in entries:
        found.setdefault(entry.dataset, [])
        if _is_jpeg(entry.path):
            found[entry.dataset].append(entry)
    return [f"dataset {printable_id(name)}: {len(jpegs)} of {sum(e.dataset == name for e in entries)} HQ "
            f"references are JPEG files (e.g. {jpegs[0].image}); they are compressed a second time, so the scores "
            "measure restoration from double compression: use lossless originals (PNG) where they exist"
            for name, jpegs in found.items() if jpegs]


def _is_jpeg(path: Path) -> bool:
    """True when the file starts with the JPEG start-of-image marker (whatever its extension)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(3) == b"\xff\xd8\xff"
    except OSError:
        return False


def weight_record(w: WeightFile) -> dict[str, Any]:
    """Path, status, size and SHA-256 of a weight file (the hash cache reads each version of a file once)."""
    record: dict[str, Any] = {"label": w.label, "path": str(w.path), "status": w.status()}
    if w.path.is_file():
        record.update(size=w.path.stat().st_size, sha256=w.sha256())
    return record
