"""Checkpoints never execute code: a file holding a pickle that runs a command when unpickled is refused by
every loader in the project (CaVE, CODiff, FBCNN, training checkpoints, metric weights), and the command
never runs.

Every loader listed here is imported and checked: a module that has gone missing fails the test.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import shlex
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest
import torch


class RunsCommand:
    """Unpickling this runs a shell command (what a hostile checkpoint would do)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def hostile_files(marker: Path) -> dict[str, bytes]:
    """The same payload in each container a loader may meet: a plain pickle, torch.save's legacy format and
    its zip format, and a TorchScript-shaped zip."""
    payload = {"state_dict": {"weight": RunsCommand(f"touch {shlex.quote(str(marker))}")}}
    raw = pickle.dumps(payload, protocol=2)
    legacy, zipped, script = io.BytesIO(), io.BytesIO(), io.BytesIO()
    torch.save(payload, legacy, _use_new_zipfile_serialization=False)
    torch.save(payload, zipped)
    with zipfile.ZipFile(script, "w") as archive:
        archive.writestr("archive/data.pkl", raw)
        archive.writestr("archive/constants.pkl", raw)
        archive.writestr("archive/version", "3\n")
    return {"plain-pickle": raw, "torch-legacy": legacy.getvalue(), "torch-zip": zipped.getvalue(),
            "torchscript-zip": script.getvalue()}


def test_the_payload_does_run_when_unpickled_freely(tmp_path):
    """The control: unpickled freely, these files run their command."""
    marker = tmp_path / "ran"
    files = hostile_files(marker)
    pickle.loads(files["plain-pickle"])
    assert marker.exists()
    for container in ("torch-legacy", "torch-zip"):
        marker.unlink()
        torch.load(io.BytesIO(files[container]), weights_only=False)
        assert marker.exists(), container


def _module(name: str) -> Any:
    return importlib.import_module(name)


def _create_method(name: str, **config: Any) -> None:
    from methods.registry import create_method

    create_method(name, **config).load()


def _training_checkpoint(m: Any, path: Path) -> Any:
    """Resume's path: the newest complete checkpoint folder, then its state file."""
    folder = m.CheckpointFolder(path.parent / "checkpoints")
    staging = folder.prepare_staging(7)
    (staging / m.STATE_FILE).write_bytes(path.read_bytes())
    folder.commit(staging, 7)
    return m.load_tensors(folder.latest() / m.STATE_FILE)


def _sd_base_model(m: Any, path: Path) -> Any:
    """A diffusers folder (tiny SD-shaped configs) whose UNet and VAE weight files are `path`."""
    from methods.codiff import standins

    root = path.parent / "sd"
    for part, config, cls in (("unet", standins.TINY_UNET, "UNet2DConditionModel"),
                              ("vae", standins.TINY_VAE, "AutoencoderKL"),
                              ("scheduler", standins.TINY_SCHEDULER, "DDPMScheduler")):
        (root / part).mkdir(parents=True)
        name = "scheduler_config.json" if part == "scheduler" else "config.json"
        (root / part / name).write_text(json.dumps({"_class_name": cls, **config}))
        if part != "scheduler":
            (root / part / "diffusion_pytorch_model.bin").write_bytes(path.read_bytes())
    return m.load_sd_components(root)


# name -> (module that must be present, how to load a file with it)
LOADERS: dict[str, tuple[str, Callable[[Any, Path], Any]]] = {
    "codiff.pkl": ("methods.codiff.checkpoint", lambda m, p: m.load_codiff_checkpoint(p)),
    "official torch file": ("methods.codiff.checkpoint", lambda m, p: m.load_torch_file(p, "checkpoint")),
    "checkpoint conversion": ("methods.codiff.convert",
                              lambda m, p: m.convert_checkpoint(p, p.with_name("converted.safetensors"))),
    "SD base model (diffusers .bin)": ("methods.codiff.sd", _sd_base_model),
    "cave.pth": ("methods.codiff.cave", lambda m, p: m.load_cave(p)),
    "cave method": ("methods.codiff.method", lambda m, p: _create_method("cave", cave=str(p))),
    "FBCNN .pth": ("methods.fbcnn", lambda m, p: m.read_state_dict(p)),
    "fbcnn method": ("methods.fbcnn", lambda m, p: _create_method("fbcnn", weights=str(p))),
    "training checkpoint": ("methods.codiff.training.checkpointing", lambda m, p: m.load_tensors(p)),
    "training resume": ("methods.codiff.training.checkpointing", _training_checkpoint),
    "metric weights": ("bench.metrics.files", lambda m, p: m.load_tensors(p)),
}
CONTAINERS = ["plain-pickle", "torch-legacy", "torch-zip", "torchscript-zip"]
# loaders that read the file themselves: their refusal says why, in the project's words (TorchScript, pickle)
OWN_WORDS = {name: ("is a TorchScript archive (compiled code)", "holds executable pickle content (it calls posix.system)")
             for name in LOADERS if name not in ("SD base model (diffusers .bin)", "metric weights")}


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("loader", list(LOADERS))
def test_every_loader_refuses_a_hostile_pickle(loader, container, tmp_path):
    module_name, load = LOADERS[loader]
    module = _module(module_name)
    marker = tmp_path / "PWNED"
    path = tmp_path / "weights.pth"
    path.write_bytes(hostile_files(marker)[container])
    with pytest.raises(Exception) as info:  # noqa: B017 - any refusal will do; running the command will not
        load(module, path)
    assert not marker.exists(), f"{loader} ran the command hidden in a {container} file"
    message = str(info.value)
    assert "weights_only` set to `False`" not in message and "Re-running" not in message, message
    if loader in OWN_WORDS:
        assert OWN_WORDS[loader][container != "torchscript-zip"] in message, message
        assert str(path) in message or loader == "training resume", message  # resume names its copy of the file


LEARNED = [("lpips", {}), ("dists", {}), ("musiq", {}), ("maniqa", {}), ("clipiqa", {}),
           ("clipiqa", {"clip_path": "clip-state.pth"})]


@pytest.mark.parametrize("metric, options", LEARNED, ids=[f"{n}{'-' + '-'.join(o) if o else ''}" for n, o in LEARNED])
def test_hostile_metric_weight_files_are_refused(metric, options, tmp_path, monkeypatch):
    """Every weight file of the metric replaced by the payload, in the caches the libraries read."""
    metrics = _module("bench.metrics")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    # Network shapes are remembered per process; forget them so that backbones are read from these caches.
    monkeypatch.setattr(_module("bench.metrics.catalog"), "_SHAPES", {}, raising=False)
    options = {k: str(tmp_path / v) for k, v in options.items()}
    marker = tmp_path / "PWNED"
    payload = hostile_files(marker)["torch-zip"]
    files = metrics.metric_files(metric, **options)
    assert files, f"{metric} lists no weight files"
    for item in files:
        item.path.parent.mkdir(parents=True, exist_ok=True)
        item.path.write_bytes(payload)

    available, skipped = metrics.check_metrics([metric])
    assert metric in skipped and not available
    with pytest.raises(metrics.MetricError):
        metrics.create_metric(metric, **options)
    assert not marker.exists(), f"loading {metric}'s weights ran the command hidden in them"
