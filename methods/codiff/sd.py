"""The Stable Diffusion base model: find its folder (local path, or a hub id already in the local Hugging Face
cache, never downloaded), list the files it needs, and load the UNet, VAE and scheduler with diffusers.

`build_sd_from_configs` builds the same models with random weights from architecture configs only (the
SD-2.1-base configs ship in methods/codiff/configs/sd21-base), for profiling and tests without any download.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from bench.core.resources import package_file
from bench.core.weights import WeightFile, default_weights_dir
from methods.codiff.checkpoint import CheckpointError

HUB_ID = "stabilityai/stable-diffusion-2-1-base"
DEFAULT_FOLDER_NAME = "stable-diffusion-2-1-base"
SD21_CONFIGS = package_file("methods.codiff", "configs", "sd21-base")
WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
CONFIG_FILES = ("unet/config.json", "vae/config.json", "scheduler/scheduler_config.json")


@dataclass
class SDComponents:
    """The three pieces of Stable Diffusion that CODiff uses (no text encoder)."""

    unet: torch.nn.Module
    vae: torch.nn.Module
    scheduler: object


def default_sd_path() -> Path:
    return default_weights_dir() / DEFAULT_FOLDER_NAME


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "~", "/"))


def resolve_sd_path(path_or_id: str | Path | None) -> Path:
    """A local model folder: the path itself when it exists, else the hub id's snapshot in the local cache.

    Never downloads (HF_HUB_OFFLINE-safe). A hub id that is not cached resolves to a path under the cache
    that does not exist, so that callers report it as missing with `sd_weight_files`.
    """
    if path_or_id is None:
        return default_sd_path()
    path = Path(path_or_id).expanduser()
    if path.exists() or not _looks_like_hub_id(str(path_or_id)):
        return path
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(path_or_id), local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        owner, name = str(path_or_id).split("/")
        return Path(constants.HF_HUB_CACHE) / f"models--{owner}--{name}" / "snapshots" / "(not cached)"


def _weights_file(folder: Path) -> Path:
    """The component's weights file: safetensors when present, else .bin, else the expected safetensors name."""
    for name in WEIGHT_NAMES:
        if (folder / name).is_file():
            return folder / name
    return folder / WEIGHT_NAMES[0]


def sd_weight_files(path_or_id: str | Path | None) -> list[WeightFile]:
    """Every file of the base model that CODiff reads, as WeightFiles that say where they belong."""
    root = resolve_sd_path(path_or_id)
    where = f"from the hub repository {HUB_ID}; set sd_path / --sd-path to its folder, or to the hub id if cached"
    files = [WeightFile(f"SD {rel}", root / rel, where) for rel in CONFIG_FILES]
    files += [WeightFile(f"SD {part} weights", _weights_file(root / part), where) for part in ("unet", "vae")]
    return files


def load_sd_components(path_or_id: str | Path | None, dtype: torch.dtype = torch.float32) -> SDComponents:
    """Load the UNet, VAE (diffusers) and a DDPMScheduler from a local folder; errors name missing files."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    root = resolve_sd_path(path_or_id)
    missing = [w for w in sd_weight_files(path_or_id) if w.status() != "present"]
    if missing:
        raise CheckpointError(f"Stable Diffusion base model at {root}: missing " +
                              ", ".join(str(w.path) for w in missing) + f" ({missing[0].where})")
    try:
        unet = _load_strict(UNet2DConditionModel, root, "unet", dtype)
        vae = _load_strict(AutoencoderKL, root, "vae", dtype)
        scheduler = DDPMScheduler.from_pretrained(root, subfolder="scheduler")
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"Stable Diffusion base model at {root} could not be loaded: {exc}") from exc
    return SDComponents(unet.eval(), vae.eval(), scheduler)


def _load_strict(cls, root: Path, subfolder: str, dtype: torch.dtype):
    """`cls.from_pretrained`, refusing a weights file whose tensors do not fill the model (diffusers only warns
    and leaves those weights random)."""
    model, info = cls.from_pretrained(root, subfolder=subfolder, torch_dtype=dtype, output_loading_info=True)
    problems = {k: info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys") if info.get(k)}
    if problems:
        detail = "; ".join(f"{k.replace('_', ' ')}: {', '.join(map(str, v[:5]))}{' ...' if len(v) > 5 else ''}"
                           for k, v in problems.items())
        raise CheckpointError(f"{root / subfolder / _weights_file(root / subfolder).name} does not hold the "
                              f"{cls.__name__} that {root / subfolder / 'config.json'} describes ({detail})")
    return model


def build_sd_from_configs(folder: str | Path = SD21_CONFIGS, seed: int = 0,
                          dtype: torch.dtype = torch.float32) -> SDComponents:
    """UNet, VAE and scheduler with random weights from a folder of diffusers configs (no weights needed)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

    folder = Path(folder)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
    scheduler = DDPMScheduler.from_config(DDPMScheduler.load_config(folder / "scheduler"))
    return SDComponents(unet.to(dtype).eval(), vae.to(dtype).eval(), scheduler)
