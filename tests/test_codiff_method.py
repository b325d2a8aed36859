"""The harness methods `codiff` and `cave`: configuration, required files, loading and restoring."""

from __future__ import annotations

import pytest
import torch

from methods.base import MethodError
from methods.registry import create_method, list_methods


def _config(weights, **extra):
    return {"sd_path": str(weights["sd"]), "codiff": str(weights["codiff"]), "cave": str(weights["cave"]), **extra}


def test_registered_and_cheap_to_create(tmp_path):
    assert {"codiff", "cave"} <= set(list_methods())
    method = create_method("codiff", sd_path=str(tmp_path / "sd"), codiff=str(tmp_path / "c.pkl"))
    missing = {w.path.name for w in method.missing_weights()}
    assert {"config.json", "scheduler_config.json", "diffusion_pytorch_model.safetensors", "c.pkl"} <= missing
    with pytest.raises(MethodError, match="c.pkl"):
        method.load()
    with pytest.raises(MethodError, match="unknown key colour_fix .did you mean 'color_fix'"):
        create_method("codiff", colour_fix="adain")
    with pytest.raises(MethodError, match="dtype"):
        create_method("codiff", dtype="fp8")


def test_auto_dtype_is_fp32_on_cpus_and_fp16_on_cuda(codiff_tiny_models):
    from methods.codiff.pipeline import CODiffPipeline, resolve_dtype

    assert resolve_dtype("auto", torch.device("cpu")) == "fp32"
    assert resolve_dtype("auto", torch.device("cuda", 0)) == "fp16"  # not run: resolving needs no GPU
    assert resolve_dtype("bf16", torch.device("cpu")) == "bf16"
    pipeline = CODiffPipeline(*codiff_tiny_models())
    assert pipeline.config.dtype == "auto" and pipeline.generator.dtype == torch.float32


def test_project_checkpoint_lists_both_files(tmp_path):
    method = create_method("codiff", codiff=str(tmp_path / "mine.safetensors"))
    names = [w.path.name for w in method.required_weights()]
    assert "mine.safetensors" in names and "mine.json" in names


def test_codiff_restores_in_range_and_fingerprint_follows_config(codiff_standin_weights):
    method = create_method("codiff", **_config(codiff_standin_weights, tiles={"latent_tile": 16, "latent_overlap": 4}))
    assert not method.missing_weights()
    lq = torch.rand(1, 3, 40, 56)
    out = method(lq)
    assert out.shape == lq.shape and 0 <= out.min() and out.max() <= 1
    other = create_method("codiff", **_config(codiff_standin_weights, color_fix="wavelet"))
    assert other.fingerprint() != method.fingerprint()
    assert method.describe()["config"]["tiles"]["latent_tile"] == 16


def test_cave_method_restores_whole_or_tiled(codiff_standin_weights):
    lq = torch.rand(1, 3, 72, 100)
    whole = create_method("cave", cave=str(codiff_standin_weights["cave"]))(lq)
    tiled = create_method("cave", cave=str(codiff_standin_weights["cave"]), tile=64, tile_overlap=32)(lq)
    assert whole.shape == tiled.shape == lq.shape
    assert 0 <= whole.min() and whole.max() <= 1
    assert (whole - tiled).abs().mean() < 0.1
