"""OSEDiff (one-step effective diffusion) at full size: DAPE's image encoder, the SD-2.1 text encoder, and the
SD-2.1 UNet and VAE with its LoRA (rank 4, unmerged as its test script runs by default).

Not built: DAPE's tagging head. DAPE is RAM (recognize-anything) fine-tuned; its Swin-L image encoder is
timm's `swin_large_patch4_window12_384` configuration, but its tagging head (a query decoder over RAM's label
embeddings, RAM's own BERT variant) has no faithful public configuration in diffusers, transformers or timm.
"""

from __future__ import annotations

from bench.profile.architecture import (
    Architecture,
    InputSpec,
    MissingPart,
    Part,
    Stage,
    fixed_calls,
)
from methods.architectures.models import clip_text
from methods.architectures.sd_family import (
    PROMPT_TOKENS,
    VAE_TILING_NOTE,
    sd_with_lora,
    text_stage,
    tiling_note,
    unet_calls,
    vae_stages,
)
from methods.architectures.stages import UNetStep

LORA_RANK = 4  # OSEDiff's default --lora_rank
RAM_SIZE = 384  # DAPE reads the LQ image resized to 384 x 384


def ram_image_encoder():
    import timm

    return timm.create_model("swin_large_patch4_window12_384", pretrained=False, num_classes=0)


def build(tiled: bool = False) -> Architecture:
    parts = [
        Part("dape_image_encoder", ram_image_encoder,
             note="RAM's Swin-L image encoder (timm swin_large_patch4_window12_384, no classifier)"),
        Part("text_encoder", lambda: clip_text("sd21-base-text-encoder"),
             note="SD-2.1 text encoder (OpenCLIP ViT-H/14 text tower, CLIPTextModel, 23 layers)"),
        Part("sd", lambda: sd_with_lora(LORA_RANK),
             note=f"SD-2.1-base UNet and VAE with LoRA rank {LORA_RANK} on the UNet and VAE encoder, unmerged"),
    ]
    vae_encoder, vae_decoder = vae_stages("sd", lambda p: p["sd"]["vae"])
    stages = [
        Stage("DAPE image encoder (384x384)", ("dape_image_encoder",), lambda p: p["dape_image_encoder"],
              lambda e: [InputSpec((1, 3, RAM_SIZE, RAM_SIZE))], fixed_calls()),
        text_stage("text encoder (77 tokens)", "text_encoder"),
        vae_encoder,
        Stage("UNet", ("sd",), lambda p: UNetStep(p["sd"]["unet"]),
              lambda e: [InputSpec((1, 4, *e["latent"])), InputSpec((1,), "timestep"),
                         InputSpec((1, PROMPT_TOKENS, 1024))],
              unet_calls(tiled), {"latent": 8}),
        vae_decoder,
    ]
    return Architecture(
        method="osediff" + ("-tiled" if tiled else ""), label="OSEDiff" + (" (tiled)" if tiled else ""), steps=1,
        parts=parts, stages=stages, paper_method="OSEDiff",
        missing=[MissingPart("DAPE tagging head",
                             "RAM's tag query decoder and label embeddings are RAM's own code (a modified BERT with "
                             "4585 label queries); no faithful public config builds them with "
                             "diffusers/transformers/timm")],
        notes=[f"One step at t = 999; {tiling_note(tiled)}.", VAE_TILING_NOTE])


def build_tiled() -> Architecture:
    return build(tiled=True)
