"""Memory-bounded inference on images of any size: run a function on overlapping tiles and blend the
results with Gaussian weights (variance 0.01 of the tile size squared, as the release's latent tiling).

`release_latent_map` is the release's UNet tiling, placement and weights included (parity-tested):
square tiles on a fixed grid, the last row and column pushed back inside, an asymmetric Gaussian.
`tiled_map` serves the VAE encoder (pixels -> latent, factor 1/8), the VAE decoder (latent -> pixels,
factor 8), CaVE, and the UNet when `latent_tiling: even` is chosen: its tiles shrink to share the length
evenly and its Gaussian is centred symmetrically. Peak memory is set by the tile size, not by the image
size; the output accumulators (the full-size result and its weight sum) are the only whole-image buffers.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

GAUSSIAN_VAR = 0.01
LATENT_TILINGS = ("release", "even")


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


def release_tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Starts of the release's tiles of exactly `tile` along an axis of `length` >= tile: the fewest n with
    (n - 1) * (tile - overlap) + tile >= length, at i * (tile - overlap), the last pushed back to end at
    `length`."""
    if not 0 <= overlap < tile <= length:
        raise ValueError(f"release tiles need 0 <= overlap < tile <= length, got {overlap}, {tile}, {length}")
    count = 1 + max(0, -(-(length - tile) // (tile - overlap)))
    return [i * (tile - overlap) for i in range(count - 1)] + [length - tile]


def release_gaussian_weights(tile: int, device: torch.device | None = None) -> torch.Tensor:
    """The release's (tile, tile) blending weights, float64: a Gaussian (variance 0.01 * tile^2) centred at
    tile / 2 along the height and (tile - 1) / 2 along the width."""
    x = torch.arange(tile, dtype=torch.float64)

    def axis(mid: float) -> torch.Tensor:
        return torch.exp(-((x - mid) ** 2) / (tile * tile) / (2 * GAUSSIAN_VAR)) / math.sqrt(2 * math.pi * GAUSSIAN_VAR)

    return torch.outer(axis(tile / 2), axis((tile - 1) / 2)).to(device)


def release_latent_map(fn: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, tile: int,
                       overlap: int) -> torch.Tensor:
    """fn (a UNet: (B, C, t, t) -> (B, C', t, t)) on the release's latent tiles, blended as the release blends
    them; float32. The caller applies the release's area test (tile only when h * w > tile^2).

    The tile is min(tile, h, w), so tiles are square; where that falls to `overlap` or below (a long thin
    latent: the release's loop never ends there), this falls back to `tiled_map`'s even tiles.
    """
    h, w = z.shape[-2:]
    side = min(tile, h, w)
    if side <= overlap:
        return tiled_map(fn, z, tile, overlap)
    weights = release_gaussian_weights(side, z.device)
    out = weight_sum = None
    for left in release_tile_starts(w, side, overlap):  # the release's order: columns outer, rows inner
        for top in release_tile_starts(h, side, overlap):
            y = fn(z[..., top:top + side, left:left + side])
            if out is None:
                out = torch.zeros((*y.shape[:2], h, w), device=y.device)
                weight_sum = torch.zeros((h, w), device=y.device)
            out[..., top:top + side, left:left + side] += y * weights  # float64 product, float32 sum
            weight_sum[top:top + side, left:left + side] += weights
    return out / weight_sum


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
