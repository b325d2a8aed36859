"""CaVE architecture details that the parity vectors do not pin down: sizing, padding, init, formats."""

from __future__ import annotations

import pytest
import torch

from methods.codiff.cave import (
    CaVE,
    CaVEConfig,
    init_cave_weights,
    load_cave,
    save_cave,
    save_cave_official,
)
from methods.codiff.checkpoint import CheckpointError

SMALL = CaVEConfig(nc=(8, 16, 16, 32), nb=2)


@pytest.fixture
def small_cave() -> CaVE:
    torch.manual_seed(0)
    return init_cave_weights(CaVE(SMALL)).eval()


def test_release_key_names_and_config_inference(small_cave):
    keys = small_cave.state_dict().keys()
    for key in ("m_down1.0.res.0.weight", "m_down1.1.res.1.running_var", "m_down1.2.weight",
                "m_body_encoder.1.res.3.bias", "m_up3.0.weight", "m_up3.2.res.1.weight", "m_tail.weight",
                "qf_pred.1.res.0.weight", "qf_pred.4.weight", "qf_pred.8.bias"):
        assert key in keys, key
    assert CaVEConfig.from_state_dict(small_cave.state_dict()) == SMALL


@torch.no_grad()
def test_embedding_token_count_floors_after_padding_to_8(small_cave):
    # 75 -> padded 80 -> 40 -> 10 -> 2 ; 130 -> 136 -> 68 -> 17 -> 4
    tokens = small_cave.embed(torch.rand(2, 3, 75, 130))
    assert tokens.shape == (2, 2 * 4, 32)
    # tokens are the body output's pixels, row-major: token r * w + c is pixel (r, c)
    x = torch.rand(1, 3, 64, 96)
    body, tokens = small_cave.embed_grid(x), small_cave.embed(x)
    assert body.shape[-2:] == (2, 3)
    assert torch.equal(tokens[0, 1 * 3 + 2], body[0, :, 1, 2])


@torch.no_grad()
def test_forward_any_size_crops_back(small_cave):
    x = torch.rand(1, 3, 45, 70)
    restored, qf = small_cave(x)
    assert restored.shape == x.shape and qf.shape == (1, 1)
    assert 0.0 <= float(qf) <= 1.0
    qf_value = small_cave.predict_qf(x)
    assert qf_value.shape == (1,) and 1.0 <= float(qf_value) <= 100.0


def test_init_matches_release_recipe(small_cave):
    bn = small_cave.m_down1[0].res[1]
    assert bn.momentum == 0.9 and bn.eps == 1e-4
    assert 0.1 <= bn.weight.min() and bn.weight.max() <= 1.0 and torch.all(bn.bias == 0)
    w = small_cave.qf_pred[6].weight  # a square Linear: orthogonal times the gain
    assert torch.allclose(w @ w.T, 0.04 * torch.eye(w.shape[0]), atol=1e-5)
    assert torch.all(small_cave.m_head.bias == 0)


@torch.no_grad()
def test_project_and_official_formats_round_trip(small_cave, tmp_path):
    x = torch.rand(1, 3, 64, 64)
    expected = small_cave.embed(x)
    save_cave(small_cave, tmp_path / "cave")
    assert (tmp_path / "cave.safetensors").is_file() and (tmp_path / "cave.json").is_file()
    for name in ("cave", "cave.json", "cave.safetensors"):
        assert torch.equal(load_cave(tmp_path / name).embed(x), expected)
    save_cave_official(small_cave, tmp_path / "cave.pth")
    assert torch.equal(load_cave(tmp_path / "cave.pth").embed(x), expected)


def test_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="missing"):
        load_cave(tmp_path / "absent.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="bad.pth"):
        load_cave(bad)
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not a CaVE state dict"):
        load_cave(tmp_path / "other.pth")
    (tmp_path / "half.json").write_text("{}")
    with pytest.raises(CheckpointError, match="half.safetensors is missing"):
        load_cave(tmp_path / "half.json")
