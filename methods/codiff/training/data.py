"""Training pairs synthesised on the fly as the release makes them, and the held-out validation pairs.

Every random choice for training sample number k (which image, crop, flip, QF, grid shift) comes from a
generator seeded with (seed, k), and step s of a run with global batch B uses samples s*B .. s*B+B-1, split
evenly over processes. So the data of a step never depends on workers, process count or a resume.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from bench.core.imageio import ImageError, list_images, read_rgb8
from bench.core.protocol import JpegProtocol, decode_jpeg
from methods.codiff.training.config import (
    ConfigError,
    DataConfig,
    QFMixtureConfig,
    ValConfig,
)

log = logging.getLogger(__name__)

CAVE_MULTIPLE = 32  # CaVE's full forward (encoder + decoder) needs sides that are multiples of 32


class QFSampler:
    """Draws a QF from the configured mixture; excluded QFs are removed from every component."""

    def __init__(self, config: QFMixtureConfig) -> None:
        if not config.mixture:
            raise ConfigError("data.qf.mixture is empty")
        excluded = {int(q) for q in config.exclude}
        self.values: list[np.ndarray] = []
        for i, component in enumerate(config.mixture):
            allowed = [q for q in component.values() if q not in excluded]
            bad = [q for q in allowed if not 1 <= q <= 100]
            if bad:
                raise ConfigError(f"data.qf.mixture[{i}]: quality factors out of 1..100: {bad}")
            if not allowed:
                raise ConfigError(f"data.qf.mixture[{i}]: no QF left after excluding {sorted(excluded)}")
            self.values.append(np.asarray(allowed, dtype=np.int64))
        probs = np.asarray([c.prob for c in config.mixture], dtype=np.float64)
        if (probs < 0).any() or probs.sum() <= 0:
            raise ConfigError(f"data.qf.mixture probabilities must be non-negative and not all 0: {probs.tolist()}")
        self.probs = probs / probs.sum()

    def draw(self, rng: np.random.Generator) -> int:
        component = self.values[int(rng.choice(len(self.values), p=self.probs))]
        return int(component[int(rng.integers(len(component)))])

    def support(self) -> set[int]:
        """Every QF the mixture can draw."""
        return {int(q) for values in self.values for q in values}

    def describe(self) -> str:
        """The support as runs, e.g. '8-96' or '8-9, 11-96'."""
        values, runs = sorted(self.support()), []
        for q in values:
            if runs and q == runs[-1][1] + 1:
                runs[-1][1] = q
            else:
                runs.append([q, q])
        return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs)


def flip_rotate(img: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 flips/rotations of the square's symmetry group (mode 0 is the identity)."""
    out = np.rot90(img, k=mode % 4)
    if mode >= 4:
        out = out[::-1]
    return np.ascontiguousarray(out)


