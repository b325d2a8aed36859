"""The CLI's error contract, on the real console script: every user mistake is one clear message naming the
problem and exit status 2, with no traceback and no run folder left behind."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TINY_CAVE = str(ROOT / "configs" / "train" / "cave-tiny.yaml")
SMALL_CAVE = str(ROOT / "methods" / "codiff" / "cave_small" / "weights" / "cave-small-dual.safetensors")
PNG = b"png"  # replaced by a real 64 x 64 PNG when written

# name -> (files to write into the working folder, or "two runs" (r1 scored psnr and psnr_b, r2 psnr only),
# arguments, text the message must contain)
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
    "training batch of 0": ({}, ["train-cave", "--config", TINY_CAVE, "--set", "train.batch_size=0",
                                 "--output-dir", "out"], "train.batch_size must be 1 or more"),
    "training into a file": ({"afile": ""}, ["train-cave", "--config", TINY_CAVE, "--output-dir", "afile"],
                             "afile is a file, not a folder"),
    "training below a file": ({"afile": ""}, ["train-codiff", "--config", TINY_CAVE.replace("cave", "codiff"),
                                              "--output-dir", "afile/x"], "inside afile, which is a file"),
    "negative --max-steps": ({}, ["train-cave", "--config", TINY_CAVE, "--max-steps", "-3", "--output-dir", "out"],
                             "--max-steps: must be 1 or more"),
    "bad learning rate": ({}, ["train-cave", "--config", TINY_CAVE, "--set", "optim.lr=0", "--output-dir", "out"],
                          "lr, eps and gamma must be above 0"),
    "training data that is not there": ({}, ["train-cave", "--config", TINY_CAVE, "--set", "data.train=[nowhere]",
                                             "--output-dir", "out/x"], "unknown dataset 'nowhere'"),
    "restore into a file": ({"afile": "", "a.png": PNG}, ["restore", "a.png", "-o", "afile", "--method", "jpeg"],
                            "afile is a file, not a folder"),
    "restore of a missing input": ({}, ["restore", "nothere.png", "-o", "out", "--method", "jpeg"],
                                   "nothere.png: no such file or folder"),
    "restore of a folder without images": ({"empty/notes.txt": "x"}, ["restore", "empty", "-o", "out", "--method",
                                                                      "jpeg"], "folder holds no images"),
    "estimate-qf of a missing input": ({}, ["estimate-qf", "nothere.png"], "nothere.png: no such file or folder"),
    "compare on a metric one run lacks": ("two runs", ["compare", "r1", "r2", "--out", "out", "--fail-if-worse",
                                                       "psnr_b:0.1"], "r2 did not score psnr_b"),
    "compare into a file": ("two runs", ["compare", "r1", "r2", "--out", "r1/results.sqlite"], "it is a file"),
    "report of an image the run lacks": ("two runs", ["report", "r1", "--images", "nothere.png"],
                                         "nothere.png matches no image of the run"),
    "profile with 0 runs": ({}, ["profile", "--methods", "jpeg", "--runs", "0"], "--runs: must be 1 or more"),
    "profile into a file": ({"afile": ""}, ["profile", "--methods", "jpeg", "--size", "64", "--no-latency",
                                            "--out", "afile"], "afile is a file, not a folder"),
    "cave-analysis into a file": ({"afile": "", "imgs/a.png": PNG}, ["cave-analysis", "--cave", "cave-small-dual",
                                  "--images", "imgs", "--out", "afile"], "afile is a file, not a folder"),
    "cave-analysis with negative crops": ({}, ["cave-analysis", "--cave", "cave-small-dual", "--images", "imgs",
                                           "--crops", "-1"], "--crops: must be 0 or more"),
    "weights cache that is a file": ({"afile": ""}, ["weights", "--metrics", "lpips", "--cache-dir", "afile"],
                                     "afile is a file, not a folder"),
    "convert a missing checkpoint": ({}, ["convert", "nothing.pkl", "out/d.pkl"], "nothing.pkl is missing"),
    "convert onto a folder": ({"dd/x": ""}, ["convert", SMALL_CAVE, "dd"], "dd is a folder: give a file path"),
    "convert below a file": ({"afile": ""}, ["convert", SMALL_CAVE, "afile/x.pth"], "afile is a file, not a folder"),
    "precision without parity vectors": ({}, ["precision", "--parity", "nowhere"], "no parity vectors at nowhere"),
    "precision with 0 threads": ({}, ["precision", "--threads", "0"], "--threads: must be 1 or more"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_user_mistake_is_one_message_and_exit_2(name, tmp_path, make_images, report_run_builder, reliability_server):
    """Each case runs as `codiff-bench ARGV` in a process forked after the slow imports (`bench.cli.main`, as the
    console script), in a fresh folder."""
    files, argv, expected = CASES[name]
    if files == "two runs":
        _two_runs(tmp_path, report_run_builder)
        files = {}
    for filename, content in files.items():
        (tmp_path / filename).parent.mkdir(parents=True, exist_ok=True)
        if content is PNG:
            make_images(tmp_path / "made", [(64, 64)])[0].rename(tmp_path / filename)
        else:
            (tmp_path / filename).write_text(content)
    before = _listing(tmp_path)
    if "run" == argv[0]:
        argv = [*argv, "--run-dir", str(tmp_path / "run")]
    env = {"TORCH_HOME": str(tmp_path / "torch-home"), "CODIFF_BENCH_WEIGHTS": str(tmp_path / "w"),
           "CUDA_VISIBLE_DEVICES": ""}
    process = reliability_server.spawn(argv, prelude=f"import os; os.environ.update({env!r})", cwd=tmp_path)
    status = process.wait(timeout=300)
    out, err = process.stdout, process.stderr
    assert status == 2, (status, out[-2000:], err[-2000:])
    assert expected in err, err[-2000:]
    assert "Traceback" not in err + out
    assert not (tmp_path / "run").exists() and not (tmp_path / "out").exists()
    assert _listing(tmp_path) == before  # nothing written


def _listing(folder: Path) -> list[Path]:
    """Every path below `folder`, but SQLite's own journal files (reading a store may open them)."""
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if not p.name.endswith(("-wal", "-shm")))


def _two_runs(tmp_path: Path, report_run_builder) -> None:
    """r1 and r2: run folders over the same images, r1 scored with psnr and psnr_b, r2 with psnr only."""
    report_run_builder(tmp_path / "r1", metrics={"psnr": False, "psnr_b": False}, failures=False)
    report_run_builder(tmp_path / "r2", metrics={"psnr": False}, failures=False)


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


def test_a_closed_output_pipe_ends_quietly(tmp_path):
    """`codiff-bench methods | head -1`: the reader leaves early; no BrokenPipeError traceback, SIGPIPE's status."""
    done = subprocess.run(f"{shlex.quote(sys.executable)} -m bench methods | head -c 1 >/dev/null; "
                          "echo ${PIPESTATUS[0]}", shell=True, executable="/bin/bash", capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.stdout.strip() == "141" and done.stderr == "", (done.stdout, done.stderr)
