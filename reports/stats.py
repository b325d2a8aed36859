"""Confidence and significance: bootstrap intervals of means and paired comparisons between methods.

Resampling uses a fixed seed so that a re-rendered report shows the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

N_BOOT = 2000
LEVEL = 0.95
ALPHA = 0.05
MIN_PAIRS = next(m for m in range(1, 64) if 2.0 * 0.5 ** m < ALPHA)  # 6 at 0.05: the two-sided exact bound


def bootstrap_ci(values: np.ndarray, *, n_boot: int = N_BOOT, level: float = LEVEL,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; NaNs when there are fewer than two values."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(n_boot, values.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Paired:
    """A method against a reference over the same images; `diff` is oriented so that positive is better."""

    n: int
    wins: int
    ties: int
    losses: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def win_rate(self) -> float:
        return self.wins / self.n if self.n else math.nan

    @property
    def smallest_p(self) -> float:
        """The smallest two-sided p-value the signed-rank test can give over these pairs: 2 / 2^m for the m
        non-zero differences (all of one sign), whatever the values."""
        return min(1.0, 2.0 * 0.5 ** (self.wins + self.losses))

    def can_reach(self, alpha: float = ALPHA) -> bool:
        """Whether any outcome over this many non-zero differences could be significant at `alpha`."""
        return self.smallest_p < alpha

    def too_few(self, alpha: float = ALPHA) -> str:
        """Why no p-value is worth showing, or '' when one is."""
        if self.can_reach(alpha):
            return ""
        m = self.wins + self.losses
        return (f"{m} non-zero difference{'s' if m != 1 else ''}: the Wilcoxon signed-rank test cannot reach "
                f"p < {alpha:g} below {MIN_PAIRS} (its smallest p here is {self.smallest_p:.3g})")


def paired_comparison(values: np.ndarray, reference: np.ndarray, *, lower_better: bool,
                      seed: int = 0) -> Paired:
    """Per-image wins of `values` over `reference`, the bootstrap interval of the mean improvement and the
    two-sided Wilcoxon signed-rank p-value (1.0 when every difference is zero, NaN below two images)."""
    from scipy.stats import wilcoxon

    diff = np.asarray(values, dtype=float) - np.asarray(reference, dtype=float)
    if lower_better:
        diff = -diff
    n = int(diff.size)
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    low, high = bootstrap_ci(diff, seed=seed)
    if n < 2:
        p = math.nan
    elif not np.any(diff):
        p = 1.0
    else:
        p = float(wilcoxon(diff).pvalue)
    return Paired(n=n, wins=wins, ties=n - wins - losses, losses=losses,
                  mean_diff=float(diff.mean()) if n else math.nan, ci_low=low, ci_high=high, p_value=p)
