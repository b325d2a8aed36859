"""Tiny stand-ins for CODiff's models and weight files, with the real architectures and file layouts.

For tests and dry runs without downloads: a Stable-Diffusion-shaped UNet and VAE two levels deep (the
widths of the official parity vectors, cross-attention width 1024 as SD 2.1), a small CaVE, and writers
that put a base-model folder, a codiff.pkl and a cave.pth on disk under their official names. The weights
are random; LoRA B matrices are random too (peft's "gaussian" init leaves them zero) so adapters matter.
"""

from __future__ import annotations

from pathlib import Path

import torch

from methods.codiff.cave import CaVE, CaVEConfig, init_cave_weights, save_cave_official
from methods.codiff.checkpoint import save_codiff_checkpoint
from methods.codiff.generator import CODiffGenerator, release_lora_spec
from methods.codiff.sd import SDComponents

TINY_UNET = {
    "sample_size": 16, "in_channels": 4, "out_channels": 4, "layers_per_block": 1,
    "block_out_channels": [32, 64], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "cross_attention_dim": 1024,
    "attention_head_dim": [2, 4], "norm_num_groups": 8, "use_linear_projection": True, "act_fn": "silu",
}
TINY_VAE = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 1,
    "block_out_channels": [32, 64], "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D"], "norm_num_groups": 8, "sample_size": 64,
    "act_fn": "silu", "scaling_factor": 0.18215,
}
TINY_SCHEDULER = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
                  "num_train_timesteps": 1000, "prediction_type": "epsilon", "clip_sample": False}
TINY_CAVE = CaVEConfig(nc=(8, 16, 32, 512), nb=1)


def tiny_sd(seed: int = 0) -> SDComponents:
    """A two-level SD-shaped UNet and VAE with random weights, and SD's DDPM scheduler."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    torch.manual_seed(seed)
    return SDComponents(UNet2DConditionModel(**TINY_UNET).eval(), AutoencoderKL(**TINY_VAE).eval(),
                        DDPMScheduler(**TINY_SCHEDULER))


def randomize_lora(generator: CODiffGenerator, std: float = 0.02) -> CODiffGenerator:
    """Give the LoRA B matrices random values (peft's init leaves them zero, which hides the adapters)."""
    with torch.no_grad():
        for name, param in generator.trainable_parameters():
            if "lora_B" in name:
                param.normal_(0, std)
    return generator


def tiny_generator(seed: int = 0, rank: int = 4) -> CODiffGenerator:
    """A tiny generator with the release's LoRA layout and random (non-zero) adapter weights."""
    sd = tiny_sd(seed)
    return randomize_lora(CODiffGenerator(sd, release_lora_spec(sd.unet, sd.vae, rank, rank))).eval()


def tiny_cave(seed: int = 0) -> CaVE:
    torch.manual_seed(seed)
    return init_cave_weights(CaVE(TINY_CAVE)).eval()


def write_standin_weights(folder: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write `sd/` (a diffusers folder), `codiff.pkl` and `cave.pth` under `folder`; return their paths."""
    folder = Path(folder)
    generator = tiny_generator(seed)
    checkpoint = generator.checkpoint()
    sd_dir = folder / "sd"
    generator.unet.unload_lora()  # save the base weights only, as the real base folder holds
    generator.vae.unload_lora()
    generator.unet.save_pretrained(sd_dir / "unet")
    generator.vae.save_pretrained(sd_dir / "vae")
    generator.scheduler.save_pretrained(sd_dir / "scheduler")
    paths = {"sd": sd_dir, "codiff": folder / "codiff.pkl", "cave": folder / "cave.pth"}
    save_codiff_checkpoint(checkpoint, paths["codiff"], "official")
    save_cave_official(tiny_cave(seed), paths["cave"])
    return paths


def write_tiny_text_encoder(sd_dir: str | Path, seed: int = 0) -> None:
    """Add `text_encoder/` and `tokenizer/` to an SD folder: a one-layer CLIP text model of SD 2.1's width (1024)
    over a three-token vocabulary, enough for the empty prompt."""
    import json
    import tempfile

    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    sd_dir = Path(sd_dir)
    with tempfile.TemporaryDirectory() as scratch:
        vocab, merges = Path(scratch) / "vocab.json", Path(scratch) / "merges.txt"
        vocab.write_text(json.dumps({"<|startoftext|>": 0, "<|endoftext|>": 1, "!": 2}))
        merges.write_text("#version: 0.2\n")
        CLIPTokenizer(str(vocab), str(merges), pad_token="!").save_pretrained(sd_dir / "tokenizer")
    torch.manual_seed(seed)
    CLIPTextModel(CLIPTextConfig(vocab_size=3, hidden_size=1024, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=4, max_position_embeddings=77, bos_token_id=0, eos_token_id=1,
                                 pad_token_id=2)).save_pretrained(sd_dir / "text_encoder")
