"""Metrics without weights: the registry, PSNR/SSIM against scikit-image, PSNR-B by hand, skip messages."""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from bench.core.errors import UnknownNameError
from bench.metrics import MetricError, check_metrics, create_metric, list_metrics
from bench.metrics.psnrb import blocking_effect_factor, psnr_b

LEARNED = ["lpips", "dists", "musiq", "maniqa", "clipiqa"]
PAPER = ["psnr", "ssim", "psnr_b", *LEARNED]


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).double() / 255.0


@pytest.fixture(scope="module")
def jpeg_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """Two 64x64 crops of scikit-image's astronaut and their JPEG (QF 10) decodings: (out, ref)."""
    import cv2
    from skimage import data

    photo = data.astronaut()
    refs = [photo[100:164, 180:244], photo[300:364, 40:104]]
    outs = []
    for ref in refs:
        _, buf = cv2.imencode(".jpg", np.ascontiguousarray(ref[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 10])
        outs.append(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
    return to_tensor(outs), to_tensor(refs)


def luma(images: torch.Tensor) -> np.ndarray:
    """Y = 0.299 R + 0.587 G + 0.114 B per image, as numpy (B x H x W). The weights are rounded to float32
    as pyiqa stores them, which decides the rounding of a few pixels that fall half-way between 8-bit levels."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32).astype(np.float64)
    return np.einsum("bchw,c->bhw", images.numpy(), weights)


# -- registry --------------------------------------------------------------------------------------------

def test_registry_lists_the_papers_metrics_with_pyiqas_properties():
    from pyiqa.default_model_configs import DEFAULT_CONFIGS

    from bench.metrics import metric_spec

    assert set(PAPER) <= set(list_metrics())
    for name in list_metrics():
        spec = metric_spec(name)
        if spec.pyiqa_name:
            cfg = DEFAULT_CONFIGS[spec.pyiqa_name]
            assert spec.lower_better == cfg.get("lower_better", False), name
            assert spec.full_reference == (cfg["metric_mode"] == "FR"), name
        assert spec.description.endswith("lower is better" if spec.lower_better else "higher is better")
    assert [metric_spec(n).lower_better for n in ("lpips", "dists", "psnr", "musiq")] == [True, True, False, False]
    with pytest.raises(UnknownNameError, match="unknown metric 'psnrr' .did you mean 'psnr'"):
        create_metric("psnrr")


# -- PSNR, SSIM against scikit-image -----------------------------------------------------------------------

def test_psnr_matches_scikit_image_on_luma(jpeg_pair):
    from skimage.metrics import peak_signal_noise_ratio

    out, ref = jpeg_pair
    metric = create_metric("psnr")
    values = metric(out, ref)
    assert values.shape == (2,) and values.dtype == torch.float64
    for i, (y_out, y_ref) in enumerate(zip(luma(out), luma(ref))):
        assert values[i].item() == pytest.approx(peak_signal_noise_ratio(y_ref, y_out, data_range=1.0), abs=1e-4)
    assert 20 < values.min() < values.max() < 35


def test_ssim_matches_scikit_image_on_8bit_luma(jpeg_pair):
    from skimage.metrics import structural_similarity

    out, ref = jpeg_pair
    values = create_metric("ssim")(out, ref)
    for i, (y_out, y_ref) in enumerate(zip(luma(out), luma(ref))):
        expected = structural_similarity(np.round(y_ref * 255), np.round(y_out * 255), data_range=255,
                                         gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert values[i].item() == pytest.approx(expected, abs=1e-6)
    assert 0.3 < values.min() < values.max() < 0.99


def test_rgb_variants_match_scikit_image(jpeg_pair):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    out, ref = jpeg_pair
    psnr, ssim = create_metric("psnr_rgb")(out, ref), create_metric("ssim_rgb")(out, ref)
    o, r = out[0].permute(1, 2, 0).numpy(), ref[0].permute(1, 2, 0).numpy()
    assert psnr[0].item() == pytest.approx(peak_signal_noise_ratio(r, o, data_range=1.0), abs=1e-4)
    expected = structural_similarity(np.round(r * 255), np.round(o * 255), data_range=255, channel_axis=2,
                                     gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ssim[0].item() == pytest.approx(expected, abs=1e-5)


# -- PSNR-B ------------------------------------------------------------------------------------------------

def gray(values: np.ndarray) -> torch.Tensor:
    """A 1 x 3 x H x W grey image (R = G = B, so that luma equals the value)."""
    return torch.from_numpy(values).double().expand(1, 3, *values.shape).clone()


def test_psnr_b_by_hand_on_two_flat_blocks():
    # 16 x 16: columns 0-7 at 0.5, columns 8-15 at 0.25, reference 0.375 everywhere.
    # MSE = 0.125^2 = 1/64. Across the block boundaries: 16 horizontal pairs differ by 0.25, the 16 vertical
    # ones by 0: D_B = 16 * 0.0625 / 32 = 1/32. Inside blocks (224 + 224 pairs) nothing differs: D_Bc = 0.
    # eta = log2(8) / log2(16) = 3/4, BEF = 3/128, PSNR-B = 10 log10(1 / (1/64 + 3/128)) = 10 log10(25.6).
    out = np.full((16, 16), 0.5)
    out[:, 8:] = 0.25
    ref = np.full((16, 16), 0.375)
    assert blocking_effect_factor(gray(out)[:, :1]).item() == pytest.approx(3 / 128, rel=1e-6)
    assert psnr_b(gray(out), gray(ref)).item() == pytest.approx(10 * math.log10(25.6), abs=1e-5)
    assert create_metric("psnr")(gray(out), gray(ref)).item() == pytest.approx(10 * math.log10(64), abs=1e-5)


def brute_force_psnr_b(out: np.ndarray, ref: np.ndarray, block: int = 8) -> float:
    """The paper's definition, pair by pair."""
    h, w = out.shape
    across, inside = [], []
    for i in range(h):
        for j in range(w):
            for di, dj in ((0, 1), (1, 0)):
                if i + di < h and j + dj < w:
                    crosses = (j + 1) % block == 0 if dj else (i + 1) % block == 0
                    (across if crosses else inside).append((out[i, j] - out[i + di, j + dj]) ** 2)
    d_b, d_bc = sum(across) / len(across), sum(inside) / len(inside)
    bef = math.log2(block) / math.log2(min(h, w)) * (d_b - d_bc) if d_b > d_bc else 0.0
    mse = float(((out - ref) ** 2).mean())
    return 10 * math.log10(1 / (mse + bef))


@pytest.mark.parametrize("shape", [(13, 24), (24, 17), (32, 32)])
def test_psnr_b_follows_the_definition_pair_by_pair(shape):
    rng = np.random.default_rng(sum(shape))
    # Blocky content: one level per 8x8 block plus a little noise, so that BEF is positive.
    levels = rng.uniform(0.2, 0.8, (shape[0] // 8 + 1, shape[1] // 8 + 1))
    out = np.clip(np.kron(levels, np.ones((8, 8)))[: shape[0], : shape[1]] + rng.normal(0, 0.01, shape), 0, 1)
    ref = np.clip(out + rng.normal(0, 0.05, shape), 0, 1)
    expected = brute_force_psnr_b(out, ref)
    assert psnr_b(gray(out), gray(ref)).item() == pytest.approx(expected, abs=1e-4)
    assert blocking_effect_factor(gray(out)[:, :1]).item() > 0


def test_psnr_b_is_psnr_without_blocking_and_lower_with_it(jpeg_pair):
    # A square ramp: every horizontal neighbour pair differs equally, vertical ones not at all, and boundary
    # and inner pairs split evenly between the two directions, so that D_B = D_Bc.
    ramp = np.tile(np.linspace(0.1, 0.9, 16), (16, 1))
    ref = np.clip(ramp + np.random.default_rng(0).normal(0, 0.02, ramp.shape), 0, 1)
    assert blocking_effect_factor(gray(ramp)[:, :1]).item() == pytest.approx(0, abs=1e-15)
    assert create_metric("psnr_b")(gray(ramp), gray(ref)).item() == pytest.approx(
        create_metric("psnr")(gray(ramp), gray(ref)).item(), abs=1e-6)
    out, ref = jpeg_pair
    assert (create_metric("psnr_b")(out, ref) < create_metric("psnr")(out, ref) - 0.05).all()
    with pytest.raises(ValueError, match="at least 2 x 2"):
        create_metric("psnr_b")(torch.rand(1, 3, 1, 9), torch.rand(1, 3, 1, 9))


# -- calling a metric --------------------------------------------------------------------------------------

def test_metric_checks_its_inputs():
    metric = create_metric("ssim")
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(MetricError, match=r"\[0, 1\]"):
        metric(x * 2, x)
    assert metric(x + 1e-7, x).shape == (1,)  # rounding overshoot, tolerated as pyiqa does
    with pytest.raises(MetricError, match="needs a reference"):
        metric(x, None)
    with pytest.raises(MetricError, match="differ"):
        metric(x, torch.rand(1, 3, 16, 8))
    with pytest.raises(MetricError, match="B x 3 x H x W"):
        metric(x[:, :1], x[:, :1])


def test_fingerprint_follows_options_and_file_contents_not_paths_or_times(metrics_standins, tmp_path):
    assert create_metric("psnr").fingerprint() == create_metric("psnr").fingerprint()
    assert create_metric("psnr").fingerprint() != create_metric("psnr", color_space="ycbcr").fingerprint()
    musiq = create_metric("musiq")
    before = musiq.fingerprint()
    checkpoint = musiq.files[0].path
    stat = checkpoint.stat()
    try:
        os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched, same content
        assert musiq.fingerprint() == before
    finally:
        os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    copy = tmp_path / "elsewhere.pth"
    shutil.copyfile(checkpoint, copy)
    musiq.files[0] = replace(musiq.files[0], weight=replace(musiq.files[0].weight, path=copy))
    assert musiq.fingerprint() == before  # the same file at another path
    with open(copy, "ab") as fh:
        fh.write(b"\0")
    assert musiq.fingerprint() != before


# -- missing weights: skipped, with the file and its folder ------------------------------------------------

def test_missing_weights_skip_each_learned_metric_naming_files_and_folders(metrics_caches, metrics_no_network):
    available, skipped = check_metrics(["psnr", "lpips", "ssim", "psnr_b", "dists", "musiq", "maniqa", "clipiqa",
                                        "psnr"])
    assert available == ["psnr", "ssim", "psnr_b"]
    assert list(skipped) == LEARNED
    hub = metrics_caches / "torch" / "hub"
    hf = metrics_caches / "huggingface" / "hub"
    expected = {
        "lpips": [hub / "checkpoints" / "alexnet-owt-7be5be79.pth", hub / "pyiqa" / "LPIPS_v0.1_alex-df73285e.pth"],
        "dists": [hub / "checkpoints" / "vgg16-397923af.pth", hub / "pyiqa" / "DISTS_weights-f5e65c96.pth"],
        "musiq": [hub / "pyiqa" / "musiq_koniq_ckpt-e95806b9.pth"],
        "maniqa": [hf / "models--timm--vit_base_patch8_224.augreg2_in21k_ft_in1k", hub / "pyiqa" / "ckpt_koniq10k.pt"],
        "clipiqa": [hub / "clip" / "RN50.pt"],
    }
    for name, paths in expected.items():
        reason = skipped[name]
        assert reason.count("is missing") == len(paths), reason
        for path in paths:
            assert str(path) in reason
    assert "$TORCH_HOME/hub/checkpoints" in skipped["lpips"] and "$TORCH_HOME/hub/pyiqa" in skipped["lpips"]
    assert "Hugging Face cache" in skipped["maniqa"] and "model.safetensors" in skipped["maniqa"]


def test_strict_raises_and_creation_fails_fast_offline(metrics_caches, metrics_no_network):
    with pytest.raises(MetricError) as info:
        check_metrics(["psnr", "musiq", "maniqa"], strict=True)
    assert "musiq_koniq_ckpt-e95806b9.pth is missing" in str(info.value)
    assert "ckpt_koniq10k.pt is missing" in str(info.value)
    assert check_metrics(["psnr"], strict=True) == (["psnr"], {})
    with pytest.raises(UnknownNameError, match="unknown metric"):
        check_metrics(["psnr", "nosuch"])
    with pytest.raises(MetricError, match=r"metric 'maniqa' cannot be created: .*vit_base_patch8_224"):
        create_metric("maniqa")
