"""What a CaVE has learnt about compression, measured on held-out pairs (during training and after it).

Per QF: the QF estimate's MAE and MSE (1-100 scale) and the decoder's PSNR / PSNR-B gain over the JPEG input.
Over all pairs: the same errors averaged over the QFs seen and unseen in training, the silhouette of the QF
clusters of the mean-pooled embedding, and a linear probe of that embedding (ridge regression to the QF,
fitted on the seen QFs of half of the images and scored on the other half, both ways round).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch

from methods.codiff.cave import CaVE
from methods.codiff.training.data import ValPair
from methods.codiff.training.validation import ValidationScores

PROBE_RIDGE = 1.0  # ridge penalty of the linear probe, on standardised embedding features


@torch.no_grad()
def cave_outputs(cave: CaVE, pairs: list[ValPair], device: torch.device | str = "cpu",
                 restore: bool = True) -> tuple[np.ndarray, np.ndarray, list[torch.Tensor | None]]:
    """(pooled embeddings (N, C), QF estimates (N,), restorations or None) of every pair, in eval mode; each
    module's mode is restored afterwards (a fine-tune keeps its frozen parts in eval mode)."""
    modes = [(module, module.training) for module in cave.modules()]
    cave.eval()
    embeddings, estimates, restored = [], [], []
    try:
        for pair in pairs:
            lq = pair.lq.to(device)
            embeddings.append(cave.embed(lq).mean(dim=1).double().cpu().numpy()[0])
            estimates.append(float(cave.predict_qf(lq)))
            restored.append(cave.restore(lq).cpu() if restore else None)
    finally:
        for module, training in modes:
            module.training = training
    return np.stack(embeddings), np.asarray(estimates), restored


def linear_probe(embeddings: np.ndarray, qfs: np.ndarray, images: np.ndarray, unseen: list[int]) -> np.ndarray:
    """Out-of-fold QF predictions of a ridge regression on the standardised embeddings: the images are split
    in two halves; each half is predicted by a probe fitted on the other half's seen-QF pairs."""
    names = sorted(set(images.tolist()))
    fold_of = {name: i % 2 for i, name in enumerate(names)}
    folds = np.array([fold_of[name] for name in images])
    seen = ~np.isin(qfs, unseen)
    predictions = np.full(len(qfs), np.nan)
    for fold in (0, 1):
        fit = (folds != fold) & seen
        if fit.sum() < 2 or (folds == fold).sum() == 0:
            continue
        mean, std = embeddings[fit].mean(0), embeddings[fit].std(0) + 1e-8
        x = (embeddings[fit] - mean) / std
        x = np.hstack([x, np.ones((len(x), 1))])
        penalty = PROBE_RIDGE * np.eye(x.shape[1])
        penalty[-1, -1] = 0.0
        weights = np.linalg.solve(x.T @ x + penalty, x.T @ qfs[fit].astype(np.float64))
        test = folds == fold
        xt = np.hstack([(embeddings[test] - mean) / std, np.ones((int(test.sum()), 1))])
        predictions[test] = xt @ weights
    return predictions


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else None


def evaluate_cave(cave: CaVE, pairs: list[ValPair], unseen: list[int], *, qf_head: bool = True,
                  decoder: bool = True, device: torch.device | str = "cpu") -> list[dict[str, Any]]:
    """One row per QF and a last row with `qf` 'all' (see the module docstring). `qf_head` / `decoder`: whether
    those parts were trained and are worth scoring."""
    from bench.analysis.separation import silhouettes

    embeddings, estimates, restored = cave_outputs(cave, pairs, device, restore=decoder)
    qfs = np.array([p.qf for p in pairs])
    images = np.array([p.name.split("#")[0] for p in pairs])  # patches of one photo share a probe fold
    probe = linear_probe(embeddings, qfs, images, unseen)
    scores = ValidationScores()
    for i, pair in enumerate(pairs):
        scores.add_images(pair.qf, pair.lq, pair.hq, prefix="lq_")
        if decoder:
            scores.add_images(pair.qf, restored[i], pair.hq)
        if qf_head:
            scores.add(pair.qf, qf_pred=estimates[i], qf_mae=abs(estimates[i] - pair.qf),
                       qf_mse=(estimates[i] - pair.qf) ** 2)
        if np.isfinite(probe[i]):
            scores.add(pair.qf, probe_mae=abs(probe[i] - pair.qf))
    rows = scores.rows()
    by_group: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if decoder:
            row["psnr_gain"] = row["psnr"] - row["lq_psnr"]
            row["psnr_b_gain"] = row["psnr_b"] - row["lq_psnr_b"]
        group = "unseen" if row["qf"] in unseen else "seen"
        for key in ("qf_mae", "qf_mse", "probe_mae", "psnr_gain", "psnr_b_gain"):
            if key in row:
                by_group[group][key].append(row[key])
    summary: dict[str, Any] = {"qf": "all", "images": len(set(images.tolist()))}
    for group in ("seen", "unseen"):
        for key, values in by_group[group].items():
            summary[f"{key}_{group}"] = _mean(values)
    for scope, value in silhouettes(embeddings, qfs, [q for q in unseen if q in qfs]).items():
        summary[f"silhouette_{scope}"] = value
    return rows + [summary]
