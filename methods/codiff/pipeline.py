"""CODiff inference for images in [0, 1] of any size: CaVE embedding, tiled one-step generation at a chosen
precision, and the colour fix.

The generator and CaVE are the release's (parity-tested); this adds what a user needs around them: padding
to the VAE's factor (and cropping back), tiling that bounds memory, fp32/fp16/bf16, optional merged LoRA.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.codiff.cave import CaVE
from methods.codiff.colorfix import color_fix
from methods.codiff.generator import CODiffGenerator
from methods.codiff.options import PipelineConfig
from methods.codiff.tiling import release_latent_map, tiled_map
from methods.codiff.vae_tiler import ReleaseVAETiler

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# `dtype: auto` per device type. CPU: fp32, because bf16 moves many output values by more than 2 levels
# (methods/codiff/README.md, "Precision"). CUDA: fp16, the release's test setting, which produced the paper's
# numbers (its error against fp32 is measured by methods.codiff.precision on a GPU). Others: fp32.
AUTO_DTYPES = {"cpu": "fp32", "cuda": "fp16"}
CAVE_STRIDE = 32  # CaVE's token grid is 1/32 of the image


def resolve_dtype(dtype: str, device: torch.device) -> str:
    """The dtype to run: `dtype` itself, or for auto the default of the device's type (AUTO_DTYPES)."""
    return AUTO_DTYPES.get(device.type, "fp32") if dtype == "auto" else dtype


def _truncate8(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x.clamp(0, 1) * 255) / 255


class CODiffPipeline:
    """`pipeline(lq)` restores a batch (B, 3, H, W) in [0, 1] and returns the same shape in [0, 1].

    The UNet is conditioned on proj(CaVE(lq)) (the paper), or, for the prompt ablations (Table 3), on a fixed
    prompt embedding (1, tokens, width) learned or taken from the empty text prompt; then `cave` is None.
    """

    def __init__(self, generator: CODiffGenerator, cave: CaVE | None, config: PipelineConfig | None = None,
                 device: str | torch.device = "cpu", prompt: torch.Tensor | None = None) -> None:
        if (cave is None) == (prompt is None):
            raise ValueError("condition CODiff on exactly one of a CaVE or a fixed prompt embedding")
        self.config = config or PipelineConfig()
        self.device = torch.device(device)
        if self.config.merge_lora:
            generator.merge_lora()  # merged in float32, before any cast
        generator.sample_latent = self.config.sample_latent
        self.dtype = resolve_dtype(self.config.dtype, self.device)
        self.generator = generator.to(self.device, DTYPES[self.dtype]).eval()
        self.cave = cave.to(self.device, torch.float32).eval() if cave is not None else None
        self.prompt = prompt.to(self.device, self.generator.dtype) if prompt is not None else None

    @torch.inference_mode()
    def generate(self, lq: torch.Tensor) -> torch.Tensor:
        """The generator's raw output on the [-1, 1] scale (before any colour fix), at the input's size."""
        gen, tiles = self.generator, self.config.tiles
        lq = lq.to(self.device, torch.float32)
        h, w = lq.shape[-2:]
        f = gen.vae_factor
        x = F.pad(lq, (0, -w % f, 0, -h % f), mode="replicate") if (h % f or w % f) else lq
        if self.prompt is not None:
            hidden = self.prompt.expand(x.shape[0], -1, -1)
        else:
            grid = tiled_map(self.cave.embed_grid, x, tiles.cave_tile, tiles.cave_overlap, down=CAVE_STRIDE)
            hidden = gen.hidden_states(grid.flatten(2).transpose(1, 2))
        x = (x * 2 - 1).to(gen.dtype)
        if tiles.vae_tiling == "release":
            moments = gen.posterior_moments(x, ReleaseVAETiler(gen.vae.encoder, tiles.vae_encoder_tile, False, f))
        else:
            moments = tiled_map(gen.posterior_moments, x, tiles.vae_encoder_tile, tiles.vae_encoder_overlap, down=f)
        if self.config.sample_latent:
            gen.latent_generator = torch.Generator(self.device).manual_seed(self.config.seed)
        z = gen.latent_from_moments(moments.to(gen.dtype))
        lh, lw = z.shape[-2:]
        if not tiles.latent_tile or lh * lw <= tiles.latent_tile ** 2:  # the release's criterion: area
            eps = gen.predict_noise(z, hidden)
        else:
            tiler = release_latent_map if tiles.latent_tiling == "release" else tiled_map
            eps = tiler(lambda t: gen.predict_noise(t, hidden), z, tiles.latent_tile, tiles.latent_overlap)
        z_h = gen.step(z, eps)  # the blended prediction stays float32, as the release's
        if tiles.vae_tiling == "release":
            out = gen.decode(z_h, ReleaseVAETiler(gen.vae.decoder, tiles.vae_decoder_tile, True, f))
        else:
            out = tiled_map(gen.decode, z_h, tiles.vae_decoder_tile, tiles.vae_decoder_overlap, up=f)
        return out[..., :h, :w].float()

    def __call__(self, lq: torch.Tensor) -> torch.Tensor:
        lq = lq.to(self.device, torch.float32)
        out = self.generate(lq) * 0.5 + 0.5
        if self.config.release_quantization:
            out = _truncate8(out)
        out = color_fix(out, lq, self.config.color_fix)
        return _truncate8(out) if self.config.release_quantization else out
