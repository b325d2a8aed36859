"""The CODiff generator (stage 2): Stable Diffusion's VAE and UNet with the release's LoRA adapters, a
trainable UNet `conv_in` and a projection of CaVE's embedding to the cross-attention width, run as one
denoising step at t = 499.

    z_L = VAE.encode(lq) * scaling_factor              (posterior mode by default; sampling is an option)
    eps = UNet(z_L, 499, encoder_hidden_states = proj(c_L))
    z_H = (z_L - sqrt(1 - abar_499) * eps) / sqrt(abar_499)     (DDPMScheduler.step with one inference step)
    out = clamp(VAE.decode(z_H / scaling_factor), -1, 1)

Images here are on the [-1, 1] scale, as the release's generator takes them; `CODiffPipeline`
(methods.codiff.pipeline) wraps this for images in [0, 1], with tiling, precision and colour fix.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterator

import torch
from torch import nn

from methods.codiff.checkpoint import (
    DEFAULT_RANK,
    VAE_ADAPTER,
    CheckpointError,
    CODiffCheckpoint,
    LoraSpec,
    load_codiff_checkpoint,
)
from methods.codiff.sd import SDComponents, load_sd_components

TIMESTEP = 499
EMBED_DIM = 512  # CaVE's embedding width; proj maps it to the UNet's cross-attention width
# The release's LoRA target patterns (substrings of parameter names; biases and norms are skipped).
UNET_PATTERNS = ("to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_shortcut", "conv_out",
                 "proj_in", "proj_out", "ff.net.2", "ff.net.0.proj")
VAE_PATTERNS = ("conv1", "conv2", "conv_in", "conv_shortcut", "conv", "conv_out", "to_k", "to_q", "to_v", "to_out.0")


def _weight_names(model: nn.Module) -> Iterator[str]:
    """Module names of the weights that the release's LoRA rules consider (no biases, no norms)."""
    for name, _ in model.named_parameters():
        if "bias" not in name and "norm" not in name:
            yield name.removesuffix(".weight")


def release_lora_spec(unet: nn.Module, vae: nn.Module, rank_unet: int = DEFAULT_RANK,
                      rank_vae: int = DEFAULT_RANK) -> LoraSpec:
    """The target lists that the release derives for training from a fresh UNet and VAE (no adapters yet).

    UNet: a weight matching a pattern goes to default_encoder if its name contains down_blocks or conv_in,
    default_decoder if up_blocks or conv_out, else default_others. VAE: encoder weights matching a pattern,
    plus quant_conv (not post_quant_conv). Lists are de-duplicated (the release's may repeat names).
    """
    spec = LoraSpec(rank_unet=rank_unet, rank_vae=rank_vae)
    for name in _weight_names(unet):
        if not any(p in name for p in UNET_PATTERNS):
            continue
        if "down_blocks" in name or "conv_in" in name:
            spec.unet_encoder_modules.append(name)
        elif "up_blocks" in name or "conv_out" in name:
            spec.unet_decoder_modules.append(name)
        else:
            spec.unet_others_modules.append(name)
    for name in _weight_names(vae):
        if (name.startswith("encoder.") and any(p in name for p in VAE_PATTERNS)) or name == "quant_conv":
            spec.vae_encoder_modules.append(name)
    return spec


def add_lora_adapters(unet: nn.Module, vae: nn.Module, spec: LoraSpec) -> None:
    """Inject the release's adapters with peft (init "gaussian", default alpha) and activate them all."""
    from peft import LoraConfig

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")  # several adapters by design
        for adapter, targets in spec.unet_targets().items():
            if targets:
                config = LoraConfig(r=spec.rank_unet, init_lora_weights="gaussian", target_modules=targets)
                unet.add_adapter(config, adapter_name=adapter)
    unet.set_adapter([a for a, t in spec.unet_targets().items() if t])
    if spec.vae_encoder_modules:
        vae.add_adapter(LoraConfig(r=spec.rank_vae, init_lora_weights="gaussian",
                                   target_modules=spec.vae_encoder_modules), adapter_name=VAE_ADAPTER)
        vae.set_adapter([VAE_ADAPTER])


def merge_lora(model: nn.Module) -> None:
    """Fold every active LoRA adapter into its base weights and remove the adapter layers (peft merge,
    through diffusers' fuse/unload), so that inference runs the plain layers."""
    if getattr(model, "_hf_peft_config_loaded", False):
        model.fuse_lora()
        model.unload_lora()


