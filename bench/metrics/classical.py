"""PSNR, SSIM and PSNR-B on the CPU at the speed of the arithmetic, with the values of pyiqa's 'psnry', 'psnr',
'ssim', 'ssimc' and of `bench.metrics.psnrb` (tests hold them to within 1e-6).

Everything is float64, as in pyiqa. The luma weights are read from pyiqa's own colour conversion. pyiqa filters
SSIM's statistics with a full 11x11 convolution by its float32 Gaussian window; here OpenCV applies it as two 1-D
passes whose outer product has the same sum as that window, so flat regions give the same statistics and the
scores stay within 1e-9 of pyiqa's.
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Callable

import numpy as np
import torch

VERSION = 1  # changes whenever a value can change, so that stored scores are computed again
EPS = 1e-8  # pyiqa's PSNR: identical images give 80 dB
SSIM_LEVELS = 255  # pyiqa's SSIM compares images rounded to 8-bit levels

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@lru_cache(maxsize=None)
def luma_transform(color_space: str) -> tuple[tuple[float, float, float], float]:
    """(weights of R, G, B; offset) of pyiqa's luma in `color_space`, read from its conversion of unit colours."""
    from pyiqa.utils.color_util import to_y_channel

    basis = torch.zeros(1, 3, 1, 4, dtype=torch.float64)
    basis[0, 0, 0, 1] = basis[0, 1, 0, 2] = basis[0, 2, 0, 3] = 1
    y = to_y_channel(basis, 1.0, color_space)[0, 0, 0].tolist()
    return (y[1] - y[0], y[2] - y[0], y[3] - y[0]), y[0]


@lru_cache(maxsize=None)
def ssim_kernel() -> np.ndarray:
    """The 1-D factor of pyiqa's SSIM window: its centre row, scaled so that the outer product sums as the window."""
    from pyiqa.matlab_utils import fspecial

    window = fspecial(11, 1.5).double()[0, 0].numpy()
    row = window[window.shape[0] // 2]
    return row / row.sum() * np.sqrt(window.sum())


def planes(image: np.ndarray, luma: bool, color_space: str) -> np.ndarray:
    """The planes a metric compares, float64: the luma (1 x H x W) or the three RGB channels of a 3 x H x W image."""
    if not luma:
        return image.astype(np.float64)
    (wr, wg, wb), offset = luma_transform(color_space)
    y = np.multiply(image[0], wr, dtype=np.float64)
    y += np.multiply(image[1], wg, dtype=np.float64)
    y += np.multiply(image[2], wb, dtype=np.float64)
    if offset:
        y += offset
    return y[None]


def _crop(image: np.ndarray, border: int) -> np.ndarray:
    return image[..., border:-border, border:-border] if border != 0 else image


def _per_image(score: Callable[[np.ndarray, np.ndarray], float], out: torch.Tensor, ref: torch.Tensor,
               border: int) -> torch.Tensor:
    outs, refs = out.detach().cpu().numpy(), ref.detach().cpu().numpy()
    return torch.tensor([score(_crop(o, border), _crop(r, border)) for o, r in zip(outs, refs)], dtype=torch.float64)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    diff = (a - b).ravel()
    return float(np.dot(diff, diff)) / diff.size


def _psnr(out: np.ndarray, ref: np.ndarray, luma: bool, color_space: str) -> float:
    mse = _mse(planes(out, luma, color_space), planes(ref, luma, color_space))
    return 10 * np.log10(1.0 / (mse + EPS))


def _ssim_plane(x: np.ndarray, y: np.ndarray) -> float:
    """Mean SSIM map of two planes of 8-bit levels (float64), over the window's 'valid' positions."""
    import cv2

    h, w = x.shape
    kernel = ssim_kernel()
    r = kernel.size // 2
    if h < kernel.size or w < kernel.size:
        raise ValueError(f"SSIM needs images of at least {kernel.size} x {kernel.size} pixels, got {h} x {w}")

    def mean(a: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(a, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_CONSTANT)[r:h - r, r:w - r]

    c1, c2 = (0.01 * SSIM_LEVELS) ** 2, (0.03 * SSIM_LEVELS) ** 2
    mu1, mu2 = mean(x), mean(y)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = mean(x * x) - mu1_sq
    sigma2_sq = mean(y * y) - mu2_sq
    sigma12 = mean(x * y) - mu1_mu2
    cs = np.maximum((2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2), 0)
    return float((((2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1)) * cs).mean())


def _ssim(out: np.ndarray, ref: np.ndarray, luma: bool, color_space: str) -> float:
    x = np.rint(planes(out, luma, color_space) * SSIM_LEVELS)
    y = np.rint(planes(ref, luma, color_space) * SSIM_LEVELS)
    return float(np.mean([_ssim_plane(a, b) for a, b in zip(x, y)]))


def blocking_effect_factor(y: np.ndarray, block: int = 8) -> float:
    """BEF of one luma plane (H x W, float64), as `bench.metrics.psnrb.blocking_effect_factor` defines it."""
    h, w = y.shape
    if min(h, w) < 2:
        raise ValueError(f"PSNR-B needs images of at least 2 x 2 pixels, got {h} x {w}")
    across = inside = 0.0
    n_across = n_inside = 0
    for diff in (np.diff(y, axis=1), np.diff(y, axis=0).T):  # neighbours along rows, then along columns
        squares = diff * diff
        crossing = squares[:, block - 1::block]  # pair (i, i + 1) crosses a boundary when i + 1 is a multiple of B
        total, part = float(squares.sum()), float(crossing.sum())
        across, inside = across + part, inside + total - part
        n_across, n_inside = n_across + crossing.size, n_inside + squares.size - crossing.size
    if n_across == 0 or n_inside == 0:
        return 0.0
    d_b, d_bc = across / n_across, inside / n_inside
    return float(np.log2(block) / np.log2(min(h, w)) * (d_b - d_bc)) if d_b > d_bc else 0.0


def _psnr_b(out: np.ndarray, ref: np.ndarray, color_space: str) -> float:
    y_out, y_ref = planes(out, True, color_space)[0], planes(ref, True, color_space)[0]
    return 10 * np.log10(1.0 / (_mse(y_out, y_ref) + blocking_effect_factor(y_out) + EPS))


def psnr_metric(color_space: str = "yiq", crop_border: int = 0) -> Score:
    """pyiqa's 'psnry' of B x 3 x H x W batches in [0, 1]; shape (B,)."""
    luma_transform(color_space)
    return partial(_per_image, partial(_psnr, luma=True, color_space=color_space), border=crop_border)


def psnr_rgb_metric(crop_border: int = 0) -> Score:
    """pyiqa's 'psnr' (the three RGB channels)."""
    return partial(_per_image, partial(_psnr, luma=False, color_space=""), border=crop_border)


def ssim_metric(color_space: str = "yiq", crop_border: int = 0) -> Score:
    """pyiqa's 'ssim' (luma, no downsampling)."""
    luma_transform(color_space)
    return partial(_per_image, partial(_ssim, luma=True, color_space=color_space), border=crop_border)


def ssim_rgb_metric(crop_border: int = 0) -> Score:
    """pyiqa's 'ssimc' (the mean over the RGB channels, no downsampling)."""
    return partial(_per_image, partial(_ssim, luma=False, color_space=""), border=crop_border)


def psnr_b_metric(color_space: str = "yiq") -> Score:
    """PSNR-B as `bench.metrics.psnrb.psnr_b` computes it."""
    luma_transform(color_space)
    return partial(_per_image, partial(_psnr_b, color_space=color_space), border=0)
