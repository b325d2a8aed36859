"""`codiff-bench compare`: paired differences across run folders, corrected tests, provenance, exit status."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from bench.cli import main
from bench.config import RunConfig
from bench.engine import Runner
from bench.store import ResultsStore
from methods.base import Method
from methods.registry import METHODS
from reports.runcompare import adjust, compare_runs, load_runs


@dataclass(frozen=True)
class PoolOptions:
    size: int = 3


class PoolForTests(Method):
    """A toy restorer: a box blur of the configured size."""

    config_class = PoolOptions

    def restore(self, request):
        k = self.opts.size
        return torch.nn.functional.avg_pool2d(request.lq, k, stride=1, padding=k // 2, count_include_pad=False)


def _run(tmp_path, folder, name: str, size_b: int) -> str:
    methods = [{"name": "a", "method": "test-pool"}, {"name": "b", "method": "test-pool", "size": size_b}]
    config = RunConfig.from_dict(dict(images=[str(folder)], datasets=[], qf=[10, 30], methods=methods,
                                      metrics=["psnr", "ssim"], run_dir=str(tmp_path / name), report=False))
    assert Runner(config, progress=False).run().exit_status == 0
    return str(tmp_path / name)


def test_two_runs_that_differ_in_one_method_differ_there_and_nowhere_else(tmp_path, image_folder):
    METHODS.register("test-pool", PoolForTests)
    first, second = _run(tmp_path, image_folder, "one", 3), _run(tmp_path, image_folder, "two", 5)
    result = compare_runs(load_runs([first, second]))
    rows = result.rows.set_index(["method", "qf", "metric"])
    assert len(result.rows) == 2 * 2 * 2 and (result.rows["n"] == 3).all()
    same = rows.loc["a"]
    assert (same["difference"] == 0).all() and (same["ties"] == 3).all() and (same["p_wilcoxon"] == 1).all()
    changed = rows.loc["b"]
    assert (changed["difference"] != 0).all() and (changed["ties"] == 0).all()
    means = {}
    for name, folder in (("first", first), ("second", second)):
        with ResultsStore.in_run_dir(folder, readonly=True) as store:
            frame = store.results_frame()
        means[name] = frame[frame["method"] == "b"].groupby(["qf", "metric"])["value"].mean()
    assert np.allclose(changed["difference"].sort_index(), (means["second"] - means["first"]).sort_index())
    differs = {r["key"] for r in result.provenance if r["differs"]}
    assert differs == {"config.methods.b.size", "method.b.fingerprint"}


@pytest.fixture
def synthetic(run_record_builder):
    return lambda run_dir, shift, images=12: _synthetic(run_record_builder, run_dir, shift, images)


def _synthetic(synthetic_record, run_dir, shift: float, images: int = 12):
    """A stored run: method m scores psnr 30 + noise (the same noise in every run) plus `shift`."""
    noise = np.random.default_rng(0).normal(0, 1, images)
    with ResultsStore.in_run_dir(run_dir) as store:
        store.set_record(synthetic_record(["d"], [("m", "m")], {"psnr": False}, [10], "p",
                                          manifest={"git": {"commit": "abc"}, "versions": {"torch": "2"}}))
        units = [("clean", "d", f"img{i}.png", "m", 10, f"u{i}") for i in range(images)]
        for i in range(images):
            store.put_results(f"u{i}", {"psnr": 30 + noise[i] + shift}, {"psnr": "mfp-psnr"})
        store.set_plan([], units, {"psnr": "mfp-psnr"})
    return str(run_dir)


def test_fail_if_worse_exits_3_on_a_significant_regression_beyond_the_tolerance(tmp_path, capsys, synthetic):
    base, worse = synthetic(tmp_path / "base", 0.0), synthetic(tmp_path / "worse", -0.5)
    out = str(tmp_path / "cmp")
    assert main(["compare", base, worse, "--out", out, "--fail-if-worse", "psnr:0.1"]) == 3
    assert "significant regression" in capsys.readouterr().err
    assert main(["compare", base, worse, "--out", out, "--fail-if-worse", "psnr:1"]) == 0  # within tolerance
    assert main(["compare", worse, base, "--out", out, "--fail-if-worse", "psnr:0.1"]) == 0  # better, not worse
    assert main(["compare", base, base, "--out", out, "--fail-if-worse", "psnr:0", "--correction", "bh"]) == 0
    page = (tmp_path / "cmp" / "index.html").read_text()
    assert "Benjamini-Hochberg" in page and (tmp_path / "cmp" / "compare.csv").is_file()


@pytest.mark.parametrize("argv, words", [
    (["compare", "{base}", "{missing}"], "is not a run folder"),
    (["compare", "{base}"], "at least two run folders"),
    (["compare", "{base}", "{base}", "--fail-if-worse", "psnr"], "METRIC:TOLERANCE"),
    (["compare", "{base}", "{base}", "--fail-if-worse", "psnr:-1"], "METRIC:TOLERANCE"),
    (["compare", "{base}", "{base}", "--fail-if-worse", "lpips:0.1"], "did not score"),
])
def test_user_mistakes_are_exit_2_with_a_message_and_write_nothing(tmp_path, capsys, argv, words, synthetic):
    base = synthetic(tmp_path / "base", 0.0, images=3)
    out = tmp_path / "cmp"
    args = [a.format(base=base, missing=tmp_path / "nowhere") for a in argv] + ["--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not out.exists()


def test_holm_and_benjamini_hochberg_adjustments_by_hand():
    p = np.array([0.01, 0.04, 0.03, np.nan])
    # Holm: sorted 0.01, 0.03, 0.04 times 3, 2, 1 -> 0.03, 0.06, max(0.06, 0.04) = 0.06
    assert np.allclose(adjust(p, "holm")[:3], [0.03, 0.06, 0.06]) and np.isnan(adjust(p, "holm")[3])
    # BH: 0.04 * 3/3 = 0.04, 0.03 * 3/2 = 0.045 -> min(0.045, 0.04) = 0.04, 0.01 * 3 = 0.03
    assert np.allclose(adjust(p, "bh")[:3], [0.03, 0.04, 0.04])
