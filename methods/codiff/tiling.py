"""Memory-bounded inference on images of any size: run a function on overlapping tiles and blend the
results with Gaussian weights (the release's latent-tiling weights: variance 0.01 of the tile size squared).

One helper serves the three stages of CODiff: the VAE encoder (pixels -> latent, factor 1/8), the UNet
(latent -> latent) and the VAE decoder (latent -> pixels, factor 8). Peak memory is set by the tile size,
not by the image size; the output accumulators (the full-size result and its weight sum) are the only
whole-image buffers.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

GAUSSIAN_VAR = 0.01


def tile_spans(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """(start, end) of the fewest tiles of at most `tile` that cover [0, length) overlapping by about
    `overlap`: the tiles are shrunk to share the length evenly (less wasted work than full-size tiles), start
    on multiples of `align`, and the last one ends at `length` (up to align - 1 longer when the end is off
    the grid)."""
    if length <= tile:
        return [(0, length)]
    if not 0 <= overlap < tile:
        raise ValueError(f"tile overlap must be in [0, tile), got overlap {overlap} for tile {tile}")
    count = math.ceil((length - overlap) / (tile - overlap))
    size = min(tile, -(-(math.ceil((length - overlap) / count) + overlap) // align) * align)
    last = (length - size) // align * align
    starts = sorted({round(i * last / (count - 1) / align) * align for i in range(count)})
    return [(s, s + size) for s in starts[:-1]] + [(starts[-1], length)]


def gaussian_weights(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """(height, width) blending weights: a separable Gaussian centred on the tile, variance 0.01 * size^2."""

    def axis(n: int) -> torch.Tensor:
        x = torch.arange(n, dtype=torch.float64)
        mid = (n - 1) / 2
        return torch.exp(-((x - mid) ** 2) / (n * n) / (2 * GAUSSIAN_VAR)) / math.sqrt(2 * math.pi * GAUSSIAN_VAR)

    return torch.outer(axis(height), axis(width)).float().to(device)


def tiled_map(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, overlap: int,
              up: int = 1, down: int = 1, align: int | None = None) -> torch.Tensor:
    """fn(x) computed tile by tile and blended: fn maps a (B, C, h, w) tile to (B, C', h*up/down, w*up/down).

    Tiles are at most `tile` x `tile` (see `tile_spans`) with starts on multiples of `align` (default
    `down`; 8 keeps tiles on the JPEG block grid). When the input fits in one tile (or tile is 0), fn runs
    once on the whole input. The result is float32.
    """
    h, w = x.shape[-2:]
    if tile <= 0 or (h <= tile and w <= tile):
        return fn(x).float()
    align = align or down
    tile = max(tile // align * align, align)
    out = weight_sum = None
    for top, bottom in tile_spans(h, tile, overlap, align):
        for left, right in tile_spans(w, tile, overlap, align):
            y = fn(x[..., top:bottom, left:right]).float()
            if out is None:
                out = y.new_zeros((*y.shape[:2], h * up // down, w * up // down))
                weight_sum = y.new_zeros((h * up // down, w * up // down))
            weights = gaussian_weights(*y.shape[-2:], device=y.device)
            rows = slice(top * up // down, top * up // down + y.shape[-2])
            cols = slice(left * up // down, left * up // down + y.shape[-1])
            out[..., rows, cols] += y * weights
            weight_sum[rows, cols] += weights
    return out / weight_sum
