"""CODiff checkpoint formats: the official codiff.pkl, this project's safetensors + JSON, conversion both ways,
the release's LoRA target rules, and errors that name the missing or wrong file."""

from __future__ import annotations

import json

import pytest
import torch

from methods.codiff.checkpoint import (
    CheckpointError,
    CODiffCheckpoint,
    load_codiff_checkpoint,
    save_codiff_checkpoint,
)
from methods.codiff.convert import convert_checkpoint
from methods.codiff.generator import CODiffGenerator, load_generator, release_lora_spec
from methods.codiff.sd import load_sd_components, resolve_sd_path, sd_weight_files


def _same(a: CODiffCheckpoint, b: CODiffCheckpoint) -> None:
    assert a.spec == b.spec
    for part in ("state_dict_unet", "state_dict_vae", "proj"):
        x, y = getattr(a, part), getattr(b, part)
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_release_lora_rules_reproduce_the_official_lists(parity_dir):
    official = load_codiff_checkpoint(parity_dir / "codiff.pkl").spec
    sd = load_sd_components(parity_dir / "tiny-sd")
    derived = release_lora_spec(sd.unet, sd.vae, official.rank_unet, official.rank_vae)
    for field in ("unet_encoder_modules", "unet_decoder_modules", "unet_others_modules", "vae_encoder_modules"):
        assert getattr(derived, field) == list(dict.fromkeys(getattr(official, field))), field


def test_official_and_project_formats_round_trip(codiff_standin_weights, tmp_path):
    official = load_codiff_checkpoint(codiff_standin_weights["codiff"])
    project = convert_checkpoint(codiff_standin_weights["codiff"], tmp_path / "codiff.safetensors")
    assert project.is_file() and (tmp_path / "codiff.json").is_file()
    header = json.loads((tmp_path / "codiff.json").read_text())
    assert header["kind"] == "codiff" and header["config"]["lora"]["rank_unet"] == official.spec.rank_unet
    _same(load_codiff_checkpoint(tmp_path / "codiff"), official)
    back = convert_checkpoint(tmp_path / "codiff.json", tmp_path / "again.pkl")
    raw = torch.load(back, weights_only=True)  # the official layout, loadable without unpickling code
    assert {"unet_lora_encoder_modules", "rank_vae", "state_dict_unet", "proj"} <= raw.keys()
    _same(load_codiff_checkpoint(back), official)


def test_cave_conversion(codiff_standin_weights, tmp_path):
    from methods.codiff.cave import load_cave

    convert_checkpoint(codiff_standin_weights["cave"], tmp_path / "cave.safetensors")
    convert_checkpoint(tmp_path / "cave.safetensors", tmp_path / "cave.pth")
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = load_cave(codiff_standin_weights["cave"]).embed(x)
        assert torch.equal(load_cave(tmp_path / "cave").embed(x), expected)
        assert torch.equal(load_cave(tmp_path / "cave.pth").embed(x), expected)


@torch.no_grad()
def test_generator_from_project_checkpoint_matches_official(codiff_standin_weights, tmp_path):
    save_codiff_checkpoint(load_codiff_checkpoint(codiff_standin_weights["codiff"]), tmp_path / "g.json")
    lq, tokens = torch.rand(1, 3, 32, 32) * 2 - 1, torch.randn(1, 1, 512)
    a = load_generator(codiff_standin_weights["sd"], codiff_standin_weights["codiff"])
    b = load_generator(codiff_standin_weights["sd"], tmp_path / "g")
    assert torch.equal(a(lq, tokens), b(lq, tokens))


def test_errors_name_the_files(codiff_standin_weights, tmp_path):
    with pytest.raises(CheckpointError, match="absent.pkl is missing"):
        load_codiff_checkpoint(tmp_path / "absent.pkl")
    with pytest.raises(CheckpointError, match="not a CODiff checkpoint"):
        load_codiff_checkpoint(codiff_standin_weights["cave"])
    (tmp_path / "x.json").write_text(json.dumps({"format": "codiff-bench", "kind": "cave", "config": {}}))
    (tmp_path / "x.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError, match="expected a codiff-bench 'codiff' checkpoint"):
        load_codiff_checkpoint(tmp_path / "x.json")
    with pytest.raises(CheckpointError, match=r"unet[/\\]diffusion_pytorch_model.safetensors"):
        load_sd_components(tmp_path / "no-such-sd")
    # a checkpoint whose tensors do not fit the model: named with the offending part
    checkpoint = load_codiff_checkpoint(codiff_standin_weights["codiff"])
    checkpoint.state_dict_unet.pop(next(iter(checkpoint.state_dict_unet)))
    with pytest.raises(CheckpointError, match="UNet tensors do not match"):
        CODiffGenerator.from_checkpoint(load_sd_components(codiff_standin_weights["sd"]), checkpoint)


def test_hub_id_resolves_only_from_the_local_cache(codiff_standin_weights, tmp_path, monkeypatch):
    import shutil

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    missing = resolve_sd_path("someone/tiny-sd")
    assert not missing.exists() and "models--someone--tiny-sd" in str(missing)
    assert all(w.status() == "missing" for w in sd_weight_files("someone/tiny-sd"))
    repo = tmp_path / "hub" / "models--someone--tiny-sd"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    shutil.copytree(codiff_standin_weights["sd"], repo / "snapshots" / ("0" * 40))
    assert resolve_sd_path("someone/tiny-sd") == repo / "snapshots" / ("0" * 40)
    assert all(w.status() == "present" for w in sd_weight_files("someone/tiny-sd"))


def test_conversion_command(codiff_standin_weights, tmp_path, capsys):
    from bench.cli import main

    assert main(["convert", str(codiff_standin_weights["codiff"]), str(tmp_path / "c"), "--format", "project"]) == 0
    assert (tmp_path / "c.safetensors").is_file() and (tmp_path / "c.json").is_file()
    assert main(["convert", str(tmp_path / "nothing.pkl"), str(tmp_path / "d.pkl")]) == 2
    assert "nothing.pkl" in capsys.readouterr().err


def test_sd_weights_that_do_not_fill_the_model_are_refused(codiff_standin_weights, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    sd = tmp_path / "sd"
    shutil.copytree(codiff_standin_weights["sd"], sd)
    vae_file = sd / "vae" / "diffusion_pytorch_model.safetensors"
    tensors = load_file(vae_file)
    renamed = {("wrong." + k if k.startswith("decoder.") else k): v for k, v in tensors.items()}
    save_file(renamed, str(vae_file))
    with pytest.raises(CheckpointError, match=r"vae[/\\]diffusion_pytorch_model.safetensors does not hold the "
                                              r"AutoencoderKL .*missing keys: decoder\."):
        load_sd_components(sd)
