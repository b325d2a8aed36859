"""The release's VAE tiler (its `VAEHook`, in `diffusion/my_utils/vaehook.py`), computing what it computes.

Below a size the VAE's encoder or decoder runs whole: up to `tile + 2 * pad` along the longer side, where pad
is 32 pixels for the encoder and 11 latent pixels for the decoder (1088 px and 246 latent px at the release's
tiles of 1024 px and 224 latent px). Beyond it the input is cut into a grid of cores (`split`), each read
with a margin of `pad` and cropped back to its core after the network; the network runs on all tiles in
lock step and every GroupNorm normalises with statistics pooled over all tiles (32 groups, eps 1e-6, each
tile's mean and biased variance weighted by its pixel count, as the release's default non-fast mode does); the
mid-block attention attends within each tile. The result is float32, as the release's.

Tiles wait on `offload` (the CPU by default, as the release keeps them) while another tile runs, so that
an accelerator holds one tile at a time; on the CPU that costs nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

ENCODER_PAD = 32  # pixels
DECODER_PAD = 11  # latent pixels
NORM_GROUPS = 32  # the release's tiler pools statistics over 32 groups, whatever the GroupNorm's own count
NORM_EPS = 1e-6


def best_tile_size(lower: int, upper: int) -> int:
    """The release's tile side: `lower` rounded up to the next multiple of 32, else 16, 8, 4, 2, the first
    that stays within `upper` (`lower` itself if already such a multiple, or if none fits)."""
    for divider in (32, 16, 8, 4, 2):
        if lower % divider == 0:
            return lower
        if lower - lower % divider + divider <= upper:
            return lower - lower % divider + divider
    return lower


@dataclass(frozen=True)
class Tile:
    """One tile along both axes, in input pixels: `read` the padded input region, `core` the region whose
    output it writes (extended to the image border where the core comes within `pad` of it)."""

    read: tuple[int, int, int, int]  # top, bottom, left, right
    core: tuple[int, int, int, int]


def _axis(length: int, tile: int, pad: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(read, core) spans along one axis, as the release splits it (Python's floor division and modulo,
    which matter where the length is below 2 * pad)."""
    count = max(math.ceil((length - 2 * pad) / tile), 1)
    side = best_tile_size(math.ceil((length - 2 * pad) / count), tile)
    spans = []
    for i in range(count):
        start, end = pad + i * side, min(pad + (i + 1) * side, length)
        core = (start if start > pad else 0, end if end < length - pad else length)
        spans.append(((max(0, start - pad), min(length, end + pad)), core))
    return spans


def split(height: int, width: int, tile: int, pad: int) -> list[Tile]:
    """The release's tiles, row by row."""
    return [Tile((r[0], r[1], c[0], c[1]), (rc[0], rc[1], cc[0], cc[1]))
            for r, rc in _axis(height, tile, pad) for c, cc in _axis(width, tile, pad)]


# -- the network as a sequence of steps between GroupNorms ---------------------------------------------------
@dataclass(frozen=True)
class _Step:
    """`norm`: a GroupNorm (all tiles meet there); `save`: push fn(x) as a residual; `add`: add the last one
    back; otherwise x = fn(x)."""

    kind: str
    fn: Callable | nn.GroupNorm | None = None


def _silu(x: torch.Tensor) -> torch.Tensor:
    return F.silu(x, inplace=True)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _resnet(block: nn.Module) -> list[_Step]:
    shortcut = block.conv_shortcut if block.conv_shortcut is not None else _identity
    return [_Step("save", shortcut), _Step("norm", block.norm1), _Step("apply", _silu), _Step("apply", block.conv1),
            _Step("norm", block.norm2), _Step("apply", _silu), _Step("apply", block.conv2), _Step("add")]


