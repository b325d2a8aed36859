"""The JPEG degradation protocol: every choice that changes the numbers, in one value object.

Defaults follow the official CODiff test: the HQ image is resized with LANCZOS down to a multiple of 8,
encoded with OpenCV at the quality factor with 4:2:0 chroma subsampling, and decoded again. `before` lists
degradation steps (`bench.core.degradation`) applied ahead of that last compression: an earlier JPEG, a
shifted grid, a resize. The same image and protocol always give byte-identical JPEG files.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import numpy as np

from bench.core.degradation import parse_step
from bench.core.errors import BenchError

Codec = Literal["opencv", "pillow", "simplejpeg"]
CODECS = ("opencv", "pillow", "simplejpeg")
Subsampling = Literal["420", "422", "444"]
Resize = Literal["lanczos", "crop", "none"]

_PILLOW_SUBSAMPLING = {"444": 0, "422": 1, "420": 2}
_NO_SIMPLEJPEG = "codec 'simplejpeg' needs the simplejpeg package (pip install simplejpeg)"


class ProtocolError(BenchError, ValueError):
    """A protocol value is out of range or an image cannot be brought to the protocol's shape."""


@dataclass(frozen=True)
class JpegProtocol:
    """How HQ images are prepared and compressed.

    codec: 'opencv' (the official test), 'pillow' or 'simplejpeg' (libjpeg-turbo through its own binding; an
    optional dependency: `pip install simplejpeg`). quality: 1..100, or None for a protocol not yet bound
    to a quality factor. subsampling: chroma subsampling. resize: how the HQ image is brought to a
    multiple of `multiple` ('lanczos' as the official test, 'crop' to the top-left, 'none' to require it).
    grayscale / alpha / exif: colour handling of unusual inputs (see `bench.core.imageio`). before: degradation
    steps applied to the prepared HQ image ahead of the last compression, in order.
    """

    codec: Codec = "opencv"
    quality: int | None = None
    subsampling: Subsampling = "420"
    resize: Resize = "lanczos"
    multiple: int = 8
    grayscale: Literal["expand", "reject"] = "expand"
    alpha: Literal["drop", "white", "reject"] = "drop"
    exif: Literal["apply", "ignore"] = "apply"
    before: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ProtocolError(f"codec must be one of {', '.join(CODECS)}, not {self.codec!r}")
        if self.quality is not None and not (1 <= int(self.quality) <= 100):
            raise ProtocolError(f"quality factor must be within 1..100, not {self.quality}")
        if self.subsampling not in _PILLOW_SUBSAMPLING:
            raise ProtocolError(f"subsampling must be one of 420, 422, 444, not {self.subsampling!r}")
        if self.resize not in ("lanczos", "crop", "none"):
            raise ProtocolError(f"resize must be 'lanczos', 'crop' or 'none', not {self.resize!r}")
        if self.multiple < 1:
            raise ProtocolError("multiple must be at least 1")
        if not isinstance(self.before, (list, tuple)):
            raise ProtocolError(f"before must be a list of degradation steps, not {self.before!r}")
        object.__setattr__(self, "before", tuple(parse_step(s) for s in self.before))
        for step in self.before:
            if getattr(step, "codec", None) not in (None, *CODECS):
                raise ProtocolError(f"jpeg step: codec must be one of {', '.join(CODECS)}, not {step.codec!r}")
            if getattr(step, "subsampling", None) not in (None, *_PILLOW_SUBSAMPLING):
                raise ProtocolError(f"jpeg step: subsampling must be one of 420, 422, 444, not {step.subsampling!r}")

    # -- identity --------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> "JpegProtocol":
        """A protocol from a config mapping (subsampling may be written 420 or "4:2:0")."""
        from bench.core.config import from_dict

        values = dict(values or {})
        if "subsampling" in values:
            values["subsampling"] = str(values["subsampling"]).replace(":", "")
        return from_dict(cls, values, "protocol.")

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["before"] = [step.to_spec() for step in self.before]
        return values

    def at(self, quality: int) -> "JpegProtocol":
        """The same protocol bound to a quality factor."""
        return replace(self, quality=int(quality))

    def key(self) -> str:
        """A short stable hash of the protocol without its quality factor (names cache folders)."""
        values = self.to_dict()
        values.pop("quality")
        if not values["before"]:
            values.pop("before")  # a protocol without steps keeps the key it had before steps existed
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]

    # -- work --------------------------------------------------------------------------------------
    def prepare_hq(self, rgb: np.ndarray) -> np.ndarray:
        """Bring an H x W x 3 uint8 RGB image to a multiple of `multiple` as the protocol says."""
        h, w = rgb.shape[:2]
        th, tw = h - h % self.multiple, w - w % self.multiple
        if (th, tw) == (h, w):
            return rgb
        if th == 0 or tw == 0:
            raise ProtocolError(f"image of {w}x{h} pixels is smaller than one {self.multiple}x{self.multiple} block")
        if self.resize == "none":
            raise ProtocolError(f"image of {w}x{h} is not a multiple of {self.multiple} and resize is 'none'")
        if self.resize == "crop":
            return np.ascontiguousarray(rgb[:th, :tw])
        from PIL import Image

        return np.asarray(Image.fromarray(rgb).resize((tw, th), Image.LANCZOS))

    def missing(self) -> str | None:
        """Why this protocol cannot run here (an encoder's package is not installed), or None."""
        for codec in {self.codec, *(getattr(s, "codec", None) or self.codec for s in self.before)}:
            if codec == "simplejpeg":
                try:
                    import simplejpeg  # noqa: F401
                except ImportError:
                    return _NO_SIMPLEJPEG
        return None

    def reference(self, hq: np.ndarray) -> np.ndarray:
        """The HQ reference of a prepared image: its geometric steps (shift, resize) applied, then cropped at
        the bottom and right to a multiple of `multiple` (the prepared image itself without such steps)."""
        for step in self.before:
            if step.geometric:
                hq = step.apply(hq, self)
        return self._trim(hq)

    def compress(self, hq: np.ndarray, quality: int | None = None) -> bytes:
        """The LQ JPEG of a prepared image: every step in order, the same crop as `reference`, then `encode`."""
        for step in self.before:
            hq = step.apply(hq, self)
        return self.encode(self._trim(hq), quality)

    def round_trip(self, rgb: np.ndarray, quality: int, *, codec: str | None = None,
                   subsampling: str | None = None) -> np.ndarray:
        """`rgb` encoded at `quality` (with this protocol's codec and subsampling unless given) and decoded."""
        one = replace(self, codec=codec or self.codec, subsampling=subsampling or self.subsampling, before=())
        return decode_jpeg(one.encode(rgb, quality))

    def _trim(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        th, tw = h - h % self.multiple, w - w % self.multiple
        if th == 0 or tw == 0:
            raise ProtocolError(f"image of {w}x{h} pixels after the degradation steps is smaller than one "
                                f"{self.multiple}x{self.multiple} block")
        return rgb if (th, tw) == (h, w) else np.ascontiguousarray(rgb[:th, :tw])

    def encode(self, rgb: np.ndarray, quality: int | None = None) -> bytes:
        """JPEG-encode an H x W x 3 uint8 RGB image; deterministic for a given image and protocol."""
        quality = int(quality if quality is not None else self._bound_quality())
        if not 1 <= quality <= 100:
            raise ProtocolError(f"quality factor must be within 1..100, not {quality}")
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ProtocolError(f"expected an H x W x 3 uint8 image, got {rgb.dtype} {rgb.shape}")
        return _ENCODERS[self.codec](rgb, quality, self.subsampling)

    def _bound_quality(self) -> int:
        if self.quality is None:
            raise ProtocolError("no quality factor given and the protocol is not bound to one")
        return self.quality


def _encode_opencv(rgb: np.ndarray, quality: int, subsampling: str) -> bytes:
    import cv2

    factor = {"420": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420, "422": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
              "444": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444}[subsampling]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, factor])
    if not ok:
        raise ProtocolError("OpenCV failed to encode the image")
    return buf.tobytes()


def _encode_pillow(rgb: np.ndarray, quality: int, subsampling: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=quality, subsampling=_PILLOW_SUBSAMPLING[subsampling])
    return out.getvalue()


def _encode_simplejpeg(rgb: np.ndarray, quality: int, subsampling: str) -> bytes:
    try:
        import simplejpeg
    except ImportError as exc:
        raise ProtocolError(_NO_SIMPLEJPEG) from exc
    return simplejpeg.encode_jpeg(np.ascontiguousarray(rgb), quality=quality, colorspace="RGB",
                                  colorsubsampling=subsampling)


_ENCODERS = {"opencv": _encode_opencv, "pillow": _encode_pillow, "simplejpeg": _encode_simplejpeg}


def decode_jpeg(data: bytes) -> np.ndarray:
    """Decode JPEG bytes to H x W x 3 uint8 RGB with OpenCV (libjpeg's default IDCT, as the official test)."""
    import cv2

    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ProtocolError("could not decode JPEG data")
    return np.ascontiguousarray(bgr[:, :, ::-1])
