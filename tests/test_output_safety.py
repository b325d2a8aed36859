"""Names from configs and file names never make the run write outside its folder, and an output folder that
cannot be written (read-only, full, a file in the way) stops the run with a clear error, leaving no
half-written file and everything finished so far reusable."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from bench.cli import main
from bench.config import RunConfig
from bench.core.atomic import TMP_MARK
from bench.core.imageio import read_rgb8
from bench.core.paths import inside, safe_component, safe_names
from bench.engine import Planner, Runner, RunLayout
from bench.store import ResultsStore

HOSTILE_LABELS = ["../../x", "x", "/tmp/absolute", "..", "a/b", "", "x" * 300]


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def _run_cli(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    status = main([*map(str, argv), "--quiet", "--no-report"])
    return status, capsys.readouterr().err


def _argv(images: Path, run_dir: Path) -> list:
    return ["run", "--images", images, "--datasets", "", "--methods", "jpeg", "--metrics", "psnr", "--qf", "10,30",
            "--run-dir", run_dir]


def _store_rows(run_dir: Path) -> dict[str, list]:
    with sqlite3.connect(f"file:{run_dir / ResultsStore.FILENAME}?mode=ro", uri=True) as con:
        return {"results": sorted(con.execute("SELECT unit_id, metric, value FROM results")),
                "outputs": sorted(con.execute("SELECT unit_id, path, sha256 FROM outputs")),
                "errors": sorted(con.execute("SELECT subject, stage, message FROM errors"))}


def _assert_nothing_partial(run_dir: Path) -> None:
    assert not list(run_dir.rglob(f"{TMP_MARK}*")), "temporary files left behind"
    for path in run_dir.rglob("*"):
        if path.suffix in (".png", ".jpg"):
            read_rgb8(path)


def test_names_are_confined_and_distinct():
    names = [safe_component(label) for label in HOSTILE_LABELS]
    assert len(set(names)) == len(names)
    assert all("/" not in n and n not in ("", ".", "..") and len(n) <= 100 for n in names)
    ids = ["../../etc/passwd.png", "..png", "a/../../b.png", "same.png", "same.jpg", "Case.png", "case.png",
           "x" * 300 + ".png", "new\nline.png", "caf\udce9.png"]
    stems = safe_names(ids)
    assert len(set(s.lower() for s in stems.values())) == len(ids)
    assert all("/" not in s and not s.startswith(".") and len(s) <= 100 for s in stems.values())
    root = Path("runs/r")
    for bad in (root / ".." / "x", Path("/etc/passwd"), root / "a" / ".." / ".." / "x"):
        with pytest.raises(ValueError, match="outside the run folder"):
            inside(root, bad)
    assert inside(root, root / "outputs" / "a.png") == root / "outputs" / "a.png"


def test_hostile_labels_dataset_names_and_image_names_stay_inside(tmp_path, make_images, monkeypatch):
    data = tmp_path / "data"
    make_images(data / "set", [(24, 32), (32, 24)], seed=1)
    (data / "set" / "img00.png").rename(data / "set" / "-..png")
    registry = tmp_path / "datasets.yaml"
    registry.write_text(yaml.safe_dump({"../../escaped": {"root": "set", "count": 2}}))
    monkeypatch.setenv("CODIFF_BENCH_DATASETS", str(registry))
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "deep" / "run"
    methods = [{"name": label, "method": "jpeg"} for label in HOSTILE_LABELS if label]
    before = _files(tmp_path)
    config = RunConfig.from_dict(dict(datasets=["../../escaped"], data_root=str(data), qf=[10], methods=methods,
                                      metrics=["psnr"], run_dir=str(run_dir), report=False))
    runner = Runner(config, progress=False)
    assert runner.run().exit_status == 0

    created = _files(tmp_path) - before
    assert created and all(run_dir in p.parents for p in created), sorted(map(str, created - _files(run_dir)))
    with ResultsStore.in_run_dir(run_dir, readonly=True) as store:
        outputs, results = store.outputs_frame(), store.results_frame()
    assert len(outputs) == len(methods) * 2 and outputs["path"].nunique() == 2  # one computation, shared by label
    assert len(results) == len(methods) * 2 and results["value"].nunique() == 2  # same method, same two images
    layout = RunLayout(run_dir)
    for unit in Planner(config).plan().units:
        inside(run_dir, layout.unit(unit, "block").work_dir)


def test_two_image_folders_with_one_name_are_refused(tmp_path, make_images, capsys):
    make_images(tmp_path / "a" / "photos", [(16, 16)])
    make_images(tmp_path / "b" / "photos", [(16, 16)], seed=1)
    status, err = _run_cli(["run", "--images", tmp_path / "a" / "photos", "--images", tmp_path / "b" / "photos",
                            "--datasets", "", "--methods", "jpeg", "--metrics", "psnr",
                            "--run-dir", tmp_path / "run"], capsys)
    assert status == 2 and "two datasets are named ['photos']" in err


def test_a_file_in_place_of_the_run_folder_is_a_clear_error(tmp_path, image_folder, capsys):
    run_dir = tmp_path / "run"
    run_dir.write_text("not a folder")
    status, err = _run_cli(_argv(image_folder, run_dir), capsys)
    assert status == 2 and f"the run folder {run_dir} exists and is not a folder" in err
    assert run_dir.read_text() == "not a folder"


def test_a_blocked_output_folder_stops_the_run_and_the_rerun_completes(tmp_path, image_folder, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "outputs").write_text("a file where the outputs folder goes")
    status, err = _run_cli(_argv(image_folder, run_dir), capsys)
    assert status == 2
    assert "cannot write" in err and str(run_dir / "outputs") in err and "rerun to resume" in err
    _assert_nothing_partial(run_dir)
    assert _store_rows(run_dir)["outputs"] == []

    (run_dir / "outputs").unlink()
    assert _run_cli(_argv(image_folder, run_dir), capsys)[0] == 0
    assert _run_cli(_argv(image_folder, tmp_path / "clean"), capsys)[0] == 0
    assert _store_rows(run_dir) == _store_rows(tmp_path / "clean")


def test_a_read_only_run_folder_is_a_clear_error(tmp_path, image_folder, capsys):
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        try:
            (parent / "probe").touch()
        except PermissionError:
            pass
        else:
            pytest.skip("permissions do not stop this user's writes (running as root); the blocked-folder and "
                        "full-disk tests cover write failures")
        status, err = _run_cli(_argv(image_folder, parent / "run"), capsys)
        assert status == 2 and f"cannot write to the run folder {parent / 'run'}" in err
    finally:
        parent.chmod(stat.S_IRWXU)


# The file size limit stands in for a full disk (portable, needs no privileges): a write past it fails with
# EFBIG as a write to a full disk fails with ENOSPC, after part of the file is written.
FULL_DISK = '''
import resource, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
'''


def test_a_full_disk_stops_the_run_cleanly_and_the_rerun_completes(tmp_path, make_images, reliability_server,
                                                                    capsys):
    images = tmp_path / "photos"
    make_images(images, [(64, 64)])
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    Image.fromarray(noise).save(images / "noise.png")  # about 480 kB as PNG: more than the disk takes
    run_dir = tmp_path / "run"
    process = reliability_server.spawn(_argv(images, run_dir) + ["--quiet", "--no-report"], prelude=FULL_DISK)
    assert process.wait() == 2, process.stderr
    assert "cannot write" in process.stderr and "noise.png" in process.stderr
    assert "File too large" in process.stderr and "rerun to resume" in process.stderr
    _assert_nothing_partial(run_dir)
    assert (run_dir / "hq").is_dir()

    assert _run_cli(_argv(images, run_dir), capsys)[0] == 0
    assert _run_cli(_argv(images, tmp_path / "clean"), capsys)[0] == 0
    assert _store_rows(run_dir) == _store_rows(tmp_path / "clean")
