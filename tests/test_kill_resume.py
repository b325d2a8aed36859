"""Killed runs resume to exactly the results of an uninterrupted run: same values, no duplicates, no
half-written files.

Each run is its own `codiff-bench run` process, killed with SIGKILL. The killed ones are forked from a server
that has already imported torch and pyiqa (see `ReliabilityServer` in conftest.py) so that the test can afford
several; the last rerun is a fresh `python -m bench run`.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.config import RunConfig
from bench.core.atomic import TMP_MARK
from bench.core.imageio import read_rgb8
from bench.engine import Runner
from bench.store import ResultsStore

REPO = Path(__file__).resolve().parents[1]
SIZES = [(128, 160), (160, 128), (136, 136)]
QFS = [10, 30]


def _metrics() -> list[str]:
    from bench.metrics import list_metrics

    return [m for m in ("psnr", "ssim", "psnr_b") if m in list_metrics()]


def _argv(images: Path, run_dir: Path) -> list[str]:
    return ["run", "--images", images, "--datasets", "", "--methods", "jpeg", "--metrics", ",".join(_metrics()),
            "--qf", ",".join(map(str, QFS)), "--run-dir", run_dir, "--no-report", "--quiet"]


def _count(run_dir: Path, folder: str, suffix: str) -> int:
    return sum(1 for p in (run_dir / folder).rglob(f"*{suffix}") if not p.name.startswith(TMP_MARK))


def _results(run_dir: Path) -> int:
    """Metric rows stored so far (0 while the store is not there yet or is being created)."""
    try:
        with sqlite3.connect(f"file:{run_dir / ResultsStore.FILENAME}?mode=ro", uri=True, timeout=1) as con:
            return con.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return 0


def _kill_when(process, ready, timeout: float = 120.0) -> int:
    """SIGKILL `process` as soon as `ready()` holds; return its exit status."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            return process.status
        if time.monotonic() > deadline:
            break
        time.sleep(0.002)
    process.kill()
    return process.wait()


def snapshot(run_dir: Path) -> dict:
    """Every row of the store (all tables, not only the current view) and every image file, by content."""
    with sqlite3.connect(f"file:{run_dir / ResultsStore.FILENAME}?mode=ro", uri=True) as con:
        rows = {table: sorted(con.execute(f"SELECT {columns} FROM {table}").fetchall()) for table, columns in {
            "results": "unit_id, metric, metric_fp, value",
            "outputs": "unit_id, path, sha256",
            "errors": "subject, stage, message",
            "inputs": "image_id, protocol, hq_path, hq_sha256, width, height, notes",
            "lq": "image_id, protocol, qf, path, sha256, bytes",
            "plan_units": "variant, dataset, image, method, qf, unit_id"}.items()}
    files = {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in run_dir.rglob("*")
             if p.suffix in (".png", ".jpg", ".csv")}
    return {"rows": rows, "files": files}


def check_clean(run_dir: Path) -> None:
    """No temporary file is left, and every image the run wrote decodes completely."""
    assert not [p for p in run_dir.rglob(f"{TMP_MARK}*")], "temporary files left behind"
    for path in run_dir.rglob("*"):
        if path.suffix in (".png", ".jpg"):
            read_rgb8(path)


@pytest.mark.slow
def test_killed_runs_resume_to_the_uninterrupted_results(tmp_path, make_images, reliability_server):
    images = tmp_path / "photos"
    make_images(images, SIZES, seed=7)
    units = len(SIZES) * len(QFS)
    reference_dir, run_dir = tmp_path / "reference", tmp_path / "killed"

    reference = reliability_server.spawn(_argv(images, reference_dir))
    assert reference.wait() == 0, reference.stderr

    # Fixed kill points, one in each stage of a run, each reached by a run that resumes the previous one.
    kills = [lambda: _count(run_dir, "lq", ".jpg") >= 2,  # making inputs
             lambda: _count(run_dir, "outputs", ".png") >= 2,  # restoring
             lambda: _results(run_dir) >= units * len(_metrics()) // 2]  # scoring
    statuses = []
    for ready in kills:
        status = _kill_when(reliability_server.spawn(_argv(images, run_dir)), ready)
        assert status == -9, f"the run ended with status {status} before its kill point; nothing was interrupted"
        statuses.append(status)

    # A writer killed between writing a temporary file and renaming it leaves one like this behind.
    stale = run_dir / "hq" / f"{TMP_MARK}planted.png.x1y2.png"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"\x89PNG half")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    final = subprocess.run([sys.executable, "-m", "bench", *map(str, _argv(images, run_dir))], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)
    assert final.returncode == 0, final.stderr
    assert f"{units} units" in final.stdout

    check_clean(run_dir)
    check_clean(reference_dir)
    resumed, expected = snapshot(run_dir), snapshot(reference_dir)
    assert len(expected["rows"]["results"]) == units * len(_metrics())
    assert resumed["rows"] == expected["rows"], f"kill statuses {statuses}"
    assert resumed["files"] == expected["files"]


def test_rows_missing_beside_written_files_are_restored(tmp_path, image_folder):
    """A run killed after writing an LQ file but before recording it: the rerun records it."""
    config = RunConfig.from_dict(dict(images=[str(image_folder)], datasets=[], qf=[10, 30], methods=["jpeg"],
                                      metrics=["psnr"], run_dir=str(tmp_path / "run"), report=False))
    assert Runner(config, progress=False).run().exit_status == 0
    before = snapshot(tmp_path / "run")
    with sqlite3.connect(tmp_path / "run" / ResultsStore.FILENAME) as con:
        image_id = "SELECT image_id FROM plan_images WHERE image = '{}'"
        con.execute(f"DELETE FROM lq WHERE image_id = ({image_id.format('img00.png')}) AND qf = 30")
        con.execute(f"DELETE FROM inputs WHERE image_id = ({image_id.format('img01.png')})")
    assert Runner(config, progress=False).run().exit_status == 0
    assert snapshot(tmp_path / "run") == before
