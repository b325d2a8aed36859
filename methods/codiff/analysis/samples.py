"""The inputs of the CaVE analysis: JPEG patches of every image at every QF, and each CaVE's view of them.

Each HQ image is prepared and JPEG-encoded by the project's protocol (the whole image, so the patches carry
a real image's artefacts), decoded, and cut into patches at the same places for every QF (positions on the
8x8 block grid, drawn once per image from the seed), so the QF clusters differ by compression, not content.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.core.imageio import read_rgb8, to_tensor
from bench.core.protocol import JpegProtocol, decode_jpeg

BLOCK = 8  # the JPEG block grid: patch positions and sizes stay on it


@dataclass(frozen=True)
class Patch:
    """One analysed LQ patch: where it comes from, at which QF, and its pixels (1 x 3 x h x w in [0, 1])."""

    image: str
    crop: int
    top: int
    left: int
    qf: int
    lq: torch.Tensor


def crop_boxes(height: int, width: int, size: int, count: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """`count` (top, left, size) boxes of `size` px on the 8x8 grid; one whole-image box when `count` is 0 or
    the image is smaller than `size`."""
    if count <= 0 or min(height, width) < size:
        return [(0, 0, 0)]
    tops = rng.integers(0, (height - size) // BLOCK + 1, count) * BLOCK
    lefts = rng.integers(0, (width - size) // BLOCK + 1, count) * BLOCK
    return [(int(t), int(l), size) for t, l in zip(tops, lefts)]


def image_patches(image: str, path: Path, protocol: JpegProtocol, qfs: list[int], crops: int, crop_size: int,
                  seed: int) -> list[Patch]:
    """Every patch of one image at every QF; raises ImageError / ProtocolError for an unusable image."""
    hq = protocol.prepare_hq(read_rgb8(path, grayscale=protocol.grayscale, alpha=protocol.alpha,
                                       exif=protocol.exif).rgb)
    rng = np.random.default_rng([seed, zlib.crc32(image.encode())])
    boxes = crop_boxes(hq.shape[0], hq.shape[1], crop_size, crops, rng)
    patches = []
    for qf in qfs:
        lq = to_tensor(decode_jpeg(protocol.encode(hq, qf)))
        for i, (top, left, size) in enumerate(boxes):
            part = lq if not size else lq[..., top:top + size, left:left + size]
            patches.append(Patch(image, i, top, left, int(qf), part.contiguous()))
    return patches


@torch.inference_mode()
def cave_view(cave: torch.nn.Module, patches: list[Patch], batch_size: int = 16,
              step: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings (N, C): CaVE tokens mean-pooled, as the QF head pools them; QF estimates (N,), 1-100).

    Patches of the same size are batched together; `step(n)` is called after each batch of n patches.
    """
    embeddings: list[np.ndarray | None] = [None] * len(patches)
    estimates = np.zeros(len(patches), dtype=np.float64)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, patch in enumerate(patches):
        by_shape.setdefault(tuple(patch.lq.shape), []).append(i)
    for indices in by_shape.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start:start + batch_size]
            lq = torch.cat([patches[i].lq for i in chunk])
            pooled = cave.embed(lq).mean(dim=1).double().numpy()
            qf = cave.predict_qf(lq).double().numpy()
            for row, i in enumerate(chunk):
                embeddings[i] = pooled[row]
                estimates[i] = qf[row]
            if step:
                step(len(chunk))
    return np.stack(embeddings), estimates
