"""DiffBIR (v2) at full size: the SD-2.1 text encoder, UNet and VAE plus its ControlNet, 50 sampling steps.

DiffBIR's ControlNet (cldm) copies the UNet's encoder and middle block and reads the condition latent (the VAE
encoding of the stage-1 restoration) concatenated with the noisy latent; `models.controlnet_from_unet` builds
the equivalent with diffusers. Not built: the stage-1 restoration module, which DiffBIR chooses per task
(BSRNet, SwinIR or SCUNet) and which the CODiff paper does not name for its JPEG setting.
"""

from __future__ import annotations

from torch import nn

from bench.profile.architecture import Architecture, InputSpec, MissingPart, Part, Stage
from methods.architectures.models import (
    clip_text,
    controlnet_from_unet,
    sd21_unet,
    sd21_vae,
)
from methods.architectures.sd_family import (
    PROMPT_TOKENS,
    VAE_TILING_NOTE,
    text_stage,
    unet_calls,
    vae_stages,
)
from methods.architectures.stages import ControlNetStep, UNetStep

STEPS = 50


def diffusion_models() -> nn.Module:
    unet = sd21_unet()
    return nn.ModuleDict({"unet": unet, "controlnet": controlnet_from_unet(unet, 4), "vae": sd21_vae()})


def _step_inputs(e, condition: bool) -> list[InputSpec]:
    latent = InputSpec((1, 4, *e["latent"]))
    specs = [latent, InputSpec((1,), "timestep"), InputSpec((1, PROMPT_TOKENS, 1024))]
    return specs + [latent] if condition else specs


def build(steps: int = STEPS, passes: int = 1) -> Architecture:
    parts = [
        Part("text_encoder", lambda: clip_text("sd21-base-text-encoder"),
             note="SD-2.1 text encoder (OpenCLIP ViT-H/14 text tower, 23 layers as run; DiffBIR's open_clip copy "
                  "also stores the unused 24th layer and the text projection, 13.6 M parameters not counted)"),
        Part("sd", diffusion_models,
             note="SD-2.1-base UNet and VAE, and a ControlNet copied from the UNet's encoder with a latent "
                  "condition (diffusers ControlNetModel; condition embedding = one 3x3 conv)"),
    ]
    calls = unet_calls(False, count=steps * passes)
    vae_encoder, vae_decoder = vae_stages("sd", lambda p: p["sd"]["vae"])
    stages = [
        text_stage("text encoder (77 tokens)", "text_encoder"),
        vae_encoder,
        Stage("ControlNet", ("sd",), lambda p: ControlNetStep(p["sd"]["controlnet"]),
              lambda e: _step_inputs(e, True), calls, {"latent": 8}),
        Stage("UNet", ("sd",), lambda p: UNetStep(p["sd"]["unet"]), lambda e: _step_inputs(e, False), calls,
              {"latent": 8}),
        vae_decoder,
    ]
    return Architecture(
        method="diffbir", label="DiffBIR", steps=steps, parts=parts, stages=stages, paper_method="DiffBIR",
        missing=[MissingPart("stage-1 restoration module",
                             "DiffBIR picks BSRNet, SwinIR or SCUNet by task and the paper does not say which one "
                             "its JPEG model uses")],
        notes=[f"{steps} steps with {passes} UNet + ControlNet evaluation(s) per step (classifier-free guidance "
               "would add one more per step); the VAE encodes the stage-1 output once as the condition.",
               VAE_TILING_NOTE])
