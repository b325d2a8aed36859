"""CaVE reproduces the release's embedding, decoder output and QF head on the official tiny checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods.codiff.cave import CaVEConfig, load_cave

TOL = 1e-4


def _lq(parity_dir) -> torch.Tensor:
    from PIL import Image

    rgb = np.asarray(Image.open(parity_dir / "lq.png").convert("RGB"))
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0


@pytest.fixture(scope="module")
def cave_and_lq(parity_dir):
    model = load_cave(parity_dir / "cave.pth")
    return model, _lq(parity_dir)


def test_config_read_from_checkpoint_shapes(cave_and_lq, parity_dir):
    import json

    meta = json.loads((parity_dir / "meta.json").read_text())
    model, _ = cave_and_lq
    assert model.config == CaVEConfig(nc=tuple(meta["cave_nc"]), nb=meta["cave_nb"])
    assert not model.training


@torch.no_grad()
def test_embedding_matches_release(cave_and_lq, parity_dir):
    model, lq = cave_and_lq
    expected = np.load(parity_dir / "cave_embedding.npy")
    got = model.embed(lq).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < TOL


@torch.no_grad()
def test_decoder_and_qf_head_match_release(cave_and_lq, parity_dir):
    model, lq = cave_and_lq
    restored, qf = model(lq)
    expected_restored = np.load(parity_dir / "cave_restored.npy")
    expected_qf = np.load(parity_dir / "cave_qf.npy")
    assert restored.shape == expected_restored.shape
    assert np.abs(restored.numpy() - expected_restored).max() < TOL
    assert np.abs(qf.numpy().reshape(expected_qf.shape) - expected_qf).max() < TOL
    head = model.qf_head_output(lq).numpy().reshape(expected_qf.shape)
    assert np.abs(head - expected_qf).max() < TOL
    predicted = model.predict_qf(lq)
    assert torch.allclose(predicted, torch.from_numpy(100 * (1 - expected_qf.reshape(-1))).clamp(1, 100), atol=1e-2)
