"""Complexity profiling on tiny architectures: MAC extrapolation, both counters, latency, outputs and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from bench.profile.architecture import (
    ARCHITECTURES,
    Architecture,
    Call,
    InputSpec,
    MissingPart,
    Part,
    Stage,
    create_architecture,
)
from bench.profile.core import MethodProfile, ProfileOptions, profile_architecture
from bench.profile.latency import measure_latency, percentile
from bench.profile.macs import count_stage_macs, fvcore_counts
from bench.profile.peaks import find_gpu, mac_floor_s, peak_flops
from bench.profile.table import write_outputs
from methods.architectures.sd_family import unet_calls, vae_stages
from methods.architectures.stages import Apply, UNetStep

CONTEXT = 16


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here runs on one thread."""


def tiny_models() -> nn.Module:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(16,), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D",), up_block_types=("CrossAttnUpBlock2D",),
        cross_attention_dim=CONTEXT, attention_head_dim=4, norm_num_groups=8)
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16), latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, layers_per_block=1)
    return nn.ModuleDict({"unet": unet, "vae": vae})


def _tokens(h: int, w: int) -> dict[str, tuple[int, int]]:
    return {"tokens": (h // 32, w // 32)}


def unet_stage() -> Stage:
    return Stage("UNet", ("sd",), lambda p: UNetStep(p["sd"]["unet"]),
                 lambda e: [InputSpec((1, 4, *e["latent"])), InputSpec((1,), "timestep"),
                            InputSpec((1, e["tokens"][0] * e["tokens"][1], CONTEXT))],
                 unet_calls(False, count=3, context=_tokens), {"latent": 8, "tokens": 1})


def tiny_arch(vae: bool = True) -> Architecture:
    encoder, decoder = vae_stages("sd", lambda p: p["sd"]["vae"])
    stages = [encoder, unet_stage(), decoder] if vae else [unet_stage()]
    return Architecture(method="tiny", label="Tiny", steps=3, parts=[Part("sd", tiny_models, note="tiny")],
                        stages=stages, notes=["a tiny test architecture"])


def conv_arch(method: str, missing: bool = False, paper_method: str | None = None) -> Architecture:
    """A two-conv network: quick to trace, for the output and CLI tests."""
    net = lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))  # noqa: E731
    stage = Stage("net", ("net",), lambda p: p["net"], lambda e: [InputSpec((1, 3, *e["image"]))],
                  lambda h, w: [Call({"image": (h, w)}, 2)], {"image": 1})
    return Architecture(method=method, label=method.upper(), steps=2, parts=[Part("net", net, note="two convs")],
                        stages=[stage], missing=[MissingPart("adaptor", "not public")] if missing else [],
                        paper_method=paper_method, notes=["a tiny test architecture"])


