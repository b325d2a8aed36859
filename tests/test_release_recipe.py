"""The release's training recipe: stage 1's BatchNorm as its DataParallel computes it (runs of 16 samples apart, the
first run's running statistics kept) and configs/train/codiff-release.yaml against train_codiff.sh."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from bench.core.config import from_dict
from bench.core.errors import ConfigError
from methods.codiff.training.config import CaveModelConfig
from methods.codiff.training.distributed import GroupedBatchNorm2d, group_batchnorm


def test_each_run_is_normalised_apart_and_only_the_first_updates_the_running_statistics():
    torch.manual_seed(0)
    plain = nn.BatchNorm2d(5, eps=1e-4, momentum=0.9)
    nn.init.uniform_(plain.weight)
    model = group_batchnorm(nn.Sequential(copy.deepcopy(plain)), 4)
    assert isinstance(model[0], GroupedBatchNorm2d)
    x = torch.randn(12, 5, 6, 7) * torch.arange(1, 13).view(12, 1, 1, 1)  # runs with different statistics
    out = model(x)
    replicas = [copy.deepcopy(plain) for _ in range(3)]  # three DataParallel replicas of 4 samples
    expected = torch.cat([r(part) for r, part in zip(replicas, x.split(4), strict=True)])
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(model[0].running_mean, replicas[0].running_mean)
    assert torch.allclose(model[0].running_var, replicas[0].running_var)
    assert not torch.allclose(model[0].running_var, replicas[1].running_var)
    model.eval()
    assert torch.allclose(model(x), replicas[0].eval()(x), atol=1e-5)


def test_release_config_groups_16_and_refuses_contradictions():
    import yaml

    cave_yaml = yaml.safe_load((Path(__file__).parents[1] / "configs" / "train" / "cave.yaml").read_text())
    assert cave_yaml["model"]["batchnorm_group"] == 16 and cave_yaml["train"]["batch_size"] == 128
    with pytest.raises(ConfigError, match="batchnorm_group"):
        from_dict(CaveModelConfig, {"batchnorm_group": 16, "sync_batchnorm": True})


def test_codiff_release_config_is_train_codiff_sh():
    """configs/train/codiff-release.yaml against train_codiff.sh and main_train_codiff.py's defaults."""
    from bench.core.config import read_yaml
    from methods.codiff.training.config import CodiffTrainConfig

    path = Path(__file__).parents[1] / "configs" / "train" / "codiff-release.yaml"
    config = from_dict(CodiffTrainConfig, read_yaml(path))
    assert config.train.batch_size == 8 * 8 and config.train.steps == 100_000 and config.train.seed == 123
    assert config.model.sample_latent and config.loss.release_gan_nograd and config.model.lora_rank == 16
    for optim in (config.optim, config.disc_optim):
        assert (optim.lr, optim.weight_decay, optim.betas, optim.eps, optim.milestones) == (
            5e-5, 1e-2, [0.9, 0.999], 1e-8, [])
    assert config.train.grad_clip == 1.0 and config.train.mixed_precision == "fp16"
    assert config.val.every == config.train.checkpoint_every == 3000
    assert config.data.patch_size == 256
