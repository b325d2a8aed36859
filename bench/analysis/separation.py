"""How well embeddings separate compression levels: t-SNE layout, silhouette scores and QF-estimate error.

Silhouette scores are computed in the embedding space itself (Euclidean), never in the t-SNE layout, whose
distances between clusters carry no meaning.
"""

from __future__ import annotations

import numpy as np

PERPLEXITY_RULE = ("min(30, max(1, (n - 1) / 3)) for n points: scikit-learn's default of 30 when there are at "
                   "least 91 points, otherwise a third of the other points, so that every point's effective "
                   "neighbourhood stays well below the sample count")


def tsne_perplexity(n: int) -> float:
    """The t-SNE perplexity for `n` points (see PERPLEXITY_RULE); always below `n` as scikit-learn requires."""
    if n < 2:
        raise ValueError(f"t-SNE needs at least 2 points, got {n}")
    return float(min(30.0, max(1.0, (n - 1) / 3.0)))


def tsne_layout(embeddings: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float]:
    """2-D t-SNE of `embeddings` (N, C) with a fixed seed and PCA initialisation; returns (layout, perplexity)."""
    from sklearn.manifold import TSNE

    perplexity = tsne_perplexity(len(embeddings))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed,
                n_jobs=1)
    return tsne.fit_transform(np.asarray(embeddings, dtype=np.float64)), perplexity


def silhouettes(embeddings: np.ndarray, qfs: np.ndarray, unseen: list[int]) -> dict[str, float | None]:
    """Silhouette of the QF clusters in embedding space (None where undefined):

    - `all`: mean over every point, each labelled by its QF;
    - `unseen_in_all`: the same per-point values averaged over the unseen-QF points only (do unseen QFs form
      their own clusters among all the others?);
    - `unseen_only`: the score of the unseen-QF points alone (do the unseen QFs separate from each other?).
    """
    from sklearn.metrics import silhouette_samples

    x = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(qfs)
    mask = np.isin(labels, unseen)
    result: dict[str, float | None] = {"all": None, "unseen_in_all": None, "unseen_only": None}
    if _defined(labels):
        values = silhouette_samples(x, labels)
        result["all"] = float(values.mean())
        result["unseen_in_all"] = float(values[mask].mean()) if mask.any() else None
    if _defined(labels[mask]):
        result["unseen_only"] = float(silhouette_samples(x[mask], labels[mask]).mean())
    return result


def _defined(labels: np.ndarray) -> bool:
    """A silhouette needs 2 <= clusters <= points - 1."""
    return 2 <= len(np.unique(labels)) <= len(labels) - 1


def qf_errors(qfs: np.ndarray, estimates: np.ndarray) -> list[dict[str, float | int]]:
    """Per true QF: count, MSE and MAE of the estimates on the 1-100 scale, and the estimates' mean and std."""
    qfs, estimates = np.asarray(qfs), np.asarray(estimates, dtype=np.float64)
    rows = []
    for qf in sorted(np.unique(qfs)):
        est = estimates[qfs == qf]
        err = est - float(qf)
        rows.append({"qf": int(qf), "n": len(est), "mse": float(np.mean(err ** 2)),
                     "mae": float(np.mean(np.abs(err))), "mean_estimate": float(est.mean()),
                     "std_estimate": float(est.std())})
    return rows
