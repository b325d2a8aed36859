"""PSNR-B (Yim and Bovik, "Quality assessment of deblocked images", IEEE TIP 2011), which pyiqa lacks.

PSNR-B = 10 log10(1 / (MSE(out, ref) + BEF(out))): the blocking effect factor BEF penalises differences
across the 8x8 block boundaries of the tested image beyond those inside blocks:
    D_B  = mean squared difference of horizontally or vertically adjacent pixels across a block boundary
    D_Bc = the same over the pairs that do not cross a boundary
    BEF  = log2(B) / log2(min(H, W)) * (D_B - D_Bc) when D_B > D_Bc, else 0.
It is computed on the luma channel, the same Y as the harness's PSNR (pyiqa's `to_y_channel`), in [0, 1].
"""

from __future__ import annotations

import math

import torch

BLOCK = 8
EPS = 1e-8  # added to the error as pyiqa's PSNR does, so identical images give 80 dB rather than infinity


def _pair_stats(img: torch.Tensor, dim: int, block: int) -> tuple[torch.Tensor, int, torch.Tensor, int]:
    """Per image: the sum and count of squared differences of neighbours along `dim` across block
    boundaries, then the sum and count of the other neighbour pairs."""
    n = img.shape[dim] - 1
    diff = (img.narrow(dim, 1, n) - img.narrow(dim, 0, n)) ** 2
    index = torch.arange(n, device=img.device)
    crossing = index[(index + 1) % block == 0]  # pair (i, i + 1) crosses a boundary when i + 1 is a multiple of B
    across = diff.index_select(dim, crossing).flatten(1).sum(1)
    pairs = diff[0].numel()
    n_across = pairs // n * len(crossing)
    return across, n_across, diff.flatten(1).sum(1) - across, pairs - n_across


def blocking_effect_factor(y: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """BEF of a batch of single-channel images (B x 1 x H x W); shape (B,)."""
    h, w = y.shape[-2:]
    if min(h, w) < 2:
        raise ValueError(f"PSNR-B needs images of at least 2 x 2 pixels, got {h} x {w}")
    across_h, n_across_h, inside_h, n_inside_h = _pair_stats(y, 3, block)
    across_v, n_across_v, inside_v, n_inside_v = _pair_stats(y, 2, block)
    n_across, n_inside = n_across_h + n_across_v, n_inside_h + n_inside_v
    if n_across == 0 or n_inside == 0:
        return torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
    d_b = (across_h + across_v) / n_across
    d_bc = (inside_h + inside_v) / n_inside
    eta = math.log2(block) / math.log2(min(h, w))
    return torch.where(d_b > d_bc, eta * (d_b - d_bc), torch.zeros_like(d_b))


def psnr_b(out: torch.Tensor, ref: torch.Tensor, color_space: str = "yiq") -> torch.Tensor:
    """PSNR-B in dB of RGB batches in [0, 1] (B x 3 x H x W) on their luma channel; shape (B,), float64."""
    from pyiqa.utils.color_util import to_y_channel

    if out.shape != ref.shape:
        raise ValueError(f"output {tuple(out.shape)} and reference {tuple(ref.shape)} differ in shape")
    y_out = to_y_channel(out.double(), 1.0, color_space)
    y_ref = to_y_channel(ref.double(), 1.0, color_space)
    mse = ((y_out - y_ref) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / (mse + blocking_effect_factor(y_out) + EPS))


def psnr_b_metric(color_space: str = "yiq"):
    """The `psnr_b` metric's score function for `color_space` ('yiq' or 'ycbcr')."""
    from functools import partial

    return partial(psnr_b, color_space=color_space)
