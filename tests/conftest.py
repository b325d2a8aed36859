"""Shared fixtures: the read-only parity folder, tiny image folders, and a metric-free run config."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PARITY = SHARED / "parity" / "official-tiny"
PARITY_TILED = SHARED / "parity" / "official-tiny-tiled"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def registries():
    """Every registry as it was before the test, afterwards: what a test registers never leaks into another."""
    import bench.analysis  # noqa: F401 - each imported for the registries it creates
    import bench.cli  # noqa: F401
    import bench.metrics  # noqa: F401
    import bench.profile.architecture  # noqa: F401
    import methods.registry  # noqa: F401
    from bench.core.registry import REGISTRIES

    restores = [r.snapshot() for r in REGISTRIES.values()]
    yield
    for restore in restores:
        restore()


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """../shared/parity/official-tiny, or a skip saying why (a user's clone lacks it)."""
    if not PARITY.is_dir():
        pytest.skip(f"parity vectors not found at {PARITY}: the repository's parent holds no shared/parity folder")
    return PARITY


@pytest.fixture(scope="session")
def parity_tiled_dir(parity_dir) -> Path:
    """../shared/parity/official-tiny-tiled (the release's output with latent tiling engaged), or a skip."""
    if not PARITY_TILED.is_dir():
        pytest.skip(f"tiled parity vectors not found at {PARITY_TILED}: the repository's parent holds no shared/parity folder")
    return PARITY_TILED


def write_random_images(folder: Path, sizes: list[tuple[int, int]], seed: int = 0) -> list[Path]:
    """Smooth random colour images (so that JPEG has work to do) saved as PNG; returns their paths."""
    import cv2

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, (h, w) in enumerate(sizes):
        base = rng.integers(0, 256, (max(h // 8, 1), max(w // 8, 1), 3)).astype(np.uint8)
        img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img.astype(np.int16) + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
        path = folder / f"img{index:02d}.png"
        cv2.imwrite(str(path), img[:, :, ::-1])
        paths.append(path)
    return paths


@pytest.fixture(scope="session", autouse=True)
def private_hash_cache(tmp_path_factory):
    """Weight-file hashes go to a cache of the test session's own, never the user's."""
    from bench.core.hashcache import HASH_CACHE_ENV

    saved = os.environ.get(HASH_CACHE_ENV)
    os.environ[HASH_CACHE_ENV] = str(tmp_path_factory.mktemp("hash-cache") / "hashes.sqlite")
    yield
    if saved is None:
        os.environ.pop(HASH_CACHE_ENV, None)
    else:
        os.environ[HASH_CACHE_ENV] = saved


@pytest.fixture
def one_thread():
    """Run the test's torch work on one thread (the suite shares two cores), restoring the count after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def make_images():
    """Factory: `make_images(folder, [(h, w), ...], seed=0)` writes smooth random PNGs."""
    return write_random_images


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Three small colour images, one of them not a multiple of 8."""
    folder = tmp_path / "images"
    write_random_images(folder, [(48, 64), (64, 40), (37, 50)])
    return folder


# -- reports: a synthetic run folder written through the results store API ------------------------------

REPORT_HOSTILE_NAMES = ["<script>alert(1)</script>.png", "<img src=x onerror=alert(1)>.png"]


def build_report_run(run_dir: Path, *, datasets: dict[str, list[str]] | None = None,
                     methods: dict[str, str] | None = None, metrics: dict[str, bool] | None = None,
                     qfs: tuple[int, ...] = (5, 10), failures: bool = True, size: tuple[int, int] = (24, 32)) -> Path:
    """Write a run folder as the run engine does (store rows, HQ/LQ/output images) with made-up values.

    `methods` maps run labels to registered names, `metrics` names to lower_better. With `failures`, one
    image cannot be read, one method fails on one unit, and a metric and a method are skipped.
    """
    import cv2

    from bench.core.paths import safe_component, safe_names
    from bench.core.protocol import decode_jpeg
    from bench.store import ResultsStore

    datasets = datasets if datasets is not None else {"live1": ["img_a.png", "img_b.png", *REPORT_HOSTILE_NAMES],
                                                      "sample": ["astronaut.png"]}
    methods = methods if methods is not None else {"jpeg": "jpeg", "fbcnn": "fbcnn", "codiff": "codiff",
                                                   "x&<i>y</i>$": "cave-small"}
    metrics = metrics if metrics is not None else {"psnr": False, "ssim": False, "psnr_b": False, "lpips": True}
    pkey = "opencv-420-lanczos-test"
    rng = np.random.default_rng(0)
    h, w = size
    hq = np.clip(cv2.resize(rng.integers(0, 256, (h // 4, w // 4, 3)).astype(np.uint8), (w, h)), 0, 255)
    skill = {label: i for i, label in enumerate(methods)}
    record = synthetic_record(
        list(datasets), list(methods.items()), {m: lb for m, lb in metrics.items()}, list(qfs), pkey,
        config={"run_dir": str(run_dir)},
        manifest={"git": {"commit": "0123abcd", "dirty": True}, "versions": {"torch": "2.x"},
                  "device": {"device": "cpu", "processor": "x86_64"}, "seed": 0, "started": "2025-01-01T00:00:00",
                  "weights": {"lpips": [{"label": "LPIPS vgg", "path": "/w/lpips.pth", "status": "present",
                                         "size": 10, "sha256": "ab" * 32}]}})
    plan_images, plan_units = [], []
    with ResultsStore.in_run_dir(run_dir) as store:
        store.set_record(record)
        if failures:
            store.set_skipped("metric", {"musiq": "weights not found: /w/musiq.pth is missing <b>x</b>"})
            store.set_skipped("method", {"supir": "weights not found: /w/supir.ckpt is missing"})
        for dataset, images in datasets.items():
            stems = safe_names(images)
            for index, image in enumerate(images):
                image_id = f"id-{dataset}/{image}"
                plan_images.append(("clean", dataset, image, image_id, pkey))
                if failures and index == 1:
                    store.put_error(f"input:{image_id}:{pkey}", "input",
                                    f"/data/{image}: not a readable image (unknown or corrupt format)")
                    continue
                hq_rel = f"hq/{safe_component(dataset)}/{pkey}/{stems[image]}.png"
                (run_dir / hq_rel).parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(run_dir / hq_rel), hq)
                store.put_input(image_id, pkey, hq_rel, "", w, h, ["grayscale expanded"] if index == 0 else [])
                for qf in qfs:
                    lq_rel = f"lq/{safe_component(dataset)}/{pkey}/qf{qf}/{stems[image]}.jpg"
                    (run_dir / lq_rel).parent.mkdir(parents=True, exist_ok=True)
                    ok, data = cv2.imencode(".jpg", hq, [cv2.IMWRITE_JPEG_QUALITY, qf])
                    (run_dir / lq_rel).write_bytes(data.tobytes())
                    store.put_lq(image_id, pkey, qf, lq_rel, "", len(data))
                    for label, name in methods.items():
                        unit_id = f"unit-{dataset}/{image}/{label}/{qf}"
                        plan_units.append(("clean", dataset, image, label, qf, unit_id))
                        if failures and label == "codiff" and index == 2 and qf == qfs[-1]:
                            store.put_error(unit_id, "restore", "MethodError: out of memory <b>bold</b>")
                            continue
                        out_rel = f"outputs/{safe_component(dataset)}/{safe_component(label)}/qf{qf}/{stems[image]}.png"
                        (run_dir / out_rel).parent.mkdir(parents=True, exist_ok=True)
                        # the JPEG method returns its input as decoded; the others made-up pictures
                        picture = decode_jpeg(data.tobytes())[:, :, ::-1] if name == "jpeg" else hq
                        cv2.imwrite(str(run_dir / out_rel), picture)
                        store.put_output(unit_id, out_rel, "", 0.01 * (1 + skill[label]), [])
                        gain = skill[label] + 0.3 * rng.standard_normal()
                        store.put_results(unit_id, {m: _report_value(m, lb, gain, qf) for m, lb in metrics.items()},
                                          {m: f"mfp-{m}" for m in metrics})
        store.set_plan(plan_images, plan_units, {m: f"mfp-{m}" for m in metrics})
    return run_dir


def synthetic_record(datasets: list[str], methods: list[tuple[str, str]], metrics: dict[str, bool], qfs: list[int],
                     pkey: str, *, config: dict | None = None, manifest: dict | None = None):
    """A run record as the engine writes it, for stores that tests fill by hand (method label -> name,
    metric -> lower_better)."""
    from bench.record import DatasetRecord, MethodRecord, MetricRecord, RunRecord, VariantRecord

    protocol = {"codec": "opencv", "subsampling": "420", "resize": "lanczos", "quality": None}
    entries = [{"name": label, "method": name} for label, name in methods]
    return RunRecord(
        config={"datasets": datasets, "qf": qfs, "metrics": list(metrics), "methods": entries, **(config or {})},
        qfs=qfs, variants=[VariantRecord("clean", pkey, protocol)],
        methods=[MethodRecord(label, name, f"fp-{name}", {"name": name, "blind": True, "steps": 1, "config": {},
                                                          "weights": []}) for label, name in methods],
        metrics=[MetricRecord(m, f"mfp-{m}", {"label": m.upper(), "lower_better": lb, "full_reference": True,
                                               "description": f"{m} <desc>"}) for m, lb in metrics.items()],
        datasets=[DatasetRecord(d, d.upper(), "") for d in datasets], manifest=manifest or {})


def _report_value(metric: str, lower_better: bool, gain: float, qf: int) -> float:
    if lower_better:
        return 0.5 - 0.05 * gain - 0.01 * qf
    return 0.6 + 0.03 * gain + 0.01 * qf if metric == "ssim" else 20 + qf / 5 + gain


@pytest.fixture(scope="session")
def run_record_builder():
    """Factory: `run_record_builder(datasets, methods, metrics, qfs, protocol_key)` (see `synthetic_record`)."""
    return synthetic_record


@pytest.fixture(scope="session")
def report_run_builder():
    """Factory: `report_run_builder(run_dir, **options)` writes a synthetic run folder (see `build_report_run`)."""
    return build_report_run


# -- baselines ---------------------------------------------------------------------------------------------
def _fbcnn_state_dict(in_nc: int = 3, seed: int = 0) -> dict:
    """A random FBCNN state dict in the official key layout (narrow widths; the QF branch needs 512 channels
    and spandrel detects nb >= 2). Shapes come from spandrel's architecture built on the meta device."""
    import torch
    from spandrel.architectures.FBCNN import FBCNN

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in FBCNN(in_nc=in_nc, out_nc=in_nc, nc=[8, 16, 32, 512], nb=2).state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(shape, generator=gen) * (shape[1:].numel() ** -0.5 if len(shape) > 1 else 0.01)
            for k, shape in shapes.items()}


@pytest.fixture(scope="session")
def baselines_fbcnn_weights(tmp_path_factory) -> Path:
    """A stand-in `fbcnn_color.pth` (random weights saved with torch.save, as the official file)."""
    import torch

    path = tmp_path_factory.mktemp("fbcnn") / "fbcnn_color.pth"
    torch.save(_fbcnn_state_dict(), path)
    return path


@pytest.fixture(scope="session")
def baselines_fbcnn_state_dict():
    """Factory: `baselines_fbcnn_state_dict(in_nc=3, seed=0)` -> a random FBCNN state dict, official layout."""
    return _fbcnn_state_dict


# -- reliability: many `codiff-bench` processes, each forked after the slow imports ------------------------

RELIABILITY_FORKSERVER = r'''
import json, os, sys, traceback
import bench.cli, bench.engine, bench.metrics, methods.jpeg, pyiqa  # slow imports, done once before any fork
while line := sys.stdin.readline():
    request = json.loads(line)
    if request["op"] == "spawn":
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for fd, name in ((1, "stdout"), (2, "stderr")):
                    os.dup2(os.open(request[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                os.chdir(request["cwd"])
                exec(request["prelude"], {})
                code = bench.cli.main(request["argv"])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        reply = {"pid": pid}
    else:
        pid, status = os.waitpid(request["pid"], os.WNOHANG if request["op"] == "poll" else 0)
        reply = {"status": os.waitstatus_to_exitcode(status) if pid else None}
    print(json.dumps(reply), flush=True)
'''


class ReliabilityProcess:
    """One forked `codiff-bench` process: its pid, exit status (-9 when SIGKILLed) and output."""

    def __init__(self, server: "ReliabilityServer", pid: int, out: Path, err: Path) -> None:
        self.server, self.pid, self.out, self.err = server, pid, out, err
        self.status: int | None = None

    def poll(self) -> int | None:
        if self.status is None:
            self.status = self.server.ask(op="poll", pid=self.pid)["status"]
        return self.status

    def wait(self, timeout: float = 120.0) -> int:
        import time

        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"codiff-bench process {self.pid} still running after {timeout} s")
            time.sleep(0.02)
        return self.status

    def kill(self) -> None:
        import signal

        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


class ReliabilityServer:
    """Forks `codiff-bench` processes (the same `bench.cli.main` as `python -m bench`) from a server that has
    imported torch and pyiqa once, so that tests can start, kill and rerun many runs within their time budget."""

    def __init__(self, folder: Path) -> None:
        import subprocess
        import sys

        self.folder, self.count = folder, 0
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", RELIABILITY_FORKSERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)

    def ask(self, **request) -> dict:
        import json

        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork server ended with status {self.proc.wait()}")
        return json.loads(line)

    def spawn(self, argv: list[str], *, prelude: str = "", cwd: Path = REPO) -> ReliabilityProcess:
        """Start `codiff-bench ARGV`; `prelude` is Python run in the new process first (test-only methods)."""
        self.count += 1
        out, err = self.folder / f"process{self.count}.out", self.folder / f"process{self.count}.err"
        pid = self.ask(op="spawn", argv=[str(a) for a in argv], prelude=prelude, cwd=str(cwd), stdout=str(out),
                       stderr=str(err))["pid"]
        return ReliabilityProcess(self, pid, out, err)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def reliability_server(tmp_path_factory):
    """A `ReliabilityServer` shared by the kill, lock and output-safety tests."""
    server = ReliabilityServer(tmp_path_factory.mktemp("processes"))
    yield server
    server.close()


# -- metrics: private weight caches and stand-in weights -----------------------------------------------------

def _metrics_point_caches(monkeypatch, root: Path) -> None:
    """Point TORCH_HOME and the Hugging Face cache under `root` (as `--cache-dir`) until the test ends."""
    from bench.metrics.caches import cache_environment

    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    for name, value in cache_environment(root).items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def metrics_standin_root(tmp_path_factory) -> tuple[Path, dict]:
    """Stand-in weights for the five learned metrics, written once per session where their libraries look,
    under a private root (torch/, huggingface/); returns (root, create_metric options per metric)."""
    from bench.metrics.standins import write_standins

    root = tmp_path_factory.mktemp("metric-weights")
    return root, write_standins(root)


@pytest.fixture(scope="session")
def dists_cache(tmp_path_factory) -> Path:
    """Stand-in DISTS and VGG16 weights only (the training loss), in a private cache root (TORCH_HOME = <root>/torch)."""
    from bench.metrics.standins import write_standins

    root = tmp_path_factory.mktemp("dists-cache")
    write_standins(root, ["dists"])
    return root


@pytest.fixture
def metrics_caches(tmp_path, monkeypatch) -> Path:
    """Empty private caches (TORCH_HOME, Hugging Face) for one test; returns their root."""
    root = tmp_path / "caches"
    _metrics_point_caches(monkeypatch, root)
    return root


@pytest.fixture
def metrics_standins(metrics_standin_root, monkeypatch) -> dict:
    """Point the caches at the session's stand-in weights (shared: copy them before changing a file);
    returns the create_metric options per metric (clipiqa's `clip_path`)."""
    root, options = metrics_standin_root
    _metrics_point_caches(monkeypatch, root)
    return options


@pytest.fixture
def metrics_no_network(monkeypatch) -> None:
    """Fail the test if anything opens a network connection or resolves a host name."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] or args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# -- training: HQ images large enough for tiny training patches ---------------------------------------------

@pytest.fixture(scope="session")
def train_images(tmp_path_factory) -> Path:
    """Four smooth random PNGs of 72-104 px a side (training and validation folders of the training tests)."""
    folder = tmp_path_factory.mktemp("train-images")
    write_random_images(folder, [(80, 96), (96, 80), (72, 72), (88, 104)], seed=3)
    return folder


@pytest.fixture(scope="session")
def codiff_standin_weights(tmp_path_factory) -> dict:
    """A tiny SD folder, codiff.pkl and cave.pth in the official layouts (random weights), written once."""
    from methods.codiff.standins import write_standin_weights

    return write_standin_weights(tmp_path_factory.mktemp("codiff-weights"))


@pytest.fixture(scope="session")
def codiff_tiny_models():
    """Factory of fresh (generator, cave) stand-ins: copies of one tiny pair built once (building is slow)."""
    import copy

    from methods.codiff.standins import tiny_cave, tiny_generator

    template = tiny_generator(), tiny_cave()
    return lambda: copy.deepcopy(template)
