"""The dry-run planner: every block, and everything missing grouped by what the user must supply."""

from __future__ import annotations

from pathlib import Path

from bench.config import RunConfig
from bench.dryrun import CONFIG, DATA, ENV, INPUTS, METRICS, WEIGHTS, plan_run


def _config(tmp_path: Path, **values) -> RunConfig:
    base = {"datasets": [], "qf": [5, 10], "methods": ["jpeg"], "metrics": ["psnr"],
            "run_dir": str(tmp_path / "run"), "report": False}
    return RunConfig.from_dict({**base, **values})


def test_nothing_missing_lists_every_block(tmp_path, image_folder):
    plan = plan_run(_config(tmp_path, images=[str(image_folder)], methods=["jpeg", {"name": "j2", "method": "jpeg"}],
                            limit=2))
    assert plan.exit_status == 0 and not any(plan.missing.values())
    assert [(b.dataset, b.qf, b.method, b.images) for b in plan.blocks] == [
        ("images", 5, "jpeg", 2), ("images", 5, "j2", 2), ("images", 10, "jpeg", 2), ("images", 10, "j2", 2)]
    text = plan.render()
    assert "4 blocks" in text and "8 image restorations" in text and "Nothing is missing" in text
    assert not (tmp_path / "run").exists()


def test_missing_things_are_grouped_by_what_to_supply(tmp_path, image_folder, monkeypatch):
    monkeypatch.delenv("CODIFF_BENCH_DATA", raising=False)
    monkeypatch.delenv("CODIFF_TEST_NOT_SET", raising=False)
    monkeypatch.setenv("CODIFF_BENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # an empty cache: lpips's files are absent
    config = _config(tmp_path, datasets=["live1"], images=[str(image_folder)], metrics=["psnr", "lpips"], methods=[
        "jpeg", "fbcnn", "no-such-method",
        {"name": "tool", "method": "outputs", "root": "${CODIFF_TEST_NOT_SET}/tool"}])
    plan = plan_run(config)
    assert plan.exit_status == 1
    m = plan.missing
    assert any("live1" in x and "CODIFF_BENCH_DATA" in x for x in m[DATA])
    assert any(x.startswith("fbcnn:") and str(tmp_path / "weights" / "fbcnn_color.pth") in x
               and "releases/download/v1.0/fbcnn_color.pth" in x for x in m[WEIGHTS])
    assert any("no-such-method" in x for x in m[CONFIG])
    assert m[ENV] == ["CODIFF_TEST_NOT_SET is not set (used in methods[3].root)"]
    assert len(m[INPUTS]) == 1 and m[INPUTS][0].startswith("tool: folder ${CODIFF_TEST_NOT_SET}/tool not found")
    assert len(m[METRICS]) == 1 and m[METRICS][0].startswith("lpips:")
    assert str(tmp_path / "torch-home") in m[METRICS][0]

    blocks = {(b.dataset, b.qf, b.method): b for b in plan.blocks}
    assert blocks["live1", 5, "jpeg"].images == 29 and blocks["live1", 5, "jpeg"].problems == ["data"]
    assert blocks["images", 10, "fbcnn"].problems == ["weights"]
    assert blocks["images", 10, "jpeg"].problems == []
    assert blocks["images", 5, "tool"].problems == ["inputs"]
    assert blocks["images", 5, "no-such-method"].problems == ["configuration"]
    text = plan.render()
    assert text.index("environment variables:") < text.index("data sets:") < text.index("method weights:")


def test_outputs_missing_for_some_images_are_counted_per_block(tmp_path, image_folder):
    from PIL import Image

    root = tmp_path / "restored"
    (root / "images" / "qf10").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "images" / "qf10" / "img00.png")
    plan = plan_run(_config(tmp_path, images=[str(image_folder)], qf=[10, 20],
                            methods=[{"name": "tool", "method": "outputs", "root": str(root)}]))
    assert plan.exit_status == 1
    lines = plan.missing[INPUTS]
    assert lines[0].startswith("tool: images qf10: 2 of 3 restorations missing")
    assert lines[1].startswith("tool: images qf20: 3 of 3 restorations missing")
    assert str(root / "images" / "qf10" / "img01.png") in lines[0]
