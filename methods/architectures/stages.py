"""Tensor-in, tensor-out views of library models (diffusers, transformers), one per profiled computation.

Tracing counters (fvcore) need a module whose forward takes and returns tensors; these wrap the library
models without changing what they compute.
"""

from __future__ import annotations

import torch
from torch import nn


class VAEEncode(nn.Module):
    """Image (B, 3, H, W) in [-1, 1] -> latent mean (B, C, H/8, W/8) of a diffusers AutoencoderKL."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.vae.encode(image, return_dict=False)[0].mode()


class VAEDecode(nn.Module):
    """Latent (B, C, h, w) -> image (B, 3, 8h, 8w) of a diffusers AutoencoderKL."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent, return_dict=False)[0]


class UNetStep(nn.Module):
    """One denoising evaluation of a diffusers UNet2DConditionModel: (latent, timestep, context) -> prediction.

    SDXL-style UNets also take pooled text embeddings and time ids (`added`: text_embeds, time_ids).
    """

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, latent: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
                *added: torch.Tensor) -> torch.Tensor:
        kwargs = {"added_cond_kwargs": {"text_embeds": added[0], "time_ids": added[1]}} if added else {}
        return self.unet(latent, timestep, encoder_hidden_states=context, return_dict=False, **kwargs)[0]


class ControlNetStep(nn.Module):
    """One evaluation of a diffusers ControlNetModel: returns its down-block residuals and mid-block residual."""

    def __init__(self, controlnet: nn.Module) -> None:
        super().__init__()
        self.controlnet = controlnet

    def forward(self, latent: torch.Tensor, timestep: torch.Tensor, context: torch.Tensor,
                condition: torch.Tensor) -> tuple[torch.Tensor, ...]:
        down, mid = self.controlnet(latent, timestep, encoder_hidden_states=context, controlnet_cond=condition,
                                    return_dict=False)
        return (*down, mid)


class TextEncode(nn.Module):
    """Token ids (B, 77) -> last hidden states of a transformers CLIP text model."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, return_dict=False)[0]


class Apply(nn.Module):
    """`fn(module, *inputs)` as a module (for models whose entry point is a method or returns extra outputs)."""

    def __init__(self, module: nn.Module, fn) -> None:
        super().__init__()
        self.inner = module
        self.fn = fn

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.fn(self.inner, *inputs)
