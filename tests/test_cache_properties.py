"""Property tests of the run cache: after any sequence of edits (an image's content replaced, a file renamed,
a folder moved or copied, the run folder copied, a protocol field, a method option or a metric option changed,
a weight file swapped with its size and mtime kept, a file touched, a run interrupted at a random unit), a
rerun stores exactly what a fresh run in an empty folder stores, bit for bit, and recomputes only the units
and values whose identity it had not stored.

HYPOTHESIS_CACHE_EXAMPLES raises the number of examples (default 8).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.config import RunConfig
from bench.core.imageio import encode_png
from bench.core.weights import WeightFile
from bench.engine import Runner
from bench.engine.executor import Executor
from bench.store import ResultsStore
from methods.base import Method
from methods.registry import METHODS

EXAMPLES = int(os.environ.get("HYPOTHESIS_CACHE_EXAMPLES", "8"))


@dataclass(frozen=True)
class ShiftOptions:
    weights: str = ""
    gain: float = 1.0


class ShiftForTests(Method):
    """out = lq * gain + (first byte of its weight file) / 1000: depends on an option and a file's content."""

    config_class = ShiftOptions

    def required_weights(self):
        return [WeightFile("shift", Path(self.opts.weights))]

    def restore(self, request):
        offset = Path(self.opts.weights).read_bytes()[0] / 1000
        return (request.lq * self.opts.gain + offset).clamp(0, 1)


class Interrupted(BaseException):
    """Stands for a kill between two units (every write is atomic, so a kill can only fall between writes)."""


