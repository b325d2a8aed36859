"""Table 4 at small scale, with seeds: compare the dual, explicit and implicit small CaVEs on `cave-eval`.

Reads the finished runs of scripts/train_cave_seeds.sh (ROOT/runs/cave-seeds-MODE-sSEED, each at its last
step: no checkpoint is chosen on evaluation photos) and scores each on the `cave-eval` photos, never used in
training: `--patches` random 128-px patches of each photo (mostly off the 8x8 grid, the same for every run)
at QF 1, 5, 10, ..., 90 (1 and 5 unseen in training). Per run: the silhouettes of the QF clusters of the
mean-pooled embedding (all QFs, the unseen among all, the unseen alone), the QF head's MAE (dual, explicit),
a linear probe's MAE on the embedding (all modes; fitted on the seen QFs of half the photos, scored on the
other half), and the decoder's PSNR gain over the JPEG (dual, implicit). Intervals are 95% bootstrap
intervals over seeds and photos (both resampled; silhouettes over seeds only), and dual-minus-explicit /
dual-minus-implicit differences are bootstrapped the same way with photos paired. Writes ROOT/analysis/
cave-seeds.json and the card's section between its markers (`--card`).

    python scripts/analyse_cave_seeds.py --root data/cave-seeds [--card methods/codiff/cave_small/weights/MODEL_CARD.md]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

MODES = ("dual", "explicit", "implicit")
QFS = [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90]
UNSEEN = [1, 5]
BEGIN, END = "<!-- cave-seeds:begin -->", "<!-- cave-seeds:end -->"
BOOTSTRAP = 2000


def finished_runs(root: Path) -> dict[str, dict[int, Path]]:
    """{mode: {seed: export of the run's newest complete checkpoint}} of the runs that reached their last step."""
    import yaml

    from methods.codiff.training.checkpointing import CheckpointFolder

    found: dict[str, dict[int, Path]] = {m: {} for m in MODES}
    for mode in MODES:
        for run in sorted((root / "runs").glob(f"cave-seeds-{mode}-s*")):
            if not run.is_dir() or not (run / "config.yaml").is_file():
                continue
            config = yaml.safe_load((run / "config.yaml").read_text())
            checkpoints = CheckpointFolder(run / "checkpoints").complete()
            if checkpoints and CheckpointFolder.step_of(checkpoints[-1]) == int(config["train"]["steps"]):
                found[mode][int(config["train"]["seed"])] = checkpoints[-1] / "export" / "cave.safetensors"
    return found


@torch.no_grad()
def score_run(cave, pairs) -> dict[str, Any]:
    """Per-pair QF error, probe error and PSNR gain, and the run's silhouettes."""
    from bench.analysis.separation import silhouettes
    from bench.metrics import create_metric
    from methods.codiff.training.cave_eval import cave_outputs, linear_probe
    from methods.codiff.training.validation import quantise

    psnr = create_metric("psnr")
    embeddings, estimates, restored = cave_outputs(cave, pairs)
    qfs = np.array([p.qf for p in pairs])
    photos = np.array([p.name.split("#")[0] for p in pairs])
    probe = linear_probe(embeddings, qfs, photos, UNSEEN)
    gains = [psnr(quantise(out), quantise(p.hq)).item() - psnr(quantise(p.lq), quantise(p.hq)).item()
             for out, p in zip(restored, pairs)]
    return {"qf_error": np.abs(estimates - qfs), "probe_error": np.abs(probe - qfs), "psnr_gain": np.array(gains),
            "silhouettes": silhouettes(embeddings, qfs, UNSEEN)}


def photo_means(values: np.ndarray, pairs, qf_set: set[int]) -> dict[str, float]:
    """Mean of `values` per photo over the pairs whose QF is in `qf_set`."""
    out: dict[str, list[float]] = {}
    for value, pair in zip(values, pairs):
        if pair.qf in qf_set and np.isfinite(value):
            out.setdefault(pair.name.split("#")[0], []).append(float(value))
    return {photo: float(np.mean(v)) for photo, v in out.items()}


def bootstrap(table: dict[int, dict[str, float]], rng: np.random.Generator,
              minus: dict[int, dict[str, float]] | None = None) -> dict[str, float]:
    """Mean over seeds and photos of table[seed][photo] (less `minus`'s, photos paired), with a 95% interval
    from resampling seeds (each table's own) and photos (shared)."""
    seeds = sorted(table)
    photos = sorted(set.intersection(*(set(table[s]) for s in seeds)))
    grid = np.array([[table[s][p] for p in photos] for s in seeds])
    other = None
    if minus is not None:
        other = np.array([[minus[s][p] for p in photos] for s in sorted(minus)])
    point = grid.mean() - (other.mean() if other is not None else 0.0)
    draws = []
    for _ in range(BOOTSTRAP):
        cols = rng.integers(len(photos), size=len(photos))
        value = grid[rng.integers(len(seeds), size=len(seeds))][:, cols].mean()
        if other is not None:
            value -= other[rng.integers(len(other), size=len(other))][:, cols].mean()
        draws.append(value)
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"mean": float(point), "low": float(low), "high": float(high), "seeds": len(seeds), "photos": len(photos)}


def seed_interval(values: list[float]) -> dict[str, float]:
    """Mean and 95% t-interval over seeds."""
    from scipy import stats

    values = [v for v in values if v is not None]
    mean = float(np.mean(values))
    if len(values) < 2:
        return {"mean": mean, "low": mean, "high": mean, "seeds": len(values)}
    half = float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values)))
    return {"mean": mean, "low": mean - half, "high": mean + half, "seeds": len(values)}


