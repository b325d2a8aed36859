"""The harness methods `codiff` (one-step diffusion restoration) and `cave` (CaVE's own decoder restoration).

`codiff` config:
  sd_path        stable-diffusion-2-1-base folder, or the hub id when it is in the local Hugging Face cache
                 (default $CODIFF_BENCH_WEIGHTS/stable-diffusion-2-1-base)
  codiff         the official codiff.pkl or this project's NAME.safetensors + NAME.json (default .../codiff.pkl)
  cave           the official cave.pth or this project's pair (default .../cave.pth)
  prompt         cave (default: condition on proj(CaVE(lq)), the paper) | learnable | empty: condition on the
                 fixed prompt embedding that stage-2 training exported for the Table 3 ablations
  prompt_path    that embedding (this project's format; default: `prompt` beside the codiff checkpoint)
  dtype          auto (default: fp32 on CPUs, where bf16's error was measured too large; fp16 on CUDA, the
                 release's setting) | fp32 | fp16 | bf16; see methods/codiff/README.md, "Precision"
  color_fix      adain (default, as the release) | wavelet | none
  merge_lora     fold LoRA into the base weights before inference (default true: faster, same output
                 within 1e-3 on the parity test)
  sample_latent  sample the VAE posterior instead of taking its mode (default false); seed seeds it
  release_quantization  truncate to 8 bits around the colour fix as the release's script does (default false)
  tiles          {vae_encoder_tile, vae_encoder_overlap (pixels), vae_decoder_tile, vae_decoder_overlap,
                 latent_tile, latent_overlap (latent pixels), cave_tile, cave_overlap (pixels), latent_tiling,
                 vae_tiling}: see methods.codiff.options.TileConfig; a tile of 0 disables tiling for that stage;
                 latent_tiling: release (default: the release's UNet tile placement and Gaussian weights) |
                 even (tiles shrunk to share the latent evenly, a symmetric Gaussian);
                 vae_tiling: release (default: the release's VAE tiler, 1024 px / 224 latent px) | gaussian

`cave` config: cave (as above), tile / tile_overlap (pixels, 0 = whole image).
"""

from __future__ import annotations

from pathlib import Path

from bench.core.weights import WeightFile, default_weights_dir
from methods.base import Method, RestoreRequest
from methods.codiff.checkpoint import PROMPT_KIND, is_project_checkpoint, project_paths
from methods.codiff.options import CaveOptions, CodiffOptions

RELEASE_URL = "https://github.com/jp-guo/CODiff"


def checkpoint_files(path: Path, label: str, default_name: str) -> list[WeightFile]:
    """The file(s) a checkpoint option names: one official torch file, or the project format's pair."""
    where = (f"the released {default_name} ({RELEASE_URL}) or a checkpoint in this project's format; "
             "the default folder is $CODIFF_BENCH_WEIGHTS, else ~/.cache/codiff-bench/weights")
    if is_project_checkpoint(path):
        return [WeightFile(f"{label} ({p.suffix[1:]})", p, where) for p in project_paths(path)]
    return [WeightFile(label, path, where)]


def _path(value: str | None, default_name: str) -> Path:
    return Path(value).expanduser() if value else default_weights_dir() / default_name


class Codiff(Method):
    """CODiff: CaVE-conditioned one-step diffusion on Stable Diffusion 2.1-base, blind to the QF."""

    blind = True
    steps = 1
    description = "CODiff (compression-aware one-step diffusion), released weights"

    config_class = CodiffOptions

    def __init__(self, **config) -> None:
        super().__init__(**config)
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
        self.pipeline = CODiffPipeline(generator, cave, self.opts, self.device, prompt=prompt)

    def restore(self, request: RestoreRequest):
        self.load()
        return self.pipeline(request.lq).to(request.lq.device)


class CaveRestorer(Method):
    """CaVE's decoder as a restorer: a cheap feed-forward CNN, blind (it predicts the QF internally; a CaVE
    with a QF gate in its config blends its output into the input by that estimate)."""

    blind = True
    steps = 1
    description = "CaVE decoder (the CODiff embedder's own restoration, no diffusion)"

    config_class = CaveOptions

    def __init__(self, **config) -> None:
        super().__init__(**config)
        self.model = None

    def required_weights(self) -> list[WeightFile]:
        return checkpoint_files(_path(self.opts.cave, "cave.pth"), "CaVE weights", "cave.pth")

    def _load(self) -> None:
        from methods.codiff.cave import load_cave

        self.model = load_cave(_path(self.opts.cave, "cave.pth")).to(self.device)

    def restore(self, request: RestoreRequest):
        import torch

        from methods.codiff.tiling import tiled_map

        self.load()
        with torch.inference_mode():
            x = request.lq.to(self.device, torch.float32)
            out = tiled_map(self.model.restore, x, self.opts.tile, self.opts.tile_overlap, align=8)
        return out.clamp(0, 1).to(request.lq.device)
