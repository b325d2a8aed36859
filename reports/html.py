"""`render_report`: a run folder's stored results as a self-contained HTML report with plots and exports.

Reads the results store read-only and never recomputes a restoration or a metric. Everything is written
under `<run_dir>/report/` atomically, with a copy of every run file the page shows (`report/files/`) and
relative links only, so the folder opens from disk anywhere it is copied, with no server and no network;
`single_file` also writes the page as one HTML file with everything inlined. All text goes through jinja2
autoescaping, and absolute paths of this machine are cut to their last component.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.core.atomic import atomic_write_bytes, atomic_write_text
from bench.core.paths import ANALYSES_FOLDER, safe_component
from reports import plots
from reports.ablations import ablation_frame, ablation_section
from reports.assets import STANDALONE, copy_assets, single_file as write_single_file
from reports.compare import describe, paired_frame, paired_tables
from reports.exports import write_exports
from reports.extras import ASSETS, Section, flat, folder_section, portable, profile_section, text
from reports.names import Labels
from reports.paper import compare_quality, table1
from reports.ratequality import rate_quality_section
from reports.robustness import robustness_section
from reports.rundata import ReportError, RunData
from reports.stats import ALPHA, MIN_PAIRS
from reports.tables import (
    decimals,
    per_image_wide,
    quality_tables,
    summarize,
    wide_summary,
)
from reports.visual import choose_images, image_tables, panels

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent
STATIC = ("report.css", "report.js")
OWN_FOLDERS = ("plots", "exports", "static", "visual", ASSETS)


def render_report(run_dir: str | Path, *, reference: str | None = None, images: list[str] | None = None,
                  single_file: bool = False) -> Path:
    """Render `<run_dir>/report/index.html` (plus plots, exports, static files, copies of the images it shows)
    and return its path; with `single_file`, also `report/standalone.html` (everything inlined), returned then.

    `reference` compares every method with that one (default: the best mean per column); `images`
    chooses the visual comparisons (image names or `dataset:image`; default: the first of each dataset).
    """
    run_dir = Path(run_dir)
    out = run_dir / "report"
    data = RunData.load(run_dir)
    if not os.access(run_dir, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ReportError(f"cannot write the report into {out}: the folder is read-only (copy the run folder "
                          "somewhere writable and render it there)")
    if reference is not None and reference not in data.method_order:
        raise ReportError(f"reference method {reference!r} has no results in {run_dir}; "
                         f"methods with results: {', '.join(data.method_order) or 'none'}")
    written: list[Path] = []
    summary = summarize(data.results)
    tables = quality_tables(data, summary)
    paired = paired_tables(data, summary, reference)
    paper = compare_quality(summary, {m: data.method_name(m) for m in data.method_order})
    chosen, unknown = choose_images(data, images)
    panel_list, decoded = panels(data, chosen, out / "visual")
    written += decoded
    profile = _optional(lambda: profile_section(run_dir), "profile")
    analyses = [section for folder in sorted((run_dir / ANALYSES_FOLDER).glob("*/"))
                if (section := _optional(lambda f=folder: folder_section(run_dir, f"{ANALYSES_FOLDER}/{f.name}",
                                                                         f"Analysis: {f.name}"), folder.name))]
    ablations = ablation_section(summary, data.labels)

    robustness, files = robustness_section(data, out)
    written += files
    rate_quality, files = rate_quality_section(data, out, reference)
    written += files
    figures = []
    for table in tables:
        stem = f"metric_vs_qf_{safe_component(table.dataset)}"
        written += plots.metric_vs_qf(summary, table.dataset, table.methods, table.metrics, data.labels,
                                      out / "plots", stem)
        figures.append({"title": f"{table.dataset_label}: metrics against QF (log axis, ticked at the run's "
                                 "QFs; 95% CI bars)",
                        "png": f"plots/{stem}.png", "svg": f"plots/{stem}.svg"})
    complexity_figure = None
    if profile is not None and profile.profile_rows:
        written += plots.complexity(profile.profile_rows, out / "plots", "complexity")
        if (out / "plots" / "complexity.png") in written:
            complexity_figure = {"title": "Complexity: measured beside the paper's Table 2",
                                 "png": "plots/complexity.png", "svg": "plots/complexity.svg"}

    frames = {"results_long": data.results, "results_wide": per_image_wide(data.results),
              "summary_long": summary, "summary_wide": wide_summary(summary),
              "paper_comparison": paper, "paired_comparison": paired_frame(paired),
              **({"ablations": ablation_frame(summary)} if ablations is not None else {})}
    written += write_exports(out / "exports", frames, tables)
    for name in STATIC:
        written.append(atomic_write_bytes(out / "static" / name, (PACKAGE / "static" / name).read_bytes()))

    context = {
        "title": f"codiff-bench report: {run_dir.resolve().name}",
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "overview": _overview(data),
        "config": flat(data.config),
        "protocol": _protocol(data),
        "provenance": _provenance(data.manifest),
        "versions": sorted((data.manifest.get("versions") or {}).items()),
        "weights": _weights(data.manifest),
        "skipped": data.skipped,
        "warnings": data.warnings,
        "errors": data.errors.to_dict("records"),
        "error_counts": _error_counts(data.errors),
        "input_notes": _input_notes(data),
        "methods": _methods(data),
        "metric_info": [(m, data.labels.metric(m), (data.metric_info.get(m) or {}).get("description", ""))
                        for m in data.metrics],
        "tables": tables,
        "paired": [_paired_view(t, data) for t in paired],
        "reference": data.labels.method(reference) if reference else None,
        "paper": _paper_view(paper, data.labels),
        "paper_scope": _paper_scope(),
        "figures": figures,
        "complexity_figure": complexity_figure,
        "panels": panel_list,
        "unknown_images": unknown,
        "image_tables": image_tables(data, panel_list),
        "extras": [s for s in (ablations, robustness, rate_quality, profile, *analyses) if s is not None],
        "exports": sorted(p.relative_to(out).as_posix() for p in written if p.parent.name == "exports"),
        "dataset_label": data.labels.dataset,
        "metric_label": data.labels.metric,
        "method_label": data.labels.method,
    }
    index = out / "index.html"
    page = _environment().get_template("report.html.j2").render(**context)
    written += copy_assets(page, run_dir, out)
    atomic_write_text(index, page)
    _remove_stale(out, set(written))
    return write_single_file(index, out / STANDALONE) if single_file else index


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(PACKAGE / "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              finalize=portable)


def _optional(build, name: str) -> Section | None:
    """An optional section; a failure to read it becomes a visible problem, not a failed report."""
    try:
        return build()
    except Exception as exc:  # noqa: BLE001 - optional inputs must never stop a report
        log.warning("report: cannot read %s: %s", name, exc)
        return Section(title=name, folder=name, problems=[f"{name}: cannot be read: {type(exc).__name__}: {exc}"])


def _remove_stale(out: Path, written: set[Path]) -> None:
    """Delete files of earlier renders (plots of a dataset no longer in the run, ...) from our own folders."""
    for folder in OWN_FOLDERS:
        for path in sorted((out / folder).rglob("*"), reverse=True):  # files before their folders
            if path.is_file() and path not in written:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()


def _overview(data: RunData) -> list[tuple[str, str]]:
    counts = data.images.groupby("dataset").size().to_dict()
    return [("Run folder", data.run_dir.resolve().name),
            ("Datasets", ", ".join(f"{data.labels.dataset(d)} ({counts.get(d, 0)} images)" for d in data.datasets) or "none"),
            ("Methods with results", ", ".join(map(data.labels.method, data.method_order)) or "none"),
            ("Quality factors", ", ".join(map(str, data.qfs)) or "none"),
            ("Metrics", ", ".join(data.labels.metric(m) for m in data.metrics) or "none"),
            ("Values stored", f"{len(data.results):,}"),
            ("Failures", f"{len(data.errors):,}"),
            ("Skipped", (f"{sum(s['kind'] == 'metric' for s in data.skipped)} metrics, "
                         f"{sum(s['kind'] == 'method' for s in data.skipped)} methods, "
                         f"{sum(s['kind'] == 'file' for s in data.skipped)} files left out of the datasets"))]


def _protocol(data: RunData) -> list[tuple[str, str]]:
    """The JPEG protocol's settings; `quality`, which the stored protocol leaves unbound (one JPEG is made per
    quality factor), is shown as the run's quality factors."""
    rows = [(k, text(v)) for k, v in data.protocol.items() if k != "quality"]
    if data.protocol:
        rows.append(("quality", f"QF {', '.join(map(str, data.qfs))} (one JPEG per quality factor)"
                     if data.qfs else "none yet"))
    return rows


