"""The options of CODiff's methods, as typed configs (no torch here, so listing methods stays fast).

`CodiffOptions` is a `PipelineConfig` (precision, colour fix, LoRA merge, posterior, `tiles`) plus the files it
reads; `CaveOptions` the CaVE decoder restorer's. Run configs and `restore --set` fill them by key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from bench.core.errors import ConfigError

Dtype = Literal["auto", "fp32", "fp16", "bf16"]  # auto: fp32 on CPUs, fp16 on CUDA (see pipeline.AUTO_DTYPES)
ColorFix = Literal["adain", "wavelet", "none"]
LatentTiling = Literal["release", "even"]
VaeTiling = Literal["release", "gaussian"]
PromptSource = Literal["cave", "learnable", "empty"]


def _check_tile(stage: str, tile: int, overlap: int) -> None:
    if tile < 0 or (tile and not 0 <= overlap < tile):
        raise ConfigError(f"{stage} tiles: need tile >= 0 and 0 <= overlap < tile, got {tile}, {overlap}")


@dataclass(frozen=True)
class TileConfig:
    """Tile sizes and overlaps of the four tiled stages; a tile of 0 disables tiling for that stage.

    `vae_tiling: release` (default) is the release's VAE tiler (methods.codiff.vae_tiler): the encoder runs
    whole up to 1088 px (its 1024 px tile plus 2 x 32 padding), the decoder up to 246 latent px (224 plus
    2 x 11); beyond, padded tiles that share GroupNorm statistics; the VAE overlaps are unused.
    `vae_tiling: gaussian` blends tiles of at most these sizes with Gaussian weights, each with its own
    GroupNorm statistics: not the release's output, but memory set by the tile, not the image (the release's
    tiler keeps every tile's activations until the last one catches up: methods/codiff/README.md, "Memory").
    UNet tiles follow the release (96 latent pixels overlapping by 32); `latent_tiling`: `release` (its tile
    placement and Gaussian weights) or `even` (tiles shrunk to share the latent evenly, a symmetric Gaussian).
    CaVE's embedding, which the release computes on the whole image, is tiled (on its 1/32 token grid) only
    above 2048 pixels.
    """

    vae_encoder_tile: int = 1024
    vae_encoder_overlap: int = 64
    vae_decoder_tile: int = 224
    vae_decoder_overlap: int = 16
    latent_tile: int = 96
    latent_overlap: int = 32
    cave_tile: int = 2048
    cave_overlap: int = 256
    latent_tiling: LatentTiling = "release"
    vae_tiling: VaeTiling = "release"

    def __post_init__(self) -> None:
        for stage in ("vae_encoder", "vae_decoder", "latent", "cave"):
            padded = stage.startswith("vae") and self.vae_tiling == "release"  # the release's tiler: no overlap
            _check_tile(stage, getattr(self, f"{stage}_tile"), 0 if padded else getattr(self, f"{stage}_overlap"))


@dataclass(frozen=True)
class PipelineConfig:
    """How to run CODiff: precision, colour fix, merged LoRA, posterior sampling, tiles.

    `release_quantization` truncates the output to 8 bits before and after the colour fix, as the
    release's test script does through PIL (off: the harness rounds once when it saves the PNG).
    """

    dtype: Dtype = "auto"
    color_fix: ColorFix = "adain"
    merge_lora: bool = True
    sample_latent: bool = False
    seed: int = 0
    release_quantization: bool = False
    tiles: TileConfig = field(default_factory=TileConfig)


@dataclass(frozen=True)
class CodiffOptions(PipelineConfig):
    """The `codiff` method: the pipeline settings above and the files (see methods/codiff/method.py)."""

    sd_path: str | None = None
    codiff: str | None = None
    cave: str | None = None
    prompt: PromptSource = "cave"
    prompt_path: str | None = None


@dataclass(frozen=True)
class CaveOptions:
    """The `cave` method's configuration: the checkpoint and optional tiling (pixels, 0 = whole image)."""

    cave: str | None = None
    tile: int = 0
    tile_overlap: int = 64

    def __post_init__(self) -> None:
        _check_tile("cave", self.tile, self.tile_overlap)
