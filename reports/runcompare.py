"""Comparison across run folders (two checkpoints, two commits, two protocols): per metric, dataset, QF,
protocol variant and method, the paired per-image difference on the images both runs share, with a bootstrap
interval, a Wilcoxon signed-rank test and a multiple-comparison correction, plus the runs' provenance side by
side. Reads stored results only (the results store, read-only) and writes one HTML page with its exports.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.core.atomic import atomic_write_bytes, atomic_write_text
from bench.core.errors import BenchError
from bench.store import ResultsStore
from reports.names import Labels
from reports.rundata import RunData
from reports.stats import paired_comparison
from reports.tables import decimals

PACKAGE = Path(__file__).resolve().parent
KEYS = ["dataset", "variant", "qf", "metric", "method"]
CORRECTIONS = {"holm": "Holm (family-wise error rate)", "bh": "Benjamini-Hochberg (false discovery rate)"}


class CompareError(BenchError):
    """A comparison cannot be made: a folder that holds no run, a malformed --fail-if-worse, an unknown metric."""


@dataclass(frozen=True)
class Tolerance:
    """`METRIC:TOLERANCE`: a run is worse when its mean on METRIC is significantly lower (oriented so that
    lower is worse) by more than TOLERANCE, in the metric's own units."""

    metric: str
    tolerance: float

    @classmethod
    def parse(cls, text: str) -> "Tolerance":
        match = re.fullmatch(r"\s*([A-Za-z0-9_\-]+)\s*:\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*", text)
        if not match:
            raise CompareError(f"--fail-if-worse takes METRIC:TOLERANCE with a tolerance of 0 or more in the "
                               f"metric's units, e.g. psnr:0.05 or lpips:0.002; got {text!r}")
        return cls(match.group(1), float(match.group(2)))


@dataclass
class RunComparison:
    """Every run against the first (the baseline): the paired rows, the provenance table and regressions."""

    runs: list[RunData]
    rows: pd.DataFrame
    provenance: list[dict[str, Any]]
    correction: str
    alpha: float
    regressions: pd.DataFrame = field(default_factory=pd.DataFrame)
    tolerances: list[Tolerance] = field(default_factory=list)


def load_runs(run_dirs: list[str | Path]) -> list[RunData]:
    if len(run_dirs) < 2:
        raise CompareError("give at least two run folders: the baseline first, then the runs to compare with it")
    runs = []
    for folder in run_dirs:
        if not (Path(folder) / ResultsStore.FILENAME).is_file():
            raise CompareError(f"{folder} is not a run folder: it holds no {ResultsStore.FILENAME} (give the "
                               "--run-dir of a `codiff-bench run`)")
        runs.append(RunData.load(folder))
    return runs


def compare_runs(runs: list[RunData], *, correction: str = "holm", alpha: float = 0.05,
                 fail_if_worse: list[Tolerance] | None = None) -> RunComparison:
    """Paired differences of each run against the first, oriented so that positive means better."""
    if correction not in CORRECTIONS:
        raise CompareError(f"correction must be one of {', '.join(CORRECTIONS)}, not {correction!r}")
    labels = _labels(runs)
    known = set().union(*(set(r.metrics) for r in runs))
    for tol in fail_if_worse or []:
        if tol.metric not in known:
            raise CompareError(f"--fail-if-worse names metric {tol.metric!r}, which the runs did not score; "
                               f"scored: {', '.join(sorted(known)) or 'none'}")
        unscored = [str(run.run_dir) for run in runs if tol.metric not in run.metrics]
        if unscored:
            raise CompareError(f"--fail-if-worse {tol.metric}: {', '.join(unscored)} did not score {tol.metric}, so "
                               "no regression on it can be judged; rerun that folder with the metric added to "
                               "--metrics (stored results are reused), or leave this tolerance out")
    base = _values(runs[0]).rename(columns={"value": "value_a"})
    frames = []
    for index, run in enumerate(runs[1:], start=1):
        joined = base.join(_values(run).rename(columns={"value": "value_b"}), how="inner").dropna()
        rows = []
        for key, part in joined.groupby(level=KEYS, sort=True):
            metric = key[KEYS.index("metric")]
            p = paired_comparison(part["value_b"].to_numpy(), part["value_a"].to_numpy(),
                                  lower_better=labels.lower_better(metric))
            rows.append({"run": _name(run, index), **dict(zip(KEYS, key)), "n": p.n, "mean_a": part["value_a"].mean(),
                         "mean_b": part["value_b"].mean(), "difference": p.mean_diff, "ci_low": p.ci_low,
                         "ci_high": p.ci_high, "wins": p.wins, "ties": p.ties, "losses": p.losses,
                         "p_wilcoxon": p.p_value})
        frame = pd.DataFrame(rows)
        if not frame.empty:
            frame["p_adjusted"] = adjust(frame["p_wilcoxon"].to_numpy(float), correction)
            frame["significant"] = frame["p_adjusted"] < alpha
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True) if any(not f.empty for f in frames) else pd.DataFrame()
    result = RunComparison(runs, rows, provenance(runs), correction, alpha, tolerances=list(fail_if_worse or []))
    result.regressions = regressions(rows, result.tolerances)
    return result


