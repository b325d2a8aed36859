"""The paper's protocol as configs, and a small paper-shaped run end to end with every kind of baseline."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import numpy as np
import yaml

from bench.cli import main
from bench.config import RunConfig
from bench.engine import Runner
from bench.store import ResultsStore

REPO = Path(__file__).resolve().parents[1]
TABLE1_METHODS = ["jpeg", "fbcnn", "jdec", "promptcir", "diffbir", "supir", "osediff", "codiff"]


def test_paper_config_is_table_1(monkeypatch):
    for var in ("CODIFF_BENCH_WEIGHTS", "CODIFF_BENCH_OUTPUTS"):
        monkeypatch.delenv(var, raising=False)
    config = RunConfig.load(REPO / "configs" / "paper.yaml")
    assert config.datasets == ["live1", "urban100", "div2k-val"] and config.qf == [5, 10, 20]
    assert config.metrics == ["lpips", "dists", "musiq", "maniqa", "clipiqa"]
    specs = {s.label: s for s in config.method_specs()}
    assert list(specs) == TABLE1_METHODS
    assert {s.method for s in specs.values()} == {"jpeg", "fbcnn", "outputs", "codiff"}
    assert specs["jdec"].config["root"] == "baseline-outputs/jdec"  # ${VAR:-default} with the variable unset
    assert specs["fbcnn"].config["weights"] == "~/.cache/codiff-bench/weights/fbcnn_color.pth"
    p = config.protocol
    assert (p.codec, p.subsampling, p.resize) == ("opencv", "420", "lanczos")

    monkeypatch.setenv("CODIFF_BENCH_OUTPUTS", "/data/restorations")
    monkeypatch.setenv("CODIFF_BENCH_WEIGHTS", "/data/weights")
    specs = {s.label: s for s in RunConfig.load(REPO / "configs" / "paper.yaml").method_specs()}
    assert specs["supir"].config["root"] == "/data/restorations/supir"
    assert specs["codiff"].config["codiff"] == "/data/weights/codiff.pkl"


def test_ablation_config_is_one_method_configured_per_row():
    config = RunConfig.load(REPO / "configs" / "ablations.yaml")
    specs = config.method_specs()
    assert {s.method for s in specs} == {"codiff"} and len(specs) == 9
    from reports.ablations import (
        TABLES,  # every paper row the report shows is a configured row (DAPE aside)
    )

    labels = {row.label for table in TABLES for row in table.rows} - {"codiff-prompt-dape"}
    assert labels | {"codiff-released"} == {s.label for s in specs}
    prompts = {s.label: s.config.get("prompt", "cave") for s in specs}
    assert prompts["codiff-prompt-empty"] == "empty" and prompts["codiff-prompt-learnable"] == "learnable"
    checkpoints = [s.config["codiff"] for s in specs]
    assert len(set(checkpoints)) == len(checkpoints)  # every row is its own checkpoint
    assert set(config.datasets) == {"live1", "div2k-val"}


def test_unset_variables_stay_visible(tmp_path, monkeypatch):
    monkeypatch.delenv("CODIFF_TEST_UNSET", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"methods": [{"name": "x", "method": "outputs", "root": "${CODIFF_TEST_UNSET}/x"}]}))
    assert RunConfig.load(path).method_specs()[0].config["root"] == "${CODIFF_TEST_UNSET}/x"


# -- end to end ----------------------------------------------------------------------------------------------
BLUR_SCRIPT = """
import sys
from pathlib import Path
from PIL import Image, ImageFilter
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
for f in sorted(src.glob("*.jpg")):
    Image.open(f).convert("RGB").filter(ImageFilter.GaussianBlur(0.6)).save(dst / (f.stem + ".png"))
print(f"restored {len(list(dst.iterdir()))} images")
"""


def _write_outputs(images: Path, root: Path, qfs: list[int]) -> None:
    """Stand-in restorations from another tool: the clean image with slight noise, per QF."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for qf in qfs:
        for src in sorted(images.glob("*.png")):
            rgb = np.asarray(Image.open(src).convert("RGB")).astype(np.int16)
            noisy = np.clip(rgb + rng.integers(-2, 3, rgb.shape), 0, 255).astype(np.uint8)
            out = root / images.name / f"qf{qf}" / f"{src.stem}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(noisy).save(out)


