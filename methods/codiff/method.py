"""The harness methods `codiff` (one-step diffusion restoration) and `cave` (CaVE's own decoder restoration).

`codiff` config:
  sd_path        stable-diffusion-2-1-base folder, or the hub id when it is in the local Hugging Face cache
                 (default $CODIFF_BENCH_WEIGHTS/stable-diffusion-2-1-base)
  codiff         the official codiff.pkl or this project's NAME.safetensors + NAME.json (default .../codiff.pkl)
  cave           the official cave.pth or this project's pair (default .../cave.pth)
  prompt         cave (default: condition on proj(CaVE(lq)), the paper) | learnable | empty: condition on the
                 fixed prompt embedding that stage-2 training exported for the Table 3 ablations
  prompt_path    that embedding (this project's format; default: `prompt` beside the codiff checkpoint)
  dtype          fp32 (default; the fast path on CPUs) | fp16 (the release's setting on GPUs) | bf16
  color_fix      adain (default, as the release) | wavelet | none
  merge_lora     fold LoRA into the base weights before inference (default true: faster, same output
                 within 1e-3 on the parity test)
  sample_latent  sample the VAE posterior instead of taking its mode (default false); seed seeds it
  release_quantization  truncate to 8 bits around the colour fix as the release's script does (default false)
  vae_encoder_tile / vae_encoder_overlap (pixels), vae_decoder_tile / vae_decoder_overlap and
  latent_tile / latent_overlap (latent pixels), cave_tile / cave_overlap (pixels): tiling, see
                 methods.codiff.tiling.TileConfig; a tile of 0 disables tiling for that stage.

`cave` config: cave (as above), tile / tile_overlap (pixels, 0 = whole image).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from methods.base import Method, MethodError, WeightFile, default_weights_dir
from methods.codiff.checkpoint import PROMPT_KIND, is_project_checkpoint, project_paths
from methods.codiff.tiling import TileConfig
from methods.registry import register_method

RELEASE_URL = "https://github.com/jp-guo/CODiff"
PROMPT_SOURCES = ("cave", "learnable", "empty")
_TILE_FIELDS = [f.name for f in fields(TileConfig)]
_TILE_DEFAULTS = TileConfig()


def checkpoint_files(path: Path, label: str, default_name: str) -> list[WeightFile]:
    """The file(s) a checkpoint option names: one official torch file, or the project format's pair."""
    where = (f"the released {default_name} ({RELEASE_URL}) or a checkpoint in this project's format; "
             "the default folder is $CODIFF_BENCH_WEIGHTS, else ~/.cache/codiff-bench/weights")
    if is_project_checkpoint(path):
        return [WeightFile(f"{label} ({p.suffix[1:]})", p, where) for p in project_paths(path)]
    return [WeightFile(label, path, where)]


def _path(value: str | None, default_name: str) -> Path:
    return Path(value).expanduser() if value else default_weights_dir() / default_name


@dataclass(frozen=True)
class CodiffOptions:
    """The `codiff` method's configuration (see the module docstring)."""

    sd_path: str | None = None
    codiff: str | None = None
    cave: str | None = None
    prompt: str = "cave"
    prompt_path: str | None = None
    dtype: str = "fp32"
    color_fix: str = "adain"
    merge_lora: bool = True
    sample_latent: bool = False
    seed: int = 0
    release_quantization: bool = False
    vae_encoder_tile: int = _TILE_DEFAULTS.vae_encoder_tile
    vae_encoder_overlap: int = _TILE_DEFAULTS.vae_encoder_overlap
    vae_decoder_tile: int = _TILE_DEFAULTS.vae_decoder_tile
    vae_decoder_overlap: int = _TILE_DEFAULTS.vae_decoder_overlap
    latent_tile: int = _TILE_DEFAULTS.latent_tile
    latent_overlap: int = _TILE_DEFAULTS.latent_overlap
    cave_tile: int = _TILE_DEFAULTS.cave_tile
    cave_overlap: int = _TILE_DEFAULTS.cave_overlap

    def pipeline_config(self):
        """The PipelineConfig these options describe (validates dtype, colour fix and tiles)."""
        from methods.codiff.pipeline import PipelineConfig

        tiles = TileConfig(**{name: getattr(self, name) for name in _TILE_FIELDS})
        return PipelineConfig(dtype=self.dtype, color_fix=self.color_fix, merge_lora=self.merge_lora,
                              sample_latent=self.sample_latent, seed=self.seed,
                              release_quantization=self.release_quantization, tiles=tiles)


