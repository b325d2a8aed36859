"""Reading and writing images at the harness boundary.

`read_rgb8` turns any supported file into an H x W x 3 uint8 RGB array and says what it did to get there
(grayscale expanded, alpha dropped, EXIF rotation applied, 16-bit reduced); files it cannot read raise
`ImageError` naming the file and the reason. Tensors cross module boundaries as B x 3 x H x W floats in [0, 1].
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from bench.core.atomic import atomic_write_bytes
from bench.core.errors import BenchError

if TYPE_CHECKING:
    import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".gif")


class ImageError(BenchError, ValueError):
    """An input image cannot be used; the message names the file and the reason."""


@dataclass
class LoadedImage:
    """An image as the harness uses it, with the notes on how it was converted."""

    rgb: np.ndarray
    notes: list[str] = field(default_factory=list)


def read_rgb8(path: str | os.PathLike, *, grayscale: str = "expand", alpha: str = "drop", exif: str = "apply",
              max_pixels: int | None = None) -> LoadedImage:
    """Read an image file as uint8 RGB, applying the colour policy of the protocol."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = Path(path)
    notes: list[str] = []
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes)")
        with _pillow_settings(max_pixels), Image.open(path) as img:
            if max_pixels is not None and img.width * img.height > max_pixels:
                raise ImageError(f"{path}: {img.width}x{img.height} pixels exceeds the limit of {max_pixels} pixels "
                                 "(raise max_pixels in the run config, or use a tiled method)")
            frames = getattr(img, "n_frames", 1)
            if frames > 1:
                raise ImageError(f"{path}: animated image ({frames} frames): refused, since a benchmark image is one "
                                 "still frame; extract the frame you mean into a PNG")
            deep = img.mode not in _WIDE_GRAY_MODES and any(";16" in _rawmode(tile) for tile in img.tile)
            img.load()
            if exif == "apply":
                orientation = img.getexif().get(0x0112, 1)
                if orientation not in (None, 1):
                    img = ImageOps.exif_transpose(img)
                    notes.append(f"EXIF orientation {orientation} applied")
            rgb = _to_rgb8(img, path, notes, grayscale=grayscale, alpha=alpha)
            if deep:
                notes.append("16 bits per channel reduced to 8 (high byte kept)")
    except ImageError:
        raise
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: file not found") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not a readable image (unknown or corrupt format)") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{path}: too large to decode safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{path}: corrupt or truncated image ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - decoders raise many types on malformed files; none may end a run
        raise ImageError(f"{path}: corrupt image ({type(exc).__name__}: {exc})") from exc
    if rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ImageError(f"{path}: image has no pixels")
    return LoadedImage(np.ascontiguousarray(rgb), notes)


_WIDE_GRAY_MODES = ("I;16", "I;16B", "I;16L", "I", "F")


@contextlib.contextmanager
def _pillow_settings(max_pixels: int | None) -> Iterator[None]:
    """Pillow's global settings while reading: truncated files are refused even where a library relaxed that
    (`ImageFile.LOAD_TRUNCATED_IMAGES = True` makes a truncated JPEG load as grey), and the run's pixel limit,
    when given, replaces Pillow's decompression-bomb limit (it is checked before decoding too)."""
    from PIL import Image, ImageFile

    saved = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    if max_pixels is not None:
        Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = saved


def _rawmode(tile) -> str:
    """The decoder's raw mode of one Pillow tile ('RGB;16B' for a 16-bit RGB PNG)."""
    args = tile[3]
    return args if isinstance(args, str) else str(args[0]) if args else ""


def _to_rgb8(img, path: Path, notes: list[str], *, grayscale: str, alpha: str) -> np.ndarray:
    mode = img.mode
    if mode in _WIDE_GRAY_MODES:
        arr = np.asarray(img).astype(np.float64)
        peak = 65535.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 255.0
        arr = np.clip(np.round(arr / peak * 255.0), 0, 255).astype(np.uint8)
        notes.append(f"{mode} reduced to 8 bits")
        return _expand_gray(arr, path, notes, grayscale)
    if mode in ("L", "1"):
        return _expand_gray(np.asarray(img.convert("L")), path, notes, grayscale)
    if mode == "LA" or (mode == "P" and "transparency" in img.info) or mode == "RGBA" or mode == "PA":
        rgba = np.asarray(img.convert("RGBA"))
        if mode in ("LA",):
            notes.append("grayscale expanded to RGB")
        return _drop_alpha(rgba, path, notes, alpha)
    if mode == "P":
        notes.append("palette converted to RGB")
        return np.asarray(img.convert("RGB"))
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
        return np.asarray(img.convert("RGB"))
    if mode == "RGB":
        return np.asarray(img)
    if mode.startswith("RGB") or mode in ("YCbCr", "LAB", "HSV"):
        notes.append(f"{mode} converted to RGB")
        return np.asarray(img.convert("RGB"))
    raise ImageError(f"{path}: unsupported image mode {mode!r}")


def _expand_gray(gray: np.ndarray, path: Path, notes: list[str], policy: str) -> np.ndarray:
    if policy == "reject":
        raise ImageError(f"{path}: grayscale image rejected by the protocol (grayscale: reject)")
    notes.append("grayscale expanded to RGB")
    return np.repeat(gray[:, :, None], 3, axis=2)


