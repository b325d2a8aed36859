"""CODiff at full size: CaVE's encoder, the projection, and SD-2.1's UNet and VAE with the release's LoRA.

Counted: CaVE's encoder (head, three down stages, encoder body), proj (Linear 512 -> 1024), the UNet and the
VAE (encoder and decoder), with the LoRA adapters (rank 16) when unmerged as the release runs them. Not
counted: CaVE's decoder and QF head, which only train CaVE (stage 1) and never run at inference.
"""

from __future__ import annotations

from torch import nn

from bench.profile.architecture import (
    Architecture,
    Call,
    InputSpec,
    Part,
    Stage,
    image_calls,
)
from methods.architectures.sd_family import (
    VAE_TILING_NOTE,
    tiling_note,
    unet_calls,
    vae_stages,
)
from methods.architectures.stages import Apply, UNetStep

CAVE_TRAINING_ONLY = ("m_body_decoder", "m_up3", "m_up2", "m_up1", "m_tail", "qf_pred")
CAVE_STRIDE = 32  # CaVE tokens are the 1/32 grid of the input


def cave_encoder() -> nn.Module:
    """The released CaVE size (nc 64/128/256/512, nb 4) with its training-only decoder and QF head removed."""
    from methods.codiff.cave import CaVE, CaVEConfig

    cave = CaVE(CaVEConfig())
    for name in CAVE_TRAINING_ONLY:
        delattr(cave, name)
    return cave


def generator(merged: bool) -> nn.Module:
    """The release's generator (UNet + VAE + LoRA rank 16 + proj) from SD-2.1-base configs, random weights."""
    from methods.codiff.checkpoint import DEFAULT_RANK
    from methods.codiff.generator import CODiffGenerator, release_lora_spec
    from methods.codiff.sd import build_sd_from_configs

    sd = build_sd_from_configs()
    model = CODiffGenerator(sd, release_lora_spec(sd.unet, sd.vae, DEFAULT_RANK, DEFAULT_RANK))
    if merged:
        model.merge_lora()
    return model


def _tokens(h: int, w: int) -> dict[str, tuple[int, int]]:
    """CaVE's token grid for an h x w image (the UNet's cross-attention length is its area)."""
    return {"tokens": (h // CAVE_STRIDE, w // CAVE_STRIDE)}


def _unet_inputs(e) -> list[InputSpec]:
    (lh, lw), (th, tw) = e["latent"], e["tokens"]
    return [InputSpec((1, 4, lh, lw)), InputSpec((1,), "timestep"), InputSpec((1, th * tw, 1024))]


def build(merged: bool = False, tiled: bool = False) -> Architecture:
    lora = "LoRA merged into the base weights" if merged else "LoRA adapters (rank 16) unmerged, as the release runs"
    tiling = tiling_note(tiled)
    parts = [
        Part("cave_encoder", cave_encoder,
             note="CaVE's encoder only (nc 64/128/256/512, nb 4); its decoder and QF head train CaVE and never run "
                  "at inference, so they are not built or counted"),
        Part("generator", lambda: generator(merged),
             note=f"SD-2.1-base UNet and VAE from methods/codiff/configs/sd21-base, proj Linear(512, 1024); {lora}"),
    ]
    vae_encoder, vae_decoder = vae_stages("generator", lambda p: p["generator"].vae)
    stages = [
        Stage("CaVE encoder", ("cave_encoder",), lambda p: Apply(p["cave_encoder"], lambda m, x: m.embed(x)),
              lambda e: [InputSpec((1, 3, *e["image"]))], image_calls(), {"image": CAVE_STRIDE}),
        Stage("proj", ("generator",), lambda p: p["generator"].proj,
              lambda e: [InputSpec((1, e["tokens"][0] * e["tokens"][1], 512))],
              lambda h, w: [Call(_tokens(h, w))], {"tokens": 1}),
        vae_encoder,
        Stage("UNet", ("generator",), lambda p: UNetStep(p["generator"].unet), _unet_inputs,
              unet_calls(tiled, context=_tokens),
              {"latent": 8, "tokens": 1}),
        vae_decoder,
    ]
    variant = [v for v, on in (("merged", merged), ("tiled", tiled)) if on]
    return Architecture(
        method="-".join(["codiff", *variant]), label="CODiff" + (f" ({', '.join(variant)})" if variant else ""),
        steps=1, parts=parts, stages=stages, paper_method="CODiff",
        notes=[f"One step at t = 499; {lora}; {tiling}.",
               VAE_TILING_NOTE])


def build_merged() -> Architecture:
    return build(merged=True)


def build_tiled() -> Architecture:
    return build(tiled=True)


def build_merged_tiled() -> Architecture:
    return build(merged=True, tiled=True)
