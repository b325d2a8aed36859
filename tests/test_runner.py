"""The run engine: outputs and metrics cached by fingerprint, targeted invalidation, errors, manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from bench.config import ConfigError, RunConfig
from bench.engine import Runner
from bench.store import ResultsStore
from methods.base import Method
from methods.registry import METHODS

CALLS: list[str] = []


@dataclass(frozen=True)
class BlurOptions:
    tag: str = ""
    size: int = 3


class BlurForTests(Method):
    """A configurable toy restorer that records each call."""

    config_class = BlurOptions

    def restore(self, request):
        CALLS.append(self.opts.tag)
        k = self.opts.size
        return torch.nn.functional.avg_pool2d(request.lq, k, stride=1, padding=k // 2, count_include_pad=False)


class BrokenForTests(Method):
    def restore(self, request):
        if request.lq.shape[-1] == 48:
            raise RuntimeError("deliberate failure")
        return request.lq[..., :-1]


@pytest.fixture(autouse=True)
def toy_methods() -> None:
    """The toy methods, registered for each test (the registries fixture removes them afterwards)."""
    METHODS.register("test-blur", BlurForTests)
    METHODS.register("test-broken", BrokenForTests)


def _config(tmp_path, folder, methods, **kw) -> RunConfig:
    return RunConfig.from_dict(dict(images=[str(folder)], datasets=[], qf=[10, 30], methods=methods,
                                    metrics=["psnr", "ssim"], run_dir=str(tmp_path / "run"), report=False, **kw))


def test_rerun_recomputes_nothing_and_config_change_invalidates_only_that_method(tmp_path, image_folder):
    methods = [{"name": "a", "method": "test-blur", "tag": "a"}, {"name": "b", "method": "test-blur", "tag": "b"}]
    CALLS.clear()
    first = Runner(_config(tmp_path, image_folder, methods), progress=False).run()
    assert first.restored == 12 and first.exit_status == 0 and sorted(set(CALLS)) == ["a", "b"]
    CALLS.clear()
    second = Runner(_config(tmp_path, image_folder, methods), progress=False).run()
    assert second.restored == 0 and second.reused == 12 and CALLS == []

    methods[1]["size"] = 5
    third = Runner(_config(tmp_path, image_folder, methods), progress=False).run()
    assert third.restored == 6 and set(CALLS) == {"b"}
    with ResultsStore.in_run_dir(tmp_path / "run", readonly=True) as store:
        frame = store.results_frame()
        assert len(frame) == 2 * 3 * 2 * 2
        assert not frame.duplicated(["dataset", "image", "method", "qf", "metric"]).any()


def test_errors_are_recorded_and_the_run_goes_on(tmp_path, image_folder):
    summary = Runner(_config(tmp_path, image_folder, ["jpeg", "test-broken"]), progress=False).run()
    assert summary.exit_status == 1
    messages = {(e["image"], e["qf"]): e["message"] for e in summary.errors}
    assert len(messages) == 6  # every test-broken unit: one raises, two return the wrong shape
    assert any("deliberate failure" in m and "img02.png" in m for m in messages.values())
    assert any("returned shape" in m for m in messages.values())
    with ResultsStore.in_run_dir(tmp_path / "run", readonly=True) as store:
        frame = store.results_frame()
    assert set(frame.method) == {"jpeg"} and len(frame) == 3 * 2 * 2


def test_manifest_records_provenance(tmp_path, image_folder):
    Runner(_config(tmp_path, image_folder, ["jpeg"]), progress=False).run()
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["protocol"]["codec"] == "opencv" and manifest["protocol"]["subsampling"] == "420"
    assert manifest["versions"]["torch"] and "pyiqa" in manifest["versions"]
    assert manifest["device"]["device"] == "cpu" and manifest["seed"] == 0
    assert manifest["config"]["qf"] == [10, 30] and "finished" in manifest
    lines = (tmp_path / "run" / "summary.csv").read_text().splitlines()
    assert lines[0] == "dataset,method,qf,metric,mean,std,n" and len(lines) == 1 + 2 * 2


def test_lq_files_are_made_once_and_are_deterministic(tmp_path, image_folder):
    Runner(_config(tmp_path, image_folder, ["jpeg"]), progress=False).run()
    files = sorted((tmp_path / "run" / "lq").rglob("*.jpg"))
    assert len(files) == 6
    before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}
    Runner(_config(tmp_path, image_folder, ["jpeg"]), progress=False).run()
    assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files} == before
    other = tmp_path / "other"
    Runner(_config(other, image_folder, ["jpeg"]), progress=False).run()
    assert [f.read_bytes() for f in sorted((other / "run" / "lq").rglob("*.jpg"))] == [b for b, _ in before.values()]


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown key qfs \\(did you mean 'qf'\\?\\)"):
        RunConfig.from_dict({"qfs": [5]})
    with pytest.raises(ConfigError, match="within 1..100"):
        RunConfig.from_dict({"qf": [0]})
    with pytest.raises(ConfigError, match="unique"):
        RunConfig.from_dict({"methods": ["jpeg", "jpeg"]})


def test_results_follow_the_current_scope_of_images_and_qfs(tmp_path, image_folder):
    Runner(_config(tmp_path, image_folder, ["jpeg"]), progress=False).run()
    narrowed = _config(tmp_path, image_folder, ["jpeg"], limit=2)
    narrowed.qf = [10]
    summary = Runner(narrowed, progress=False).run()
    assert summary.restored == 0 and summary.reused == 2
    with ResultsStore.in_run_dir(tmp_path / "run", readonly=True) as store:
        frame = store.results_frame()
        assert sorted(set(frame.image)) == ["img00.png", "img01.png"] and set(frame.qf) == {10}
        assert set(store.lq_frame().qf) == {10} and len(store.images_frame()) == 2
    Runner(_config(tmp_path, image_folder, ["jpeg"]), progress=False).run()
    with ResultsStore.in_run_dir(tmp_path / "run", readonly=True) as store:
        assert len(store.results_frame()) == 3 * 2 * 2


def test_a_changed_metric_invalidates_only_its_own_values(tmp_path, image_folder, monkeypatch):
    from bench.metrics.base import Metric

    config = _config(tmp_path, image_folder, ["jpeg"])
    Runner(config, progress=False).run()
    with ResultsStore.in_run_dir(tmp_path / "run", readonly=True) as store:
        before = store.results_frame().set_index(["image", "qf", "metric"])["value"]
    original = Metric.fingerprint
    monkeypatch.setattr(Metric, "fingerprint", lambda self: "changed" if self.name == "ssim" else original(self))
    summary = Runner(_config(tmp_path, image_folder, ["jpeg"]), progress=False).run()
    assert summary.restored == 0 and summary.reused == 6
    with ResultsStore.in_run_dir(tmp_path / "run", readonly=True) as store:
        after = store.results_frame()
        current = ("FROM results r JOIN plan_metrics m ON m.metric = r.metric AND m.fingerprint = r.metric_fp "
                   "GROUP BY r.metric")
        created = dict(store.conn.execute(f"SELECT r.metric, max(created) {current}").fetchall())
        first = dict(store.conn.execute(f"SELECT r.metric, min(created) {current}").fetchall())
    assert len(after) == len(before) and created["ssim"] > created["psnr"] and first["ssim"] > created["psnr"]
