"""Whether a run folder already holds the finished results of exactly this run, found without loading models.

After a run that finished without errors the engine writes `<run_dir>/uptodate.json`: a hash of everything
that determines the results (the config, the code of the installed packages, library versions, the registered
entries it used, the settings that say where files are looked up, the content identity of every input image,
and the content hash of every weight file it consulted, present or not). A rerun first recomputes that hash,
which costs stat calls and the hash cache; when it matches and the report is there, nothing is done. Anything
else runs the engine, which then reuses what it can unit by unit.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.config import RunConfig
from bench.core.atomic import atomic_write_text
from bench.core.hashcache import content_sha256
from bench.core.resources import package_file
from bench.engine.layout import RunLayout

if TYPE_CHECKING:
    from bench.engine.planner import RunPlan
    from bench.engine.summary import RunSummary

_PACKAGES = ("bench", "methods", "reports")
_IGNORED_CONFIG = ("run_dir", "sources")  # a copied or moved run folder holds the same results
# Where weight files, caches and data are looked up: a different setting may find other files.
_ENVIRONMENT = ("CODIFF_BENCH_WEIGHTS", "CODIFF_BENCH_DATA", "CODIFF_BENCH_DATASETS", "TORCH_HOME", "HF_HOME",
                "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME")


def code_hash() -> str:
    """SHA-256 over the source and data files of this project's installed packages."""
    digest = hashlib.sha256()
    for package in _PACKAGES:
        root = package_file(package)
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            if path.suffix == ".pyc":
                continue
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(content_sha256(path).encode())
    return digest.hexdigest()


def run_fingerprint(config: RunConfig, weight_files: list[str]) -> str:
    """The hash of everything that determines the results of `config` (see the module docstring)."""
    from bench.analysis import ANALYSES
    from bench.engine.planner import Planner
    from bench.metrics import METRICS
    from bench.provenance import library_versions
    from methods.registry import METHODS

    planner = Planner(config)
    entries = planner.entries(planner.datasets())
    payload: dict[str, Any] = {
        "config": {k: v for k, v in config.to_dict().items() if k not in _IGNORED_CONFIG},
        "code": code_hash(),
        "environment": {name: os.environ.get(name) for name in _ENVIRONMENT},
        "versions": library_versions(),
        "registered": {registry.kind: {name: str(registry.target(name)) for name in registry.names()}
                       for registry in (METHODS, METRICS, ANALYSES)},
        "inputs": [[e.dataset, e.image, e.image_id] for e in entries],
        "weights": {path: content_sha256(path) if Path(path).is_file() else None for path in sorted(set(weight_files))},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def record_finished(config: RunConfig, plan: RunPlan) -> None:
    """After a run without errors: remember what it was a run of (every weight file consulted, present or not)."""
    from bench.metrics import metric_files

    weight_files = sorted(set(plan.method_weights + [str(f.path) for name in config.metrics
                                                     for f in metric_files(name, **config.metric_options.get(name, {}))]))
    stamp = {"fingerprint": run_fingerprint(config, weight_files), "weight_files": weight_files}
    atomic_write_text(RunLayout(config.run_dir) / RunLayout.STAMP, json.dumps(stamp, indent=2) + "\n")


def is_up_to_date(config: RunConfig) -> bool:
    """True when the run folder holds the finished results (and report, if asked for) of exactly `config`."""
    layout = RunLayout(config.run_dir)
    try:
        stamp = json.loads((layout / RunLayout.STAMP).read_text())
    except (OSError, ValueError):
        return False
    if config.report and not layout.report_index.is_file():
        return False
    try:
        return stamp.get("fingerprint") == run_fingerprint(config, list(stamp.get("weight_files") or []))
    except Exception:  # noqa: BLE001 - anything unexpected means: run the engine, which says what is wrong
        return False


def finished_summary(config: RunConfig) -> RunSummary:
    """The summary of the finished run in the folder: every unit reused, the stored skips and report."""
    from bench.engine.summary import RunSummary
    from bench.store import ResultsStore

    layout = RunLayout(config.run_dir)
    with ResultsStore(layout / RunLayout.STORE, readonly=True) as store:
        units = len(store.outputs_frame(variants=True))
        skipped = store.skipped()
    return RunSummary(layout.root, units=units, reused=units, skipped=skipped,
                      report=layout.report_index if config.report else None)
