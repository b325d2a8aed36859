"""Sharded runs: two processes (torchrun, gloo on CPU) give the one-process results; a killed worker's run
resumes to the same complete table without duplicates."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.distributed import Shard

pytestmark = pytest.mark.slow


def test_shards_split_units_disjointly_and_completely():
    items = list(range(11))
    parts = [Shard(rank=r, world=3).take(items) for r in range(3)]
    assert sorted(sum(parts, [])) == items
    assert parts[0] == [0, 3, 6, 9]
    assert Shard().take(items) == items
    assert Shard(rank=1, world=2, local_rank=1).device("cuda") == "cuda:1"
    assert Shard(rank=1, world=2).device("cpu") == "cpu"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _args(folder: Path, run_dir: Path) -> list[str]:
    return ["-m", "bench", "run", "--images", str(folder), "--methods", "jpeg", "--qf", "10,20,30",
            "--metrics", "psnr,ssim", "--run-dir", str(run_dir), "--quiet", "--no-report"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(folder: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
            "--master_port", str(_free_port()), *_args(folder, run_dir)]


def _table(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "results.sqlite") as conn:
        return conn.execute("SELECT p.dataset, p.image, p.method, p.qf, r.metric, r.value FROM plan_units p "
                            "JOIN results r ON r.unit_id = p.unit_id ORDER BY 1, 2, 3, 4, 5").fetchall()


def test_two_processes_equal_one_and_a_killed_worker_resumes(tmp_path, make_images):
    folder = tmp_path / "images"
    make_images(folder, [(40, 48)] * 6, seed=3)
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    subprocess.run([sys.executable, *_args(folder, single)], check=True, env=_env(), timeout=300)
    done = subprocess.run(_torchrun(folder, sharded), env=_env(), timeout=300, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _table(single) == _table(sharded)
    assert len(_table(single)) == 6 * 3 * 2

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_torchrun(folder, killed), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 120
    db = killed / "results.sqlite"
    while time.time() < deadline:  # wait for some, not all, results, then kill one worker
        if db.is_file():
            try:
                with sqlite3.connect(db, timeout=1) as conn:
                    if conn.execute("SELECT count(*) FROM outputs").fetchone()[0] >= 2:
                        break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    workers = subprocess.run(["pgrep", "-f", "-P", str(proc.pid), "bench"], capture_output=True, text=True).stdout.split()
    assert workers, "no worker process of torchrun was found to kill"
    os.kill(int(workers[-1]), signal.SIGKILL)
    proc.wait(timeout=120)
    resumed = subprocess.run(_torchrun(folder, killed), env=_env(), timeout=300, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _table(killed) == _table(single)
    with sqlite3.connect(killed / "results.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM results").fetchone()[0] == 6 * 3 * 2
    assert not list(killed.rglob(".tmp-*"))
