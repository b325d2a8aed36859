"""Full-size architectures for profiling, counted on the meta device (no memory, no computation)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.profile.architecture import create_architecture, list_architectures
from bench.profile.macs import flopcounter_counts
from bench.profile.params import count_module, count_parameters
from methods.architectures.sd_family import release_latent_tiles

PAPER_CODIFF_PARAMS = 1.00e9  # Table 2


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one thread."""


def _meta(build):
    with torch.device("meta"):
        return build()


@pytest.mark.slow
def test_codiff_parameters_agree_with_the_paper():
    parts = {p.part: p for p in count_parameters(create_architecture("codiff"))}
    total = sum(p.total for p in parts.values())
    assert abs(total - PAPER_CODIFF_PARAMS) / PAPER_CODIFF_PARAMS < 0.02, total
    # what is counted: CaVE's encoder only, proj, UNet and VAE, and the release's rank-16 LoRA adapters
    assert set(parts["cave_encoder"].children) == {"m_head", "m_down1", "m_down2", "m_down3", "m_body_encoder"}
    assert set(parts["generator"].children) == {"unet", "vae", "proj"}
    assert parts["generator"].children["proj"] == 512 * 1024 + 1024
    lora = parts["generator"].lora
    assert 17e6 < lora < 18.5e6
    base_unet_vae = parts["generator"].total - lora - parts["generator"].children["proj"]
    assert base_unet_vae == 865_910_724 + 83_653_863  # SD-2.1-base UNet + VAE as published


def test_cave_encoder_is_the_encoder_of_the_released_cave():
    from methods.architectures.codiff import cave_encoder
    from methods.codiff.cave import CaVE

    full = _meta(CaVE)
    encoder = _meta(cave_encoder)
    prefixes = ("m_head.", "m_down1.", "m_down2.", "m_down3.", "m_body_encoder.")
    expected = sum(p.numel() for n, p in full.named_parameters() if n.startswith(prefixes))
    assert count_module(encoder)[0] == expected < count_module(full)[0]
    tokens = encoder.embed(torch.empty(1, 3, 256, 320, device="meta"))
    assert tokens.shape == (1, (256 // 32) * (320 // 32), 512)


def test_public_configs_give_the_published_parameter_counts():
    from methods.architectures.models import clip_text, sdxl_unet, sdxl_vae

    counts = {name: count_module(_meta(build))[0] for name, build in {
        "sdxl_unet": sdxl_unet, "sdxl_vae": sdxl_vae,
        "sd21_text": lambda: clip_text("sd21-base-text-encoder"),
        "sdxl_text": lambda: clip_text("sdxl-base-text-encoder"),
        "sdxl_text_2": lambda: clip_text("sdxl-base-text-encoder-2")}.items()}
    assert counts == {"sdxl_unet": 2_567_463_684, "sdxl_vae": 83_653_863, "sd21_text": 340_387_840,
                      "sdxl_text": 123_060_480, "sdxl_text_2": 694_659_840}


def test_diffbir_controlnet_first_conv_matches_a_concatenated_input_conv():
    """cldm's conv over [x, c] (8 -> 320 channels) equals diffusers' conv_in plus a bias-free condition conv."""
    from methods.architectures.models import controlnet_from_unet, sd21_unet

    controlnet = _meta(lambda: controlnet_from_unet(sd21_unet(), 4))
    pair = nn.ModuleList([controlnet.conv_in, controlnet.controlnet_cond_embedding])
    concatenated = _meta(lambda: nn.Conv2d(8, 320, 3, padding=1))
    assert count_module(pair)[0] == count_module(concatenated)[0]
    x = torch.empty(1, 4, 64, 64, device="meta")
    split = flopcounter_counts(controlnet.conv_in, [x]).total
    split += flopcounter_counts(controlnet.controlnet_cond_embedding, [x]).total
    assert split == flopcounter_counts(concatenated, [torch.empty(1, 8, 64, 64, device="meta")]).total


@pytest.mark.parametrize("lh, lw, expected", [
    (64, 64, [((64, 64), 1)]),    # 512 px: whole latent
    (96, 96, [((96, 96), 1)]),    # exactly one tile
    (128, 128, [((96, 96), 4)]),  # 1024 px: a 2 x 2 grid of 96-tiles, overlap 32
    (256, 128, [((96, 96), 8)]),
    (64, 200, [((64, 64), 6)]),   # thin latents tile at their short side: 64-tiles every 32 over 200
])
def test_release_latent_tiles(lh, lw, expected):
    assert [(c.extents["latent"], c.count) for c in release_latent_tiles(lh, lw)] == expected


def test_every_architecture_plans_aligned_calls():
    """Each registered architecture describes its stages; at 1024^2 every call's extents respect the units."""
    names = list_architectures()
    assert {"codiff", "codiff-merged", "codiff-tiled", "osediff", "diffbir", "supir", "fbcnn", "jpeg"} <= set(names)
    for name in names:
        arch = create_architecture(name)
        assert arch.method == name
        for stage in arch.stages:
            assert set(stage.parts) <= {p.name for p in arch.parts}
            for call in stage.calls(1024, 1024):
                assert call.count >= 1
                for extent, sides in call.extents.items():
                    assert all(side % stage.units[extent] == 0 for side in sides), (name, stage.name, extent)
    assert create_architecture("diffbir").stages[2].calls(1024, 1024)[0].count == 50
    assert not create_architecture("codiff").missing and create_architecture("supir").missing


def test_partial_architectures_name_what_is_missing():
    for name in ("osediff", "diffbir", "supir"):
        arch = create_architecture(name)
        assert not arch.complete and all(m.reason for m in arch.missing)
    assert create_architecture("fbcnn").complete and create_architecture("codiff-tiled").complete


def test_fbcnn_is_spandrels_released_size():
    from methods.architectures.feedforward import fbcnn_network

    assert count_module(_meta(fbcnn_network))[0] == 71_921_796