def _unet_trainable(name: str) -> bool:
    return "lora" in name or "conv_in" in name


class CODiffGenerator(nn.Module):
    """VAE + UNet (+ LoRA) + proj, one denoising step. `forward(lq, c_L)` takes lq on the [-1, 1] scale,
    (B, 3, H, W) with H and W multiples of the VAE's downsampling factor, and CaVE tokens c_L (B, T, 512);
    it returns the restored image on the [-1, 1] scale, clamped.
    """

    def __init__(self, sd: SDComponents, spec: LoraSpec, timestep: int = TIMESTEP) -> None:
        super().__init__()
        self.unet, self.vae, self.scheduler = sd.unet, sd.vae, sd.scheduler
        self.spec = spec
        self.timestep = timestep
        self.proj = nn.Linear(EMBED_DIM, self.unet.config.cross_attention_dim)
        add_lora_adapters(self.unet, self.vae, spec)
        self.merged = False
        self.sample_latent = False  # posterior mode (deterministic) unless set
        self.latent_generator: torch.Generator | None = None

    @classmethod
    def from_checkpoint(cls, sd: SDComponents, checkpoint: CODiffCheckpoint, source: str = "checkpoint",
                        timestep: int = TIMESTEP) -> "CODiffGenerator":
        """A generator with the checkpoint's LoRA layout and trained tensors, in eval mode."""
        generator = cls(sd, checkpoint.spec, timestep)
        generator.load_trained_state(checkpoint.state_dict_unet, checkpoint.state_dict_vae, checkpoint.proj, source)
        return generator.eval()

    def checkpoint(self) -> CODiffCheckpoint:
        """The trained state as a CODiffCheckpoint (save it with checkpoint.save_codiff_checkpoint)."""
        return CODiffCheckpoint(self.spec, **self.trained_state())

    # -- the three stages (tiling calls them on tiles) -------------------------------------------------
    @property
    def scaling_factor(self) -> float:
        return float(self.vae.config.scaling_factor)

    @property
    def vae_factor(self) -> int:
        """Pixels per latent pixel (8 for SD)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def posterior_moments(self, lq: torch.Tensor, encoder: Callable | None = None) -> torch.Tensor:
        """The VAE posterior's parameters (mean and log-variance, stacked on channels) for lq in [-1, 1];
        `encoder` runs in place of the VAE's encoder network (a tiler around it)."""
        h = (self.vae.encoder if encoder is None else encoder)(lq.to(self.dtype)).to(self.dtype)
        return h if self.vae.quant_conv is None else self.vae.quant_conv(h)

    def latent_from_moments(self, moments: torch.Tensor) -> torch.Tensor:
        """z_L: the posterior mode (default) or a sample, times the scaling factor."""
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

        posterior = DiagonalGaussianDistribution(moments)
        z = posterior.sample(self.latent_generator) if self.sample_latent else posterior.mode()
        return z * self.scaling_factor

    def hidden_states(self, c_l: torch.Tensor) -> torch.Tensor:
        """proj(c_L): the UNet's cross-attention input."""
        return self.proj(c_l.to(self.proj.weight.dtype))

    def predict_noise(self, z: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """The UNet's output at the fixed timestep (noise, for SD-2.1-base's epsilon prediction)."""
        t = torch.full((z.shape[0],), self.timestep, device=z.device, dtype=torch.long)
        hidden = hidden.expand(z.shape[0], -1, -1) if hidden.shape[0] == 1 else hidden
        return self.unet(z, t, encoder_hidden_states=hidden, return_dict=False)[0]

    def step(self, z: torch.Tensor, model_output: torch.Tensor) -> torch.Tensor:
        """z_H from z_L and the UNet output: DDPMScheduler.step with one inference step (its variance term is
        zero there), in float32."""
        config = self.scheduler.config
        if getattr(config, "thresholding", False):
            raise CheckpointError("scheduler thresholding is not supported by the one-step generator")
        abar = self.scheduler.alphas_cumprod[self.timestep].double()
        a, b = float(abar.sqrt()), float((1 - abar).sqrt())
        z32, out32 = z.float(), model_output.float()
        if config.prediction_type == "epsilon":
            x0 = (z32 - b * out32) / a
        elif config.prediction_type == "v_prediction":
            x0 = a * z32 - b * out32
        elif config.prediction_type == "sample":
            x0 = out32
        else:
            raise CheckpointError(f"unsupported scheduler prediction_type {config.prediction_type!r}")
        if getattr(config, "clip_sample", False):
            x0 = x0.clamp(-config.clip_sample_range, config.clip_sample_range)
        return x0.to(z.dtype)

    def decode(self, z: torch.Tensor, decoder: Callable | None = None) -> torch.Tensor:
        """VAE.decode(z_H / scaling_factor), clamped to [-1, 1]; `decoder` runs in place of the VAE's decoder
        network (a tiler around it)."""
        z = z / self.scaling_factor
        z = z if self.vae.post_quant_conv is None else self.vae.post_quant_conv(z)
        return (self.vae.decoder if decoder is None else decoder)(z).clamp(-1, 1)

    def forward(self, lq: torch.Tensor, c_l: torch.Tensor) -> torch.Tensor:
        z = self.latent_from_moments(self.posterior_moments(lq))
        z_h = self.step(z, self.predict_noise(z, self.hidden_states(c_l)))
        return self.decode(z_h)

    # -- weights ------------------------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.proj.weight.dtype

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """(name, parameter) of everything stage 2 trains: UNet LoRA (three adapters) and conv_in, proj, and
        the VAE encoder's LoRA. Names are prefixed with unet., vae. or proj."""
        named = [(f"unet.{n}", p) for n, p in self.unet.named_parameters() if _unet_trainable(n)]
        named += [(f"vae.{n}", p) for n, p in self.vae.named_parameters() if "lora" in n]
        named += [(f"proj.{n}", p) for n, p in self.proj.named_parameters()]
        return named

    def set_trainable(self) -> list[nn.Parameter]:
        """Freeze everything except `trainable_parameters()`; return those parameters."""
        self.requires_grad_(False)
        params = [p for _, p in self.trainable_parameters()]
        for p in params:
            p.requires_grad_(True)
        return params

    def merge_lora(self) -> None:
        """Fold the LoRA adapters into the base weights (inference only: the adapters cannot train after)."""
        merge_lora(self.unet)
        merge_lora(self.vae)
        self.merged = True

    def trained_state(self) -> dict[str, dict[str, torch.Tensor]]:
        """The release's checkpoint tensors: UNet tensors named with 'lora' or 'conv_in', VAE 'lora' tensors,
        and proj's state dict."""
        if self.merged:
            raise CheckpointError("LoRA has been merged into the base weights; the adapters can no longer be saved")
        return {
            "state_dict_unet": {k: v for k, v in self.unet.state_dict().items() if _unet_trainable(k)},
            "state_dict_vae": {k: v for k, v in self.vae.state_dict().items() if "lora" in k},
            "proj": dict(self.proj.state_dict()),
        }

    def load_trained_state(self, state_dict_unet: dict[str, torch.Tensor], state_dict_vae: dict[str, torch.Tensor],
                           proj: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
        """Copy checkpoint tensors in; every trainable tensor must be present with its shape (strict)."""
        for part, model, state, keep in (("UNet", self.unet, state_dict_unet, _unet_trainable),
                                         ("VAE", self.vae, state_dict_vae, lambda n: "lora" in n)):
            own = {k: v for k, v in model.state_dict().items() if keep(k)}
            missing = sorted(set(own) - set(state))
            unexpected = sorted(set(state) - set(own))
            if missing or unexpected:
                raise CheckpointError(f"{source}: {part} tensors do not match the LoRA layout: missing "
                                      f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
                                      f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
            for key, value in own.items():
                if value.shape != state[key].shape:
                    raise CheckpointError(f"{source}: {part} tensor {key} has shape {tuple(state[key].shape)}, "
                                          f"the model expects {tuple(value.shape)}")
                value.copy_(state[key])
        try:
            self.proj.load_state_dict(proj)
        except RuntimeError as exc:
            raise CheckpointError(f"{source}: proj does not fit Linear({EMBED_DIM}, "
                                  f"{self.proj.out_features}): {exc}") from exc


def load_generator(sd_path: str | None, codiff_path: str) -> CODiffGenerator:
    """The released (or a trained) generator: a base SD folder plus codiff.pkl or a project checkpoint (fp32)."""
    checkpoint = load_codiff_checkpoint(codiff_path)
    return CODiffGenerator.from_checkpoint(load_sd_components(sd_path), checkpoint, str(codiff_path))
