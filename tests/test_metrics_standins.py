"""The learned metrics on stand-in weights: pyiqa's own loading code reads them offline, and broken files
(truncated, wrong shapes, another architecture, a code-running pickle, a wrong CLIP archive) are refused
before any library reads them, with the file, what was expected and where it belongs."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch

from bench.metrics import MetricError, check_metrics, create_metric
from bench.metrics.files import load_tensors

LEARNED = ["lpips", "dists", "musiq", "maniqa", "clipiqa"]


def read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return dict(load_tensors(path))


def network_tensors(network: torch.nn.Module) -> list[torch.Tensor]:
    """Every tensor of pyiqa's network, including CLIP's, which pyiqa keeps in a list outside its state dict."""
    modules = [network]
    for module in network.modules():
        for value in vars(module).values():
            if isinstance(value, list):
                modules += [v for v in value if isinstance(v, torch.nn.Module)]
    return [t for m in modules for t in m.state_dict().values()]


def found_in(tensor: torch.Tensor, candidates: list[torch.Tensor]) -> bool:
    # CLIP converts its weights to float16 and back: compare to a relative 1e-3.
    return any(c.shape == tensor.shape and torch.allclose(c.float(), tensor.float(), rtol=1e-3, atol=1e-5)
               for c in candidates)


def images(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(batch)
    ref = torch.nn.functional.interpolate(torch.rand(batch, 3, 8, 8, generator=gen), size=64, mode="bilinear")
    out = (ref + 0.05 * torch.randn(ref.shape, generator=gen)).clamp(0, 1)
    return out, ref


@pytest.mark.slow
@pytest.mark.parametrize("name", LEARNED)
def test_learned_metric_loads_standins_through_pyiqa_offline(name, metrics_standins, metrics_no_network, one_thread):
    options = dict(metrics_standins[name])
    batch = 2
    if name == "maniqa":  # one 224 px crop instead of 20: the same loading code for a twentieth of the work
        options["test_sample"], batch = 1, 1
    metric = create_metric(name, **options)
    out, ref = images(batch)
    values = metric(out, ref if metric.full_reference else None)
    assert values.shape == (batch,) and values.dtype == torch.float64 and torch.isfinite(values).all()
    assert metric.lower_better == (name in ("lpips", "dists"))
    assert metric.full_reference == (name in ("lpips", "dists"))
    if name == "lpips":
        assert metric(ref, ref).abs().max() == 0

    # pyiqa loaded the files: the metric's own checkpoint entirely, and torchvision backbones in part (the
    # classifier layers are not used). MANIQA's checkpoint holds the ViT again and replaces timm's weights.
    candidates = network_tensors(metric.network)
    *backbones, own = metric.files
    state = read_state(own.path)
    missing = [k for k, v in state.items() if v.numel() > 1 and not found_in(v, candidates)]
    assert not missing, f"{own.path}: tensors not loaded into the network: {missing[:5]}"
    for item in backbones:
        if item.fetch == "torch-hub":
            assert any(found_in(v, candidates) for v in read_state(item.path).values()), item.path


@pytest.fixture
def own_torch_home(metrics_standins, metrics_standin_root, monkeypatch, tmp_path) -> Path:
    """A private copy of the stand-in TORCH_HOME (the Hugging Face cache stays shared); returns its hub/."""
    root, _ = metrics_standin_root
    shutil.copytree(root / "torch", tmp_path / "torch")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub"


def own_torch_hub_file(hub: Path, folder: str, name: str) -> Path:
    path = hub / folder / name
    assert path.is_file()
    return path


def skip_reason(name: str) -> str:
    available, skipped = check_metrics([name])
    assert available == [], f"{name} should have been skipped"
    with pytest.raises(MetricError) as info:
        create_metric(name)
    assert skipped[name] in str(info.value)
    return skipped[name]


def test_truncated_files_are_refused(own_torch_home, metrics_no_network):
    lin = own_torch_hub_file(own_torch_home, "pyiqa", "LPIPS_v0.1_alex-df73285e.pth")
    lin.write_bytes(lin.read_bytes()[: lin.stat().st_size // 2])
    reason = skip_reason("lpips")
    assert str(lin) in reason and "cannot be read" in reason and "$TORCH_HOME/hub/pyiqa" in reason
    assert "expected a state dict of 5 tensors such as lin0.model.1.weight [1, 64, 1, 1]" in reason

    alex = own_torch_hub_file(own_torch_home, "checkpoints", "alexnet-owt-7be5be79.pth")
    alex.write_bytes(alex.read_bytes()[:1000])
    reason = skip_reason("lpips")
    assert str(alex) in reason and "features.0.weight [64, 3, 11, 11]" in reason


def test_wrong_shapes_and_architectures_are_refused(own_torch_home, metrics_no_network):
    lin = own_torch_hub_file(own_torch_home, "pyiqa", "LPIPS_v0.1_alex-df73285e.pth")
    state = torch.load(lin, weights_only=True)
    state["lin0.model.1.weight"] = torch.zeros(1, 32, 1, 1)
    torch.save(state, lin)
    reason = skip_reason("lpips")
    assert "wrong shapes: lin0.model.1.weight is [1, 32, 1, 1] instead of [1, 64, 1, 1]" in reason

    musiq = own_torch_hub_file(own_torch_home, "pyiqa", "musiq_koniq_ckpt-e95806b9.pth")
    shutil.copy(own_torch_hub_file(own_torch_home, "pyiqa", "DISTS_weights-f5e65c96.pth"), musiq)
    reason = skip_reason("musiq")
    assert str(musiq) in reason and "missing 248 of 248 expected tensors" in reason
    assert "2 unexpected tensors: alpha, beta" in reason


class _RunsCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_checkpoint_that_would_run_code_is_never_unpickled(own_torch_home, metrics_no_network, tmp_path):
    marker = tmp_path / "code-ran"
    musiq = own_torch_hub_file(own_torch_home, "pyiqa", "musiq_koniq_ckpt-e95806b9.pth")
    with open(musiq, "wb") as fh:
        pickle.dump({"conv_root.weight": _RunsCommand(marker)}, fh, protocol=2)
    reason = skip_reason("musiq")  # pyiqa itself would torch.load it with weights_only=False
    assert "cannot be read as a weights file without running code" in reason and str(musiq) in reason
    assert not marker.exists()


def test_a_clip_archive_with_another_hash_is_refused_before_pyiqa_downloads(own_torch_home, metrics_no_network):
    archive = own_torch_home / "clip" / "RN50.pt"
    archive.write_bytes(b"not OpenAI's archive")
    reason = skip_reason("clipiqa")
    assert str(archive) in reason
    assert "expected afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762" in reason


def test_one_missing_file_is_named_alone(own_torch_home):
    (own_torch_home / "pyiqa" / "ckpt_koniq10k.pt").unlink()
    available, skipped = check_metrics(["musiq", "maniqa", "lpips"])
    assert available == ["musiq", "lpips"]
    assert skipped["maniqa"].count("is missing") == 1 and "ckpt_koniq10k.pt is missing" in skipped["maniqa"]
