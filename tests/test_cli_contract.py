"""The CLI's error contract, on the real console script: every user mistake is one clear message naming the
problem and exit status 2, with no traceback and no run folder left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# name -> (files to write into the working folder, arguments, text the message must contain)
CASES = {
    "misspelt method": ({}, ["run", "--methods", "jpeg,jpg"], "unknown method 'jpg' (did you mean 'jpeg'"),
    "unknown method in a config": ({"c.yaml": "methods: [jpeg, nosuch]\n"}, ["run", "--config", "c.yaml"],
                                   "unknown method 'nosuch'"),
    "misspelt metric": ({}, ["run", "--metrics", "psnr,psnrr"], "unknown metric 'psnrr' (did you mean 'psnr'"),
    "unknown dataset": ({}, ["run", "--datasets", "live2"], "unknown dataset 'live2' (did you mean 'live1'"),
    "unknown config key": ({"c.yaml": "qfs: [5]\n"}, ["run", "--config", "c.yaml"],
                           "unknown key qfs (did you mean 'qf'?)"),
    "unknown protocol key": ({"c.yaml": "protocol: {colour: x}\n"}, ["run", "--config", "c.yaml"],
                             "unknown key protocol.colour"),
    "bad protocol value": ({}, ["run", "--set", "protocol.codec=jpeg2000"], "protocol.codec: 'jpeg2000' is not one of"),
    "malformed YAML": ({"c.yaml": "methods: [jpeg\nqf: 5\n"}, ["run", "--config", "c.yaml"], "not valid YAML"),
    "config not a mapping": ({"c.yaml": "- jpeg\n"}, ["run", "--config", "c.yaml"], "expected a mapping"),
    "missing config": ({}, ["run", "--config", "nowhere.yaml"], "nowhere.yaml not found"),
    "QF in words (config)": ({"c.yaml": "qf: [ten]\n"}, ["run", "--config", "c.yaml"], "qf[0]: expected an integer"),
    "QF out of range": ({}, ["run", "--qf", "0,10"], "within 1..100"),
    "QF in words (flag)": ({}, ["run", "--qf", "abc"], "'abc' is not a whole number"),
    "negative limit": ({}, ["run", "--limit", "-1"], "must be 1 or more"),
    "empty method list": ({}, ["run", "--methods", ""], "empty list"),
    "bad method option": ({"c.yaml": "methods: [{method: cave-small, tile_size: 64}]\n"}, ["run", "--config", "c.yaml"],
                          "unknown key tile_size (did you mean 'tile'"),
    "no GPU for run": ({}, ["run", "--device", "cuda"], "no CUDA GPU"),
    "no GPU for restore": ({}, ["restore", "x.jpg", "-o", "out", "--method", "jpeg", "--device", "cuda"], "no CUDA GPU"),
    "no GPU for estimate-qf": ({}, ["estimate-qf", "x.jpg", "--device", "cuda"], "no CUDA GPU"),
    "option of the wrong type": ({}, ["restore", "x.jpg", "-o", "out", "--method", "cave-small", "--set", "tile=abc"],
                                 "tile: expected an integer"),
    "unknown method for restore": ({}, ["restore", "x.jpg", "-o", "out", "--method", "codif"],
                                   "did you mean 'codiff'"),
    "strict with absent metric weights": ({}, ["run", "--metrics", "psnr,lpips", "--strict"], "lpips"),
    "unknown architecture": ({}, ["profile", "--methods", "codif", "--no-latency"], "did you mean 'codiff'"),
    "report of a folder that is no run": ({}, ["report", "."], "is not a run folder"),
    "missing training config": ({}, ["train-cave", "--config", "nowhere.yaml"], "nowhere.yaml not found"),
    "unknown training key": ({"t.yaml": "model: {ncc: [4]}\n"}, ["train-cave", "--config", "t.yaml"],
                             "unknown key model.ncc"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_user_mistake_is_one_message_and_exit_2(name, tmp_path):
    files, argv, expected = CASES[name]
    for filename, text in files.items():
        (tmp_path / filename).write_text(text)
    if "run" == argv[0]:
        argv = [*argv, "--run-dir", str(tmp_path / "run")]
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch-home"), "CODIFF_BENCH_WEIGHTS": str(tmp_path / "w"),
           "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-m", "bench", *argv], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    assert expected in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes any folder, so a read-only one cannot be made")
def test_a_report_into_a_read_only_run_folder_is_one_message(tmp_path, report_run_builder):
    run_dir = report_run_builder(tmp_path / "run")
    for path in [run_dir, *run_dir.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        done = subprocess.run([sys.executable, "-m", "bench", "report", str(run_dir)], capture_output=True, text=True)
    finally:
        for path in [run_dir, *run_dir.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert done.returncode == 2 and "read-only" in done.stderr and "Traceback" not in done.stderr


def test_an_internal_error_keeps_its_traceback(tmp_path):
    """A bug is not a user mistake: exit 1 with the traceback, for the bug report."""
    code = ("import sys; from bench.cli import COMMANDS, main\n"
            "def register(sub):\n    p = sub.add_parser('boom'); p.set_defaults(func=lambda a: 1 / 0)\n"
            "COMMANDS.register('boom', register)\nsys.exit(main(['boom']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1 and "ZeroDivisionError" in done.stderr and "Traceback" in done.stderr
