"""Weight files count by content: hashed once per version of a file, swaps noticed even with the mtime reset,
moved weights and copied run folders reuse every result."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import bench.core.hashcache as hashcache
from bench.config import RunConfig
from bench.core.weights import WeightFile
from bench.engine import Runner
from methods.base import Method
from methods.registry import METHODS, create_method


@dataclass(frozen=True)
class WeightedOptions:
    weights: str = ""


class WeightedForTests(Method):
    """Scales the image by the number stored in its weights file (option `weights`)."""

    config_class = WeightedOptions

    def required_weights(self):
        return [WeightFile("scale", Path(self.opts.weights))]

    def restore(self, request):
        return (request.lq * float(self.required_weights()[0].path.read_text())).clamp(0, 1)


@pytest.fixture(autouse=True)
def weighted_method() -> None:
    """The toy method, registered for each test (the registries fixture removes it afterwards)."""
    METHODS.register("test-weighted", WeightedForTests)


@pytest.fixture
def counted_hashing(monkeypatch):
    """Every real hash computation recorded; timestamps trusted at once (no racy window); no in-process memo."""
    hashed: list[str] = []
    real = hashcache.file_sha256

    def counting(path, *args, **kwargs):
        hashed.append(os.path.basename(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(hashcache, "file_sha256", counting)
    monkeypatch.setattr(hashcache, "RACY_WINDOW_NS", 0)
    monkeypatch.setattr(hashcache, "_memo", {})
    return hashed


def _rewrite_keeping_mtime(path, text: str) -> None:
    """Replace a file's content in place, same size, then set its mtime back (as `touch -d` would)."""
    stat = path.stat()
    time.sleep(0.05)  # past the kernel clock tick, as any real swap is
    with open(path, "r+") as fh:
        fh.write(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_mtime_ns == stat.st_mtime_ns and path.stat().st_size == stat.st_size


def test_a_file_is_hashed_once_across_processes_memory(tmp_path, counted_hashing):
    weights = tmp_path / "big.bin"
    weights.write_bytes(os.urandom(4096))
    first = hashcache.content_sha256(weights)
    hashcache._memo.clear()  # as a new process: only the cache file remembers
    assert hashcache.content_sha256(weights) == first
    assert counted_hashing == ["big.bin"]
    assert hashcache.default_cache_path().is_file()


def test_a_swapped_checkpoint_with_its_mtime_reset_is_noticed(tmp_path, counted_hashing):
    weights = tmp_path / "scale.txt"
    weights.write_text("0.50")
    method = create_method("test-weighted", weights=str(weights))
    before = method.fingerprint()
    hashcache._memo.clear()
    assert method.fingerprint() == before and counted_hashing == ["scale.txt"]
    _rewrite_keeping_mtime(weights, "0.75")
    assert method.fingerprint() != before
    assert counted_hashing == ["scale.txt", "scale.txt"]


def test_a_just_written_file_is_not_trusted_by_its_timestamps(tmp_path, monkeypatch):
    """Within the racy window a second write may leave every timestamp unchanged: nothing is cached."""
    monkeypatch.setattr(hashcache, "_memo", {})
    weights = tmp_path / "fresh.bin"
    weights.write_bytes(b"one")
    hashcache.content_sha256(weights)
    assert not hashcache._memo


def test_moving_the_weights_keeps_the_fingerprint(tmp_path, counted_hashing):
    old = tmp_path / "a" / "scale.txt"
    old.parent.mkdir()
    old.write_text("0.50")
    before = create_method("test-weighted", weights=str(old)).fingerprint()
    new = tmp_path / "elsewhere" / "renamed.txt"
    new.parent.mkdir()
    shutil.move(old, new)
    assert create_method("test-weighted", weights=str(new)).fingerprint() == before


def _config(run_dir, images, weights) -> RunConfig:
    methods = ["jpeg", {"name": "scaled", "method": "test-weighted", "weights": str(weights)}]
    return RunConfig.from_dict(dict(images=[str(images)], datasets=[], qf=[10, 30], methods=methods,
                                    metrics=["psnr"], run_dir=str(run_dir), report=False))


def test_copied_run_folder_and_moved_weights_reuse_everything_and_a_swap_recomputes_one_method(
        tmp_path, image_folder, counted_hashing):
    weights = tmp_path / "w1" / "scale.txt"
    weights.parent.mkdir()
    weights.write_text("0.50")
    first = Runner(_config(tmp_path / "run", image_folder, weights), progress=False).run()
    assert first.restored == 12 and first.exit_status == 0

    shutil.copytree(tmp_path / "run", tmp_path / "copy")
    moved = tmp_path / "w2" / "scale-moved.txt"
    moved.parent.mkdir()
    shutil.move(weights, moved)
    again = Runner(_config(tmp_path / "copy", image_folder, moved), progress=False).run()
    assert again.restored == 0 and again.reused == 12

    _rewrite_keeping_mtime(moved, "0.25")
    swapped = Runner(_config(tmp_path / "copy", image_folder, moved), progress=False).run()
    assert swapped.restored == 6 and swapped.reused == 6  # the 6 units of `scaled` only

    record = json.loads((tmp_path / "copy" / "manifest.json").read_text())["weights"]["scaled"][0]
    assert record["sha256"] == hashcache.content_sha256(moved) and record["path"] == str(moved)
    assert "mtime_ns" not in record