def test_small_paper_shaped_run_end_to_end(tmp_path, monkeypatch, capsys, make_images, baselines_fbcnn_weights):
    images = tmp_path / "images"
    make_images(images, [(32, 40), (40, 48), (24, 32)])
    script = tmp_path / "blur.py"
    script.write_text(BLUR_SCRIPT)
    monkeypatch.setenv("CODIFF_TEST_OUTPUTS", str(tmp_path / "outputs"))
    qfs = [10, 20]
    config_path = tmp_path / "paper-small.yaml"
    config_path.write_text(yaml.safe_dump({
        "datasets": [], "images": [str(images)], "qf": qfs, "metrics": ["psnr", "ssim"],
        "run_dir": str(tmp_path / "run"), "report": False,
        "methods": ["jpeg",
                    {"name": "fbcnn", "method": "fbcnn", "weights": str(baselines_fbcnn_weights)},
                    {"name": "jdec", "method": "outputs", "root": "${CODIFF_TEST_OUTPUTS}/jdec"},
                    {"name": "blur", "method": "command", "timeout": 120,
                     "command": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {{input_dir}} {{output_dir}}"}],
    }))

    assert main(["run", "--config", str(config_path), "--dry-run"]) == 1
    text = capsys.readouterr().out
    assert "jdec: folder" in text and str(tmp_path / "outputs" / "jdec") in text
    assert not (tmp_path / "run").exists()  # a dry run writes nothing

    _write_outputs(images, tmp_path / "outputs" / "jdec", qfs)
    assert main(["run", "--config", str(config_path), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "Nothing is missing" in text and text.count(" ready") == 4 * 2

    summary = Runner(RunConfig.load(config_path), progress=False).run()
    assert summary.errors == [] and summary.skipped == [] and summary.restored == 4 * 3 * 2
    with ResultsStore.in_run_dir(tmp_path / "run", readonly=True) as store:
        frame = store.results_frame()
    table = frame.pivot_table(index=["method", "qf"], columns="metric", values="value", aggfunc="count")
    assert table.shape == (4 * 2, 2) and (table == 3).all().all()  # every method x QF x metric x image
    assert np.isfinite(frame["value"]).all()
    means = frame.groupby(["method", "metric"])["value"].mean()
    assert means["jdec", "psnr"] > means["jpeg", "psnr"] + 5  # the outputs method read the prepared files
    assert means["blur", "psnr"] != means["jpeg", "psnr"]
    assert list((tmp_path / "run" / "work" / "blur").rglob("command.log"))


# The release's test script (main_test_codiff.py at github:jp-guo/CODiff): its argparse defaults, which the
# paper's numbers were made with (test_codiff.sh passes none of these), and CODiff_test's fixed timestep.
RELEASE_TEST = {"mixed_precision": "fp16", "align_method": "adain", "merge_and_unload_lora": False,
                "vae_encoder_tiled_size": 1024, "vae_decoder_tiled_size": 224, "latent_tiled_size": 96,
                "latent_tiled_overlap": 32, "timestep": 499}


def test_paper_codiff_options_are_the_release_test_script():
    import torch

    from methods.codiff.generator import TIMESTEP
    from methods.codiff.method import Codiff
    from methods.codiff.pipeline import resolve_dtype

    config = RunConfig.load(REPO / "configs" / "paper.yaml")
    assert config.device == "cuda"
    spec = next(s for s in config.method_specs() if s.method == "codiff")
    opts = Codiff(**spec.config).opts
    tiles = opts.tiles
    assert resolve_dtype(opts.dtype, torch.device(config.device)) == RELEASE_TEST["mixed_precision"]
    assert opts.color_fix == RELEASE_TEST["align_method"] and opts.release_quantization
    assert opts.merge_lora == RELEASE_TEST["merge_and_unload_lora"]
    assert tiles.vae_tiling == "release" and tiles.latent_tiling == "release"
    assert (tiles.vae_encoder_tile, tiles.vae_decoder_tile) == (RELEASE_TEST["vae_encoder_tiled_size"],
                                                                RELEASE_TEST["vae_decoder_tiled_size"])
    assert (tiles.latent_tile, tiles.latent_overlap) == (RELEASE_TEST["latent_tiled_size"],
                                                         RELEASE_TEST["latent_tiled_overlap"])
    assert tiles.cave_tile >= 2040 or tiles.cave_tile == 0  # CaVE whole on every image of the three sets
    assert TIMESTEP == RELEASE_TEST["timestep"]
