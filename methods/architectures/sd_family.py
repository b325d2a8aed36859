"""Stages shared by the Stable-Diffusion-based restorers (OSEDiff, DiffBIR, SUPIR): prompt encoding and the VAE."""

from __future__ import annotations

from typing import Callable, Mapping

from torch import nn

from bench.profile.architecture import (
    Call,
    Extents,
    InputSpec,
    Stage,
    fixed_calls,
    image_calls,
    latent_calls,
)
from methods.architectures.stages import TextEncode, VAEDecode, VAEEncode

PROMPT_TOKENS = 77
LATENT_TILE, LATENT_OVERLAP = 96, 32  # OSEDiff's and CODiff's UNet latent tiling (their inference defaults)
VAE_TILING_NOTE = ("The VAE runs whole: the releases' tiled VAE (encoder tiles of 1024 px, decoder tiles of 224 "
                   "latent px) splits nothing up to 1088 px (encoder) and 246 latent px (decoder); larger inputs "
                   "are counted untiled.")


def sd_with_lora(rank: int) -> nn.Module:
    """SD-2.1-base UNet and VAE (random weights) with the OSEDiff-family LoRA adapters of `rank`, unmerged."""
    from methods.codiff.generator import add_lora_adapters, release_lora_spec
    from methods.codiff.sd import build_sd_from_configs

    sd = build_sd_from_configs()
    add_lora_adapters(sd.unet, sd.vae, release_lora_spec(sd.unet, sd.vae, rank, rank))
    return nn.ModuleDict({"unet": sd.unet, "vae": sd.vae})


def text_stage(name: str, part: str, count: int = 1) -> Stage:
    """A CLIP text encoder on one 77-token prompt (`count` prompts per image)."""
    return Stage(name, (part,), lambda p: TextEncode(p[part]),
                 lambda e: [InputSpec((1, PROMPT_TOKENS), "long")], fixed_calls(count))


def vae_stages(part: str, get: Callable[[Mapping[str, nn.Module]], nn.Module],
               latent_channels: int = 4) -> tuple[Stage, Stage]:
    """(VAE encoder on the image, VAE decoder on its 1/8 latent) for the VAE `get(parts)` stored in `part`."""
    encoder = Stage("VAE encoder", (part,), lambda p: VAEEncode(get(p)),
                    lambda e: [InputSpec((1, 3, *e["image"]))], image_calls(), {"image": 8})
    decoder = Stage("VAE decoder", (part,), lambda p: VAEDecode(get(p)),
                    lambda e: [InputSpec((1, latent_channels, *e["latent"]))], latent_calls(), {"latent": 1})
    return encoder, decoder


def _grid(length: int, tile: int, overlap: int) -> int:
    """Tiles along one side, as the releases' tiled UNet loop counts them."""
    count, covered = 0, 0
    while covered < length:
        covered = max(count * (tile - overlap), 0) + tile
        count += 1
    return count


def release_latent_tiles(lh: int, lw: int, tile: int = LATENT_TILE, overlap: int = LATENT_OVERLAP) -> list[Call]:
    """The releases' UNet calls on a (lh, lw) latent: whole when lh * lw <= tile^2, else square tiles of
    min(tile, lh, lw) on a grid (the last row and column shifted inside the latent)."""
    if lh * lw <= tile * tile:
        return [Call({"latent": (lh, lw)}, 1, "whole latent")]
    side = min(tile, lh, lw)
    count = _grid(lw, side, overlap) * _grid(lh, side, overlap)
    return [Call({"latent": (side, side)}, count, f"{count} latent tiles of {side} (overlap {overlap})")]


def tiling_note(tiled: bool) -> str:
    if tiled:
        return (f"UNet on the releases' latent tiles ({LATENT_TILE}, overlap {LATENT_OVERLAP}) when the latent is "
                f"larger than {LATENT_TILE}^2")
    return "UNet on the whole latent (no tiling)"


def unet_calls(tiled: bool, count: int = 1,
               context: Callable[[int, int], Extents] | None = None) -> Callable[[int, int], list[Call]]:
    """UNet calls per image: on the whole 1/8 latent or the releases' tiles, `count` times (steps x passes);
    `context(h, w)` adds image-dependent extents (CODiff's CaVE token grid)."""
    def calls(h: int, w: int) -> list[Call]:
        lh, lw = h // 8, w // 8
        plan = release_latent_tiles(lh, lw) if tiled else [Call({"latent": (lh, lw)}, 1, "whole latent")]
        extra = dict(context(h, w)) if context else {}
        return [Call({**c.extents, **extra}, c.count * count, c.note) for c in plan]
    return calls
