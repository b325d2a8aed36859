"""Tiled inference: the release's latent tile placement and weights, exact tile geometry on local functions, and
on a tiny CODiff model tiled output that stays close to the untiled one without a visible tile grid. (Parity
with the release's tiled output: tests/test_codiff_parity.py.)"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bench.core.config import from_dict
from methods.codiff.options import TileConfig
from methods.codiff.tiling import (
    gaussian_weights,
    release_gaussian_weights,
    release_latent_map,
    release_tile_starts,
    tile_spans,
    tiled_map,
)


def _release_count(length: int, tile: int, overlap: int) -> int:
    """The release's loop: add tiles (the i-th ending at i * (tile - overlap) + tile) until one reaches length."""
    count, end = 0, 0
    while end < length:
        end = count * (tile - overlap) + tile
        count += 1
    return count


@pytest.mark.parametrize("length,tile,overlap", [(80, 32, 8), (48, 32, 8), (32, 32, 8), (200, 96, 32), (57, 56, 0)])
def test_release_tiles_are_full_size_on_a_fixed_grid_with_the_last_pushed_back(length, tile, overlap):
    starts = release_tile_starts(length, tile, overlap)
    assert len(starts) == _release_count(length, tile, overlap)
    assert starts[:-1] == [i * (tile - overlap) for i in range(len(starts) - 1)]
    assert starts[-1] == length - tile and starts == sorted(starts)
    assert release_tile_starts(80, 32, 8) == [0, 24, 48] and release_tile_starts(48, 32, 8) == [0, 16]


def test_release_weights_are_centred_asymmetrically():
    w = release_gaussian_weights(8)
    assert w.dtype == torch.float64 and w.shape == (8, 8)
    assert torch.equal(w, w.flip(1))  # width: centre (T - 1) / 2
    assert not torch.allclose(w, w.flip(0)) and int(w[:, 0].argmax()) == 4  # height: centre T / 2
    assert float(w[4, 3] / w[4, 0]) == pytest.approx(math.exp((3.5 ** 2 - 0.5 ** 2) / 64 / 0.02))


def test_release_latent_map_blends_to_the_exact_result_and_falls_back_on_thin_latents():
    x = torch.rand(2, 4, 48, 80)
    calls = []

    def fn(t):
        calls.append(tuple(t.shape[-2:]))
        return torch.tanh(3 * t)

    assert torch.allclose(release_latent_map(fn, x, 32, 8), fn(x), atol=1e-6)
    assert calls[:-1] == [(32, 32)] * 6  # 3 columns x 2 rows of full-size tiles
    thin = torch.rand(1, 4, 6, 90)  # the tile would shrink to 6 <= overlap: even tiles instead
    assert torch.allclose(release_latent_map(fn, thin, 32, 8), fn(thin), atol=1e-6)


def test_tile_spans_cover_with_overlap_on_the_grid():
    for length, tile, overlap, align in [(192, 96, 32, 2), (1001, 512, 64, 8), (300, 96, 32, 1), (96, 96, 0, 1)]:
        spans = tile_spans(length, tile, overlap, align)
        assert spans[0][0] == 0 and spans[-1][1] == length
        assert all(start % align == 0 for start, _ in spans)
        for (_, e0), (s1, _) in zip(spans[:-1], spans[1:], strict=True):
            assert e0 - s1 >= overlap - align  # consecutive tiles overlap by about `overlap`
        assert all(end - start < tile + align for start, end in spans)
        assert len(spans) == 1 or len(spans) == -(-(length - overlap) // (tile - overlap))  # the fewest tiles


def test_gaussian_weights_are_symmetric_and_peak_in_the_centre():
    w = gaussian_weights(6, 9)
    assert torch.allclose(w, w.flip(0)) and torch.allclose(w, w.flip(1))
    assert w[2:4, 4].min() == w.max() and w.min() > 0


@pytest.mark.parametrize("up,down", [(1, 1), (1, 8), (8, 1), (1, 2)])
def test_tiled_map_is_exact_for_pointwise_and_block_functions(up, down):
    # a function of each down x down block, upsampled by `up`: tiling on the block grid must not change it
    def fn(t):
        y = torch.tanh(F.avg_pool2d(t, down) * 3 + 0.1) if down > 1 else torch.tanh(t * 3 + 0.1)
        return F.interpolate(y, scale_factor=up, mode="nearest") if up > 1 else y

    x = torch.rand(2, 3, 8 * 13, 8 * 19)
    tiled = tiled_map(fn, x, tile=40, overlap=16, up=up, down=down)
    assert tiled.shape == fn(x).shape
    assert torch.allclose(tiled, fn(x), atol=1e-5)


def test_tiled_map_matches_a_local_conv_away_from_tile_edges():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 5, padding=2)
    x = torch.rand(1, 3, 70, 90)
    with torch.no_grad():
        full, tiled = conv(x), tiled_map(conv, x, tile=32, overlap=16)
    # every pixel is at least 4 px from the edge of the tile that dominates it, beyond the 2 px receptive field
    assert torch.allclose(full, tiled, atol=1e-4)


