"""FFmpeg's spp filter as a method: its quantiser from the QF, its version in the fingerprint, an absent
ffmpeg skipped with the install command, and a real restoration."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from bench.core.imageio import to_tensor
from bench.core.protocol import decode_jpeg
from methods.base import MethodError
from methods.registry import create_method

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (apt-get install "
                                                                         "ffmpeg; .ci/run does this before the tests)")


def test_the_quantiser_follows_the_qf_within_ffmpeg_range():
    method = create_method("ffmpeg-spp", program="no-such-ffmpeg")
    assert [method.qp(qf) for qf in (1, 5, 10, 20, 90, 1000)] == [63, 30, 15, 8, 2, 1]
    with pytest.raises(MethodError, match="apt-get install ffmpeg"):
        method.load()
    with pytest.raises(MethodError, match="mode: 'medium' is not"):
        create_method("ffmpeg-spp", mode="medium")
    assert not create_method("ffmpeg-spp").blind


@needs_ffmpeg
def test_real_spp_restores_a_jpeg_at_its_qf():
    import cv2
    from skimage import data as samples

    hq = np.ascontiguousarray(samples.astronaut()[128:256, 160:288])
    jpeg = cv2.imencode(".jpg", hq[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 10])[1].tobytes()
    lq = to_tensor(decode_jpeg(jpeg))
    method = create_method("ffmpeg-spp")
    out = method(lq, qf=10, jpeg_bytes=jpeg)
    reference = to_tensor(hq)
    psnr = [float(10 * torch.log10(1 / torch.mean((x - reference) ** 2))) for x in (out, lq)]
    assert out.shape == lq.shape and psnr[0] > psnr[1] + 0.3, psnr
    assert method.describe()["config"]["version"]
    assert create_method("ffmpeg-spp", qp_scale=100).fingerprint() != method.fingerprint()
    with pytest.raises(MethodError, match="needs the QF"):
        method(lq, jpeg_bytes=jpeg)
