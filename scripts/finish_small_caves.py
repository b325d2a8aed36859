"""Evaluate the three small CaVE runs and write the shipped files (weights, JSON with measured figures, figures).

For each run (runs/train/cave-small-{dual,explicit,implicit}) this script takes the kept checkpoint that
scored best on the held-out photos during training, then:
1. scores it on the held-out photos of the training set (data/cave-train/heldout: random patches, mostly off
   the 8x8 grid) with the training's own evaluation (QF MAE/MSE per QF, linear probe, silhouettes, decoder
   PSNR / PSNR-B gain);
2. for the dual run, chooses the QF gate of `restore` (CaVEConfig.restore_gate) on those held-out photos:
   the gate that maximises the mean gain at QF <= 20 while losing nothing measurable (>= -0.02 dB in PSNR
   and PSNR-B) at any QF >= 30 (if none does, the one that loses least there);
3. scores it on the `sample` set (scikit-image's photos, a source never used in training): QF estimates on
   whole images and on unaligned patches, and the gated restoration's PSNR / PSNR-B against the JPEG;
4. saves NAME.safetensors + NAME.json into --out, with `qf_tile` (the training patch size: QF estimates
   average over tiles of that size) in the config and the measured QF error in the JSON (what estimate-qf
   reports), and writes results.json with every figure; once all three are done, the CaVE analysis of the
   three on the sample set (RUNS/cave-small-analysis: t-SNE, QF-MSE, silhouettes), whose two figures are
   copied into OUT/figures for the model card.

    python scripts/finish_small_caves.py [--runs runs/train] [--out methods/codiff/cave_small/weights]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

MODES = ("dual", "explicit", "implicit")
QFS = [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90]
UNSEEN = [1, 5]
GATE_LOWS = [10, 15, 20, 25, 30, 35, 40, 50]
GATE_SPANS = [5, 10, 15, 20, 30, 40]
HARMLESS_DB = -0.02  # the largest loss a gate may leave at QF >= 30 on the held-out photos


SELECT_BY = {"dual": "qf_mae_seen", "explicit": "qf_mae_seen", "implicit": "psnr_gain_seen"}


def run_export(run: Path, mode: str) -> tuple[Path, int]:
    """(export, step) of the run's kept checkpoint that scored best on the held-out photos during training
    (QF MAE at the seen QFs; PSNR gain for the implicit run, which has no trained QF head)."""
    import csv

    from methods.codiff.training.checkpointing import CheckpointFolder

    key = SELECT_BY[mode]
    scored = []
    for checkpoint in CheckpointFolder(run / "checkpoints").complete():
        with open(checkpoint / "validation.csv", newline="") as fh:
            overall = [row for row in csv.DictReader(fh) if row["qf"] == "all"][0]
        value = float(overall[key])
        scored.append((value if key.startswith("qf") else -value, CheckpointFolder.step_of(checkpoint), checkpoint))
    if not scored:
        raise SystemExit(f"{run}: no complete checkpoint")
    _, step, best = min(scored)
    return best / "export" / "cave.safetensors", step


def configured(cave, **changes):
    """A copy of `cave` with its config changed (`restore_gate`, `qf_tile`), same tensors."""
    from methods.codiff.cave import CaVE

    copy = CaVE(dataclasses.replace(cave.config, **changes))
    copy.load_state_dict(cave.state_dict())
    return copy.eval()


def training_patch_size(run: Path) -> int:
    """The patch size the run trained on (its config.yaml), which becomes the shipped CaVE's `qf_tile`."""
    import yaml

    return int(yaml.safe_load((run / "config.yaml").read_text())["data"]["patch_size"])


def psnr_pair(out: torch.Tensor, hq: torch.Tensor, metrics: dict) -> tuple[float, float]:
    from methods.codiff.training.validation import quantise

    out, hq = quantise(out), quantise(hq)
    return metrics["psnr"](out, hq).item(), metrics["psnr_b"](out, hq).item()