class MatmulMixer(nn.Module):
    """Token mixing by an explicit matmul: fvcore counts it, and it is quadratic in the token count."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.proj(x).flatten(2)
        return torch.matmul(t.transpose(1, 2), t)


def quadratic_arch() -> Architecture:
    stage = Stage("mixer", ("mixer",), lambda p: Apply(p["mixer"], lambda m, x: m(x)),
                  lambda e: [InputSpec((1, 3, *e["image"]))], lambda h, w: [Call({"image": (h, w)})], {"image": 4})
    return Architecture("quadratic", "Quadratic", 1, [Part("mixer", MatmulMixer)], [stage])


@pytest.mark.slow
def test_stage_macs_extrapolate_exactly_and_cover_both_conventions():
    (unet,) = count_stage_macs(tiny_arch(vae=False), 256, 320)  # height 256, width 320

    assert unet.count == 3 and unet.extents == {"latent": (32, 40), "tokens": (8, 10)}
    assert "extrapolated" in unet.fvcore.method and "meta" in unet.flopcounter.method
    torch.manual_seed(0)
    module = unet_stage().module({"sd": tiny_models()}).eval()
    direct = fvcore_counts(module, [s.make("cpu", torch.float32) for s in unet_stage().inputs(unet.extents)])
    assert unet.fvcore.total == direct.total and unet.fvcore.by_op == direct.by_op
    assert unet.attention > 0  # FlopCounterMode counts attention ...
    assert "aten::scaled_dot_product_attention" in unet.fvcore.skipped  # ... fvcore skips it
    assert unet.conv_agrees and unet.dense_agrees in (True, None)


def test_a_stage_that_is_not_affine_is_traced_at_full_size():
    (result,) = count_stage_macs(quadratic_arch(), 32, 32)
    assert "not affine" in result.fvcore.method
    direct = fvcore_counts(MatmulMixer(), [torch.zeros(1, 3, 32, 32)])
    assert result.fvcore.total == direct.total == 32 * 32 * 8 * 3 + (32 * 32) ** 2 * 8


def test_cpu_latency_and_memory_on_a_tiny_architecture():
    timings = measure_latency(tiny_arch(), 32, 32, "cpu", ["fp32", "bf16"], runs=2, warmup=1)
    assert list(timings) == ["fp32", "bf16"]
    timing = timings["fp32"]
    assert [c.stage for c in timing.calls] == ["VAE encoder", "UNet", "VAE decoder"]
    assert all(len(c.times_s) == 2 and min(c.times_s) > 0 for c in timing.calls)
    assert timing.median_s == pytest.approx(sum(c.count * c.median_s for c in timing.calls))
    assert timing.p90_s >= timing.median_s
    assert timing.time_kind.startswith("CPU wall time") and timing.memory_kind.startswith("CPU")
    assert timing.memory_bytes >= 0


def test_percentile_matches_numpy():
    values = [0.3, 0.1, 0.5, 0.2, 0.9, 0.4]
    assert percentile([0.7], 90) == 0.7
    for q in (0, 50, 90, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_gpu_peaks_and_the_mac_floor():
    assert find_gpu("NVIDIA RTX A6000").fp16 == 154.8
    assert find_gpu("NVIDIA H100 PCIe").name == "NVIDIA H100 PCIe"
    assert find_gpu("NVIDIA H100 80GB HBM3").name == "NVIDIA H100 SXM"
    assert find_gpu("NVIDIA H200").bf16 == 989.4
    assert peak_flops("Some GPU", "fp16")[0] is None
    assert peak_flops("Some GPU", "fp16", 100.0)[0] == 1e14
    assert mac_floor_s(5 * 10**12, 1e14) == pytest.approx(0.1)


def test_outputs_put_paper_values_beside_measurements(tmp_path):
    options = ProfileOptions(methods=["tiny", "tiny-partial"], height=1024, width=1024, latency=False)
    profiles = [profile_architecture(conv_arch("tiny", paper_method="CODiff"), options),
                profile_architecture(conv_arch("tiny-partial", missing=True, paper_method="SUPIR"), options)]
    assert not any(p.error for p in profiles)
    document = write_outputs(profiles, options, tmp_path, {"test": True})
    for name in ("profile.json", "profile.csv", "stages.csv", "parts.csv", "profile.tex", "summary.json"):
        assert (tmp_path / name).is_file()
    assert not list(tmp_path.glob(".tmp-*"))
    saved = json.loads((tmp_path / "profile.json").read_text())
    assert saved["schema"] == "codiff-bench.profile/1" and saved["size"] == [1024, 1024]
    complete, partial = saved["rows"]
    assert complete["status"] == "measured" and complete["shown_source"] == "measured"
    assert complete["paper_params_g"] == 1.0 and complete["paper_macs_t"] == 9.46
    assert complete["macs_t"] == pytest.approx(2 * 1024 * 1024 * 2 * 8 * 27 / 1e12, abs=1e-4)
    assert complete["diff_macs_t"] == pytest.approx(complete["macs_t"] - 9.46, abs=1e-3)
    assert complete["paper_time_s"] is None  # a CPU count is never compared with the paper's A6000 time
    assert partial["status"] == "partial" and partial["params_g"] is None
    assert partial["macs_t"] is None and partial["built_macs_t"] == complete["macs_t"]
    assert partial["shown_params_g"] == 4.49 and partial["shown_source"].startswith("paper (not built here: adaptor")
    assert any("CODiff MACs" in n for n in saved["notes"])
    assert "$^\\dagger$" in (tmp_path / "profile.tex").read_text()
    stages = pd.read_csv(tmp_path / "stages.csv")
    assert list(stages["stage"]) == ["net", "net"] and list(stages["calls"]) == [2, 2]
    assert document["rows"][0]["macs_t"] == pytest.approx(stages["macs_g"].iloc[0] / 1000, abs=1e-4)


def test_cli_writes_a_profile_the_report_reads(tmp_path):
    from bench.cli import main
    from reports.extras import profile_section

    ARCHITECTURES.register("tiny-cli", lambda: conv_arch("tiny-cli", paper_method="CODiff"))
    args = ["profile", "--size", "64", "--device", "cpu", "--runs", "2", "--warmup", "0",
            "--out", str(tmp_path / "run" / "profile"), "--quiet"]
    assert main([*args, "--methods", "tiny-cli,no-such-method"]) == 2  # a misspelt name: nothing is measured
    assert not (tmp_path / "run").exists()
    assert main([*args, "--methods", "tiny-cli,jpeg"]) == 0
    rows = {r["method"]: r for r in json.loads((tmp_path / "run" / "profile" / "profile.json").read_text())["rows"]}
    assert rows["tiny-cli"]["time_s"] > 0 and rows["tiny-cli"]["dtype"] == "fp32"
    assert rows["jpeg"]["status"] == "no cost" and rows["jpeg"]["params_g"] == 0
    section = profile_section(tmp_path / "run")
    assert section is not None and {r["method"] for r in section.profile_rows} >= {"tiny-cli", "jpeg"}


def test_jpeg_costs_nothing():
    profile = profile_architecture(create_architecture("jpeg"), ProfileOptions(methods=["jpeg"]))
    assert isinstance(profile, MethodProfile) and not profile.error
    assert profile.params_total == 0 and profile.macs_total("fvcore") == 0 and not profile.timings
