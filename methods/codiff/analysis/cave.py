"""The CaVE analysis (paper Figs. 2, 4 and 7, plus silhouette scores) for any set of CaVE checkpoints.

For every image patch and QF it records each checkpoint's mean-pooled embedding and QF estimate, then writes
into one folder, atomically: t-SNE panels and the QF-estimate MSE curve (PNG + SVG), CSV tables of every
number, the raw embeddings (`embeddings.npz`) and `summary.json`, which describes each figure and table
with a caption for reports. A folder whose `summary.json` has the same inputs key is reused as it is.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.analysis import Analysis, AnalysisInputs
from bench.core.atomic import atomic_path, atomic_write_text
from bench.core.errors import BenchError
from bench.core.protocol import JpegProtocol

log = logging.getLogger(__name__)

ANALYSIS_VERSION = 1
DEFAULT_QFS = [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90]
SUMMARY = "summary.json"


class CaveAnalysisError(BenchError, RuntimeError):
    """The analysis cannot run at all (no usable checkpoint or image); the message says why."""


@dataclass
class CaveAnalysisConfig:
    """What to analyse. `caves`: checkpoint paths, `LABEL=PATH`, or names of shipped CaVEs.

    `crops` patches of `crop_size` px per image (0: whole images) give t-SNE enough points on small sets;
    `unseen` are the QFs left out of training, marked in the figures and scored on their own.
    """

    caves: list[str] = field(default_factory=lambda: _shipped_caves())
    qfs: list[int] = field(default_factory=lambda: list(DEFAULT_QFS))
    unseen: list[int] = field(default_factory=lambda: [1, 5])
    crops: int = 8
    crop_size: int = 128
    seed: int = 0
    batch_size: int = 16

    def __post_init__(self) -> None:
        self.qfs = sorted({int(q) for q in self.qfs})
        self.unseen = sorted({int(q) for q in self.unseen})
        if not self.caves:
            raise CaveAnalysisError("no CaVE checkpoint given")
        if any(not 1 <= q <= 100 for q in self.qfs):
            raise CaveAnalysisError(f"quality factors must be within 1..100: {self.qfs}")
        if self.crop_size % 8 or self.crop_size < 32:
            raise CaveAnalysisError(f"crop_size must be a multiple of 8 and at least 32, not {self.crop_size}")


def _shipped_caves() -> list[str]:
    from methods.codiff.cave_small import SHIPPED_CAVES

    return list(SHIPPED_CAVES)


@dataclass(frozen=True)
class CaveSpec:
    label: str
    path: Path


def resolve_cave(entry: str) -> CaveSpec:
    """`LABEL=PATH`, a path (labelled by its stem), or a shipped CaVE's name (e.g. `cave-small-dual`)."""
    from methods.codiff.cave_small import SHIPPED_CAVES, shipped_cave

    label, sep, value = entry.partition("=")
    if not sep:
        label, value = "", entry
    if value in SHIPPED_CAVES:
        return CaveSpec(label or value, shipped_cave(value))
    path = Path(value).expanduser()
    return CaveSpec(label or path.stem, path)


def _checkpoint_files(path: Path) -> list[Path]:
    from methods.codiff.checkpoint import is_project_checkpoint, project_paths

    return list(project_paths(path)) if is_project_checkpoint(path) else [path]


def _file_digest(paths: list[Path]) -> str:
    from bench.core.hashcache import file_sha256

    return hashlib.sha256("".join(file_sha256(p) if p.is_file() else f"missing:{p}" for p in paths)
                          .encode()).hexdigest()[:16]