@torch.no_grad()
def gate_table(cave, pairs) -> dict[str, Any]:
    """For every pair: the QF estimate and PSNR / PSNR-B of the JPEG and of blends of the decoder output
    into it at weights 0, 0.1, ..., 1 (a gate picks one weight per pair from its estimate)."""
    from bench.metrics import create_metric

    metrics = {name: create_metric(name) for name in ("psnr", "psnr_b")}
    weights = np.linspace(0.0, 1.0, 11)
    rows = []
    for pair in pairs:
        restored, _ = cave(pair.lq)
        estimate = float(cave.predict_qf(pair.lq))  # as `restore` estimates it (tiled by `qf_tile`)
        scores = [psnr_pair(pair.lq + w * (restored - pair.lq), pair.hq, metrics) for w in weights]
        rows.append({"qf": pair.qf, "estimate": estimate, "scores": scores})
    return {"weights": weights, "rows": rows}


def gate_gains(table: dict[str, Any], gate: tuple[float, float] | None) -> dict[int, tuple[float, float]]:
    """Mean (PSNR gain, PSNR-B gain) over the JPEG per QF with `gate` (None: the decoder output as it is)."""
    from methods.codiff.cave import gate_weight

    gains: dict[int, list[tuple[float, float]]] = {}
    for row in table["rows"]:
        w = 1.0 if gate is None else float(gate_weight(torch.tensor(row["estimate"]), gate))
        k = int(round(w * 10))
        base, out = row["scores"][0], row["scores"][k]
        gains.setdefault(row["qf"], []).append((out[0] - base[0], out[1] - base[1]))
    return {qf: tuple(float(np.mean([g[i] for g in values])) for i in (0, 1)) for qf, values in sorted(gains.items())}


def choose_gate(table: dict[str, Any]) -> tuple[tuple[float, float], dict]:
    """The gate with the best mean gain at QF <= 20 among those harmless at QF >= 30; when none is harmless,
    the one whose worst loss at QF >= 30 is smallest."""
    def rank(gate: tuple[float, float]) -> tuple[bool, float]:
        gains = gate_gains(table, gate)
        worst = min(min(g) for qf, g in gains.items() if qf >= 30)
        harmless = worst >= HARMLESS_DB
        return harmless, float(np.mean([sum(g) for qf, g in gains.items() if qf <= 20])) if harmless else worst

    best = max(((float(low), float(low + span)) for low in GATE_LOWS for span in GATE_SPANS), key=rank)
    return best, {str(q): g for q, g in gate_gains(table, best).items()}


def sample_images() -> list[tuple[str, Path]]:
    from bench.datasets import resolve_dataset

    return [(p.stem, p) for p in resolve_dataset("sample").files]


@torch.no_grad()
def never_seen_scores(cave, images: list[tuple[str, Path]], restore: bool) -> dict[str, Any]:
    """QF estimates (whole images and 8 unaligned 128-px patches each) and restoration gains per QF."""
    from bench.core.imageio import read_rgb8, to_tensor
    from bench.core.protocol import JpegProtocol, decode_jpeg
    from bench.metrics import create_metric
    from methods.codiff.training.data import random_boxes

    protocol = JpegProtocol()
    metrics = {name: create_metric(name) for name in ("psnr", "psnr_b")}
    per_qf: dict[int, dict[str, list[float]]] = {q: {} for q in QFS}
    for index, (_, path) in enumerate(images):
        hq8 = protocol.prepare_hq(read_rgb8(path).rgb)
        boxes = random_boxes(*hq8.shape[:2], 128, 8, np.random.default_rng([0x5A, index]))
        hq = to_tensor(hq8)
        for qf in QFS:
            lq = to_tensor(decode_jpeg(protocol.encode(hq8, qf)))
            cell = per_qf[qf]
            cell.setdefault("image_error", []).append(abs(float(cave.predict_qf(lq)) - qf))
            patches = torch.cat([lq[..., t:t + 128, l:l + 128] for t, l in boxes])
            cell.setdefault("patch_error", []).extend((cave.predict_qf(patches) - qf).abs().tolist())
            if restore:
                base = psnr_pair(lq, hq, metrics)
                out = psnr_pair(cave.restore(lq).clamp(0, 1), hq, metrics)
                cell.setdefault("psnr_gain", []).append(out[0] - base[0])
                cell.setdefault("psnr_b_gain", []).append(out[1] - base[1])
    return {str(qf): {k: float(np.mean(v)) for k, v in cell.items()} for qf, cell in per_qf.items()}