@dataclass
class PairSynthesizer:
    """Turns an HQ image into an (HQ patch, JPEG patch, QF) triple with the release's recipe."""

    patch_size: int
    crop_margin: int
    shift_prob: float
    augment: bool
    protocol: JpegProtocol
    qf: QFSampler

    @property
    def crop_size(self) -> int:
        return self.patch_size + self.crop_margin

    def __call__(self, hq: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
        size = self.crop_size
        h, w = hq.shape[:2]
        if h < size or w < size:
            raise ImageError(f"image of {w}x{h} is smaller than the {size}x{size} training crop")
        top, left = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
        crop = hq[top:top + size, left:left + size]
        crop = flip_rotate(crop, int(rng.integers(8))) if self.augment else np.ascontiguousarray(crop)
        quality = self.qf.draw(rng)
        lq = decode_jpeg(self.protocol.encode(crop, quality))
        dy = dx = 0
        if rng.random() < self.shift_prob:
            dy, dx = int(rng.integers(self.crop_margin + 1)), int(rng.integers(self.crop_margin + 1))
        p = self.patch_size
        return (np.ascontiguousarray(crop[dy:dy + p, dx:dx + p]), np.ascontiguousarray(lq[dy:dy + p, dx:dx + p]),
                quality)


def resolve_image_files(entries: list[str], data_root: str | None = None) -> list[Path]:
    """Image files of every entry: a folder (absolute, relative to the working folder or to `data_root`), an
    image file, or a dataset name from datasets.yaml."""
    from bench.datasets import resolve_dataset

    files: list[Path] = []
    for entry in entries:
        path = Path(entry).expanduser()
        if data_root and not path.is_absolute() and not path.exists() and (Path(data_root) / path).exists():
            path = Path(data_root).expanduser() / path
        if path.is_dir():
            found = list_images(path)
            if not found:
                raise ConfigError(f"no images in training folder {path}")
            files.extend(found)
        elif path.suffix and path.is_file():
            files.append(path)
        else:
            files.extend(resolve_dataset(entry, root=data_root).files)
    return files


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the file header, or None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size
    except Exception:  # noqa: BLE001 - any unreadable file is reported by the caller
        return None


def usable_training_images(files: list[Path], min_side: int) -> list[Path]:
    """Files whose header says they are at least `min_side` pixels on each side; the rest are reported."""
    usable, small, unreadable = [], [], []
    for path in files:
        size = image_size(path)
        if size is None:
            unreadable.append(path)
        elif min(size) < min_side:
            small.append(path)
        else:
            usable.append(path)
    if unreadable:
        log.warning("%d training image(s) unreadable and skipped, e.g. %s", len(unreadable), unreadable[0])
    if small:
        log.warning("%d training image(s) smaller than the %dx%d crop skipped, e.g. %s", len(small), min_side,
                    min_side, small[0])
    if not usable:
        raise ConfigError(f"no usable training image among {len(files)} file(s) (each needs sides of at least "
                          f"{min_side} pixels: patch_size + crop_margin)")
    return usable


class TrainPairs(Dataset):
    """Training pairs indexed by global sample number; image order is a fresh permutation every epoch."""

    def __init__(self, files: list[Path], synth: PairSynthesizer, seed: int, preload: bool = False) -> None:
        self.files = list(files)
        self.synth = synth
        self.seed = int(seed)
        self.images = [read_rgb8(p).rgb for p in self.files] if preload else None
        self._perm_epoch, self._perm = -1, np.arange(0)

    def _order(self, epoch: int) -> np.ndarray:
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, 0x5EED, epoch]).permutation(len(self.files))
            self._perm_epoch = epoch
        return self._perm

    def _load(self, i: int) -> np.ndarray:
        return self.images[i] if self.images is not None else read_rgb8(self.files[i]).rgb

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor | int]:
        epoch, pos = divmod(int(k), len(self.files))
        order = self._order(epoch)
        rng = np.random.default_rng([self.seed, int(k)])
        for attempt in range(len(self.files)):
            index = int(order[(pos + attempt) % len(order)])
            try:
                hq, lq, quality = self.synth(self._load(index), rng)
                break
            except ImageError as exc:  # one bad file never ends a run: the next image stands in
                log.warning("training image %s skipped: %s", self.files[index], exc)
        else:
            raise ConfigError("every training image failed to load")
        return {"hq": torch.from_numpy(hq).permute(2, 0, 1), "lq": torch.from_numpy(lq).permute(2, 0, 1),
                "qf": quality}


class StepBatches(Sampler[list[int]]):
    """Endless batches of global sample numbers for one process, from step `start_step` on."""

    def __init__(self, start_step: int, global_batch: int, rank: int, world_size: int) -> None:
        if global_batch % world_size:
            raise ConfigError(f"train.batch_size {global_batch} is not divisible by the {world_size} processes")
        self.start_step, self.global_batch = start_step, global_batch
        self.local = global_batch // world_size
        self.offset = rank * self.local

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            first = step * self.global_batch + self.offset
            yield list(range(first, first + self.local))
            step += 1


def build_synthesizer(config: DataConfig) -> PairSynthesizer:
    if config.patch_size < 8 or config.crop_margin < 0:
        raise ConfigError("data.patch_size must be at least 8 and data.crop_margin non-negative")
    if not 0.0 <= config.shift_prob <= 1.0:
        raise ConfigError(f"data.shift_prob must be within [0, 1], not {config.shift_prob}")
    return PairSynthesizer(config.patch_size, config.crop_margin, config.shift_prob, config.augment,
                           JpegProtocol.from_dict(config.protocol), QFSampler(config.qf))


