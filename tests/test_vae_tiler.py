"""The release's VAE tiler (methods.codiff.vae_tiler): its tile geometry and thresholds, parity with the release's
`VAEHook` on the tiny SD-shaped VAE at several sizes and tile settings (tests/vectors/vae_tiler), the shared
end-to-end vectors (../shared/parity/official-tiny-vae-tiled), and reduced precision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from methods.codiff.options import PipelineConfig, TileConfig
from methods.codiff.vae_tiler import ReleaseVAETiler, best_tile_size, split

DATA = Path(__file__).parent / "vectors" / "vae_tiler"
VAE_TILED = Path(__file__).resolve().parents[2] / "shared" / "parity" / "official-tiny-vae-tiled"


@pytest.fixture(scope="module")
def vae_tiled_dir() -> Path:
    if not (VAE_TILED / "codiff_output.npy").is_file():
        pytest.skip(f"VAE-tiled parity vectors not found at {VAE_TILED}: the repository's parent holds no "
                    "shared/parity folder")
    return VAE_TILED


@pytest.fixture(scope="module")
def tiny_vae(vae_tiled_dir):
    from diffusers import AutoencoderKL

    return AutoencoderKL.from_pretrained(vae_tiled_dir / "tiny-sd", subfolder="vae").eval()


def _pattern(shape: tuple[int, ...], latent: bool) -> torch.Tensor:
    """The vectors' inputs (tests/vectors/vae_tiler/README.md), exact in float32."""
    b, c, y, x = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    if latent:
        values = ((7 * x * x + 3 * y * y + 2 * x * y + 53 * c + 29 * b) % 101) / 25 - 2
    else:
        values = ((3 * x * x + 5 * y * y + x * y + 85 * c + 41 * b) % 256) / 127.5 - 1
    return torch.from_numpy(values.astype(np.float32))


def test_best_tile_size_rounds_up_to_the_largest_power_of_two_that_fits():
    assert best_tile_size(516, 1024) == 544 and best_tile_size(68, 96) == 96 and best_tile_size(64, 64) == 64
    assert best_tile_size(9, 12) == 12 and best_tile_size(7, 12) == 8 and best_tile_size(5, 5) == 5
    assert best_tile_size(-14, 224) == 0  # a side below 2 * pad, as Python's modulo makes it


def test_split_follows_the_release():
    tiles = split(1096, 72, 1024, 32)  # 2 x 1: rows of 544 px cores, the border cores extended to the edge
    assert [t.core for t in tiles] == [(0, 576, 0, 72), (576, 1096, 0, 72)]
    assert [t.read for t in tiles] == [(0, 608, 0, 72), (544, 1096, 0, 72)]
    assert len(split(2040 // 8, 1400 // 8, 224, 11)) == 2  # DIV2K's latent: 2 x 1 decoder tiles of 224


@pytest.mark.parametrize("decoder,tile,whole_up_to", [(False, 1024, 1088), (True, 224, 246), (False, 0, 10**6)])
def test_the_network_runs_whole_up_to_the_release_threshold(decoder, tile, whole_up_to):
    tiler = ReleaseVAETiler(torch.nn.Identity(), tile, decoder)
    assert tiler.tiles(whole_up_to, 64) is None and tiler.tiles(64, whole_up_to) is None
    assert tile == 0 or tiler.tiles(whole_up_to + 1, 64) is not None


CASES = json.loads((DATA / "cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_the_release_vaehook(case, tiny_vae):
    expected = np.load(DATA / "expected.npz")
    decoder = case["stage"] == "decoder"
    x = _pattern(tuple(case["input_shape"]), latent=decoder)
    tiler = ReleaseVAETiler(tiny_vae.decoder if decoder else tiny_vae.encoder, case["tile"], decoder)
    assert tiler.tiles(*x.shape[-2:]) is not None
    with torch.no_grad():
        y = tiler(x)
    assert list(y.shape) == case["output_shape"] and y.dtype == torch.float32
    name = case["name"]
    if f"{name}/output" in expected:
        assert np.abs(y.numpy() - expected[f"{name}/output"]).max() < 1e-4
    else:
        assert np.abs(F.avg_pool2d(y.double(), 8).float().numpy() - expected[f"{name}/pool8"]).max() < 1e-4
        got = y.numpy().reshape(-1)[expected[f"{name}/sample_index"]]
        assert np.abs(got - expected[f"{name}/samples"]).max() < 1e-4
    assert case["max_abs_diff_from_untiled"] > 1  # the tiler is not the whole network, so this checks tiling


@pytest.mark.parametrize("dtype,tolerance", [(torch.bfloat16, 0.15), (torch.float16, 0.02)])
def test_reduced_precision_stays_near_float32(dtype, tolerance, tiny_vae):
    import copy

    x = _pattern((1, 4, 27, 45), latent=True)
    with torch.no_grad():
        reference = ReleaseVAETiler(tiny_vae.decoder, 16, True)(x)
        try:
            y = ReleaseVAETiler(copy.deepcopy(tiny_vae.decoder).to(dtype), 16, True)(x.to(dtype))
        except RuntimeError as exc:  # a CPU build without the dtype's kernels
            pytest.skip(f"{dtype} not supported here: {exc}")
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    assert (y - reference).abs().mean() < tolerance * reference.abs().mean()


def test_codiff_with_the_release_vae_tiler_matches_the_release(vae_tiled_dir):
    """End to end (encoder tiles of 128 px, decoder tiles of 16 latent px, as the vectors were made)."""
    from PIL import Image

    from methods.codiff.cave import load_cave
    from methods.codiff.generator import load_generator
    from methods.codiff.pipeline import CODiffPipeline

    rgb = np.asarray(Image.open(vae_tiled_dir / "lq.png").convert("RGB"))
    lq = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0
    expected = np.load(vae_tiled_dir / "codiff_output.npy")
    generator = load_generator(vae_tiled_dir / "tiny-sd", vae_tiled_dir / "codiff.pkl")
    tiles = TileConfig(vae_encoder_tile=128, vae_decoder_tile=16)
    pipeline = CODiffPipeline(generator, load_cave(vae_tiled_dir / "cave.pth"),
                              PipelineConfig(merge_lora=False, color_fix="none", tiles=tiles))
    out = pipeline.generate(lq).numpy()
    assert out.shape == expected.shape == (1, 3, 256, 384)
    # measured 1.8e-4 (mean 2e-6): float32's own floor here (in float64 the same pipeline is 1.1e-4 from the
    # release's float32 output, 9.7e-5 from this one's); the untiled and Gaussian-tiled outputs differ by 2.0
    assert np.abs(out - expected).max() < 2.5e-4
    pipeline.config = PipelineConfig(merge_lora=False, color_fix="none",
                                     tiles=TileConfig(vae_encoder_tile=0, vae_decoder_tile=0))
    assert np.abs(pipeline.generate(lq).numpy() - expected).max() > 1


def test_vae_memory_command_runs_a_case(capsys):
    """`python -m methods.codiff.vae_memory` (methods/codiff/README.md, "Memory"), one small case in-process."""
    from methods.codiff.vae_memory import main

    main(["--case", "64", "release"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["side"] == 64 and result["tiling"] == "release" and result["peak_above_loaded_gb"] >= 0
