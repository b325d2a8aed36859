"""Checkpoint formats: the official release's torch files and this project's safetensors + JSON format.

Official files (`codiff.pkl`, `cave.pth`) are read with `torch.load(weights_only=True)`, never unpickled
freely. This project's format is a pair `NAME.safetensors` (tensors) + `NAME.json` (kind, format version and
the configuration needed to rebuild the model); either file, or the pair's common stem, names it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from bench.core.atomic import atomic_path, atomic_write_text
from bench.core.torchload import RefusedPickle, load_weights_only
from methods.base import MethodError

if TYPE_CHECKING:
    import torch

FORMAT = "codiff-bench"
FORMAT_VERSION = 1
PROJECT_SUFFIXES = (".safetensors", ".json")
CODIFF_KIND = "codiff"
VAE_ADAPTER = "default_encoder"
UNET_ADAPTERS = ("default_encoder", "default_decoder", "default_others")
DEFAULT_RANK = 16  # the rank that trained the released weights (a checkpoint stores its own)
# The official codiff.pkl's list entries, and the LoraSpec fields they fill.
_OFFICIAL_LISTS = {"unet_lora_encoder_modules": "unet_encoder_modules",
                   "unet_lora_decoder_modules": "unet_decoder_modules",
                   "unet_lora_others_modules": "unet_others_modules",
                   "vae_lora_encoder_modules": "vae_encoder_modules"}
_OFFICIAL_TENSORS = ("state_dict_unet", "state_dict_vae", "proj")


class CheckpointError(MethodError):
    """A checkpoint is missing, unreadable or not the kind expected; the message names the file."""


# -- this project's format ------------------------------------------------------------------------------
def project_paths(path: str | Path) -> tuple[Path, Path]:
    """The (tensors, config) file pair that `path` (either file, or their common stem) names."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in PROJECT_SUFFIXES else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")

PROMPT_KIND = "codiff-prompt"  # a fixed prompt embedding (Table 3 ablations), written by stage-2 training

def is_project_checkpoint(path: str | Path) -> bool:
    """True when `path` names this project's format (by suffix, or an existing .json/.safetensors pair)."""
    path = Path(path)
    if path.suffix in PROJECT_SUFFIXES:
        return True
    tensors, config = project_paths(path)
    return tensors.is_file() and config.is_file()


def save_project(path: str | Path, tensors: dict[str, torch.Tensor], kind: str, config: dict[str, Any],
                 evaluation: dict[str, Any] | None = None) -> Path:
    """Write `tensors` and `config` atomically as `NAME.safetensors` + `NAME.json`; return the tensors path.

    `evaluation`, when given, is stored beside the config: measured figures that describe the model (e.g. the
    error of its QF estimates) for tools to report; `project_evaluation` reads it back."""
    from safetensors.torch import save_file

    tensors_path, config_path = project_paths(path)
    contiguous = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    with atomic_path(tensors_path) as tmp:
        save_file(contiguous, str(tmp), metadata={"format": FORMAT, "kind": kind})
    header = {"format": FORMAT, "version": FORMAT_VERSION, "kind": kind, "config": config}
    if evaluation is not None:
        header["evaluation"] = evaluation
    atomic_write_text(config_path, json.dumps(header, indent=2, sort_keys=True) + "\n")
    return tensors_path