def build_train_pairs(config: DataConfig, seed: int) -> TrainPairs:
    """The training set of a config: files resolved, too-small ones skipped, pairs ready to draw."""
    if not config.train:
        raise ConfigError("data.train lists no image folder or dataset")
    synth = build_synthesizer(config)
    files = usable_training_images(resolve_image_files(config.train, config.data_root), synth.crop_size)
    return TrainPairs(files, synth, seed, preload=config.preload)


def train_loader(pairs: TrainPairs, *, start_step: int, global_batch: int, rank: int, world_size: int,
                 num_workers: int, seed: int) -> DataLoader:
    """An endless loader of this process's share of each step's batch (uint8 tensors, int QFs)."""
    generator = torch.Generator().manual_seed(seed)  # keeps the loader off the global RNG (exact resume)
    return DataLoader(pairs, batch_sampler=StepBatches(start_step, global_batch, rank, world_size),
                      num_workers=num_workers, generator=generator, persistent_workers=False,
                      pin_memory=torch.cuda.is_available(), prefetch_factor=4 if num_workers else None)


# -- validation --------------------------------------------------------------------------------------------
@dataclass
class ValPair:
    """One held-out image at one QF: HQ and decoded JPEG as 1 x 3 x H x W floats in [0, 1]."""

    name: str
    qf: int
    hq: torch.Tensor
    lq: torch.Tensor


def centre_crop(rgb: np.ndarray, crop: int | None, multiple: int = CAVE_MULTIPLE) -> np.ndarray | None:
    """The centre `crop` x `crop` square (or the largest multiple-of-`multiple` window); None if too small."""
    h, w = rgb.shape[:2]
    th, tw = (h - h % multiple, w - w % multiple) if crop is None else (min(crop, h), min(crop, w))
    th, tw = th - th % multiple, tw - tw % multiple
    if th == 0 or tw == 0:
        return None
    top, left = (h - th) // 2, (w - tw) // 2
    return np.ascontiguousarray(rgb[top:top + th, left:left + tw])


def random_boxes(height: int, width: int, size: int, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """`count` (top, left) corners of `size`-pixel squares at uniformly random pixel positions (so 63 in 64 are
    off the 8x8 JPEG grid); none when the image is smaller than `size`."""
    if min(height, width) < size:
        return []
    return [(int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))) for _ in range(count)]


def build_val_pairs(config: ValConfig, protocol: JpegProtocol, data_root: str | None = None) -> list[ValPair]:
    """Every validation image (or `patches` random patches of it) at every validation QF, encoded once through
    the project's protocol."""
    from bench.core.imageio import to_tensor

    if not config.folder:
        return []
    if config.crop is not None and config.crop % CAVE_MULTIPLE:
        raise ConfigError(f"val.crop must be a multiple of {CAVE_MULTIPLE}, not {config.crop}")
    if config.patches and config.crop is None:
        raise ConfigError("val.patches needs a val.crop size")
    files = resolve_image_files([config.folder], data_root)[: config.max_images or None]
    pairs: list[ValPair] = []
    for index, path in enumerate(files):
        try:
            rgb = read_rgb8(path).rgb
        except ImageError as exc:
            log.warning("validation image skipped: %s", exc)
            continue
        if config.patches:
            boxes = random_boxes(*rgb.shape[:2], config.crop, config.patches, np.random.default_rng([0x7A1, index]))
            hq = rgb
        else:
            hq = centre_crop(rgb, config.crop)
            boxes = [] if hq is None else [(0, 0)]
        if not boxes:
            log.warning("validation image %s is smaller than the %s-pixel crop and skipped", path,
                        config.crop or CAVE_MULTIPLE)
            continue
        size = config.crop if config.patches else None
        for quality in config.qfs:
            lq = decode_jpeg(protocol.encode(hq, int(quality)))
            for k, (top, left) in enumerate(boxes):
                window = np.s_[top:top + size, left:left + size] if size else np.s_[:, :]
                name = f"{path.name}#{k}" if size else path.name
                pairs.append(ValPair(name, int(quality), to_tensor(np.ascontiguousarray(hq[window])),
                                     to_tensor(np.ascontiguousarray(lq[window]))))
    if not pairs:
        raise ConfigError(f"validation folder {config.folder} gave no usable image")
    return pairs