def _attention_in_tile(attn: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """The mid block's self-attention without its GroupNorm and residual (those are steps), over one tile."""

    def run(x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        q, k, v = (proj(tokens).unflatten(-1, (attn.heads, -1)).transpose(1, 2)
                   for proj in (attn.to_q, attn.to_k, attn.to_v))
        out = F.scaled_dot_product_attention(q, k, v, scale=attn.scale).transpose(1, 2).flatten(2)
        return attn.to_out[0](out).transpose(1, 2).reshape(b, c, h, w)

    return run


def _mid(mid: nn.Module) -> list[_Step]:
    attn = mid.attentions[0]
    return [*_resnet(mid.resnets[0]), _Step("save", _identity), _Step("norm", attn.group_norm),
            _Step("apply", _attention_in_tile(attn)), _Step("add"), *_resnet(mid.resnets[1])]


def encoder_steps(encoder: nn.Module) -> list[_Step]:
    """A diffusers `Encoder` as steps: conv_in, the down blocks, the mid block, the output norm and conv."""
    steps = [_Step("apply", encoder.conv_in)]
    for block in encoder.down_blocks:
        steps += [s for resnet in block.resnets for s in _resnet(resnet)]
        steps += [_Step("apply", down) for down in block.downsamplers or ()]
    return steps + _mid(encoder.mid_block) + [_Step("norm", encoder.conv_norm_out), _Step("apply", _silu),
                                              _Step("apply", encoder.conv_out)]


def decoder_steps(decoder: nn.Module) -> list[_Step]:
    """A diffusers `Decoder` as steps: conv_in, the mid block, the up blocks, the output norm and conv."""
    steps = [_Step("apply", decoder.conv_in), *_mid(decoder.mid_block)]
    for block in decoder.up_blocks:
        steps += [s for resnet in block.resnets for s in _resnet(resnet)]
        steps += [_Step("apply", up) for up in block.upsamplers or ()]
    return steps + [_Step("norm", decoder.conv_norm_out), _Step("apply", _silu), _Step("apply", decoder.conv_out)]


# -- running the steps on all tiles in lock step -------------------------------------------------------------
def group_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(variance, mean) per sample and group (biased), in x's dtype unless that overflows (then float32)."""
    grouped = x.reshape(x.shape[0] * NORM_GROUPS, -1)
    var, mean = torch.var_mean(grouped, dim=1, unbiased=False)
    if not x.is_meta and not torch.isfinite(var).all():
        var, mean = torch.var_mean(grouped.float(), dim=1, unbiased=False)
    return var, mean


def pooled_stats(stats: list[tuple[torch.Tensor, torch.Tensor]], pixels: list[int]) -> tuple[torch.Tensor, ...]:
    """The tiles' variances and means averaged with weights in proportion to their pixel counts (float32)."""
    weights = torch.tensor(pixels, dtype=torch.float32, device=stats[0][0].device)
    weights = (weights / weights.max() / (weights / weights.max()).sum())[:, None]
    return tuple((torch.stack([s[i] for s in stats]) * weights).sum(0) for i in (0, 1))


def normalize(x: torch.Tensor, var: torch.Tensor, mean: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """GroupNorm of x (32 groups) with the given statistics, then the norm's affine transform."""
    b, c = x.shape[:2]
    y = F.batch_norm(x.reshape(1, b * NORM_GROUPS, -1), mean, var, eps=NORM_EPS).view_as(x)
    return y * norm.weight.view(1, c, 1, 1) + norm.bias.view(1, c, 1, 1)


@dataclass
class _TileState:
    x: torch.Tensor
    residuals: list[torch.Tensor] = field(default_factory=list)
    position: int = 0


def _advance(steps: list[_Step], state: _TileState, device: torch.device, offload: torch.device) -> torch.Tensor:
    """Run one tile's steps up to its next GroupNorm (or the end); residuals wait on `offload`."""
    x = state.x.to(device)
    while state.position < len(steps) and steps[state.position].kind != "norm":
        step = steps[state.position]
        if step.kind == "save":
            state.residuals.append(step.fn(x).to(offload))
        elif step.kind == "add":
            x = x + state.residuals.pop().to(device)
        else:
            x = step.fn(x)
        state.position += 1
    return x


@torch.no_grad()
def run_tiled(steps: list[_Step], x: torch.Tensor, tiles: list[Tile], up: int = 1, down: int = 1,
              offload: torch.device | str = "cpu") -> torch.Tensor:
    """The network given as `steps` on each tile of x, GroupNorm statistics pooled over the tiles; an input
    coordinate n is n * up // down in the output. Tiles are visited forward, then backward, and so on (the release's order,
    which keeps the last tile on the device between rounds). Returns float32."""
    device, offload = x.device, torch.device(offload)
    states = [_TileState(x[..., t.read[0]:t.read[1], t.read[2]:t.read[3]].to(offload)) for t in tiles]
    result, order, stats = None, list(range(len(tiles))), None
    while True:
        gathered, pixels = [], []
        for i in order:
            state = states[i]
            if stats is not None:
                state.x = normalize(state.x.to(device), *stats, steps[state.position].fn)
                state.position += 1
            y = _advance(steps, state, device, offload)
            if state.position < len(steps):
                gathered.append(group_stats(y))
                pixels.append(y.shape[-2] * y.shape[-1])
                state.x = y if i == order[-1] else y.to(offload)
                continue
            if result is None:
                result = torch.zeros((*y.shape[:2], *(n * up // down for n in x.shape[-2:])), device=device)
            top, bottom, left, right = (n * up // down for n in tiles[i].core)
            result[..., top:bottom, left:right] = _crop(y, tiles[i], up, down)
            state.x = None
        if not gathered:
            return result
        stats, order = pooled_stats(gathered, pixels), order[::-1]


def _crop(y: torch.Tensor, tile: Tile, up: int, down: int) -> torch.Tensor:
    """The tile's core out of its output: offsets from the read region, both scaled (and floored) first."""
    top, bottom, left, right = (c * up // down - r * up // down for c, r in zip(tile.core, tile.read))
    return y[..., top:y.shape[-2] + bottom, left:y.shape[-1] + right]


class ReleaseVAETiler:
    """A diffusers VAE `Encoder` or `Decoder` run as the release's tiler runs it (call it as the network).

    `factor`: pixels per latent pixel (8 for SD's VAE, whose four levels the release's tiler is written for).
    A tile of 0 never tiles.
    """

    def __init__(self, net: nn.Module, tile: int, decoder: bool, factor: int = 8,
                 offload: torch.device | str = "cpu") -> None:
        self.net, self.tile, self.decoder, self.offload = net, tile, decoder, offload
        self.pad = DECODER_PAD if decoder else ENCODER_PAD
        self.up, self.down = (factor, 1) if decoder else (1, factor)

    def tiles(self, height: int, width: int) -> list[Tile] | None:
        """The release's tiles for an input of this size, or None where it runs the network whole."""
        if self.tile <= 0 or max(height, width) <= self.tile + 2 * self.pad:
            return None
        return split(height, width, self.tile, self.pad)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        tiles = self.tiles(*x.shape[-2:])
        if tiles is None:
            return self.net(x)
        steps = decoder_steps(self.net) if self.decoder else encoder_steps(self.net)
        offload = x.device if x.device.type == "meta" else self.offload  # MAC counting: nothing to move
        return run_tiled(steps, x, tiles, self.up, self.down, offload)