def load_project(path: str | Path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a project checkpoint of `kind`; raise CheckpointError naming a missing or mismatched file."""
    from safetensors import safe_open

    tensors_path, config_path = project_paths(path)
    for needed in (tensors_path, config_path):
        if not needed.is_file():
            raise CheckpointError(f"{kind} checkpoint: {needed} is missing (this project's format needs both "
                                  f"{tensors_path.name} and {config_path.name})")
    try:
        header = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_path}: not a readable JSON checkpoint config ({exc})") from exc
    if header.get("format") != FORMAT or header.get("kind") != kind:
        raise CheckpointError(f"{config_path}: expected a {FORMAT} '{kind}' checkpoint, found "
                              f"format={header.get('format')!r} kind={header.get('kind')!r}")
    if int(header.get("version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{config_path}: format version {header['version']} is newer than this code "
                              f"reads ({FORMAT_VERSION})")
    try:
        with safe_open(str(tensors_path), framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("kind", kind) != kind:
                raise CheckpointError(f"{tensors_path}: holds a '{meta.get('kind')}' checkpoint, not '{kind}'")
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except CheckpointError:
        raise
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{tensors_path}: not a readable safetensors file ({exc})") from exc
    return tensors, dict(header.get("config") or {})


def project_evaluation(path: str | Path) -> dict[str, Any]:
    """The `evaluation` a project checkpoint's JSON stores; empty for other files or when it stores none."""
    config_path = project_paths(path)[1]
    if not is_project_checkpoint(path) or not config_path.is_file():
        return {}
    try:
        evaluation = json.loads(config_path.read_text()).get("evaluation")
    except (OSError, json.JSONDecodeError, AttributeError):
        return {}
    return evaluation if isinstance(evaluation, dict) else {}


# -- official (torch) files -----------------------------------------------------------------------------
def load_torch_file(path: str | Path, what: str) -> Any:
    """`torch.load(path, weights_only=True)` on CPU, with errors that name the file and what it should be."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what}: {path} is missing")
    try:
        return load_weights_only(path)
    except RefusedPickle as exc:
        raise CheckpointError(f"{what}: {exc}") from None
    except Exception as exc:  # unpickling errors have many types; all mean "not this file"
        raise CheckpointError(f"{what}: {path} is not a loadable weights-only torch file ({exc})") from exc


def save_torch_file(obj: Any, path: str | Path) -> Path:
    """`torch.save` atomically (the official formats are plain torch files)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


# -- the CODiff generator checkpoint ---------------------------------------------------------------------
@dataclass
class LoraSpec:
    """The LoRA layout a checkpoint stores: ranks and the target module names of each adapter."""

    rank_unet: int = DEFAULT_RANK
    rank_vae: int = DEFAULT_RANK
    unet_encoder_modules: list[str] = field(default_factory=list)
    unet_decoder_modules: list[str] = field(default_factory=list)
    unet_others_modules: list[str] = field(default_factory=list)
    vae_encoder_modules: list[str] = field(default_factory=list)

    def unet_targets(self) -> dict[str, list[str]]:
        """Adapter name -> its target modules, in the release's order."""
        lists = (self.unet_encoder_modules, self.unet_decoder_modules, self.unet_others_modules)
        return dict(zip(UNET_ADAPTERS, lists, strict=True))


@dataclass
class CODiffCheckpoint:
    """What a CODiff checkpoint holds: the LoRA layout and the trained tensors (UNet LoRA + conv_in with peft
    names, VAE encoder LoRA, proj), independent of the file format."""

    spec: LoraSpec
    state_dict_unet: dict[str, torch.Tensor]
    state_dict_vae: dict[str, torch.Tensor]
    proj: dict[str, torch.Tensor]

    # official codiff.pkl: a plain dict, torch.save'd
    @classmethod
    def from_official(cls, obj: Any, source: str = "codiff.pkl") -> "CODiffCheckpoint":
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"{source}: expected the official CODiff dict, found {type(obj).__name__}")
        needed = [*_OFFICIAL_LISTS, "rank_unet", "rank_vae", *_OFFICIAL_TENSORS]
        missing = [k for k in needed if k not in obj]
        if missing:
            raise CheckpointError(f"{source}: not a CODiff checkpoint, missing entries {missing}")
        spec = LoraSpec(rank_unet=int(obj["rank_unet"]), rank_vae=int(obj["rank_vae"]),
                        **{f: list(obj[k]) for k, f in _OFFICIAL_LISTS.items()})
        return cls(spec, *(dict(obj[k]) for k in _OFFICIAL_TENSORS))

    def to_official(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: list(getattr(self.spec, f)) for k, f in _OFFICIAL_LISTS.items()}
        out.update(rank_unet=self.spec.rank_unet, rank_vae=self.spec.rank_vae)
        out.update({k: {n: t.detach().cpu() for n, t in getattr(self, k).items()} for k in _OFFICIAL_TENSORS})
        return out

    # this project's format: tensors prefixed "<part>/" in one safetensors file, the layout in the JSON
    @classmethod
    def from_project(cls, tensors: Mapping[str, torch.Tensor], config: Mapping[str, Any],
                     source: str = "checkpoint") -> "CODiffCheckpoint":
        try:
            spec = LoraSpec(**config["lora"])
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{source}: the JSON config has no valid 'lora' layout ({exc})") from exc
        parts: dict[str, dict[str, torch.Tensor]] = {k: {} for k in _OFFICIAL_TENSORS}
        for key, value in tensors.items():
            part, _, name = key.partition("/")
            if part not in parts or not name:
                raise CheckpointError(f"{source}: unexpected tensor {key!r} (expected {'/, '.join(parts)}/ prefixes)")
            parts[part][name] = value
        return cls(spec, *(parts[k] for k in _OFFICIAL_TENSORS))

    def to_project(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f"{k}/{n}": t for k in _OFFICIAL_TENSORS for n, t in getattr(self, k).items()}
        return tensors, {"lora": asdict(self.spec)}


def load_codiff_checkpoint(path: str | Path) -> CODiffCheckpoint:
    """Read the official codiff.pkl (weights_only) or this project's safetensors + JSON pair."""
    if is_project_checkpoint(path):
        tensors, config = load_project(path, CODIFF_KIND)
        return CODiffCheckpoint.from_project(tensors, config, str(path))
    return CODiffCheckpoint.from_official(load_torch_file(path, "CODiff checkpoint (codiff.pkl)"), str(path))


def save_codiff_checkpoint(checkpoint: CODiffCheckpoint, path: str | Path, fmt: str | None = None) -> Path:
    """Write `checkpoint` as 'official' (a torch file like codiff.pkl) or 'project' (safetensors + JSON);
    by default the format follows the suffix (.safetensors/.json: project, anything else: official)."""
    fmt = fmt or ("project" if Path(path).suffix in PROJECT_SUFFIXES else "official")
    if fmt == "official":
        return save_torch_file(checkpoint.to_official(), path)
    if fmt == "project":
        tensors, config = checkpoint.to_project()
        return save_project(path, tensors, CODIFF_KIND, config)
    raise CheckpointError(f"unknown checkpoint format {fmt!r} (official or project)")
