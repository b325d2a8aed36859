"""SUPIR at full size: SDXL-base's UNet, VAE and two text encoders, 50 sampling steps.

Not built: SUPIR's adaptor (GLVControl, a trimmed ControlNet-like copy of the SDXL encoder joined to the UNet
by ZeroSFT connectors) and its degradation-robust encoder, both SUPIR's own modules with no faithful public
configuration in diffusers, transformers or timm; and the LLaVA captioner, which the paper's 4.49 G excludes.
"""

from __future__ import annotations

from torch import nn

from bench.profile.architecture import Architecture, InputSpec, MissingPart, Part, Stage
from methods.architectures.models import clip_text, sdxl_unet, sdxl_vae
from methods.architectures.sd_family import (
    PROMPT_TOKENS,
    VAE_TILING_NOTE,
    text_stage,
    unet_calls,
    vae_stages,
)
from methods.architectures.stages import UNetStep

STEPS = 50
CONTEXT = 2048  # SDXL's cross-attention width (768 + 1280, the two text encoders' states concatenated)
POOLED, TIME_IDS = 1280, 6


def diffusion_models() -> nn.Module:
    return nn.ModuleDict({"unet": sdxl_unet(), "vae": sdxl_vae()})


def build(steps: int = STEPS, passes: int = 1) -> Architecture:
    parts = [
        Part("text_encoder", lambda: clip_text("sdxl-base-text-encoder"), note="CLIP ViT-L/14 text tower"),
        Part("text_encoder_2", lambda: clip_text("sdxl-base-text-encoder-2"),
             note="OpenCLIP ViT-bigG/14 text tower with projection"),
        Part("sd", diffusion_models, note="SDXL-base UNet and VAE"),
    ]
    vae_encoder, vae_decoder = vae_stages("sd", lambda p: p["sd"]["vae"])
    stages = [
        text_stage("text encoder (77 tokens)", "text_encoder"),
        text_stage("text encoder 2 (77 tokens)", "text_encoder_2"),
        vae_encoder,
        Stage("UNet", ("sd",), lambda p: UNetStep(p["sd"]["unet"]),
              lambda e: [InputSpec((1, 4, *e["latent"])), InputSpec((1,), "timestep"),
                         InputSpec((1, PROMPT_TOKENS, CONTEXT)), InputSpec((1, POOLED)), InputSpec((1, TIME_IDS))],
              unet_calls(False, count=steps * passes), {"latent": 8}),
        vae_decoder,
    ]
    return Architecture(
        method="supir", label="SUPIR", steps=steps, parts=parts, stages=stages, paper_method="SUPIR",
        missing=[MissingPart("SUPIR adaptor (GLVControl + ZeroSFT)",
                             "SUPIR's own trimmed-ControlNet and connector modules; no faithful public config "
                             "builds them with diffusers/transformers/timm"),
                 MissingPart("degradation-robust encoder", "SUPIR's fine-tuned encoder module, built by its own code"),
                 MissingPart("LLaVA captioner", "a 13 B multimodal LLM, outside the paper's 4.49 G as well")],
        notes=[f"{steps} steps with {passes} UNet evaluation(s) per step.", VAE_TILING_NOTE])