def _provenance(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    git = manifest.get("git") or {}
    rows = [("Commit", f"{git.get('commit') or 'unknown'}" + (" (uncommitted changes)" if git.get("dirty") else "")),
            ("Seed", text(manifest.get("seed"))), ("Started", text(manifest.get("started"))),
            ("Finished", text(manifest.get("finished")))]
    rows += [(f"Device: {k}", text(v)) for k, v in (manifest.get("device") or {}).items()]
    shown = {"git", "seed", "started", "finished", "device", "versions", "weights", "config", "protocol"}
    rows += [(k, text(v)) for k, v in manifest.items() if k not in shown]
    return [(k, v) for k, v in rows if v]


def _weights(manifest: dict[str, Any]) -> list[dict[str, str]]:
    rows = []
    for owner, files in (manifest.get("weights") or {}).items():
        for f in files or []:
            f = f if isinstance(f, dict) else {"path": f}
            rows.append({"owner": owner, "label": text(f.get("label")), "path": text(f.get("path")),
                         "status": text(f.get("status")), "size": text(f.get("size")),
                         "sha256": text(f.get("sha256"))})
    return rows


def _error_counts(errors: pd.DataFrame) -> list[tuple[str, str, int]]:
    if errors.empty:
        return []
    return [(m, s, int(n)) for (m, s), n in errors.groupby(["method", "stage"]).size().items()]


def _input_notes(data: RunData) -> list[tuple[str, str, str]]:
    rows = []
    for r in data.images.itertuples():
        try:
            notes = json.loads(r.notes) if isinstance(r.notes, str) else []
        except ValueError:
            notes = [r.notes]
        if notes:
            rows.append((data.labels.dataset(r.dataset), r.image, "; ".join(map(str, notes))))
    return rows


def _methods(data: RunData) -> list[dict[str, str]]:
    seconds = data.outputs.groupby("method")["seconds"].mean().to_dict() if not data.outputs.empty else {}
    rows = []
    configured = [m for m in data.methods if m in data.configured_methods]
    for label in list(dict.fromkeys(data.method_order + configured)):
        d = data.methods.get(label) or {}
        rows.append({"label": data.labels.method(label), "name": text(d.get("name")), "blind": text(d.get("blind")),
                     "steps": text(d.get("steps")), "config": flat(d.get("config") or {}) if d.get("config") else [],
                     "weights": [portable(str(w[0] if isinstance(w, (list, tuple)) and w else w))
                                 for w in d.get("weights") or []],
                     "seconds": f"{seconds[label]:.3f}" if label in seconds else ""})
    return rows


def _paired_view(table, data: RunData) -> dict[str, Any]:
    """Cells of a paired table as text: win rate, p-value (only where the pairs could reach significance,
    else the reason) and a hover sentence."""
    digits = {m: decimals(data.results.loc[data.results["metric"] == m, "value"].tolist()) for m in data.metrics}
    cells = {}
    for (method, qf, metric), p in table.cells.items():
        known = math.isfinite(p.p_value) and p.can_reach()
        reference = data.labels.method(table.references[(qf, metric)])
        cells[(method, qf, metric)] = {"win": f"{p.win_rate:.0%}", "p": f"p={p.p_value:.2g}" if known else f"n={p.n}",
                                       "significant": known and p.p_value < ALPHA, "n": p.n,
                                       "title": describe(p, reference, digits[metric]) if known else
                                       f"{describe(p, reference, digits[metric], with_p=False)}; {p.too_few()}"}
    untestable = [c for c in table.cells.values() if not c.can_reach()]
    groups = [(qf, sum(1 for q, _ in table.columns if q == qf)) for qf in dict.fromkeys(q for q, _ in table.columns)]
    references = set(table.references.values())
    return {"dataset": table.dataset, "methods": table.methods, "columns": table.columns, "groups": groups,
            "one_reference": data.labels.method(references.pop()) if len(references) == 1 else None,
            "references": table.references, "cells": cells,
            "reference_labels": {k: data.labels.method(v) for k, v in table.references.items()},
            "untestable": f"No p-value is shown where the two methods differ on fewer than {MIN_PAIRS} images: "
                          f"the two-sided Wilcoxon signed-rank test cannot reach p < {ALPHA:g} below {MIN_PAIRS} "
                          "non-zero differences (its smallest p-value is 2 / 2^n), so only the win rate is "
                          "shown there." if untestable else ""}


def _paper_view(paper: pd.DataFrame, labels: Labels) -> list[dict[str, str]]:
    rows = []
    for r in paper.itertuples():
        digits = decimals([r.paper, r.measured])
        ci = f"[{r.ci_low:.{digits}f}, {r.ci_high:.{digits}f}]" if math.isfinite(r.ci_low) else ""
        rows.append({"dataset": labels.dataset(r.dataset), "method": labels.method(r.method),
                     "paper_method": r.paper_method,
                     "qf": r.qf, "metric": labels.metric(r.metric), "paper": f"{r.paper:.{digits}f}",
                     "measured": f"{r.measured:.{digits}f}", "ci": ci, "n": r.n,
                     "difference": f"{r.difference:+.{digits}f}",
                     "relative": f"{r.relative:+.1%}" if math.isfinite(r.relative) else "",
                     "in_ci": {True: "yes", False: "no", None: "n/a"}[r.paper_in_ci], "note": r.note})
    return rows


def _paper_scope() -> str:
    t = table1()
    return (f"the paper's Table 1 reports {', '.join(sorted(t['paper_method'].unique()))} on "
            f"{', '.join(t['paper_dataset'].unique())} at QF {', '.join(map(str, sorted(t['qf'].unique())))} "
            f"with {', '.join(t['metric'].str.upper().unique())}")