def _drop_alpha(rgba: np.ndarray, path: Path, notes: list[str], policy: str) -> np.ndarray:
    if policy == "reject":
        raise ImageError(f"{path}: image with alpha rejected by the protocol (alpha: reject)")
    if policy == "white":
        a = rgba[:, :, 3:4].astype(np.float64) / 255.0
        rgb = np.round(rgba[:, :, :3] * a + 255.0 * (1 - a)).astype(np.uint8)
        notes.append("alpha composited on white")
        return rgb
    notes.append("alpha channel dropped")
    return np.ascontiguousarray(rgba[:, :, :3])


def to_tensor(rgb: np.ndarray) -> "torch.Tensor":
    """H x W x 3 uint8 -> 1 x 3 x H x W float32 in [0, 1]."""
    import torch

    return torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """1 x 3 x H x W (or 3 x H x W) float in [0, 1] -> H x W x 3 uint8, rounding to nearest."""
    if image.dim() == 4:
        if image.shape[0] != 1:
            raise ValueError("to_uint8 takes one image")
        image = image[0]
    import torch

    arr = image.detach().float().clamp(0, 1).mul(255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(arr)


def encode_png(rgb: np.ndarray) -> bytes:
    """Lossless PNG bytes of an H x W x 3 uint8 RGB image."""
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise ImageError("PNG encoding failed")
    return buf.tobytes()


def save_png(image: torch.Tensor | np.ndarray, path: str | os.PathLike) -> Path:
    """Save an image as an 8-bit PNG, atomically. Accepts a [0, 1] tensor or a uint8 array."""
    rgb = image if isinstance(image, np.ndarray) else to_uint8(image)
    return atomic_write_bytes(path, encode_png(rgb))


@dataclass
class FolderScan:
    """What a folder holds: the images to use, the hidden files skipped and the other files ignored, each
    with the reason (paths sorted by their path inside the folder)."""

    images: list[Path] = field(default_factory=list)
    skipped: dict[Path, str] = field(default_factory=dict)
    ignored: dict[Path, str] = field(default_factory=dict)


def scan_images(folder: str | os.PathLike) -> FolderScan:
    """Sort the files below `folder` into images, skipped and ignored files.

    - Images: regular files (or links to them) whose extension is in IMAGE_SUFFIXES, case ignored; a folder
      named `x.png` is not one.
    - Skipped: hidden files and everything inside hidden folders (`.DS_Store`, `.ipynb_checkpoints/`, `.git/`),
      and AppleDouble files (`._a.png`, the resource forks macOS leaves on other file systems) even when they
      carry an image extension: they are copies or metadata, never benchmark images.
    - Ignored: every other file (not an image extension), so that a stray `notes.txt` is visible, not silent.
    Reading an image may still refuse it later (corrupt, animated, too large): see `read_rgb8`.
    """
    folder = Path(folder)
    scan = FolderScan()
    for parent, folders, files in os.walk(folder):
        for name in sorted(folders):
            if name.startswith("."):  # not descended into: the folder is listed once
                scan.skipped[Path(parent, name)] = _hidden_reason(name, is_dir=True)
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            path = Path(parent, name)
            if name.startswith("."):
                scan.skipped[path] = _hidden_reason(name, is_dir=False)
            elif not path.is_file():
                continue  # a broken link, a socket, a device
            elif path.suffix.lower() in IMAGE_SUFFIXES:
                scan.images.append(path)
            else:
                scan.ignored[path] = f"not an image file (extension {path.suffix or 'none'!r})"

    def order(path: Path) -> str:
        return path.relative_to(folder).as_posix()

    scan.images.sort(key=order)
    scan.skipped = dict(sorted(scan.skipped.items(), key=lambda item: order(item[0])))
    scan.ignored = dict(sorted(scan.ignored.items(), key=lambda item: order(item[0])))
    return scan


def _hidden_reason(name: str, *, is_dir: bool) -> str:
    if name.startswith("._"):
        return "AppleDouble metadata file (macOS resource fork), not an image"
    return f"hidden {'folder, with everything in it' if is_dir else 'file'} (name starts with '.')"


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The images of `folder` and below it, sorted by relative path (see `scan_images` for what is left out)."""
    return scan_images(folder).images


def collect_images(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[str], list[str]]:
    """(image path, output name relative to an output folder, as .png) for every file and every image inside
    folders; messages for inputs that do not exist or hold no images; and the files of those folders left out
    (hidden files skipped, non-image files ignored: see `scan_images`) with the reason."""
    found: list[tuple[Path, Path]] = []
    problems: list[str] = []
    left_out: list[str] = []
    for text in inputs:
        path = Path(text).expanduser()
        if path.is_dir():
            scan = scan_images(path)
            if not scan.images:
                problems.append(f"{path}: folder holds no images")
            found += [(p, p.relative_to(path).with_suffix(".png")) for p in scan.images]
            left_out += [f"{p}: {reason}" for p, reason in scan.skipped.items()]
            left_out += [f"{p}: ignored, {reason}" for p, reason in scan.ignored.items()]
        elif path.is_file():
            found.append((path, Path(path.stem + ".png")))
        else:
            problems.append(f"{path}: no such file or folder")
    return found, problems, left_out


def require_inputs(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """`collect_images`, with inputs that do not exist or hold no images refused as one ImageError (a user's
    mistake, before any work): the images and the folder files left out."""
    found, problems, left_out = collect_images(inputs)
    if problems:
        raise ImageError("; ".join(problems) + ": check the paths (give image files, or folders that hold images)")
    return found, left_out