class World:
    """Images, a weight file and a config that the edits change; `run` runs it into a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images = root / "photos"
        self.images.mkdir(parents=True)
        self.palette = [_image(seed) for seed in range(5)]
        for index in range(3):
            (self.images / f"img{index}.png").write_bytes(self.palette[index])
        self.weights = root / "w" / "shift.bin"
        self.weights.parent.mkdir()
        self.weights.write_bytes(b"\x05" + b"\x00" * 15)
        self.subsampling, self.gain, self.color_space = "420", 1.0, "yiq"
        self.run_dir = root / "run"

    def config(self, run_dir: Path) -> RunConfig:
        methods = ["jpeg", {"name": "shift", "method": "test-shift", "weights": str(self.weights), "gain": self.gain}]
        return RunConfig.from_dict(dict(
            images=[str(self.images)], datasets=[], qf=[10, 30], methods=methods, metrics=["psnr", "ssim"],
            metric_options={"psnr": {"color_space": self.color_space}}, protocol={"subsampling": self.subsampling},
            run_dir=str(run_dir), report=False))

    # -- edits ----------------------------------------------------------------------------------------------
    def replace_content(self, which: int, source: int) -> None:
        files = sorted(self.images.iterdir())
        files[which % len(files)].write_bytes(self.palette[source])

    def rename(self, which: int) -> None:
        files = sorted(self.images.iterdir())
        target = files[which % len(files)]
        target.rename(target.with_name(f"renamed{time.monotonic_ns()}.png"))

    def move_images(self) -> None:
        moved = self.root / f"photos-moved-{time.monotonic_ns()}"
        shutil.move(self.images, moved)
        self.images = moved

    def copy_images(self) -> None:
        copied = self.root / f"photos-copy-{time.monotonic_ns()}"
        shutil.copytree(self.images, copied)
        self.images = copied

    def copy_run_folder(self) -> None:
        copied = self.root / f"run-copy-{time.monotonic_ns()}"
        shutil.copytree(self.run_dir, copied, ignore=shutil.ignore_patterns(".lock*"))
        self.run_dir = copied

    def toggle_subsampling(self) -> None:
        self.subsampling = "444" if self.subsampling == "420" else "420"

    def toggle_gain(self) -> None:
        self.gain = 0.9 if self.gain == 1.0 else 1.0

    def toggle_color_space(self) -> None:
        self.color_space = "ycbcr" if self.color_space == "yiq" else "yiq"

    def swap_weights(self, value: int) -> None:
        """New content, same size, mtime set back (as `touch -d` would)."""
        stat = self.weights.stat()
        self.weights.write_bytes(bytes([value]) + b"\x00" * 15)
        os.utime(self.weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    def touch(self, which: int) -> None:
        files = sorted(self.images.iterdir()) + [self.weights]
        os.utime(files[which % len(files)])


EDITS = st.one_of(
    st.tuples(st.just("replace_content"), st.integers(0, 2), st.integers(0, 4)),
    st.tuples(st.just("rename"), st.integers(0, 2)),
    st.tuples(st.just("move_images")),
    st.tuples(st.just("copy_images")),
    st.tuples(st.just("copy_run_folder")),
    st.tuples(st.just("toggle_subsampling")),
    st.tuples(st.just("toggle_gain")),
    st.tuples(st.just("toggle_color_space")),
    st.tuples(st.just("swap_weights"), st.integers(1, 9)),
    st.tuples(st.just("touch"), st.integers(0, 3)),
)
STEPS = st.lists(st.tuples(EDITS, st.one_of(st.none(), st.integers(0, 11))), min_size=1, max_size=4)


@pytest.fixture(autouse=True)
def shift_method() -> None:
    METHODS.register("test-shift", ShiftForTests)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_every_rerun_stores_what_a_fresh_run_stores_and_recomputes_only_what_changed(tmp_path_factory, monkeypatch,
                                                                                     steps):
    world = World(tmp_path_factory.mktemp("world"))
    _run(world.config(world.run_dir))
    for (edit, *args), interrupt_after in steps:
        getattr(world, edit)(*args)
        config = world.config(world.run_dir)
        if interrupt_after is not None:
            _interrupted_run(config, interrupt_after, monkeypatch)
        before = _cached(world.run_dir)
        summary = _run(config)
        fresh_dir = tmp_path_factory.mktemp("fresh")
        _run(world.config(fresh_dir))
        assert _stored(world.run_dir) == _stored(fresh_dir), f"after {edit}{tuple(args)}"
        after = _cached(world.run_dir)
        units, values = _planned(world.run_dir)
        new_units = units - set(before["outputs"])
        assert {u for u, created in after["outputs"].items() if before["outputs"].get(u) != created} == new_units
        assert summary.restored == len(new_units)
        assert {k for k, created in after["values"].items() if before["values"].get(k) != created} == \
            values - set(before["values"])


def _image(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (6, 5, 3)).astype(np.uint8)
    return encode_png(np.kron(base, np.ones((4, 4, 1), dtype=np.uint8)))


def _run(config: RunConfig):
    summary = Runner(config, progress=False).run()
    assert summary.exit_status == 0, summary.errors
    return summary


def _interrupted_run(config: RunConfig, after: int, monkeypatch) -> None:
    """A run stopped after `after` units (or not at all when it has fewer)."""
    real = Executor.process
    done = []

    def process(self, method, unit):
        if len(done) == after:
            raise Interrupted
        done.append(unit)
        real(self, method, unit)

    with monkeypatch.context() as patch:
        patch.setattr(Executor, "process", process)
        try:
            Runner(config, progress=False).run()
        except Interrupted:
            pass


def _stored(run_dir: Path) -> dict:
    """What a run folder holds for its current plan, by names people read and by content."""
    with ResultsStore.in_run_dir(run_dir, readonly=True) as store:
        results = sorted(map(tuple, store.results_frame().itertuples(index=False)))
        outputs = sorted((r.dataset, r.image, r.method, r.qf, _sha(run_dir / r.path))
                         for r in store.outputs_frame().itertuples())
        images = sorted((r.dataset, r.image, r.width, r.height, r.notes, _sha(run_dir / r.hq_path))
                        for r in store.images_frame().itertuples())
        lq = sorted((r.dataset, r.image, r.qf, r.bytes, _sha(run_dir / r.path)) for r in store.lq_frame().itertuples())
        errors = len(store.errors_frame())
    return {"results": results, "outputs": outputs, "images": images, "lq": lq, "errors": errors}


def _cached(run_dir: Path) -> dict:
    """When each stored restoration and value was computed, by identity."""
    with ResultsStore.in_run_dir(run_dir, readonly=True) as store:
        outputs = {r[0]: r[1] for r in store.conn.execute("SELECT unit_id, created FROM outputs")}
        values = {tuple(r[:3]): r[3] for r in store.conn.execute("SELECT unit_id, metric, metric_fp, created "
                                                                  "FROM results")}
    return {"outputs": outputs, "values": values}


def _planned(run_dir: Path) -> tuple[set[str], set[tuple[str, str, str]]]:
    """The identities of the current plan's units and of the metric values it needs."""
    with ResultsStore.in_run_dir(run_dir, readonly=True) as store:
        units = {r[0] for r in store.conn.execute("SELECT unit_id FROM plan_units")}
        metrics = [tuple(r) for r in store.conn.execute("SELECT metric, fingerprint FROM plan_metrics")]
    return units, {(u, m, fp) for u in units for m, fp in metrics}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
