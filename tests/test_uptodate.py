"""A rerun of a finished run does nothing, found without loading anything; any change runs the engine."""

from __future__ import annotations

import shutil

import pytest

import bench.engine
from bench.cli import main


@pytest.fixture
def engine_calls(monkeypatch) -> list[str]:
    """The run folders the run engine was started on (it still runs)."""
    calls: list[str] = []
    real = bench.engine.Runner.run

    def run(self):
        calls.append(str(self.layout.root))
        return real(self)

    monkeypatch.setattr(bench.engine.Runner, "run", run)
    return calls


def test_only_a_changed_run_starts_the_engine(tmp_path, image_folder, engine_calls, capsys, monkeypatch):
    images = image_folder
    argv = ["run", "--images", str(images), "--methods", "jpeg", "--qf", "10", "--metrics", "psnr",
            "--run-dir", str(tmp_path / "run"), "--no-report", "--quiet"]
    assert main(argv) == 0 and len(engine_calls) == 1
    assert (tmp_path / "run" / "uptodate.json").is_file()
    assert main(argv) == 0 and len(engine_calls) == 1  # nothing changed: the stored results are shown
    assert "3 units: 0 restored, 3 reused" in capsys.readouterr().out

    assert main([*argv, "--qf", "10,20"]) == 0 and len(engine_calls) == 2  # another option
    shutil.copy(images / "img00.png", images / "img09.png")
    assert main([*argv, "--qf", "10,20"]) == 0 and len(engine_calls) == 3  # another input
    assert main([*argv, "--qf", "10,20"]) == 0 and len(engine_calls) == 3
    assert main([*argv[:-2], "--quiet"]) == 0 and len(engine_calls) == 4  # the report was not made yet
    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    copied = [a if a != str(tmp_path / "run") else str(tmp_path / "copy") for a in argv]
    assert main(copied) == 0 and len(engine_calls) == 5  # the qf 10,20 run is stored, not the qf 10 one
    assert main(copied) == 0 and len(engine_calls) == 5
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "other-cache"))  # metric weights may be found there
    assert main(copied) == 0 and len(engine_calls) == 6


def test_a_run_with_errors_is_never_taken_as_finished(tmp_path, image_folder, engine_calls):
    images = image_folder
    (images / "broken.png").write_bytes(b"not a png")
    argv = ["run", "--images", str(images), "--methods", "jpeg", "--qf", "10", "--metrics", "psnr",
            "--run-dir", str(tmp_path / "run"), "--no-report", "--quiet"]
    assert main(argv) == 1 and main(argv) == 1 and len(engine_calls) == 2
    assert not (tmp_path / "run" / "uptodate.json").exists()
