"""Two runs on one run folder: the second refuses with a clear message and exit status 2; the first finishes
untouched."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import yaml

from bench.cli import main
from bench.core.atomic import TMP_MARK
from bench.core.lock import RunLock
from bench.store import ResultsStore

# A method that holds its first image until the test opens the gate, so that the first run is certainly
# still running while the second starts.
GATED_METHOD = '''
import os, time
from dataclasses import dataclass
from pathlib import Path
from methods.base import Method
from methods.registry import register_method

@dataclass(frozen=True)
class GateOptions:
    gate: str = ""

@register_method("test-gated")
class Gated(Method):
    config_class = GateOptions

    def restore(self, request):
        gate = Path(self.opts.gate)
        gate.with_suffix(".waiting").touch()
        while not gate.exists():
            time.sleep(0.01)
        return request.lq.clone()
'''


def _config(tmp_path: Path, images: Path, gate: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({
        "datasets": [], "images": [str(images)], "qf": [10, 30], "metrics": ["psnr"], "report": False,
        "methods": [{"name": "gated", "method": "test-gated", "gate": str(gate)}], "run_dir": str(tmp_path / "run")}))
    return path


def _rows(run_dir: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{run_dir / ResultsStore.FILENAME}?mode=ro", uri=True) as con:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("results", "outputs", "errors", "inputs", "lq", "meta", "plan_units")}


def test_a_second_run_on_a_busy_folder_refuses_and_the_first_is_intact(tmp_path, image_folder, reliability_server):
    gate = tmp_path / "gate"
    config = _config(tmp_path, image_folder, gate)
    first = reliability_server.spawn(["run", "--config", config, "--quiet"], prelude=GATED_METHOD)
    try:
        deadline = time.monotonic() + 120
        while not gate.with_suffix(".waiting").exists():
            assert first.poll() is None, f"the first run ended early: {first.stderr}"
            assert time.monotonic() < deadline, "the first run never reached its first image"
            time.sleep(0.02)
        before = _rows(tmp_path / "run")

        second = reliability_server.spawn(["run", "--config", config, "--quiet"], prelude=GATED_METHOD)
        assert second.wait() == 2
        assert "is in use by another codiff-bench process" in second.stderr
        assert f"(pid {first.pid})" in second.stderr
        assert _rows(tmp_path / "run") == before, "the refused run wrote to the store"
        assert first.poll() is None
    finally:
        gate.touch()
    assert first.wait() == 0, first.stderr
    rows = _rows(tmp_path / "run")
    assert (rows["results"], rows["outputs"], rows["errors"]) == (3 * 2, 3 * 2, 0)
    assert not list((tmp_path / "run").rglob(f"{TMP_MARK}*"))


def test_the_command_reports_a_held_lock(tmp_path, image_folder, capsys):
    run_dir = tmp_path / "run"
    with RunLock(run_dir):
        status = main(["run", "--images", str(image_folder), "--datasets", "", "--methods", "jpeg",
                       "--metrics", "psnr", "--run-dir", str(run_dir), "--quiet", "--no-report"])
    assert status == 2
    err = capsys.readouterr().err
    assert f"run folder {run_dir} is in use by another codiff-bench process" in err and "--run-dir" in err
    assert not (run_dir / ResultsStore.FILENAME).exists()