def inputs_key(config: CaveAnalysisConfig, caves: list[CaveSpec], images: list[tuple[str, Path]],
               protocol: JpegProtocol) -> str:
    """A hash of everything the results depend on: checkpoints' and images' contents, settings, protocol."""
    payload = {"version": ANALYSIS_VERSION, "config": {k: v for k, v in asdict(config).items() if k != "caves"},
               "caves": [[c.label, _file_digest(_checkpoint_files(c.path))] for c in caves],
               "images": [[name, _file_digest([p])] for name, p in images],
               "protocol": {k: v for k, v in protocol.to_dict().items() if k != "quality"}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def cached_summary(out_dir: Path, key: str) -> dict[str, Any] | None:
    """The existing summary in `out_dir` if it was made from the same inputs and all its files exist."""
    try:
        summary = json.loads((out_dir / SUMMARY).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    files = [f[k] for f in summary.get("figures", []) for k in ("png", "svg")]
    files += [t["csv"] for t in summary.get("tables", [])]
    if summary.get("key") != key or not all((out_dir / f).is_file() for f in files):
        return None
    return summary


def run_cave_analysis(config: CaveAnalysisConfig, images: list[tuple[str, Path]], out_dir: str | Path, *,
                      protocol: JpegProtocol | None = None, progress: bool = True, force: bool = False,
                      source: str = "") -> dict[str, Any]:
    """Analyse every checkpoint on every image and QF; write the figures, tables and summary into `out_dir`.

    `images` are (id, path) pairs. A bad image or checkpoint is recorded under `errors` and skipped; the
    analysis fails (CaveAnalysisError) only when no checkpoint or no image is usable. Returns the summary.
    """
    from tqdm.auto import tqdm

    from bench.core.imageio import ImageError
    from bench.core.protocol import ProtocolError
    from methods.codiff.analysis.samples import cave_view, image_patches
    from methods.codiff.cave import load_cave

    out_dir = Path(out_dir)
    protocol = protocol or JpegProtocol()
    caves = [resolve_cave(c) for c in config.caves]
    labels = [c.label for c in caves]
    if len(set(labels)) != len(labels):
        raise CaveAnalysisError(f"checkpoint labels must be unique: {labels} (name them LABEL=PATH)")
    key = inputs_key(config, caves, images, protocol)
    if not force and (cached := cached_summary(out_dir, key)):
        log.info("CaVE analysis in %s is up to date", out_dir)
        return cached

    start = time.time()
    errors: list[dict[str, str]] = []
    patches = []
    for name, path in tqdm(images, desc="cave-analysis inputs", unit="img", disable=not progress):
        try:
            patches += image_patches(name, path, protocol, config.qfs, config.crops, config.crop_size, config.seed)
        except (ImageError, ProtocolError, OSError) as exc:
            errors.append({"item": name, "error": str(exc)})
    models = {}
    for spec in caves:
        try:
            models[spec.label] = load_cave(spec.path)
        except Exception as exc:  # noqa: BLE001 - any unloadable checkpoint is recorded, not raised
            errors.append({"item": spec.label, "error": f"{spec.path}: {type(exc).__name__}: {exc}"})
    if not models or not patches:
        why = "no checkpoint could be loaded" if not models else "no image could be prepared"
        raise CaveAnalysisError(f"CaVE analysis impossible: {why}: " + "; ".join(e["error"] for e in errors))

    views = {}
    with tqdm(total=len(patches) * len(models), desc="cave-analysis embed", unit="patch",
              disable=not progress) as bar:
        for label, model in models.items():
            views[label] = cave_view(model, patches, config.batch_size, step=bar.update)
    summary = _write_results(config, caves, models, patches, views, out_dir, protocol, errors)
    summary.update(key=key, source=source, seconds=round(time.time() - start, 1),
                   created=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    atomic_write_text(out_dir / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return summary


class CaveAnalysis(Analysis):
    """The run engine's `cave` analysis: the run's images through every listed CaVE, into the analysis folder.

    What could not be analysed (a missing checkpoint, a broken image) is returned as skipped items."""

    config_class = CaveAnalysisConfig
    analyses_methods = ("cave", "cave-small", "codiff")

    def run(self, inputs: AnalysisInputs) -> dict[str, str]:
        summary = run_cave_analysis(self.opts, inputs.images, inputs.out_dir, protocol=inputs.protocol,
                                    progress=inputs.progress, source="run")
        return {e["item"]: e["error"] for e in summary["errors"]}


def _write_results(config: CaveAnalysisConfig, caves: list[CaveSpec], models: dict, patches: list,
                   views: dict[str, tuple[np.ndarray, np.ndarray]], out_dir: Path, protocol: JpegProtocol,
                   errors: list[dict[str, str]]) -> dict[str, Any]:
    """Compute layouts and scores from the collected views, write figures and tables; return the summary."""
    import pandas as pd

    from bench.analysis.separation import (
        PERPLEXITY_RULE,
        qf_errors,
        silhouettes,
        tsne_layout,
    )
    from methods.codiff.analysis.figures import mse_figure, save_figure, tsne_figure

    qfs = np.array([p.qf for p in patches])
    unseen = [q for q in config.unseen if q in config.qfs]
    sample_rows, mse_rows, sil_rows, layouts, scores, mse = [], [], [], {}, {}, {}
    perplexity = None
    for label, (emb, est) in views.items():
        layouts[label], perplexity = tsne_layout(emb, config.seed)
        scores[label] = silhouettes(emb, qfs, unseen)
        errs = qf_errors(qfs, est)
        mse[label] = {r["qf"]: r["mse"] for r in errs}
        mse_rows += [{"checkpoint": label, **r, "unseen": r["qf"] in unseen} for r in errs]
        sil_rows += [{"checkpoint": label, "scope": scope, "score": value, "n": _scope_count(scope, qfs, unseen)}
                     for scope, value in scores[label].items()]
        for i, p in enumerate(patches):
            sample_rows.append({"checkpoint": label, "image": p.image, "crop": p.crop, "top": p.top, "left": p.left,
                                "height": p.lq.shape[-2], "width": p.lq.shape[-1], "qf": p.qf,
                                "unseen": p.qf in unseen, "qf_estimate": est[i], "sq_error": (est[i] - p.qf) ** 2,
                                "embedding_norm": float(np.linalg.norm(emb[i])), "embedding_mean": float(emb[i].mean()),
                                "embedding_std": float(emb[i].std()), "tsne_x": layouts[label][i, 0],
                                "tsne_y": layouts[label][i, 1]})

    out_dir.mkdir(parents=True, exist_ok=True)
    save_figure(tsne_figure(layouts, qfs, unseen, scores), out_dir / "tsne")
    save_figure(mse_figure(mse, unseen), out_dir / "qf_mse")
    tables = {"samples": pd.DataFrame(sample_rows), "qf_mse": pd.DataFrame(mse_rows),
              "silhouette": pd.DataFrame(sil_rows)}
    for name, frame in tables.items():
        atomic_write_text(out_dir / f"{name}.csv", frame.to_csv(index=False, float_format="%.8g"))
    with atomic_path(out_dir / "embeddings.npz") as tmp:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, qf=qfs, image=np.array([p.image for p in patches]),
                            crop=np.array([p.crop for p in patches]), **{f"emb/{k}": v[0] for k, v in views.items()})
        tmp.write_bytes(buffer.getvalue())

    n_images = len({p.image for p in patches})
    unseen_txt = ", ".join(map(str, unseen)) or "none"
    where = (f"{len(patches)} LQ patches per checkpoint: {n_images} image(s) x {len(config.qfs)} QFs x "
             + (f"{config.crops} crop(s) of {config.crop_size} px" if config.crops else "the whole image"))
    summary: dict[str, Any] = {
        "kind": "cave-analysis", "version": ANALYSIS_VERSION,
        "title": "CaVE: separation of compression levels",
        "caption": (f"How each CaVE checkpoint separates JPEG quality factors ({where}; unseen QFs: {unseen_txt}). "
                    "Embeddings are the CaVE tokens mean-pooled, as the QF head pools them."),
        "checkpoints": [{"label": c.label, "path": str(c.path), "config": models[c.label].config.to_dict(),
                         "files_sha16": _file_digest(_checkpoint_files(c.path))}
                        for c in caves if c.label in models],
        "qfs": config.qfs, "unseen_qfs": unseen, "images": n_images, "crops_per_image": config.crops,
        "crop_size": config.crop_size, "samples_per_checkpoint": len(patches), "seed": config.seed,
        "protocol": protocol.to_dict(),
        "tsne": {"perplexity": perplexity, "rule": PERPLEXITY_RULE, "init": "pca", "seed": config.seed},
        "silhouette": scores,
        "qf_mse": {label: {str(q): v for q, v in values.items()} for label, values in mse.items()},
        "qf_mse_mean": {label: {"seen": _mean([v for q, v in values.items() if q not in unseen]),
                                "unseen": _mean([v for q, v in values.items() if q in unseen])}
                        for label, values in mse.items()},
        "figures": [
            {"name": "tsne", "png": "tsne.png", "svg": "tsne.svg",
             "caption": (f"t-SNE of CaVE embeddings, one panel per checkpoint (cf. paper Figs. 2 and 4), coloured "
                         f"by QF; black-edged stars are the unseen QFs ({unseen_txt}). Perplexity {perplexity:g}. "
                         "Panel titles give silhouette scores computed in embedding space.")},
            {"name": "qf_mse", "png": "qf_mse.png", "svg": "qf_mse.svg",
             "caption": ("QF-prediction MSE on the 1-100 scale per true QF, one curve per checkpoint (cf. paper "
                         f"Fig. 7); unseen QFs ({unseen_txt}) shaded and ringed.")},
        ],
        "tables": [
            {"name": "silhouette", "csv": "silhouette.csv",
             "caption": ("Silhouette score of the QF clusters in embedding space (Euclidean), per checkpoint: "
                         "'all' over every point; 'unseen_in_all' the same per-point values averaged over the "
                         "unseen-QF points; 'unseen_only' the unseen-QF points alone (do they separate from each "
                         "other?). From -1 to 1; higher separates better.")},
            {"name": "qf_mse", "csv": "qf_mse.csv",
             "caption": "Per checkpoint and true QF: MSE and MAE of the QF estimates, their mean and spread."},
            {"name": "samples", "csv": "samples.csv",
             "caption": ("Every patch, QF and checkpoint: the QF estimate, its squared error, a summary of the "
                         "embedding (norm, mean, std) and the t-SNE coordinates. Full embeddings: embeddings.npz.")},
        ],
        "data": [{"name": "embeddings", "file": "embeddings.npz",
                  "caption": "Mean-pooled embeddings per checkpoint (`emb/LABEL`), with `qf`, `image`, `crop`."}],
        "errors": errors,
    }
    summary["captions"] = {f"{f['name']}.{kind}": f["caption"] for f in summary["figures"] for kind in ("png", "svg")}
    summary["captions"].update({t["csv"]: t["caption"] for t in summary["tables"]})
    summary["notes"] = [summary["caption"], *_score_notes(summary),
                        f"t-SNE perplexity {perplexity:g}: {PERPLEXITY_RULE}.",
                        *(f"skipped {e['item']}: {e['error']}" for e in errors)]
    return summary


def _score_notes(summary: dict[str, Any]) -> list[str]:
    """One line per checkpoint with its separation and QF-estimate error, for reports."""
    lines = []
    for label, s in summary["silhouette"].items():
        m = summary["qf_mse_mean"][label]
        lines.append(f"{label}: silhouette {_fmt(s['all'])} (unseen QFs among all {_fmt(s['unseen_in_all'])}, "
                     f"unseen QFs alone {_fmt(s['unseen_only'])}); QF-estimate MSE {_fmt(m['seen'], 1)} on "
                     f"seen QFs, {_fmt(m['unseen'], 1)} on unseen QFs")
    return lines


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _scope_count(scope: str, qfs: np.ndarray, unseen: list[int]) -> int:
    return int(len(qfs) if scope == "all" else np.isin(qfs, unseen).sum())


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None
