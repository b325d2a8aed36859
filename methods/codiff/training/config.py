"""Dataclass configurations of both training stages, read from YAML with every key checked.

A YAML file maps onto the dataclasses section by section; an unknown key or a value of the wrong kind is an
error naming the key, so a typo never silently falls back to a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from bench.core.errors import ConfigError
from methods.codiff.cave import CaVEConfig


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

    def validate(self) -> None:
        if self.patch_size < 8 or self.patch_size % 8:
            raise ConfigError(f"data.patch_size must be a positive multiple of 8 (the JPEG block), not {self.patch_size}")
        if self.crop_margin < 0 or self.num_workers < 0:
            raise ConfigError(f"data.crop_margin and data.num_workers must be 0 or more, not {self.crop_margin} "
                              f"and {self.num_workers}")
        if not 0 <= self.shift_prob <= 1:
            raise ConfigError(f"data.shift_prob is a probability (0 to 1), not {self.shift_prob}")


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

    def validate(self) -> None:
        for key in ("steps", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be 1 or more, not {getattr(self, key)}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"train.threads must be 1 or more (or null: torch's default), not {self.threads}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ConfigError(f"train.grad_clip must be above 0 (or null: no clipping), not {self.grad_clip}")


@dataclass
class AdamConfig:
    """Adam / AdamW settings and a MultiStepLR schedule (no milestones: a constant learning rate)."""

    lr: float = 2e-5
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.5

    def validate(self) -> None:
        if not self.lr > 0 or not self.eps > 0 or not self.gamma > 0:
            raise ConfigError(f"optimiser lr, eps and gamma must be above 0, not {self.lr}, {self.eps}, {self.gamma}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"optimiser betas must be two values in [0, 1), not {self.betas}")
        if self.weight_decay < 0:
            raise ConfigError(f"optimiser weight_decay must be 0 or more, not {self.weight_decay}")


# -- stage 1 ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaveModelConfig(CaVEConfig):
    """The CaVE to train: its architecture (`CaVEConfig`, the one description of it, exported with the
    weights), how its weights start (`init`: 'release', orthogonal gain 0.2 and uniform BN weights; 'default',
    PyTorch's; 'scaled', unit-scale activations at any width, see cave.init_scaled_weights), and whether
    BatchNorm statistics span the global batch of all processes (`sync_batchnorm`; off by default: each
    process normalises its own share), or over runs of `batchnorm_group` samples with the first run's running
    statistics (the release's DataParallel: 16 samples per replica, replica 0's buffers), whatever the number
    of processes (0: each process's whole share). `start_from` starts from a trained CaVE checkpoint of the
    same architecture instead of `init`; `trainable: decoder` then trains only the decoder (`DECODER_PARTS`),
    the encoder and QF head frozen with their BatchNorm statistics, so embeddings and QF estimates stay those
    of the checkpoint."""

    init: Literal["release", "default", "scaled"] = "release"
    sync_batchnorm: bool = False
    batchnorm_group: int = 0
    start_from: str = ""
    trainable: Literal["all", "decoder"] = "all"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batchnorm_group < 0 or (self.batchnorm_group and self.sync_batchnorm):
            raise ConfigError(f"model.batchnorm_group must be >= 0 and needs sync_batchnorm off, got "
                              f"{self.batchnorm_group} with sync_batchnorm {self.sync_batchnorm}")
        if self.trainable == "decoder" and not self.start_from:
            raise ConfigError("model.trainable: decoder needs model.start_from (a trained CaVE checkpoint): a "
                              "frozen encoder would stay at its initial random weights")

    def architecture(self) -> CaVEConfig:
        """The network alone, as a checkpoint stores it."""
        return CaVEConfig(**{f.name: getattr(self, f.name) for f in fields(CaVEConfig)})


@dataclass
class CaveLossConfig:
    """L = rec_weight * L1(decoder, HQ) + gradient_weight * L1(differences of both) + qf_weight * D(QF head,
    (100-QF)/100), terms chosen by the mode. The gradient term weighs edges, block edges included, which L1 on
    pixels lets a decoder smooth over (PSNR-B counts the differences across 8x8 block boundaries).

    D is `qf_loss`: the release's L1, or MSE (its gradient shrinks with the error instead of being a
    constant-size sign, so Adam's steps settle near the target). The release weighs the QF term 0.001 in dual
    learning; alone (explicit mode) give it weight 1, since gradients 1000 times smaller come close to Adam's
    eps."""

    rec_weight: float = 1.0
    qf_weight: float = 0.001
    qf_loss: Literal["l1", "mse"] = "l1"
    gradient_weight: float = 0.0  # L1 between the horizontal and vertical pixel differences of output and HQ


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
    `sample_latent`: the generator's input latent is a posterior sample (the release) instead of its mode.
    """

    sd_path: str = "weights/stable-diffusion-2-1-base"
    cave_path: str = "weights/cave.pth"
    lora_rank: int = 16
    prompt: Literal["cave", "learnable", "empty"] = "cave"
    gradient_checkpointing: bool = False
    sample_latent: bool = False


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
    """The latent discriminator: UNet timestep, LoRA rank (null: the generator's), and where its real latents
    come from: `release` (HQ through SD's VAE encoder without adapters, a posterior sample, as the release) or
    `generator` (the generator's LoRA-adapted encoder and its posterior choice)."""

    timestep: int = 199
    lora_rank: int | None = None
    real_latents: Literal["release", "generator"] = "release"


@dataclass
class CodiffValConfig(ValConfig):
    """Stage-2 validation as the release's: QF 10, the colour fix, the paper's metrics (each skipped, with the
    reason logged, when its weights are absent) plus PSNR and SSIM."""

    qfs: list[int] = field(default_factory=lambda: [10])
    max_images: int | None = 10
    color_fix: Literal["adain", "wavelet", "none"] = "adain"
    metrics: list[str] = field(default_factory=lambda: ["lpips", "dists", "musiq", "maniqa", "clipiqa"])


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
    val: CodiffValConfig = field(default_factory=CodiffValConfig)