@register_method("codiff")
class Codiff(Method):
    """CODiff: CaVE-conditioned one-step diffusion on Stable Diffusion 2.1-base, blind to the QF."""

    blind = True
    steps = 1
    description = "CODiff (compression-aware one-step diffusion), released weights"

    def __init__(self, **config) -> None:
        super().__init__(**config)
        self.opts = self.options(CodiffOptions)
        try:
            self.pipeline_config = self.opts.pipeline_config()
        except ValueError as exc:
            raise MethodError(f"codiff: {exc}") from exc
        if self.opts.prompt not in PROMPT_SOURCES:
            raise MethodError(f"codiff: prompt must be one of {', '.join(PROMPT_SOURCES)}, not {self.opts.prompt!r}")
        self.pipeline = None

    def _prompt_path(self) -> Path:
        if self.opts.prompt_path:
            return Path(self.opts.prompt_path).expanduser()
        return _path(self.opts.codiff, "codiff.pkl").parent / "prompt.safetensors"

    def required_weights(self) -> list[WeightFile]:
        from methods.codiff.sd import sd_weight_files

        if self.opts.prompt == "cave":
            condition = checkpoint_files(_path(self.opts.cave, "cave.pth"), "CaVE weights", "cave.pth")
        else:
            where = f"exported by `codiff-bench train-codiff` with model.prompt {self.opts.prompt}, beside codiff.pkl"
            condition = [WeightFile(f"prompt embedding ({p.suffix[1:]})", p, where)
                         for p in project_paths(self._prompt_path())]
        return [*sd_weight_files(self.opts.sd_path),
                *checkpoint_files(_path(self.opts.codiff, "codiff.pkl"), "CODiff weights", "codiff.pkl"),
                *condition]

    def _load(self) -> None:
        from methods.codiff.cave import load_cave
        from methods.codiff.checkpoint import load_project
        from methods.codiff.generator import load_generator
        from methods.codiff.pipeline import CODiffPipeline

        generator = load_generator(self.opts.sd_path, str(_path(self.opts.codiff, "codiff.pkl")))
        if self.opts.prompt == "cave":
            cave, prompt = load_cave(_path(self.opts.cave, "cave.pth")), None
        else:
            cave, prompt = None, load_project(self._prompt_path(), PROMPT_KIND)[0]["prompt"]
        self.pipeline = CODiffPipeline(generator, cave, self.pipeline_config, self.device, prompt=prompt)

    def restore(self, lq: torch.Tensor, *, qf: int | None = None, jpeg_bytes: bytes | None = None) -> torch.Tensor:
        self.load()
        return self.pipeline(lq).to(lq.device)

    def describe(self) -> dict:
        return {**super().describe(), "pipeline": asdict(self.pipeline_config)}


@dataclass(frozen=True)
class CaveOptions:
    """The `cave` method's configuration: the checkpoint and optional tiling (pixels)."""

    cave: str | None = None
    tile: int = 0
    tile_overlap: int = 64

    def __post_init__(self) -> None:
        if self.tile < 0 or (self.tile and not 0 <= self.tile_overlap < self.tile):
            raise MethodError(f"cave: need tile >= 0 and 0 <= tile_overlap < tile (got {self.tile}, "
                              f"{self.tile_overlap})")


@register_method("cave")
class CaveRestorer(Method):
    """CaVE's decoder as a restorer: a cheap feed-forward CNN, blind (it predicts the QF internally; a CaVE
    with a QF gate in its config blends its output into the input by that estimate)."""

    blind = True
    steps = 1
    description = "CaVE decoder (the CODiff embedder's own restoration, no diffusion)"

    def __init__(self, **config) -> None:
        super().__init__(**config)
        self.opts = self.options(CaveOptions)
        self.model = None

    def required_weights(self) -> list[WeightFile]:
        return checkpoint_files(_path(self.opts.cave, "cave.pth"), "CaVE weights", "cave.pth")

    def _load(self) -> None:
        from methods.codiff.cave import load_cave

        self.model = load_cave(_path(self.opts.cave, "cave.pth")).to(self.device)

    @torch.inference_mode()
    def restore(self, lq: torch.Tensor, *, qf: int | None = None, jpeg_bytes: bytes | None = None) -> torch.Tensor:
        from methods.codiff.tiling import tiled_map

        self.load()
        x = lq.to(self.device, torch.float32)
        out = tiled_map(self.model.restore, x, self.opts.tile, self.opts.tile_overlap, align=8)
        return out.clamp(0, 1).to(lq.device)
