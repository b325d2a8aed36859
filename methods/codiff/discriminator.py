"""CODiff's latent discriminator: a Stable Diffusion UNet's down and mid blocks with LoRA, a learned
77-token context for their cross-attention, a fixed timestep (199), and a convolutional head on the
mid-block output: Conv(C -> 2C, k4, p1), GroupNorm(32), SiLU, Conv(2C -> 1, k4, p1), C the mid-block width
(1280 for SD 2.1). It scores latents (generated z_H against VAE-encoded HQ) with one logit per position.

`features_grad=False` computes the UNet features without gradient, as the release does (its LoRA and
context then never train and no gradient reaches the scored latents); the default lets gradients through.
The LoRA starts as the release's (peft's default init: B = 0, so the adapted UNet starts as the base one).
`PristineLatents` gives the real latents as the release makes them: HQ through SD's own VAE encoder.
"""

from __future__ import annotations

import math

import torch
from torch import nn

TIMESTEP = 199
CONTEXT_TOKENS = 77
HEAD_GROUPS = 32
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1",
                "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj")
ADAPTER = "discriminator"


class LatentDiscriminator(nn.Module):
    """Logits (B, 1, h, w) for latents (B, 4, H, W). Takes ownership of `unet` and drops its up path."""

    def __init__(self, unet: nn.Module, lora_rank: int, timestep: int = TIMESTEP,
                 context_tokens: int = CONTEXT_TOKENS) -> None:
        super().__init__()
        from peft import LoraConfig

        config = unet.config
        unsupported = {k: getattr(config, k, None) for k in ("class_embed_type", "addition_embed_type",
                                                               "time_embedding_act_fn", "encoder_hid_dim_type")}
        if any(v is not None for v in unsupported.values()):
            raise ValueError(f"the latent discriminator supports SD-2.1-like UNets only, this one sets {unsupported}")
        unet.up_blocks = nn.ModuleList()
        unet.conv_norm_out = unet.conv_act = unet.conv_out = None
        unet.requires_grad_(False)
        unet.add_adapter(LoraConfig(r=lora_rank, target_modules=list(LORA_TARGETS)), adapter_name=ADAPTER)
        self.unet = unet
        self.timestep = int(timestep)
        self.context = nn.Parameter(torch.randn(1, context_tokens, config.cross_attention_dim))
        width = config.block_out_channels[-1]
        self.head = nn.Sequential(
            nn.Conv2d(width, 2 * width, 4, padding=1),
            nn.GroupNorm(math.gcd(HEAD_GROUPS, 2 * width), 2 * width),
            nn.SiLU(),
            nn.Conv2d(2 * width, 1, 4, padding=1),
        )

    def trainable_parameters(self) -> list[nn.Parameter]:
        """LoRA, the context and the head: everything but the frozen UNet weights."""
        return [p for n, p in self.named_parameters() if "lora" in n or not n.startswith("unet.")]

    def set_trainable(self) -> list[nn.Parameter]:
        self.requires_grad_(False)
        params = self.trainable_parameters()
        for p in params:
            p.requires_grad_(True)
        return params

    def features(self, z: torch.Tensor) -> torch.Tensor:
        """The mid-block output for latents `z` at the discriminator's timestep."""
        unet = self.unet
        t = torch.full((z.shape[0],), self.timestep, dtype=torch.long, device=z.device)
        emb = unet.time_embedding(unet.get_time_embed(sample=z, timestep=t))
        context = self.context.to(z.dtype).expand(z.shape[0], -1, -1)
        h = unet.conv_in(z)
        for block in unet.down_blocks:
            if getattr(block, "has_cross_attention", False):
                h, _ = block(hidden_states=h, temb=emb, encoder_hidden_states=context)
            else:
                h, _ = block(hidden_states=h, temb=emb)
        return unet.mid_block(h, emb, encoder_hidden_states=context)

    def forward(self, z: torch.Tensor, features_grad: bool = True) -> torch.Tensor:
        with torch.set_grad_enabled(features_grad and torch.is_grad_enabled()):
            h = self.features(z)
        if min(h.shape[-2:]) < 3:
            raise ValueError(f"latents of {tuple(z.shape[-2:])} give a {tuple(h.shape[-2:])} mid-block map; the "
                             "head's two 4x4 convolutions need at least 3x3 (train on larger patches)")
        return self.head(h)


class PristineLatents(nn.Module):
    """The release's real latents: HQ in [0, 1] through a frozen copy of SD's VAE encoder without adapters,
    a posterior sample (global RNG) times the scaling factor. Takes ownership of `vae` and drops its decoder."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        if getattr(vae, "_hf_peft_config_loaded", False):
            raise ValueError("the real latents need SD's own VAE, without LoRA adapters")
        vae.decoder = None
        self.vae = vae.requires_grad_(False).eval()

    def train(self, mode: bool = True) -> PristineLatents:
        return super().train(False)  # frozen

    @torch.no_grad()
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        posterior = self.vae.encode(image * 2 - 1).latent_dist
        return posterior.sample() * self.vae.config.scaling_factor