def adjust(p: np.ndarray, method: str) -> np.ndarray:
    """p-values adjusted for the family of tests: Holm's step-down or Benjamini-Hochberg's step-up (NaNs
    are left out of the family and stay NaN)."""
    out = np.full(p.shape, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if not m:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    ranked = p[order]
    if method == "holm":
        adjusted = np.maximum.accumulate((m - np.arange(m)) * ranked)
    else:
        adjusted = np.minimum.accumulate((m / np.arange(m, 0, -1) * ranked[::-1]))[::-1]
    out[order] = np.minimum(adjusted, 1.0)
    return out


def regressions(rows: pd.DataFrame, tolerances: list[Tolerance]) -> pd.DataFrame:
    """Rows where a run is significantly worse than the baseline by more than the metric's tolerance."""
    if rows.empty or not tolerances:
        return rows.iloc[0:0]
    limit = {t.metric: t.tolerance for t in tolerances}
    watched = rows[rows["metric"].isin(limit)]
    if watched.empty:
        return watched
    worse = watched["significant"] & (watched["difference"] < -watched["metric"].map(limit))
    return watched[worse]


def _values(run: RunData) -> pd.DataFrame:
    frame = run.variant_results if not run.variant_results.empty else run.results.assign(variant="clean")
    return frame.set_index(KEYS + ["image"])[["value"]].sort_index()


def _labels(runs: list[RunData]) -> Labels:
    info: dict[str, dict[str, Any]] = {}
    for run in runs:
        info.update(run.metric_info)
    return Labels(info, {})


def _name(run: RunData, index: int) -> str:
    return f"{index}: {run.run_dir.name}"


# -- provenance -------------------------------------------------------------------------------------------
def provenance(runs: list[RunData]) -> list[dict[str, Any]]:
    """One row per recorded fact (commit, versions, device, config values, method fingerprints and weight
    files), a column per run, and whether the runs differ in it."""
    facts = [_facts(run) for run in runs]
    keys = list(dict.fromkeys(k for f in facts for k in f))
    rows = []
    for key in keys:
        values = [f.get(key, "") for f in facts]
        rows.append({"key": key, "values": values, "differs": len(set(values)) > 1 and key not in _PER_RUN})
    return rows


_PER_RUN = {"started", "finished", "config.run_dir"}  # differ between any two runs, whatever they ran


def _facts(run: RunData) -> dict[str, str]:
    m = run.manifest
    git = m.get("git") or {}
    facts = {"commit": f"{git.get('commit') or 'unknown'}{' (uncommitted changes)' if git.get('dirty') else ''}",
             "started": str(m.get("started") or ""), "finished": str(m.get("finished") or "")}
    facts.update({f"device.{k}": str(v) for k, v in (m.get("device") or {}).items()})
    facts.update({f"version.{k}": str(v) for k, v in sorted((m.get("versions") or {}).items())})
    facts.update(_flatten(run.config, "config"))
    facts.update({f"method.{label}.fingerprint": fp for label, fp in run.fingerprints.items()})
    for owner, files in (m.get("weights") or {}).items():
        for f in files or []:
            if isinstance(f, dict):
                facts[f"weights.{owner}.{f.get('label') or f.get('path')}"] = str(f.get("sha256") or f.get("status"))
    return facts


def _flatten(value: Any, prefix: str) -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}"))
        return out
    if isinstance(value, list) and value and all(isinstance(v, (str, dict)) for v in value):
        out = {}  # entries (methods, variants, metrics) keyed by name, so that one added or changed entry shows alone
        for i, v in enumerate(value):
            if isinstance(v, dict):
                name = v.get("name") or v.get("method") or i
                v = {k: item for k, item in v.items() if k != "name"}
            else:
                name = v
            out.update(_flatten(v, f"{prefix}.{name}"))
        return out
    return {prefix: json.dumps(value, default=str) if isinstance(value, (list, dict)) else str(value)}


