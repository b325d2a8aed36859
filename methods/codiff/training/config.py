"""Dataclass configurations of both training stages, read from YAML with every key checked.

A YAML file maps onto the dataclasses section by section; an unknown key or a value of the wrong kind is an
error naming the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from bench.yamlfile import read_mapping


class ConfigError(ValueError):
    """A training configuration is malformed; the message names the offending key."""


# -- shared sections --------------------------------------------------------------------------------------
@dataclass
class QFComponent:
    """One part of the QF mixture: drawn with probability `prob`, uniformly from an inclusive `range` or
    from the listed `choices`."""

    prob: float
    range: list[int] | None = None
    choices: list[int] | None = None

    def values(self) -> list[int]:
        if (self.range is None) == (self.choices is None):
            raise ConfigError("a QF mixture component needs exactly one of 'range' and 'choices'")
        if self.range is not None:
            if len(self.range) != 2 or self.range[0] > self.range[1]:
                raise ConfigError(f"QF range must be [low, high] with low <= high, not {self.range}")
            return list(range(int(self.range[0]), int(self.range[1]) + 1))
        return [int(q) for q in self.choices]


def _release_mixture() -> list[QFComponent]:
    return [QFComponent(prob=0.25, range=[8, 96]), QFComponent(prob=0.75, choices=[10, 20, 30, 40, 50, 60])]


@dataclass
class QFMixtureConfig:
    """The release's QF mixture by default: p=1/4 uniform in [8, 96], else one of 10..60 step 10.

    `exclude` lists QFs never drawn (removed from every component), so that they stay unseen in training.
    """

    mixture: list[QFComponent] = field(default_factory=_release_mixture)
    exclude: list[int] = field(default_factory=lambda: [1, 5])


@dataclass
class DataConfig:
    """Training pairs synthesised on the fly from folders of HQ images, as the release makes them.

    `train` entries are folders or dataset names from datasets.yaml (`data_root` for the latter).
    A crop of `patch_size + crop_margin` is flipped/rotated (one of 8), JPEG-encoded through the project's
    protocol (`protocol`: codec, subsampling), then with probability `shift_prob` sub-cropped at a random
    offset (shifting the 8x8 grid), else at the top-left. `preload` decodes every image once into memory.
    """

    train: list[str] = field(default_factory=list)
    data_root: str | None = None
    patch_size: int = 256
    crop_margin: int = 8
    shift_prob: float = 0.5
    augment: bool = True
    qf: QFMixtureConfig = field(default_factory=QFMixtureConfig)
    protocol: dict[str, Any] = field(default_factory=lambda: {"codec": "opencv", "subsampling": "420"})
    num_workers: int = 4
    preload: bool = False


@dataclass
class ValConfig:
    """Held-out validation every `every` steps (0: only at the end) on `folder` at each QF of `qfs`.

    Each image is centre-cropped to `crop` (a multiple of 32; null: the largest multiple of 32 that fits), or,
    with `patches` > 0, gives that many `crop`-sized patches at seeded random positions, most of them off the
    8x8 JPEG grid (the JPEG is encoded on the whole image first), so that estimates are judged on unaligned
    inputs too. `unseen` are QFs kept out of training: their scores are reported apart.
    """

    folder: str | None = None
    qfs: list[int] = field(default_factory=lambda: [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90])
    every: int = 1000
    max_images: int | None = None
    crop: int | None = 256
    patches: int = 0
    unseen: list[int] = field(default_factory=lambda: [1, 5])


@dataclass
class LoopConfig:
    """The shared training loop: where it writes, how long it runs, how often it logs and saves.

    `batch_size` is the global batch (split evenly over processes). `mixed_precision`: no | fp16 | bf16
    (fp16 falls back to fp32 on a CPU). `threads` sets torch's intra-op threads per process.
    """

    output_dir: str = "runs/train"
    steps: int = 1000
    batch_size: int = 8
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    grad_clip: float | None = None
    threads: int | None = None
    tensorboard: bool = True
    cpu: bool = False


@dataclass
class AdamConfig:
    """Adam / AdamW settings and a MultiStepLR schedule (no milestones: a constant learning rate)."""

    lr: float = 2e-5
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.5


# -- stage 1 ---------------------------------------------------------------------------------------------
@dataclass
class CaveModelConfig:
    """CaVE widths and depth, initialisation ('release': orthogonal gain 0.2, uniform BN weights; 'default':
    PyTorch's; 'scaled': unit-scale activations at any width, see cave.init_scaled_weights), and whether
    BatchNorm statistics span the global batch of all processes. `input`, `global_residual`, `bn_momentum`
    and `bn_eps` are CaVEConfig's (stored in the exported JSON; the defaults are the release's)."""

    nc: list[int] = field(default_factory=lambda: [64, 128, 256, 512])
    nb: int = 4
    init: Literal["release", "default", "scaled"] = "release"
    sync_batchnorm: bool = True
    input: Literal["rgb", "highpass", "rgb+highpass"] = "rgb"
    global_residual: bool = False
    bn_momentum: float = 0.9
    bn_eps: float = 1e-4


@dataclass
class CaveLossConfig:
    """L = rec_weight * L1(decoder, HQ) + qf_weight * D(QF head, (100-QF)/100), terms chosen by the mode.

    D is `qf_loss`: the release's L1, or MSE (its gradient shrinks with the error instead of being a
    constant-size sign, so Adam's steps settle near the target). The release weighs the QF term 0.001 in dual
    learning; alone (explicit mode) give it weight 1, since gradients 1000 times smaller come close to Adam's
    eps."""

    rec_weight: float = 1.0
    qf_weight: float = 0.001
    qf_loss: Literal["l1", "mse"] = "l1"


def _cave_optim() -> AdamConfig:
    return AdamConfig(lr=2e-5, milestones=[200_000, 400_000, 600_000, 800_000], gamma=0.5)


def _cave_loop() -> LoopConfig:
    return LoopConfig(output_dir="runs/train/cave", steps=200_000, batch_size=128)


@dataclass
class CaveTrainConfig:
    """Stage 1: CaVE dual learning. `mode`: explicit (QF loss only), implicit (reconstruction only), dual."""

    mode: Literal["explicit", "implicit", "dual"] = "dual"
    model: CaveModelConfig = field(default_factory=CaveModelConfig)
    loss: CaveLossConfig = field(default_factory=CaveLossConfig)
    optim: AdamConfig = field(default_factory=_cave_optim)
    train: LoopConfig = field(default_factory=_cave_loop)
    data: DataConfig = field(default_factory=DataConfig)
    val: ValConfig = field(default_factory=ValConfig)


# -- stage 2 ---------------------------------------------------------------------------------------------
@dataclass
class GeneratorModelConfig:
    """The one-step generator: SD folder, frozen CaVE weights, LoRA rank and prompt source.

    `prompt`: cave (the CaVE embedding through `proj`), learnable (a trained 77x1024 embedding) or empty (the
    SD text encoder's embedding of ""). `gradient_checkpointing` trades compute for memory in the UNet.
    """

    sd_path: str = "weights/stable-diffusion-2-1-base"
    cave_path: str = "weights/cave.pth"
    lora_rank: int = 16
    prompt: Literal["cave", "learnable", "empty"] = "cave"
    gradient_checkpointing: bool = False


@dataclass
class CodiffLossConfig:
    """L = mse * MSE + dists * DISTS + gan * L_G for the generator and disc * L_D for the discriminator.

    A weight of 0 switches a term off. DISTS reads pyiqa's weights from $TORCH_HOME/hub (VGG16 and the DISTS
    file). `release_gan_nograd` reproduces the release, where L_G sends no gradient to the generator and the
    discriminator's UNet features are computed without gradient.
    """

    mse: float = 1.0
    dists: float = 1.0
    gan: float = 5e-3
    disc: float = 1e-2
    release_gan_nograd: bool = False


@dataclass
class DiscriminatorConfig:
    """The latent discriminator: UNet timestep and LoRA rank (null: the generator's)."""

    timestep: int = 199
    lora_rank: int | None = None


def _codiff_optim() -> AdamConfig:
    return AdamConfig(lr=5e-5, weight_decay=1e-5)


def _codiff_loop() -> LoopConfig:
    return LoopConfig(output_dir="runs/train/codiff", steps=100_000, batch_size=32, mixed_precision="fp16",
                      grad_clip=1.0)


@dataclass
class CodiffTrainConfig:
    """Stage 2: the one-step generator with LoRA, trained with MSE, DISTS and a latent GAN."""

    model: GeneratorModelConfig = field(default_factory=GeneratorModelConfig)
    loss: CodiffLossConfig = field(default_factory=CodiffLossConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    optim: AdamConfig = field(default_factory=_codiff_optim)
    disc_optim: AdamConfig = field(default_factory=_codiff_optim)
    train: LoopConfig = field(default_factory=_codiff_loop)
    data: DataConfig = field(default_factory=DataConfig)
    val: ValConfig = field(default_factory=lambda: ValConfig(qfs=[5, 10, 20], max_images=10))


# -- YAML <-> dataclasses ---------------------------------------------------------------------------------
T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass `cls` from a mapping, recursing into nested dataclasses; unknown keys are errors."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(where + k for k in unknown)}; allowed under "
                          f"{where.rstrip('.') or 'the top level'}: {', '.join(sorted(names))}")
    values = {name: _convert(hints[name], value, where + name) for name, value in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where.rstrip('.') or cls.__name__}: {exc}") from exc


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(option, value, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: {value!r} does not fit {hint}")
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return from_dict(hint, value, key + ".")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                return float(value)  # YAML reads 2e-5 without a dot as a string
            except (TypeError, ValueError):
                raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        return float(value)
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    return value


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain YAML-able values."""
    return dataclasses.asdict(config)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `section.key=value` overrides (values parsed as YAML) to a raw config mapping."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def load_config(cls: type[T], path: str | os.PathLike | None, overrides: list[str] | None = None) -> T:
    """Read a YAML training config into `cls`, applying `section.key=value` overrides."""
    data = read_yaml(Path(path)) if path is not None else {}
    return from_dict(cls, apply_overrides(data, list(overrides or [])))


def read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config mapping; a top-level `base: other.yaml` (relative to this file) is read first and this
    file's sections are merged over it, key by key."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'base' configs form a cycle")
    data = read_mapping(path, ConfigError, "training config")
    base = data.pop("base", None)
    if base is None:
        return data
    return merge(read_yaml(path.parent / str(base), seen + (path.resolve(),)), data)


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """`top` over `base`, recursing into mappings (lists and scalars are replaced whole)."""
    out = dict(base)
    for key, value in top.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
