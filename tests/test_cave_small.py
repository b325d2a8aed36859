"""`cave-small`: registered, pointing at the shipped dual CaVE, restoring images; the default CaVE of
`estimate-qf`; the shipped files and model card; the run engine's CaVE-analysis hook."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from methods.codiff.cave import CaVE, CaVEConfig, init_cave_weights, save_cave
from methods.codiff.cave_small import (
    DEFAULT_CAVE,
    SHIPPED_CAVES,
    WEIGHTS_DIR,
    default_cave,
    shipped_cave,
)
from methods.registry import create_method, list_methods

REPO = Path(__file__).resolve().parents[1]


def _shipped(name: str = DEFAULT_CAVE) -> Path:
    path = shipped_cave(name)
    if not path.is_file():
        pytest.skip(f"shipped CaVE {path} is not in this tree (trained with configs/train/{name}.yaml)")
    return path


def _tiny_cave(path: Path) -> Path:
    torch.manual_seed(0)
    return save_cave(init_cave_weights(CaVE(CaVEConfig(nc=(4, 8, 8, 16), nb=1))).eval(), path)


def test_cave_small_is_registered_and_points_at_the_shipped_dual_cave(tmp_path: Path) -> None:
    assert "cave-small" in list_methods()
    method = create_method("cave-small")
    assert [w.path for w in method.required_weights()] == [WEIGHTS_DIR / f"{DEFAULT_CAVE}.safetensors",
                                                           WEIGHTS_DIR / f"{DEFAULT_CAVE}.json"]
    other = _tiny_cave(tmp_path / "mine")
    override = create_method("cave-small", cave=str(other))
    assert override.required_weights()[0].path == other
    assert override.fingerprint() != method.fingerprint()


def test_cave_small_restores_with_any_cave_checkpoint(tmp_path: Path) -> None:
    method = create_method("cave-small", cave=str(_tiny_cave(tmp_path / "mine")))
    lq = torch.rand(1, 3, 40, 56)
    out = method(lq)
    assert out.shape == lq.shape and 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("qf, least_gain", [(5, 0.2), (10, 0.2), (90, -0.05)])
def test_shipped_dual_cave_restores_heavy_jpeg_and_leaves_good_images_alone(qf, least_gain) -> None:
    """Mean PSNR gain over JPEG on three sample crops (a source never trained on): a clear gain on heavy JPEG
    (QF 5 unseen in training), nothing lost at QF 90, where the QF gate switches the decoder off."""
    _shipped()
    from skimage import data

    from bench.core.imageio import to_tensor
    from bench.core.protocol import JpegProtocol, decode_jpeg

    def psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
        return float(-10 * torch.log10(((x - ref) ** 2).mean()))

    method = create_method("cave-small")
    gains = []
    for image in (data.astronaut()[:256, 128:384], data.coffee()[:256, :256], data.chelsea()[:256, :256]):
        hq = to_tensor(image)
        lq = to_tensor(decode_jpeg(JpegProtocol().encode(image, qf)))
        out = method(lq)
        assert out.shape == lq.shape and 0 <= out.min() and out.max() <= 1
        gains.append(psnr(out, hq) - psnr(lq, hq))
    assert sum(gains) / len(gains) > least_gain, gains


def test_shipped_files_and_model_card_ship_with_the_package() -> None:
    tomllib = pytest.importorskip("tomllib")
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["methods"]
    assert "**/*.safetensors" in globs and "**/*.json" in globs and "**/*.md" in globs
    for name in SHIPPED_CAVES:
        path = _shipped(name)
        assert path.stat().st_size < 16 * 2**20
        header = json.loads(path.with_suffix(".json").read_text())
        assert header["kind"] == "cave" and header["config"]["nc"] == [16, 32, 64, 128]
        assert header["config"]["input"] == "highpass" and header["config"]["global_residual"] is True
    dual = json.loads(shipped_cave(DEFAULT_CAVE).with_suffix(".json").read_text())
    assert dual["config"]["restore_gate"] and dual["config"]["qf_tile"] == 64
    error = dual["evaluation"]["qf_estimate"]
    assert error["mae_10_90"] < 10 and {"1", "5", "10", "90"} <= set(error["mae_by_qf"])
    card = (WEIGHTS_DIR / "MODEL_CARD.md").read_text()
    for needed in ("mate-backgrounds", "lomiri-wallpapers-16.04", "train_small_caves.sh", "finish_small_caves.py",
                   "silhouette", "PSNR-B", "never used in training", *SHIPPED_CAVES):
        assert needed in card


def test_default_cave_prefers_the_release_file_then_the_shipped_one(tmp_path: Path) -> None:
    assert default_cave(tmp_path) == shipped_cave(DEFAULT_CAVE)
    (tmp_path / "cave.pth").write_bytes(b"stand-in")
    assert default_cave(tmp_path) == tmp_path / "cave.pth"


def test_estimate_qf_works_with_nothing_downloaded(tmp_path: Path, monkeypatch, capsys) -> None:
    _shipped()
    from skimage import data

    from bench.cli import main
    from bench.core.protocol import JpegProtocol

    monkeypatch.setenv("CODIFF_BENCH_WEIGHTS", str(tmp_path / "empty"))
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(JpegProtocol().encode(data.chelsea()[:128, :128], 20))
    assert main(["estimate-qf", "--json", str(photo)]) == 0
    estimate = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["qf"]
    assert 1 <= estimate <= 100


@pytest.mark.slow
def test_run_engine_writes_the_cave_analysis_into_the_run_folder(tmp_path: Path, image_folder) -> None:
    from bench.config import ConfigError, RunConfig
    from bench.engine import Runner

    with pytest.raises(ConfigError, match="unknown key cave_analysis .did you mean 'analyses'"):
        RunConfig.from_dict({"cave_analysis": {"caves": []}})
    caves = [f"a={_tiny_cave(tmp_path / 'a')}", f"gone={tmp_path / 'gone.safetensors'}"]
    config = RunConfig.from_dict({"images": [str(image_folder)], "datasets": [], "qf": [10], "methods": ["jpeg"],
                                  "metrics": ["psnr"], "run_dir": str(tmp_path / "run"), "report": False,
                                  "analyses": [{"name": "cave", "when": "always", "caves": caves, "qfs": [1, 5, 10, 50],
                                                "crops": 0}]})
    summary = Runner(config, progress=False).run()
    out = tmp_path / "run" / "analyses" / "cave"
    written = json.loads((out / "summary.json").read_text())
    assert (out / "tsne.png").is_file() and written["samples_per_checkpoint"] == 3 * 4
    assert {"kind": "analysis", "name": "cave:gone"} in [
        {k: s[k] for k in ("kind", "name")} for s in summary.skipped]


@pytest.mark.parametrize("evaluation, flag", [
    ({"qf_estimate": {"mae_by_qf": {"10": 2.0, "50": 4.0, "90": 9.0}, "mae_10_90": 5.0, "data": "photos"}}, None),
    ({"qf_estimate": {"mae_by_qf": {"10": 20.0, "90": 30.0}, "mae_10_90": 25.0, "data": "photos"}}, "poor"),
    (None, "unverified"),
])
def test_estimate_qf_prints_the_measured_error_and_flags_unmeasured_or_poor_models(tmp_path, capsys, evaluation,
                                                                                   flag) -> None:
    from bench.cli import main
    from bench.core.protocol import JpegProtocol
    from methods.codiff.qf_error import checkpoint_qf_error

    torch.manual_seed(0)
    cave = save_cave(init_cave_weights(CaVE(CaVEConfig(nc=(4, 8, 8, 16), nb=1))).eval(), tmp_path / "c", evaluation)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(JpegProtocol().encode(np.full((64, 64, 3), 128, np.uint8), 30))
    assert main(["estimate-qf", "--json", "--cave", str(cave), str(photo)]) == 0
    out = capsys.readouterr()
    line = json.loads(out.out.strip().splitlines()[-1])
    assert line["flag"] == flag and ("warning" in out.err) == (flag is not None)
    error = checkpoint_qf_error(cave)
    if evaluation is None:
        assert error is None and line["error_mae"] is None
    else:
        nearest = min(error.mae_by_qf, key=lambda q: abs(q - line["qf"]))
        assert line["error_mae"] == error.mae_by_qf[nearest]
        assert main(["estimate-qf", "--cave", str(cave), str(photo)]) == 0
        assert f"±{error.mae_by_qf[nearest]:.1f}" in capsys.readouterr().out