METRICS = {  # name: (per-pair key, QF set, modes where it means something)
    "qf_mae_seen": ("qf_error", set(QFS) - set(UNSEEN), ("dual", "explicit")),
    "qf_mae_unseen": ("qf_error", set(UNSEEN), ("dual", "explicit")),
    "probe_mae_seen": ("probe_error", set(QFS) - set(UNSEEN), MODES),
    "probe_mae_unseen": ("probe_error", set(UNSEEN), MODES),
    "psnr_gain_qf5": ("psnr_gain", {5}, ("dual", "implicit")),
    "psnr_gain_qf10": ("psnr_gain", {10}, ("dual", "implicit")),
    "psnr_gain_qf20": ("psnr_gain", {20}, ("dual", "implicit")),
    "psnr_gain_seen": ("psnr_gain", set(QFS) - set(UNSEEN), ("dual", "implicit")),
}
SILHOUETTES = ("all", "unseen_in_all", "unseen_only")


def analyse(root: Path, eval_folder: str, patches: int) -> dict[str, Any]:
    from bench.core.protocol import JpegProtocol
    from methods.codiff.cave import load_cave
    from methods.codiff.training.config import ValConfig
    from methods.codiff.training.data import build_val_pairs

    runs = finished_runs(root)
    pairs = build_val_pairs(ValConfig(folder=eval_folder, qfs=QFS, crop=128, patches=patches, unseen=UNSEEN),
                            JpegProtocol())
    per_photo: dict[str, dict[str, dict[int, dict[str, float]]]] = {m: {} for m in MODES}
    silhouettes: dict[str, dict[str, list[float]]] = {m: {k: [] for k in SILHOUETTES} for m in MODES}
    for mode, seeds in runs.items():
        for seed, export in sorted(seeds.items()):
            scores = score_run(load_cave(export), pairs)
            print(f"scored {mode} seed {seed}: {export}", file=sys.stderr)
            for name, (key, qf_set, modes) in METRICS.items():
                if mode in modes:
                    per_photo[mode].setdefault(name, {})[seed] = photo_means(scores[key], pairs, qf_set)
            for scope in SILHOUETTES:
                silhouettes[mode][scope].append(scores["silhouettes"].get(scope))
    rng = np.random.default_rng(0)
    table: dict[str, Any] = {"runs": {m: sorted(s) for m, s in runs.items()}, "photos": len({p.name.split("#")[0]
                             for p in pairs}), "patches_per_photo": patches, "metrics": {}, "differences": {}}
    for mode in MODES:
        entry = {name: bootstrap(values, rng) for name, values in per_photo[mode].items()}
        entry.update({f"silhouette_{scope}": seed_interval(v) for scope, v in silhouettes[mode].items() if v})
        table["metrics"][mode] = entry
    for other in ("explicit", "implicit"):
        shared = set(per_photo["dual"]) & set(per_photo[other])
        table["differences"][f"dual-{other}"] = {
            name: bootstrap(per_photo["dual"][name], rng, minus=per_photo[other][name]) for name in sorted(shared)}
    return table