# -- page -------------------------------------------------------------------------------------------------
def render_comparison(result: RunComparison, out: str | Path) -> Path:
    """Write `<out>/index.html` with `compare.csv` and `provenance.json`; return the page's path."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CompareError(f"cannot write the comparison into {out}: it is a file")
    atomic_write_text(out / "compare.csv", result.rows.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(out / "provenance.json", json.dumps(
        {"runs": [str(r.run_dir.resolve()) for r in result.runs], "rows": result.provenance}, indent=2))
    for name in ("report.css", "report.js"):
        atomic_write_bytes(out / "static" / name, (PACKAGE / "static" / name).read_bytes())
    labels = _labels(result.runs)
    context = {
        "title": "codiff-bench comparison: " + " vs ".join(r.run_dir.resolve().name for r in result.runs),
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "runs": [(i, str(r.run_dir.resolve())) for i, r in enumerate(result.runs)],
        "correction": CORRECTIONS[result.correction], "alpha": result.alpha,
        "blocks": _blocks(result.rows, labels), "regressions": _view(result.regressions, labels),
        "tolerances": [f"{labels.metric(t.metric)} {t.tolerance:g}" for t in result.tolerances],
        "differs": [r for r in result.provenance if r["differs"]],
        "same": [r for r in result.provenance if not r["differs"]],
    }
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(PACKAGE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    page = out / "index.html"
    atomic_write_text(page, env.get_template("compare.html.j2").render(**context))
    return page


def _blocks(rows: pd.DataFrame, labels: Labels) -> list[dict[str, Any]]:
    """The rows grouped by run, dataset and variant, as text."""
    if rows.empty:
        return []
    return [{"run": run, "dataset": labels.dataset(dataset), "variant": variant,
             "rows": _view(part, labels)}
            for (run, dataset, variant), part in rows.groupby(["run", "dataset", "variant"], sort=False)]


def _view(rows: pd.DataFrame, labels: Labels) -> list[dict[str, str]]:
    out = []
    for r in rows.itertuples():
        d = decimals([r.mean_a, r.mean_b])
        ci = "n/a" if not math.isfinite(r.ci_low) else f"[{r.ci_low:+.{d}f}, {r.ci_high:+.{d}f}]"
        out.append({"run": r.run, "dataset": labels.dataset(r.dataset), "variant": r.variant, "qf": str(r.qf),
                    "metric": f"{labels.metric(r.metric)} {labels.arrow(r.metric)}", "method": r.method,
                    "n": str(r.n), "a": f"{r.mean_a:.{d}f}", "b": f"{r.mean_b:.{d}f}",
                    "difference": f"{r.difference:+.{d}f}", "ci": ci, "record": f"{r.wins}/{r.ties}/{r.losses}",
                    "p": _p(r.p_wilcoxon), "p_adjusted": _p(r.p_adjusted),
                    "verdict": ("" if not r.significant else "better" if r.difference > 0 else
                                "worse" if r.difference < 0 else "")})
    return out


def _p(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.3g}"
