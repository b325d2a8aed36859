"""The JPEG protocol: determinism, parity with the official OpenCV encode, every QF, HQ preparation."""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.errors import ConfigError
from bench.core.imageio import read_rgb8
from bench.core.protocol import JpegProtocol, ProtocolError, decode_jpeg


def _image(h: int = 40, w: int = 56, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("codec", ["opencv", "pillow"])
@pytest.mark.parametrize("subsampling", ["420", "422", "444"])
def test_encoding_is_byte_identical_across_calls(codec, subsampling):
    protocol = JpegProtocol(codec=codec, subsampling=subsampling)
    img = _image()
    assert protocol.encode(img, 10) == protocol.encode(img.copy(), 10)


def test_matches_the_official_opencv_encode(parity_dir):
    hq = read_rgb8(parity_dir / "hq.png").rgb
    ours = JpegProtocol().encode(hq, 10)
    assert ours == (parity_dir / "lq.jpg").read_bytes()
    assert np.array_equal(decode_jpeg(ours), read_rgb8(parity_dir / "lq.png").rgb)


def test_every_quality_factor_from_1_to_100_encodes_and_lower_is_smaller():
    img = _image(64, 64)
    sizes = [len(JpegProtocol().encode(img, q)) for q in range(1, 101)]
    assert sizes[0] < sizes[49] < sizes[99]
    with pytest.raises(ProtocolError):
        JpegProtocol().encode(img, 0)
    with pytest.raises(ProtocolError):
        JpegProtocol(quality=101)


def test_subsampling_changes_the_bitstream():
    img = _image(64, 64)
    streams = {s: JpegProtocol(subsampling=s).encode(img, 50) for s in ("420", "422", "444")}
    assert len(set(streams.values())) == 3
    assert len(streams["444"]) > len(streams["420"])


def test_pillow_and_opencv_are_both_valid_but_distinct_codecs():
    img = _image(64, 64)
    a, b = JpegProtocol(codec="opencv").encode(img, 30), JpegProtocol(codec="pillow").encode(img, 30)
    assert decode_jpeg(a).shape == decode_jpeg(b).shape == img.shape


def test_prepare_hq_lanczos_and_crop():
    img = _image(37, 50)
    resized = JpegProtocol(resize="lanczos").prepare_hq(img)
    cropped = JpegProtocol(resize="crop").prepare_hq(img)
    assert resized.shape == cropped.shape == (32, 48, 3)
    assert np.array_equal(cropped, img[:32, :48])
    assert not np.array_equal(resized, cropped)
    aligned = _image(32, 48)
    assert JpegProtocol().prepare_hq(aligned) is aligned
    with pytest.raises(ProtocolError, match="smaller than one 8x8 block"):
        JpegProtocol().prepare_hq(_image(7, 13))
    with pytest.raises(ProtocolError, match="resize is 'none'"):
        JpegProtocol(resize="none").prepare_hq(img)


def test_protocol_key_ignores_quality_but_not_other_choices():
    base = JpegProtocol()
    assert base.key() == base.at(5).key()
    assert base.key() != JpegProtocol(codec="pillow").key()
    assert base.key() != JpegProtocol(subsampling="444").key()
    assert JpegProtocol.from_dict({"subsampling": "4:2:0"}) == base
    with pytest.raises(ConfigError, match="unknown key protocol.colour"):
        JpegProtocol.from_dict({"colour": "x"})
