"""`codiff-bench cpu-benchmark`: per-stage MACs, seconds and GFLOP/s against sgemm (on a tiny CODiff, in process),
and its user errors."""

from __future__ import annotations

import pytest
import torch

from bench.cli import main


def _tiny_pipeline(dtype, merge, tiles, device="cpu", seed=0):
    from diffusers import DDPMScheduler

    from methods.codiff.options import PipelineConfig, TileConfig
    from methods.codiff.pipeline import CODiffPipeline
    from methods.codiff.standins import TINY_SCHEDULER, tiny_cave, tiny_generator

    with torch.device(device):
        generator, cave = tiny_generator(seed), tiny_cave(seed)
    generator.scheduler = DDPMScheduler(**TINY_SCHEDULER)
    return CODiffPipeline(generator, cave, PipelineConfig(dtype=dtype, merge_lora=merge, tiles=TileConfig(**tiles)),
                          device)


@pytest.mark.parametrize(("width", "tiles", "per_tile"), [
    (96, {"vae_tiling": "gaussian", "vae_decoder_tile": 8, "vae_decoder_overlap": 2}, True),  # a call per tile
    (320, {"vae_decoder_tile": 8}, False),  # the release's tiler: one call, tiled inside (40 latent px > 8 + 2 x 11)
])
def test_each_stage_reports_macs_seconds_and_its_share_of_sgemm(width, tiles, per_tile, monkeypatch, tmp_path):
    from methods.codiff import benchmark
    from methods.codiff.commands.cpu_benchmark import format_row

    monkeypatch.setattr(benchmark, "full_size_pipeline", _tiny_pipeline)
    monkeypatch.setattr(benchmark, "gemm_gflops", lambda dtype=torch.float32: 100.0 if dtype == torch.float32 else 50.0)
    case = benchmark.Case(width, 64, threads=1, tiles=tiles, save_output=str(tmp_path / "out.npy"))
    result = benchmark.run_case(case)
    stages = result["stages"]
    assert set(stages) == {"cave", "vae_encoder", "unet", "vae_decoder"}
    assert (stages["vae_decoder"]["calls"] > 1) == per_tile
    for entry in stages.values():
        assert entry["macs"] > 0 and entry["seconds"] > 0
        assert entry["gflops"] == pytest.approx(2 * entry["macs"] / entry["seconds"] / 1e9)
        assert entry["of_sgemm"] == pytest.approx(entry["gflops"] / 100.0)
    assert sum(e["macs"] for e in stages.values()) == pytest.approx(result["macs_total"], rel=0.01)
    assert result["of_sgemm"] == pytest.approx(result["achieved_gflops"] / 100.0)
    assert (tmp_path / "out.npy").is_file()
    row = format_row(result)
    assert all(f"    {stage}" in row for stage in stages) and "% of sgemm 100.0" in row
    assert "cores were shared" not in row
    assert "cores were shared" in format_row({**result, "sgemm_after_gflops": 60.0})


@pytest.mark.parametrize(("argv", "message"), [
    (["--tile", "nosuch=3"], "expected KEY=VALUE with KEY one of"),
    (["--tile", "vae_decoder_tile=big"], "must be an integer"),
    (["--tile", "latent_tile=8", "--tile", "latent_overlap=9"], "overlap < tile"),
    (["--tile", "vae_tiling=gaussian", "--tile", "vae_decoder_tile=8", "--tile", "vae_decoder_overlap=9"],
     "overlap < tile"),
    (["--tile", "vae_decoder_overlap=9"], "uses no overlap"),
])
def test_bad_tiles_are_one_message_and_exit_2_before_anything_runs(argv, message, tmp_path, capsys):
    out = tmp_path / "results.json"
    assert main(["cpu-benchmark", *argv, "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not out.exists()


def test_sizes_below_64_pixels_are_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["cpu-benchmark", "--sizes", "32"])
    assert exc.value.code == 2 and "at least 64" in capsys.readouterr().err
