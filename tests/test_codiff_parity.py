"""CODiff reproduces the release's one-step output on the official tiny model (tiny-sd + codiff.pkl + cave.pth)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.codiff.cave import load_cave
from methods.codiff.generator import load_generator
from methods.codiff.options import PipelineConfig
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
