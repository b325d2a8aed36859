"""Stage 2: the one-step generator with LoRA, trained with MSE, DISTS and a latent GAN.

CaVE is frozen in eval mode. The generator is the inference path's `CODiffGenerator` (LoRA on the VAE encoder
and the UNet, trainable `conv_in` and `proj`). The prompt is CaVE's embedding through `proj` (the paper), a
learned 77-token embedding, or the SD text encoder's embedding of the empty string (Table 3).

Each step: the generator minimises mse * MSE + dists * DISTS + gan * L_G, where L_G scores z_H with the
discriminator held fixed for that step (its gradient reaches z_H, unless `release_gan_nograd`); then the
discriminator minimises disc * L_D on real latents against the detached z_H: by default, as the release makes
them, HQ through a frozen copy of SD's VAE encoder without adapters, sampled from its posterior.
Validation follows the release's: the colour fix, then the paper's metrics where their weights are present,
with PSNR and SSIM always. Exports `codiff.pkl`
(the release's format) and `codiff.safetensors` + `codiff.json` (this project's), which the `codiff` method
loads; with a prompt other than `cave`, `prompt.safetensors` + `prompt.json` hold the prompt embedding.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.core.errors import ConfigError
from methods.codiff.cave import CaVE, load_cave
from methods.codiff.checkpoint import PROMPT_KIND, save_codiff_checkpoint, save_project
from methods.codiff.colorfix import color_fix
from methods.codiff.discriminator import LatentDiscriminator, PristineLatents
from methods.codiff.generator import CODiffGenerator, release_lora_spec
from methods.codiff.sd import load_sd_components, resolve_sd_path
from methods.codiff.training.config import CodiffTrainConfig
from methods.codiff.training.data import ValPair
from methods.codiff.training.losses import (
    DistsLoss,
    discriminator_loss,
    generator_gan_loss,
)
from methods.codiff.training.trainer import (
    Batch,
    TrainTask,
    adam_optimizer,
    multistep_scheduler,
)
from methods.codiff.training.validation import ValidationScores

log = logging.getLogger(__name__)

PROMPT_TOKENS = 77
ALWAYS_VALIDATED = ("psnr", "ssim")


def empty_prompt_embedding(sd_path: str) -> torch.Tensor:
    """The SD text encoder's embedding of "" (1 x 77 x width), from the SD folder's text_encoder/ and tokenizer/."""
    root = resolve_sd_path(sd_path)
    needed = [root / "text_encoder" / "config.json", root / "tokenizer"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise ConfigError(f"model.prompt 'empty' needs the Stable Diffusion text encoder and tokenizer in {root} "
                          f"(missing: {', '.join(missing)}); use a full SD folder or prompt 'cave' / 'learnable'")
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(root / "tokenizer")
    encoder = CLIPTextModel.from_pretrained(root / "text_encoder").eval()
    ids = tokenizer([""], padding="max_length", max_length=PROMPT_TOKENS, truncation=True,
                    return_tensors="pt").input_ids
    with torch.no_grad():
        return encoder(ids)[0].float()


class GeneratorObjective(nn.Module):
    """Frozen CaVE + the generator (+ a prompt embedding): LQ in [0, 1] -> (restored in [0, 1], z_H)."""

    def __init__(self, generator: CODiffGenerator, cave: CaVE, prompt: str,
                 fixed_prompt: torch.Tensor | None = None) -> None:
        super().__init__()
        self.generator, self.cave, self.prompt_source = generator, cave.eval().requires_grad_(False), prompt
        width = generator.unet.config.cross_attention_dim
        if prompt == "learnable":
            self.prompt = nn.Parameter(torch.randn(1, PROMPT_TOKENS, width))
        elif prompt == "empty":
            if fixed_prompt is None or fixed_prompt.shape[-1] != width:
                raise ConfigError(f"the empty-prompt embedding must have width {width} (the UNet's "
                                  "cross-attention width)")
            self.register_buffer("prompt", fixed_prompt.detach().clone())

    def train(self, mode: bool = True) -> GeneratorObjective:
        super().train(mode)
        self.cave.eval()  # frozen: BatchNorm keeps its running statistics
        return self

    def hidden_states(self, lq: torch.Tensor) -> torch.Tensor:
        if self.prompt_source == "cave":
            with torch.no_grad(), torch.autocast(lq.device.type, enabled=False):  # fp32, as at inference
                embedding = self.cave.embed(lq.float())
            return self.generator.hidden_states(embedding)
        return self.prompt.to(self.generator.dtype).expand(lq.shape[0], -1, -1)

    def latents(self, image: torch.Tensor) -> torch.Tensor:
        """z = VAE.encode(2 * image - 1) * scaling (posterior mode unless the generator samples)."""
        g = self.generator
        return g.latent_from_moments(g.posterior_moments(image * 2 - 1))

    def forward(self, lq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.generator
        z = self.latents(lq)
        z_h = g.step(z, g.predict_noise(z, self.hidden_states(lq)))
        return (g.decode(z_h) + 1) / 2, z_h


class CodiffTask(TrainTask):
    """The stage-2 training task driven by the shared Trainer."""

    name = "codiff"

    def __init__(self, config: CodiffTrainConfig) -> None:
        super().__init__(config)
        w = config.loss
        if min(w.mse, w.dists, w.gan, w.disc) < 0:
            raise ConfigError("loss weights must be non-negative")
        if not (w.mse or w.dists or (w.gan and not w.release_gan_nograd)):
            raise ConfigError("no generator loss is on: set loss.mse, loss.dists or loss.gan (with gradient) above 0")
        self.use_gan = w.gan > 0
        self.find_unused_parameters = self.use_gan and w.release_gan_nograd
        self.dists: DistsLoss | None = None
        self.real_latents: PristineLatents | None = None
        self.scores: ValidationScores | None = None

    # -- building ----------------------------------------------------------------------------------------
    def build_modules(self) -> tuple[GeneratorObjective, LatentDiscriminator | None]:
        """The generator objective and the discriminator (None without the GAN), in float32 on the CPU; with
        the GAN and `discriminator.real_latents: release`, also `self.real_latents`."""
        cfg = self.config
        sd = load_sd_components(cfg.model.sd_path)
        disc_unet = copy.deepcopy(sd.unet) if self.use_gan else None
        if self.use_gan and cfg.discriminator.real_latents == "release":
            self.real_latents = PristineLatents(copy.deepcopy(sd.vae))  # before the generator's adapters
        rank = cfg.model.lora_rank
        generator = CODiffGenerator(sd, release_lora_spec(sd.unet, sd.vae, rank, rank))
        generator.sample_latent = cfg.model.sample_latent
        generator.set_trainable()
        if cfg.model.gradient_checkpointing:
            generator.unet.enable_gradient_checkpointing()
            generator.vae.enable_gradient_checkpointing()
        fixed = empty_prompt_embedding(cfg.model.sd_path) if cfg.model.prompt == "empty" else None
        objective = GeneratorObjective(generator, load_cave(cfg.model.cave_path), cfg.model.prompt, fixed)
        if cfg.model.prompt != "cave":
            generator.proj.requires_grad_(False)
        discriminator = None
        if disc_unet is not None:
            discriminator = LatentDiscriminator(disc_unet, cfg.discriminator.lora_rank or rank,
                                                cfg.discriminator.timestep)
            discriminator.set_trainable()
        return objective, discriminator

    def setup(self, accelerator: Any) -> None:
        self.accelerator = accelerator
        cfg = self.config
        objective, discriminator = self.build_modules()
        factor = objective.generator.vae_factor
        if cfg.data.patch_size % factor or (cfg.val.crop or 0) % factor:
            raise ConfigError(f"data.patch_size and val.crop must be multiples of the VAE's factor {factor}")
        objective.to(accelerator.device).train()
        if self.real_latents is not None:
            self.real_latents.to(accelerator.device)
        if cfg.loss.dists:
            self.dists = DistsLoss().to(accelerator.device)
        modules: dict[str, nn.Module] = {"generator": objective}
        optimizers = {"generator": adam_optimizer(self._trainable(objective), cfg.optim, decoupled=True)}
        if discriminator is not None:
            discriminator.to(accelerator.device).train()
            modules["discriminator"] = discriminator
            optimizers["discriminator"] = adam_optimizer(self._trainable(discriminator), cfg.disc_optim,
                                                         decoupled=True)
        self.schedulers = {name: multistep_scheduler(opt, cfg.optim if name == "generator" else cfg.disc_optim)
                           for name, opt in optimizers.items()}
        names = list(modules)
        prepared = accelerator.prepare(*[modules[n] for n in names], *[optimizers[n] for n in names])
        prepared = prepared if isinstance(prepared, tuple) else (prepared,)
        self.modules = dict(zip(names, prepared[:len(names)]))
        self.optimizers = dict(zip(names, prepared[len(names):]))
        self.trainable_only = set(names)

    @staticmethod
    def _trainable(module: nn.Module) -> list[nn.Parameter]:
        return [p for p in module.parameters() if p.requires_grad]

    # -- one step ----------------------------------------------------------------------------------------
    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        w, acc = self.config.loss, self.accelerator
        hq = batch["hq"]
        with acc.autocast():
            out, z_h = self.modules["generator"](batch["lq"])
        losses: dict[str, torch.Tensor] = {}
        total = hq.new_zeros(())
        if w.mse:
            losses["mse"] = F.mse_loss(out.float(), hq)
            total = total + w.mse * losses["mse"]
        if w.dists:
            losses["dists"] = self.dists(out, hq)
            total = total + w.dists * losses["dists"]
        if self.use_gan:
            losses["gan"] = generator_gan_loss(self._score_fixed(z_h))
            total = total + w.gan * losses["gan"]
        losses["loss"] = total
        self.optimise(total, "generator", self._trainable(self.unwrap("generator")))
        if self.use_gan:
            losses["disc"] = self._discriminator_step(hq, z_h.detach())
        return {k: v.detach() for k, v in losses.items()}

    def _score_fixed(self, z_h: torch.Tensor) -> torch.Tensor:
        """Discriminator logits for z_H with its parameters frozen for this step (gradient reaches z_H only)."""
        discriminator = self.unwrap("discriminator")
        params = self._trainable(discriminator)
        for p in params:
            p.requires_grad_(False)
        try:
            with self.accelerator.autocast():
                return discriminator(z_h, features_grad=not self.config.loss.release_gan_nograd)
        finally:
            for p in params:
                p.requires_grad_(True)

    def _discriminator_step(self, hq: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), self.accelerator.autocast():
            real = self.real_latents(hq) if self.real_latents is not None else self.unwrap("generator").latents(hq)
        with self.accelerator.autocast():
            logits = self.modules["discriminator"](torch.cat([real, fake.to(real.dtype)]),
                                                   features_grad=not self.config.loss.release_gan_nograd)
        real_logits, fake_logits = logits.chunk(2)
        loss = discriminator_loss(real_logits, fake_logits)
        self.optimise(self.config.loss.disc * loss, "discriminator",
                      self._trainable(self.unwrap("discriminator")))
        return loss

    # -- validation and export ---------------------------------------------------------------------------
    @property
    def objective(self) -> GeneratorObjective:
        return self.unwrap("generator")

    @torch.no_grad()
    def validate(self, pairs: list[ValPair]) -> list[dict[str, Any]]:
        objective, val = self.objective, self.config.val
        if self.scores is None:  # the metrics' networks are built once
            self.scores = ValidationScores(ALWAYS_VALIDATED, val.metrics, self.device)
        scores = self.scores.fresh()
        objective.eval()
        try:
            for pair in pairs:
                with self.accelerator.autocast():
                    out, _ = objective(pair.lq.to(self.device))
                out = color_fix(out.float().cpu(), pair.lq, val.color_fix)
                scores.add_images(pair.qf, pair.lq, pair.hq, prefix="lq_", names=ALWAYS_VALIDATED)
                scores.add_images(pair.qf, out, pair.hq)
        finally:
            objective.train()
        return scores.rows()

    def export(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        objective = self.objective
        checkpoint = objective.generator.checkpoint()
        paths = [save_codiff_checkpoint(checkpoint, folder / "codiff.pkl", "official"),
                 save_codiff_checkpoint(checkpoint, folder / "codiff.safetensors", "project")]
        if objective.prompt_source != "cave":
            paths.append(save_project(folder / "prompt", {"prompt": objective.prompt.detach().float().cpu()},
                                      PROMPT_KIND, {"source": objective.prompt_source}))
        return paths