def test_tile_config_validates():
    with pytest.raises(ValueError):
        TileConfig(latent_tile=32, latent_overlap=32)
    with pytest.raises(ValueError, match="latent_tiling: 'square' is not one of 'release', 'even'"):
        from_dict(TileConfig, {"latent_tiling": "square"})


# -- the tiny CODiff model ------------------------------------------------------------------------------
TILED = TileConfig(vae_encoder_tile=112, vae_encoder_overlap=48, vae_decoder_tile=56, vae_decoder_overlap=24,
                   latent_tile=56, latent_overlap=24, vae_tiling="gaussian")  # 2 x 3 tiles in every stage
LATENT_IMAGE = (128, 192)  # the tiny model's test image
HARD_EDGES = TileConfig(vae_encoder_tile=96, vae_encoder_overlap=0, vae_decoder_tile=48, vae_decoder_overlap=0,
                        latent_tile=48, latent_overlap=0, vae_tiling="gaussian")  # 2 x 2 tiles, the VAE's meeting edge to edge


def _borders(tiles: TileConfig, length: int, factor: int = 2) -> list[int]:
    """Output pixel positions where a tile of any stage starts or ends (inside the image)."""
    found = set()
    for tile, overlap, per_input in ((tiles.vae_encoder_tile, tiles.vae_encoder_overlap, 1),
                                     (tiles.vae_decoder_tile, tiles.vae_decoder_overlap, factor)):
        n = length // per_input
        if tile and n > tile:
            for start, end in tile_spans(n, tile, overlap, factor if per_input == 1 else 1):
                found |= {start * per_input, end * per_input}
    if tiles.latent_tile:  # the release's square tiles of min(tile, latent height, latent width)
        side = min(tiles.latent_tile, *(n // factor for n in LATENT_IMAGE))
        found |= {b * factor for s in release_tile_starts(length // factor, side, tiles.latent_overlap)
                  for b in (s, s + side)}
    return sorted(b for b in found if 0 < b < length)


def _seam_jump(error: torch.Tensor, tiles: TileConfig) -> float:
    """The largest step of the tiled-minus-untiled error across a tile border, relative to its median step:
    a hard tile edge makes the error field jump there; blended tiles change it smoothly."""
    ratios = []
    for dim, borders in ((-1, _borders(tiles, error.shape[-1])), (-2, _borders(tiles, error.shape[-2]))):
        steps = error.diff(dim=dim).abs().mean(dim=tuple(d for d in range(4) if d != 4 + dim))
        ratios += [float(steps[b - 1] / steps.median()) for b in borders]
    return max(ratios)


@pytest.fixture(scope="module")
def tiny_outputs(codiff_tiny_models):
    from methods.codiff.options import PipelineConfig
    from methods.codiff.pipeline import CODiffPipeline

    torch.manual_seed(1)
    lq = F.interpolate(torch.rand(1, 3, 8, 12), size=LATENT_IMAGE, mode="bicubic", align_corners=False)
    lq = (lq + 0.03 * torch.randn_like(lq)).clamp(0, 1)
    pipeline = CODiffPipeline(*codiff_tiny_models(), PipelineConfig(color_fix="none",
                                                                     tiles=TileConfig(0, 0, 0, 0, 0, 0)))
    outputs = {"untiled": pipeline.generate(lq)}
    for name, tiles in (("tiled", TILED), ("hard", HARD_EDGES)):
        pipeline.config = PipelineConfig(color_fix="none", tiles=tiles)
        outputs[name] = pipeline.generate(lq)
    return outputs


def test_tiled_output_is_close_to_untiled(tiny_outputs):
    untiled, tiled = tiny_outputs["untiled"], tiny_outputs["tiled"]
    assert tiled.shape == untiled.shape
    error = (tiled - untiled).abs().mean()
    # GroupNorm and attention see only their tile, so the tiny random model (whose output depends on far
    # context much more than a trained one's) is not reproduced exactly; the error stays a fraction of the
    # image's own variation, and below that of fewer tiles without overlap
    assert error < 0.4 * untiled.std()
    assert error < (tiny_outputs["hard"] - untiled).abs().mean()


def test_blended_tiles_leave_no_visible_grid(tiny_outputs):
    untiled = tiny_outputs["untiled"]
    assert _seam_jump(tiny_outputs["tiled"] - untiled, TILED) < 2.5
    # VAE tiles without overlap meet edge to edge at column 96 and row 64: there the error jumps (the check can fail)
    assert _seam_jump(tiny_outputs["hard"] - untiled, HARD_EDGES) > 3.0
