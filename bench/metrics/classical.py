"""PSNR, SSIM and PSNR-B on the CPU at the speed of the arithmetic, with the values of pyiqa's 'psnry', 'psnr',
'ssim', 'ssimc' and of `bench.metrics.psnrb` (tests hold them to within 1e-6).

Everything is float64, as in pyiqa. The luma weights are read from pyiqa's own colour conversion. pyiqa filters
SSIM's statistics with a full 11x11 convolution by its float32 Gaussian window; here OpenCV applies it as two 1-D
passes whose outer product has the same sum as that window, so flat regions give the same statistics and the
scores stay within 1e-9 of pyiqa's.
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Callable, Iterator

import numpy as np
import torch

VERSION = 1  # changes whenever a value can change, so that stored scores are computed again
EPS = 1e-8  # pyiqa's PSNR: identical images give 80 dB
SSIM_LEVELS = 255  # pyiqa's SSIM compares images rounded to 8-bit levels
STRIP_VALUES = 1 << 15  # values per row strip (256 KiB of float64)

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
    outs, refs = (x.detach().cpu() for x in (out, ref))
    if not {outs.dtype, refs.dtype} <= {torch.float32, torch.float64}:  # half precisions: numpy has no bfloat16
        outs, refs = outs.double(), refs.double()
    outs, refs = outs.numpy(), refs.numpy()
    return torch.tensor([score(_crop(o, border), _crop(r, border)) for o, r in zip(outs, refs)], dtype=torch.float64)


def _strips(height: int, width: int, halo: int = 0, least: int = 8) -> Iterator[tuple[int, int]]:
    """Row ranges [top, bottom) covering `height` rows in strips of about STRIP_VALUES values (at least `least`
    rows); each strip's arrays stay small, so that they reuse freed memory instead of faulting in fresh pages."""
    rows = max(least, STRIP_VALUES // max(width, 1) - halo)
    for top in range(0, height, rows):
        yield top, min(top + rows, height)


def _squared_error(out: np.ndarray, ref: np.ndarray, luma: bool, color_space: str) -> tuple[float, int]:
    """Sum and count of the squared differences of two images' planes (3 x h x w)."""
    total = 0.0
    for top, bottom in _strips(out.shape[1], out.shape[2] * (1 if luma else 3)):
        diff = (planes(out[:, top:bottom], luma, color_space) - planes(ref[:, top:bottom], luma, color_space)).ravel()
        total += float(np.einsum("i,i->", diff, diff))  # not BLAS: its threads wait on busy cores
    return total, (1 if luma else 3) * out.shape[1] * out.shape[2]


def _psnr(out: np.ndarray, ref: np.ndarray, luma: bool, color_space: str) -> float:
    total, count = _squared_error(out, ref, luma, color_space)
    return 10 * np.log10(1.0 / (total / count + EPS))


def _ssim_sum(x: np.ndarray, y: np.ndarray, kernel: np.ndarray) -> float:
    """Sum of the SSIM map of two planes of 8-bit levels (float64) over the window's 'valid' positions."""
    import cv2

    h, w = x.shape
    r = kernel.size // 2

    def mean(a: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(a, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_CONSTANT)[r:h - r, r:w - r]

    c1, c2 = (0.01 * SSIM_LEVELS) ** 2, (0.03 * SSIM_LEVELS) ** 2
    mu1, mu2 = mean(x), mean(y)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = mean(x * x) - mu1_sq
    sigma2_sq = mean(y * y) - mu2_sq
    sigma12 = mean(x * y) - mu1_mu2
    cs = np.maximum((2 * sigma12 + c2) / (sigma1_sq + sigma2_sq + c2), 0)
    return float((((2 * mu1_mu2 + c1) / (mu1_sq + mu2_sq + c1)) * cs).sum())


def _ssim(out: np.ndarray, ref: np.ndarray, luma: bool, color_space: str) -> float:
    """Mean SSIM map over the planes and the window's 'valid' positions, computed in strips of rows."""
    kernel = ssim_kernel()
    size = kernel.size
    _, h, w = out.shape
    if h < size or w < size:
        raise ValueError(f"SSIM needs images of at least {size} x {size} pixels, got {h} x {w}")
    total = 0.0
    for top, bottom in _strips(h - size + 1, w, halo=size - 1, least=4 * size):
        rows = slice(top, bottom + size - 1)
        x = np.rint(planes(out[:, rows], luma, color_space) * SSIM_LEVELS)
        y = np.rint(planes(ref[:, rows], luma, color_space) * SSIM_LEVELS)
        total += sum(_ssim_sum(a, b, kernel) for a, b in zip(x, y))
    return total / ((1 if luma else len(out)) * (h - size + 1) * (w - size + 1))


def _pair_sums(y: np.ndarray, axis: int, block: int, first_row: int = 0) -> tuple[float, int, float, int]:
    """Sum and count of the squared differences of neighbours along `axis` across block boundaries, then of the
    other pairs; `first_row` is the row of the image where the strip `y` starts."""
    squares = np.diff(y, axis=axis) ** 2
    if axis == 1:
        crossing = squares[:, block - 1::block]  # pair (j, j + 1) crosses a boundary when j + 1 is a multiple of B
    else:
        crossing = squares[(block - 1 - first_row) % block::block]
    total, part = float(squares.sum()), float(crossing.sum())
    return part, crossing.size, total - part, squares.size - crossing.size


def _psnr_b(out: np.ndarray, ref: np.ndarray, color_space: str, block: int = 8) -> float:
    """PSNR-B of two images (3 x h x w), in strips of rows that overlap by one row for the vertical pairs."""
    _, h, w = out.shape
    if min(h, w) < 2:
        raise ValueError(f"PSNR-B needs images of at least 2 x 2 pixels, got {h} x {w}")
    sums = np.zeros(4)
    error = 0.0
    for top, bottom in _strips(h, w):
        y_out = planes(out[:, top:bottom + 1], True, color_space)[0]  # one more row: the pairs with the next strip
        diff = (y_out[:bottom - top] - planes(ref[:, top:bottom], True, color_space)[0]).ravel()
        error += float(np.einsum("i,i->", diff, diff))
        sums += _pair_sums(y_out[:bottom - top], 1, block)
        sums += _pair_sums(y_out, 0, block, top)
    across, n_across, inside, n_inside = sums
    bef = 0.0
    if n_across and n_inside and across / n_across > inside / n_inside:
        bef = np.log2(block) / np.log2(min(h, w)) * (across / n_across - inside / n_inside)
    return 10 * np.log10(1.0 / (error / (h * w) + bef + EPS))


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