def fmt(cell: dict[str, float] | None, digits: int = 2) -> str:
    if not cell:
        return "–"
    return f"{cell['mean']:.{digits}f} [{cell['low']:.{digits}f}, {cell['high']:.{digits}f}]"


def card_section(table: dict[str, Any], command: str) -> str:
    """The model card's Table-4-at-small-scale section, from `table`."""
    runs = table["runs"]
    metrics = table["metrics"]
    lines = [BEGIN, "## Table 4 at small scale, with seeds (`cave-eval`)", "",
             f"Runs finished: {', '.join(f'{m} seeds {runs[m]}' for m in MODES)}; each scored at its last step on "
             f"the {table['photos']} `cave-eval` photos (never trained on), {table['patches_per_photo']} random "
             "128-px patches each (mostly off the 8x8 grid) at QF 1, 5, 10, ..., 90 (1 and 5 unseen). Mean "
             "[95% interval]: bootstrap over seeds and photos; silhouettes: t-interval over seeds.", "",
             "| metric | dual | explicit | implicit |", "|---|---|---|---|"]
    rows = [("silhouette, all QFs", "silhouette_all", 3), ("silhouette, unseen among all", "silhouette_unseen_in_all", 3),
            ("silhouette, unseen alone (1 vs 5)", "silhouette_unseen_only", 3),
            ("QF head MAE, seen (10-90)", "qf_mae_seen", 2), ("QF head MAE, unseen (1, 5)", "qf_mae_unseen", 2),
            ("linear probe MAE, seen", "probe_mae_seen", 2), ("linear probe MAE, unseen", "probe_mae_unseen", 2),
            ("decoder PSNR gain (dB), QF 5", "psnr_gain_qf5", 3), ("decoder PSNR gain, QF 10", "psnr_gain_qf10", 3),
            ("decoder PSNR gain, QF 20", "psnr_gain_qf20", 3), ("decoder PSNR gain, QF 10-90", "psnr_gain_seen", 3)]
    for label, key, digits in rows:
        lines.append(f"| {label} | " + " | ".join(fmt(metrics[m].get(key), digits) for m in MODES) + " |")
    lines += ["", "Differences, photos paired (an interval that excludes 0 is a difference at this scale):", "",
              "| metric | dual - explicit | dual - implicit |", "|---|---|---|"]
    diffs = table["differences"]
    for label, key, digits in rows[3:]:
        cells = [fmt(diffs.get(f"dual-{o}", {}).get(key), digits) for o in ("explicit", "implicit")]
        if any(c != "–" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Reproduce (ROOT: any folder; each of the nine runs is 600 steps of 32 patches of 64 px, one thread, "
              "3-15 minutes measured on a shared 2-core machine):", "",
              "    python scripts/make_cave_trainset.py --out ROOT/cave-train",
              "    python scripts/make_cave_evalset.py --out ROOT/cave-eval --trainset-manifest ROOT/cave-train/manifest.json",
              "    ROOT=ROOT nice -n 19 scripts/train_cave_seeds.sh > ROOT/train.log 2>&1   # resumes where it stopped",
              f"    {command}", END]
    return "\n".join(lines) + "\n"


def write_card(card: Path, section: str) -> None:
    from bench.core.atomic import atomic_write_text

    text = card.read_text()
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END) + 1:]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    atomic_write_text(card, text)


def main(argv: list[str] | None = None) -> int:
    from bench.core.atomic import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("data/cave-seeds"), help="the training driver's ROOT")
    parser.add_argument("--eval", dest="eval_folder", help="the cave-eval folder (default ROOT/cave-eval)")
    parser.add_argument("--patches", type=int, default=4, help="random 128-px patches per photo")
    parser.add_argument("--card", type=Path, help="model card whose Table-4 section is (re)written")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    table = analyse(args.root, args.eval_folder or str(args.root / "cave-eval"), args.patches)
    atomic_write_text(args.root / "analysis" / "cave-seeds.json", json.dumps(table, indent=2) + "\n")
    if not any(table["runs"].values()):
        print("no finished run yet", file=sys.stderr)
        return 1
    if args.card:
        write_card(args.card, card_section(table, "python scripts/analyse_cave_seeds.py --root ROOT --card "
                                                  f"{args.card}"))
    print(json.dumps(table["metrics"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
