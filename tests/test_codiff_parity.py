"""CODiff reproduces the release's one-step output on the official tiny model (tiny-sd + codiff.pkl + cave.pth)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.codiff.cave import load_cave
from methods.codiff.generator import load_generator
from methods.codiff.options import PipelineConfig, TileConfig
from methods.codiff.pipeline import CODiffPipeline


@pytest.fixture(scope="module")
def parity(parity_dir):
    from PIL import Image

    rgb = np.asarray(Image.open(parity_dir / "lq.png").convert("RGB"))
    lq = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0
    return lq, np.load(parity_dir / "codiff_output.npy"), load_cave(parity_dir / "cave.pth")


@pytest.fixture(scope="module")
def released(parity_dir):
    """Factory of fresh copies of the generator loaded once from tiny-sd + codiff.pkl."""
    import copy

    generator = load_generator(parity_dir / "tiny-sd", parity_dir / "codiff.pkl")
    return lambda: copy.deepcopy(generator)


@torch.no_grad()
def test_unmerged_fp32_matches_release(parity, released):
    lq, expected, cave = parity
    generator = released()
    assert generator.spec.rank_unet == 4 and not generator.merged
    out = generator(lq * 2 - 1, cave.embed(lq)).numpy()
    assert out.shape == expected.shape
    assert np.abs(out - expected).max() < 1e-4


def test_merged_pipeline_matches_release(parity, released):
    lq, expected, cave = parity
    pipeline = CODiffPipeline(released(), cave, PipelineConfig(merge_lora=True, color_fix="none"))
    assert pipeline.generator.merged
    assert not any("lora" in name for name, _ in pipeline.generator.unet.named_parameters())
    raw = pipeline.generate(lq).numpy()
    assert np.abs(raw - expected).max() < 1e-3
    restored = pipeline(lq)
    assert torch.allclose(restored, torch.from_numpy(expected * 0.5 + 0.5).clamp(0, 1), atol=1e-3)


# -- latent (UNet) tiling engaged: ../shared/parity/official-tiny-tiled ---------------------------------------
RELEASE_TILES = TileConfig(latent_tile=32, latent_overlap=8)  # the vectors' settings; the VAE does not tile


@pytest.fixture(scope="module")
def tiled_parity(parity_tiled_dir, parity_dir):
    from PIL import Image

    rgb = np.asarray(Image.open(parity_tiled_dir / "lq.png").convert("RGB"))
    lq = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0
    cave = load_cave(parity_dir / "cave.pth")
    embedding = cave.embed(lq).detach().numpy()
    assert np.abs(embedding - np.load(parity_tiled_dir / "cave_embedding.npy")).max() < 1e-4
    return lq, np.load(parity_tiled_dir / "codiff_output.npy"), cave


def _tiled_output(released, cave, lq, tiles: TileConfig) -> np.ndarray:
    pipeline = CODiffPipeline(released(), cave, PipelineConfig(merge_lora=False, color_fix="none", tiles=tiles))
    return pipeline.generate(lq).numpy()


def test_release_latent_tiling_matches_release(tiled_parity, released):
    lq, expected, cave = tiled_parity
    out = _tiled_output(released, cave, lq, RELEASE_TILES)
    assert out.shape == expected.shape == (1, 3, 96, 160)
    assert np.abs(out - expected).max() < 1e-4


def test_other_tilings_do_not_match_release(tiled_parity, released):
    # the check above can fail: the untiled output and the even-split tiles both differ from the release's
    lq, expected, cave = tiled_parity
    for tiles in (TileConfig(latent_tile=0), TileConfig(latent_tile=32, latent_overlap=8, latent_tiling="even")):
        assert np.abs(_tiled_output(released, cave, lq, tiles) - expected).max() > 1e-3, tiles
