"""Full-size library models built from public configurations, with random weights and no download.

Stable Diffusion 2.1 base comes from `methods/codiff/configs/sd21-base` (diffusers layout); the text
encoders and SDXL from the JSON copies of their published configs in `configs/` beside this module.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from torch import nn

from bench.core.resources import package_file

HERE = Path(__file__).resolve().parent
CONFIGS = HERE / "configs"
SD21_DIR = package_file("methods.codiff", "configs", "sd21-base")


@lru_cache(maxsize=None)
def _config(path: Path) -> dict[str, Any]:
    """A published config without its private ('_'-prefixed) entries."""
    return {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if not k.startswith("_")}


def sd21_unet(config_dir: Path = SD21_DIR) -> nn.Module:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_config(_config(config_dir / "unet" / "config.json"))


def sd21_vae(config_dir: Path = SD21_DIR) -> nn.Module:
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_config(_config(config_dir / "vae" / "config.json"))


def sdxl_unet() -> nn.Module:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_config(_config(CONFIGS / "sdxl-base-unet.json"))


def sdxl_vae() -> nn.Module:
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_config(_config(CONFIGS / "sdxl-base-vae.json"))


def clip_text(name: str) -> nn.Module:
    """A transformers CLIP text model from `configs/<name>.json` (its `architectures` entry picks the class)."""
    import transformers

    config = _config(CONFIGS / f"{name}.json")
    cls = getattr(transformers, config["architectures"][0])
    return cls(transformers.CLIPTextConfig(**{k: v for k, v in config.items() if k != "architectures"}))


def controlnet_from_unet(unet: nn.Module, condition_channels: int) -> nn.Module:
    """A diffusers ControlNet copying `unet`'s encoder, conditioned on a latent with a single 3x3 conv.

    This is the cldm ControlNet that DiffBIR uses (its first conv reads the concatenation of the noisy latent and
    the condition latent): conv([x, c]) = conv_x(x) + conv_c(c), so diffusers' `conv_in` plus a bias-free 3x3
    conv of the condition has the same parameters and MACs. diffusers' own condition embedding (a stack of
    convolutions for a full-resolution image) is replaced by that conv.
    """
    from diffusers import ControlNetModel

    controlnet = ControlNetModel.from_unet(unet, conditioning_channels=condition_channels)
    width = controlnet.conv_in.out_channels
    controlnet.controlnet_cond_embedding = nn.Conv2d(condition_channels, width, 3, padding=1, bias=False)
    return controlnet