def qf_error_block(scores: dict[str, Any], data: str) -> dict[str, Any]:
    """The `evaluation.qf_estimate` block estimate-qf reads: MAE per QF of whole-image estimates (what
    estimate-qf computes), with the MAE on unaligned 128-px patches beside it."""
    by_qf = {q: s["image_error"] for q, s in scores.items()}
    seen = [v for q, v in by_qf.items() if 10 <= int(q) <= 90]
    return {"mae_by_qf": {q: round(v, 2) for q, v in by_qf.items()}, "mae_10_90": round(float(np.mean(seen)), 2),
            "patch_mae_by_qf": {q: round(s["patch_error"], 2) for q, s in scores.items()}, "data": data}


def main(argv: list[str] | None = None) -> int:
    from bench.core.atomic import atomic_write_bytes, atomic_write_text
    from bench.core.protocol import JpegProtocol
    from methods.codiff.analysis.cave import CaveAnalysisConfig, run_cave_analysis
    from methods.codiff.cave import load_cave, save_cave
    from methods.codiff.training.cave_eval import evaluate_cave
    from methods.codiff.training.config import ValConfig
    from methods.codiff.training.data import build_val_pairs

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/train"))
    parser.add_argument("--heldout", default="data/cave-train/heldout")
    parser.add_argument("--out", type=Path, default=Path("methods/codiff/cave_small/weights"))
    parser.add_argument("--results", type=Path, help="results JSON (default: OUT/results.json)")
    parser.add_argument("--patches", type=int, default=8, help="random 128-px patches per held-out photo")
    parser.add_argument("--modes", default=",".join(MODES), help="runs to finish now (comma-separated); the "
                                                                 "analysis figures are written once all three are")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    val = ValConfig(folder=args.heldout, qfs=QFS, crop=128, patches=args.patches, unseen=UNSEEN)
    heldout = build_val_pairs(val, JpegProtocol())
    images = sample_images()
    data = (f"the `sample` set ({len(images)} scikit-image photos, a source never used in training), QF "
            f"{', '.join(map(str, QFS))}: whole images (mae_by_qf) and 8 random unaligned 128-px patches each "
            "(patch_mae_by_qf)")
    results_path = args.results or args.out / "results.json"
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.is_file() else {}
    results.update(heldout=args.heldout, never_seen=data)
    for mode in args.modes.split(","):
        run = args.runs / f"cave-small-{mode}"
        source, step = run_export(run, mode)
        cave = load_cave(source)
        if mode != "implicit":
            cave = configured(cave, qf_tile=training_patch_size(run))
        decoder = mode != "explicit"
        entry: dict[str, Any] = {"source": str(source), "step": step}
        entry["heldout"] = evaluate_cave(cave, heldout, UNSEEN, qf_head=mode != "implicit", decoder=decoder)
        gate = None
        if mode == "dual":
            table = gate_table(cave, heldout)
            gate, gains = choose_gate(table)
            entry["gate"] = {"chosen": gate, "heldout_gains": gains,
                             "ungated_heldout_gains": {str(q): g for q, g in gate_gains(table, None).items()}}
            cave = configured(cave, restore_gate=gate)
        entry["never_seen"] = never_seen_scores(cave, images, restore=decoder)
        evaluation = {"qf_estimate": qf_error_block(entry["never_seen"], data)} if mode != "implicit" else {}
        for name in ("train_csv", "val_csv"):
            path = run / name.replace("_", ".")
            if path.is_file():
                entry[name] = str(path)
        save_cave(cave, args.out / f"cave-small-{mode}", evaluation or None)
        results[mode] = entry
        atomic_write_text(results_path, json.dumps(results, indent=2) + "\n")
        print(json.dumps({mode: {"gate": gate, "qf_error": evaluation.get("qf_estimate")}}))
    if not all(mode in results for mode in MODES):
        return 0
    config = CaveAnalysisConfig(caves=[f"{m}={args.out / f'cave-small-{m}.safetensors'}" for m in MODES], qfs=QFS,
                                unseen=UNSEEN, crops=8, crop_size=128)
    analysis = args.runs / "cave-small-analysis"
    run_cave_analysis(config, images, analysis, progress=False, source="finish_small_caves")
    for figure in ("tsne.png", "qf_mse.png"):
        atomic_write_bytes(args.out / "figures" / figure, (analysis / figure).read_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
