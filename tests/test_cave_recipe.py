"""The small-CaVE recipe: its model options (stored in the JSON and rebuilt by load_cave), the scaled init, the
QF loss, unaligned validation patches, the compression-awareness scores, and that a few dozen steps of the
recipe learn QF on a fixed batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from methods.codiff.cave import (
    CaVE,
    CaVEConfig,
    gate_weight,
    highpass,
    init_cave_weights,
    init_scaled_weights,
    load_cave,
    save_cave,
)
from methods.codiff.checkpoint import CheckpointError
from bench.core.config import load_config
from methods.codiff.training.config import CaveLossConfig, CaveTrainConfig, ValConfig
from methods.codiff.training.losses import cave_losses

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "configs" / "train" / "cave-small-dual.yaml"
SMALL = dict(nc=(8, 16, 16, 32), nb=1)


def test_release_config_stays_the_default_and_writes_only_widths():
    release = CaVEConfig()
    assert (release.input, release.global_residual, release.bn_momentum, release.bn_eps, release.restore_gate) == \
        ("rgb", False, 0.9, 1e-4, None)
    assert CaVEConfig(**SMALL).to_dict() == {"nc": [8, 16, 16, 32], "nb": 1}
    bn = CaVE(CaVEConfig(**SMALL)).m_down1[0].res[1]
    assert (bn.momentum, bn.eps) == (0.9, 1e-4)


def test_options_are_stored_in_the_json_and_rebuilt_by_load_cave(tmp_path):
    config = CaVEConfig(**SMALL, input="rgb+highpass", global_residual=True, bn_momentum=0.05, bn_eps=1e-5,
                        restore_gate=(20, 40))
    assert config.to_dict() == {"nc": [8, 16, 16, 32], "nb": 1, "input": "rgb+highpass", "global_residual": True,
                                "bn_momentum": 0.05, "bn_eps": 1e-5, "restore_gate": [20.0, 40.0]}
    torch.manual_seed(0)
    model = init_scaled_weights(CaVE(config)).eval()
    assert model.m_head.weight.shape[1] == 6
    path = save_cave(model, tmp_path / "opt", evaluation={"qf_estimate": {"mae_by_qf": {"10": 1.0}}})
    loaded = load_cave(path)
    assert loaded.config == config and loaded.m_down1[0].res[1].momentum == 0.05
    lq = torch.rand(2, 3, 40, 72)
    with torch.no_grad():
        assert torch.equal(loaded.restore(lq), model.restore(lq))
        assert torch.equal(loaded.embed(lq), model.embed(lq))
    with pytest.raises(CheckpointError, match="invalid CaVE config .*unknown key colour"):
        CaVEConfig.from_dict({"nc": [8, 16, 16, 32], "nb": 1, "colour": True})
    with pytest.raises(ValueError, match="input"):
        CaVEConfig(**SMALL, input="yuv")


def test_highpass_and_global_residual():
    flat = torch.full((1, 3, 16, 16), 0.4)
    assert highpass(flat).abs().max() < 1e-5
    step = torch.zeros(1, 1, 8, 8)
    step[..., 4:] = 1.0
    assert highpass(step).abs().sum() > 0
    model = CaVE(CaVEConfig(**SMALL, global_residual=True)).eval()
    torch.nn.init.zeros_(model.m_tail.weight)
    torch.nn.init.zeros_(model.m_tail.bias)
    lq = torch.rand(1, 3, 40, 48)
    with torch.no_grad():
        assert torch.equal(model(lq)[0], lq)  # a zero correction returns the input


def test_restore_gate_blends_by_the_estimated_qf():
    estimates = torch.tensor([5.0, 20.0, 30.0, 40.0, 90.0])
    assert gate_weight(estimates, (20.0, 40.0)).tolist() == [1.0, 1.0, 0.5, 0.0, 0.0]
    torch.manual_seed(0)
    model = init_scaled_weights(CaVE(CaVEConfig(**SMALL, global_residual=True))).eval()
    lq = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        restored, qf_output = model(lq)
        estimate = float(100 * (1 - qf_output))
        untouched = CaVE(CaVEConfig(**SMALL, global_residual=True, restore_gate=(estimate - 20, estimate - 10)))
        full = CaVE(CaVEConfig(**SMALL, global_residual=True, restore_gate=(estimate + 10, estimate + 20)))
        for gated in (untouched, full):
            gated.load_state_dict(model.state_dict())
            gated.eval()
        assert torch.equal(untouched.restore(lq), lq)
        assert torch.allclose(full.restore(lq), restored)


def test_scaled_init_keeps_a_narrow_cave_alive_where_the_release_init_does_not():
    x = torch.rand(8, 3, 64, 64)
    stds = {}
    for name, init in (("release", init_cave_weights), ("scaled", init_scaled_weights)):
        torch.manual_seed(0)
        model = init(CaVE(CaVEConfig(nc=(16, 32, 64, 128), nb=1))).train()
        with torch.no_grad():
            stds[name] = (model.embed_grid(x).std().item(), model.qf_head_output(x).std().item())
    assert stds["release"][0] < 0.01 and stds["release"][1] < 1e-4  # below BatchNorm's sqrt(eps); QF all alike
    assert stds["scaled"][0] > 0.2 and stds["scaled"][1] > 1e-3


def test_qf_loss_options():
    out, qf = torch.tensor([[0.5], [0.2]]), torch.tensor([30.0, 90.0])  # targets 0.7 and 0.1
    hq = torch.zeros(2, 3, 4, 4)
    l1 = cave_losses(None, out, hq, qf, CaveLossConfig(qf_weight=1.0))
    mse = cave_losses(None, out, hq, qf, CaveLossConfig(qf_weight=2.0, qf_loss="mse"))
    assert l1["qf"].item() == pytest.approx(0.15) and l1["loss"].item() == pytest.approx(0.15)
    assert mse["qf"].item() == pytest.approx(0.025) and mse["loss"].item() == pytest.approx(0.05)


def test_validation_patches_sit_at_random_unaligned_positions(make_images, tmp_path):
    from bench.core.protocol import JpegProtocol
    from methods.codiff.training.data import build_val_pairs, random_boxes

    boxes = random_boxes(300, 400, 64, 200, np.random.default_rng(0))
    assert np.mean([t % 8 or l % 8 for t, l in boxes]) > 0.9
    assert all(0 <= t <= 236 and 0 <= l <= 336 for t, l in boxes) and random_boxes(50, 400, 64, 3, None) == []
    make_images(tmp_path / "val", [(100, 140), (90, 96), (20, 20)])
    config = ValConfig(folder=str(tmp_path / "val"), qfs=[10, 50], crop=64, patches=3)
    pairs = build_val_pairs(config, JpegProtocol())
    assert len(pairs) == 2 * 2 * 3  # the 20-px image is too small and skipped
    assert all(p.hq.shape == p.lq.shape == (1, 3, 64, 64) for p in pairs)
    assert {p.name.split("#")[0] for p in pairs} == {"img00.png", "img01.png"}
    # each QF sees the same patches: only the compression differs
    assert torch.equal(pairs[0].hq, pairs[3].hq) and not torch.equal(pairs[0].lq, pairs[3].lq)


def test_linear_probe_is_fitted_on_other_images_and_seen_qfs_only():
    from methods.codiff.training.cave_eval import linear_probe

    rng = np.random.default_rng(0)
    qfs = np.tile([1, 5, 10, 30, 50, 70, 90], 8)
    images = np.repeat([f"img{i}" for i in range(8)], 7)
    informative = np.stack([qfs / 10.0, rng.normal(size=qfs.size)], axis=1)
    predictions = linear_probe(informative, qfs, images, unseen=[1, 5])
    assert np.abs(predictions - qfs).mean() < 3  # linear in QF: extrapolates to the unseen QFs (ridge shrinks a little)
    noise = rng.normal(size=(qfs.size, 4))
    assert np.abs(linear_probe(noise, qfs, images, unseen=[1, 5]) - qfs).mean() > 15


def test_evaluation_rows_per_qf_and_overall(make_images, tmp_path):
    from bench.core.protocol import JpegProtocol
    from methods.codiff.training.cave_eval import evaluate_cave
    from methods.codiff.training.data import build_val_pairs

    make_images(tmp_path / "val", [(96, 96), (96, 128)])
    pairs = build_val_pairs(ValConfig(folder=str(tmp_path / "val"), qfs=[5, 20, 60], crop=64, patches=2),
                            JpegProtocol())
    torch.manual_seed(0)
    cave = init_scaled_weights(CaVE(CaVEConfig(**SMALL, input="highpass", global_residual=True)))
    rows = evaluate_cave(cave, pairs, unseen=[5])
    assert [r["qf"] for r in rows] == [5, 20, 60, "all"]
    assert {"qf_mae", "qf_mse", "psnr_gain", "psnr_b_gain", "probe_mae"} <= set(rows[0])
    assert rows[0]["qf_mse"] >= rows[0]["qf_mae"] ** 2 - 1e-6
    overall = rows[-1]
    assert {"qf_mae_seen", "qf_mae_unseen", "psnr_gain_unseen", "silhouette_all", "probe_mae_seen"} <= set(overall)
    assert overall["qf_mae_unseen"] == pytest.approx(rows[0]["qf_mae"]) and overall["images"] == 2
    explicit = evaluate_cave(cave, pairs, unseen=[5], decoder=False)
    assert "psnr_gain" not in explicit[0] and "qf_mae" in explicit[0]


def test_recipe_configs_share_everything_but_the_mode():
    configs = {mode: load_config(CaveTrainConfig, RECIPE.with_name(f"cave-small-{mode}.yaml"))
               for mode in ("dual", "explicit", "implicit")}
    for mode, config in configs.items():
        assert config.mode == mode and config.train.output_dir == f"runs/train/cave-small-{mode}"
        for section in ("model", "loss", "optim", "data", "val"):
            assert getattr(config, section) == getattr(configs["dual"], section)
        assert (config.train.steps, config.train.batch_size, config.train.seed, config.train.threads) == \
            (configs["dual"].train.steps, configs["dual"].train.batch_size, 0, 1)
    recipe = configs["dual"]
    assert recipe.model.init == "scaled" and recipe.loss.qf_loss == "mse" and recipe.optim.eps >= 1e-8
    assert 0 < recipe.data.shift_prob and recipe.data.crop_margin == 8 and set(recipe.data.qf.exclude) == {1, 5}
    release = load_config(CaveTrainConfig, RECIPE.with_name("cave.yaml"))
    assert (release.model.init, release.model.input, release.loss.qf_loss) == ("release", "rgb", "l1")


def test_a_few_dozen_recipe_steps_learn_qf_on_a_fixed_batch(one_thread):
    """The recipe's network, loss and optimiser bring the QF error of a fixed batch far below the constant guess."""
    from methods.codiff.training.data import build_train_pairs
    from methods.codiff.training.stage1 import CaveTask
    from methods.codiff.training.trainer import adam_optimizer, batch_to_device

    config = load_config(CaveTrainConfig, RECIPE.with_name("cave-small-explicit.yaml"),
                         ["data.train=[sample]", "data.preload=false"])
    torch.manual_seed(0)
    model = CaveTask(config).build_model().train()
    pairs = build_train_pairs(config.data, seed=0)
    items = [pairs[k] for k in range(16)]
    batch = batch_to_device({"hq": torch.stack([i["hq"] for i in items]), "lq": torch.stack([i["lq"] for i in items]),
                             "qf": [i["qf"] for i in items]}, torch.device("cpu"))
    constant = (batch["qf"] - batch["qf"].mean()).abs().mean().item()
    assert constant > 10  # the batch spans many QFs
    optimizer = adam_optimizer(list(model.parameters()), config.optim, decoupled=False)
    for _ in range(30):
        _, qf_output = model(batch["lq"])
        loss = cave_losses(None, qf_output, batch["hq"], batch["qf"], config.loss)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        error = (model.cave.predict_qf(batch["lq"]) - batch["qf"]).abs().mean().item()
    assert error < 0.3 * constant, (error, constant)


def test_qf_tile_averages_the_estimate_over_tiles_of_the_training_size():
    torch.manual_seed(0)
    whole = init_scaled_weights(CaVE(CaVEConfig(**SMALL))).eval()
    tiled = CaVE(CaVEConfig(**SMALL, qf_tile=32)).eval()
    tiled.load_state_dict(whole.state_dict())
    x = torch.rand(2, 3, 64, 100)  # two rows of three 32-px tiles; the 4 columns left over are not used
    with torch.no_grad():
        expected = torch.stack([whole.qf_head_output(x[..., r:r + 32, c:c + 32])
                                for r in (0, 32) for c in (0, 32, 64)]).mean(0)
        assert torch.allclose(tiled.qf_head_output(x), expected, atol=1e-6)
        small = x[..., :40, :60]  # room for one tile only: the whole input, as without a tile
        assert torch.equal(tiled.qf_head_output(small), whole.qf_head_output(small))
        assert not torch.allclose(tiled.qf_head_output(x), whole.qf_head_output(x))
    assert CaVEConfig.from_dict(CaVEConfig(**SMALL, qf_tile=64).to_dict()).qf_tile == 64
    with pytest.raises(ValueError, match="qf_tile"):
        CaVEConfig(**SMALL, qf_tile=20)
