"""The generator's structure for training and inference: trainable set, the one-step update, precision,
posterior sampling, merged LoRA, and the colour fixes."""

from __future__ import annotations

import pytest
import torch

from methods.codiff.colorfix import adain, color_fix, wavelet


@pytest.fixture(scope="module")
def generator(codiff_tiny_models):
    return codiff_tiny_models()[0]


def test_trainable_parameters_are_the_releases(generator):
    names = [n for n, _ in generator.trainable_parameters()]
    assert "unet.conv_in.base_layer.weight" in names and "proj.weight" in names
    assert any(n.startswith("unet.") and "lora_A.default_decoder" in n for n in names)
    assert any(n.startswith("unet.") and "lora_B.default_others" in n for n in names)
    assert any(n.startswith("vae.encoder.") and "lora_A.default_encoder" in n for n in names)
    assert not any(n.startswith("vae.decoder.") for n in names)
    params = generator.set_trainable()
    trainable = {id(p) for p in params}
    assert all(p.requires_grad == (id(p) in trainable) for p in generator.parameters())
    assert len(params) == len(names)
    generator.requires_grad_(False)


def test_step_is_ddpm_step_with_one_inference_step(generator):
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler.from_config(generator.scheduler.config)
    scheduler.set_timesteps(timesteps=[generator.timestep])  # one step from t = 499 to the clean sample
    z, eps = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    expected = scheduler.step(eps, generator.timestep, z).prev_sample  # adds noise scaled by 1e-10
    assert torch.allclose(generator.step(z, eps), expected, atol=1e-5)


@torch.no_grad()
def test_forward_shapes_and_posterior_sampling(generator):
    lq, tokens = torch.rand(2, 3, 16, 24) * 2 - 1, torch.randn(2, 2, 512)
    mode = generator(lq, tokens)
    assert mode.shape == lq.shape and mode.abs().max() <= 1
    generator.sample_latent = True
    generator.latent_generator = torch.Generator().manual_seed(0)
    first = generator(lq, tokens)
    generator.latent_generator = torch.Generator().manual_seed(0)
    assert torch.equal(first, generator(lq, tokens)) and not torch.equal(first, mode)
    generator.sample_latent, generator.latent_generator = False, None


def test_pipeline_precisions_merge_and_padding(codiff_tiny_models):
    from methods.codiff.options import PipelineConfig
    from methods.codiff.pipeline import CODiffPipeline

    lq = torch.rand(1, 3, 27, 37)  # odd sizes: padded to the VAE's factor, then cropped back
    outputs = {}
    for dtype, merge in (("fp32", False), ("fp32", True), ("bf16", True)):
        pipeline = CODiffPipeline(*codiff_tiny_models(), PipelineConfig(dtype=dtype, merge_lora=merge))
        outputs[dtype, merge] = pipeline(lq)
        assert outputs[dtype, merge].shape == lq.shape and outputs[dtype, merge].dtype == torch.float32
    reference = outputs["fp32", False]
    assert (outputs["fp32", True] - reference).abs().max() < 1e-4
    assert (outputs["bf16", True] - reference).abs().mean() < 0.02
    assert not torch.equal(outputs["bf16", True], reference)


def test_merged_generator_cannot_save_adapters(codiff_tiny_models):
    from methods.codiff.checkpoint import CheckpointError

    generator = codiff_tiny_models()[0]
    generator.merge_lora()
    with pytest.raises(CheckpointError, match="merged"):
        generator.checkpoint()


def test_colour_fixes():
    torch.manual_seed(0)
    source = torch.rand(1, 3, 40, 40) * 0.5 + 0.2
    output = torch.rand(1, 3, 40, 40)
    fixed = adain(output, source)
    assert torch.allclose(fixed.mean((2, 3)), source.mean((2, 3)), atol=1e-4)
    assert torch.allclose(fixed.std((2, 3)), source.std((2, 3)), atol=1e-3)
    # wavelet: a flat output takes the source's low frequencies; a flat source keeps the output's details
    flat = torch.full_like(source, 0.5)
    assert torch.allclose(wavelet(flat, flat), flat, atol=1e-6)
    detail = wavelet(output, flat) - flat
    assert detail.abs().mean() > 0.05 and detail.mean().abs() < 0.02
    assert torch.equal(color_fix(output * 2, source, "none"), (output * 2).clamp(0, 1))
    with pytest.raises(ValueError):
        color_fix(output, source, "histogram")
