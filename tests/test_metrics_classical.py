"""The CPU implementations of PSNR, SSIM and PSNR-B give pyiqa's values (and the reference PSNR-B's) within 1e-6
on a corpus of sizes, colours and JPEG qualities; they serve only the options they implement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.metrics import create_metric
from bench.metrics.psnrb import psnr_b

SIZES = [(11, 11), (13, 24), (37, 53), (64, 96), (97, 130), (203, 211)]  # the last in two strips of rows
QFS = [5, 30, 90]
TOLERANCE = 1e-6


def _jpeg(rgb8: np.ndarray, qf: int) -> np.ndarray:
    import cv2

    _, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb8[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, qf])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]


def _images(kind: str, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """8-bit RGB test images: a photo crop, grey, saturated primaries, or smooth colour with noise."""
    if kind == "photo":
        from skimage import data

        photo = data.astronaut()
        y, x = rng.integers(0, photo.shape[0] - h), rng.integers(0, photo.shape[1] - w)
        return photo[y:y + h, x:x + w]
    if kind == "grey":
        level = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1))
        return np.repeat(np.kron(level, np.ones((4, 4)))[:h, :w, None], 3, axis=2).astype(np.uint8)
    if kind == "saturated":
        colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [255, 255, 0]])
        index = rng.integers(0, len(colours), (h // 5 + 1, w // 5 + 1))
        return colours[np.kron(index, np.ones((5, 5), dtype=int))[:h, :w]].astype(np.uint8)
    ramp = np.linspace(0, 255, w)[None, :, None] * np.array([1.0, 0.5, 0.2]) + rng.normal(0, 20, (h, w, 3))
    return np.clip(ramp, 0, 255).astype(np.uint8)


def _corpus() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    rng = np.random.default_rng(23)
    cases = []
    for h, w in SIZES:
        for kind in ("photo", "grey", "saturated", "noise"):
            for qf in QFS:
                ref = _images(kind, h, w, rng)
                out = _jpeg(ref, qf)
                cases.append((f"{kind} {h}x{w} qf{qf}", torch.from_numpy(np.stack([out])),
                              torch.from_numpy(np.stack([ref]))))
    return cases


def _float(rgb8: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return rgb8.permute(0, 3, 1, 2).to(dtype) / 255


CORPUS = _corpus()


@pytest.fixture(scope="module")
def pyiqa_metrics():
    import pyiqa

    return {name: pyiqa.create_metric(name, device="cpu", **options) for name, options in
            {"psnry": {}, "psnr": {}, "ssim": {}, "ssimc": {}}.items()}


@pytest.mark.parametrize(("ours", "theirs"), [("psnr", "psnry"), ("ssim", "ssim"), ("psnr_rgb", "psnr"),
                                                ("ssim_rgb", "ssimc"), ("psnr_b", None)])
def test_cpu_metrics_equal_pyiqa_on_sizes_colours_and_qualities(ours, theirs, pyiqa_metrics):
    metric = create_metric(ours)
    assert metric.version.startswith("bench.metrics.classical:")
    worst = 0.0
    for label, out8, ref8 in CORPUS:
        out, ref = _float(out8), _float(ref8)  # the runner's images: float32 of 8-bit levels
        ours_value = metric(out, ref).item()
        with torch.inference_mode():
            if theirs is None:
                expected = psnr_b(out.double(), ref.double()).item()
            else:
                expected = pyiqa_metrics[theirs](out.double(), ref.double()).item()
        assert ours_value == pytest.approx(expected, abs=TOLERANCE, rel=0), label
        worst = max(worst, abs(ours_value - expected))
    assert worst < TOLERANCE


def test_unrounded_float64_batches_and_options_match_pyiqa():
    import pyiqa

    rng = torch.Generator().manual_seed(5)
    ref = torch.rand(2, 3, 41, 67, generator=rng, dtype=torch.float64)
    out = (ref + 0.05 * torch.randn(ref.shape, generator=rng, dtype=torch.float64)).clamp(0, 1)
    for name, theirs, options in [("psnr", "psnry", {"color_space": "ycbcr"}), ("ssim", "ssim", {"crop_border": 4}),
                                  ("ssim", "ssim", {"color_space": "ycbcr"}), ("psnr_rgb", "psnr", {"crop_border": 3})]:
        metric = create_metric(name, **options)
        assert metric.version.startswith("bench.metrics.classical:")
        expected = pyiqa.create_metric(theirs, device="cpu", **options)(out, ref)
        assert torch.allclose(metric(out, ref), expected.reshape(2), atol=TOLERANCE, rtol=0), (name, options)
    expected = psnr_b(out, ref, color_space="ycbcr")
    assert torch.allclose(create_metric("psnr_b", color_space="ycbcr")(out, ref), expected, atol=TOLERANCE, rtol=0)
    for half in (torch.bfloat16, torch.float16):
        halved = out.to(half)
        assert torch.allclose(create_metric("ssim")(halved, ref),
                              create_metric("ssim", reference=True)(halved, ref), atol=TOLERANCE, rtol=0)
    same = create_metric("psnr")(ref, ref)
    assert same.tolist() == pytest.approx([80.0, 80.0])


@pytest.mark.parametrize("strip", [1, 40, 333])
def test_strips_of_any_height_give_the_same_values(strip, monkeypatch, pyiqa_metrics):
    from bench.metrics import classical

    monkeypatch.setattr(classical, "STRIP_VALUES", strip * 29)
    for label, out8, ref8 in CORPUS[8:40:5]:
        out, ref = _float(out8[:, :, :29]), _float(ref8[:, :, :29])
        assert create_metric("psnr_b")(out, ref).item() == pytest.approx(
            psnr_b(out.double(), ref.double()).item(), abs=TOLERANCE, rel=0), label
        for ours, theirs in (("psnr", "psnry"), ("ssim", "ssim"), ("ssim_rgb", "ssimc")):
            assert create_metric(ours)(out, ref).item() == pytest.approx(
                pyiqa_metrics[theirs](out.double(), ref.double()).item(), abs=TOLERANCE, rel=0), (ours, label)


def test_options_the_cpu_path_lacks_go_to_pyiqa_with_another_fingerprint():
    fast, pyiqa_ssim = create_metric("ssim"), create_metric("ssim", downsample=True)
    assert pyiqa_ssim.version.startswith("pyiqa ") and pyiqa_ssim.network is not None
    assert fast.network is None and fast.fingerprint() != pyiqa_ssim.fingerprint()
    x = torch.rand(1, 3, 24, 24)
    assert fast(x, x).item() == pytest.approx(1.0)


def test_too_small_images_are_refused_with_the_size_needed():
    with pytest.raises(ValueError, match="at least 11 x 11"):
        create_metric("ssim")(torch.rand(1, 3, 10, 40), torch.rand(1, 3, 10, 40))
    with pytest.raises(ValueError, match="at least 2 x 2"):
        create_metric("psnr_b")(torch.rand(1, 3, 1, 9), torch.rand(1, 3, 1, 9))
