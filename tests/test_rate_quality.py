"""Rate-quality: Bjontegaard deltas against worked examples, and the report's rate-quality and robustness
sections."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reports.html import render_report
from reports.ratequality import bd_quality, bd_rate
from reports.robustness import ALL_QFS, drops

RATES = [1.0, 10.0, 100.0, 1000.0]  # log10: 0, 1, 2, 3


def test_bd_deltas_of_two_parallel_lines():
    # Q_A = 30 + 2 log10 R, Q_B = 31 + 2 log10 R: B is 1 better at every rate; at equal quality B needs
    # log10 R lower by 1/2 everywhere, i.e. 10^-0.5 - 1 = -68.4% rate.
    quality_a = [30 + 2 * math.log10(r) for r in RATES]
    quality_b = [31 + 2 * math.log10(r) for r in RATES]
    assert bd_quality(RATES, quality_a, RATES, quality_b) == pytest.approx(1.0)
    assert bd_rate(RATES, quality_a, RATES, quality_b) == pytest.approx(10 ** -0.5 - 1)
    assert bd_rate(RATES, quality_b, RATES, quality_a) == pytest.approx(10 ** 0.5 - 1)


def test_bd_quality_averages_a_growing_gap_over_the_shared_range():
    # Q_A = x^2, Q_B = x^2 + x for x = log10 R in [0, 3]: the gap x averages (1/3) * integral_0^3 x dx = 1.5.
    x = np.log10(RATES)
    assert bd_quality(RATES, x ** 2, RATES, x ** 2 + x) == pytest.approx(1.5)


def test_bd_deltas_use_only_the_overlap():
    # The same line sampled at rates 10..10^4 instead of 1..10^3: no difference where both exist.
    shifted = [r * 10 for r in RATES]
    line = lambda rates: [30 + 2 * math.log10(r) for r in rates]  # noqa: E731
    assert bd_quality(RATES, line(RATES), shifted, line(shifted)) == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(RATES, line(RATES), shifted, line(shifted)) == pytest.approx(0.0, abs=1e-9)
    # no overlap at all: no delta
    far = [r * 10_000 for r in RATES]
    assert math.isnan(bd_quality(RATES, line(RATES), far, line(far)))


def test_drops_are_paired_and_oriented_so_that_positive_is_worse():
    rows = []
    for image, base in (("a", 30.0), ("b", 32.0)):
        for qf in (10, 30):
            rows += [("d", image, "m", qf, "psnr", base + qf / 10, "clean"),
                     ("d", image, "m", qf, "psnr", base + qf / 10 - 1.5, "double"),
                     ("d", image, "m", qf, "lpips", 0.2, "clean"), ("d", image, "m", qf, "lpips", 0.25, "double")]
    frame = pd.DataFrame(rows, columns=["dataset", "image", "method", "qf", "metric", "value", "variant"])
    result = drops(frame, lambda metric: metric == "lpips").set_index(["metric", "qf"])
    assert result.loc[("psnr", ALL_QFS), "drop"] == pytest.approx(1.5) and result.loc[("psnr", ALL_QFS), "n"] == 4
    assert result.loc[("psnr", 10), "n"] == 2
    assert result.loc[("lpips", ALL_QFS), "drop"] == pytest.approx(0.05)


def test_report_shows_rate_quality_with_bd_deltas_and_robustness(tmp_path, report_run_builder):
    from bench.record import VariantRecord
    from bench.store import ResultsStore

    run_dir = report_run_builder(tmp_path / "run", datasets={"sample": ["a.png", "b.png", "c.png"]},
                                 methods={"jpeg": "jpeg", "fbcnn": "fbcnn"},
                                 metrics={"psnr": False, "lpips": True}, qfs=(5, 10, 20, 40), failures=False)
    with ResultsStore.in_run_dir(run_dir) as store:  # a variant block: every value 0.5 lower (psnr)
        record = store.record()
        record.variants.append(VariantRecord("pillow", "other", {"codec": "pillow"}))
        store.set_record(record)
        store.conn.execute("INSERT INTO results SELECT 'v-' || unit_id, metric, metric_fp, value - 0.5, created "
                           "FROM results")
        store.conn.execute("INSERT INTO plan_units SELECT 'pillow', dataset, image, method, qf, 'v-' || unit_id "
                           "FROM plan_units WHERE variant = 'clean'")
        store.conn.commit()
    html = render_report(run_dir).read_text()
    assert "Rate-quality" in html and "BD-quality fits quality = p(log10 bpp)" in html and "Limits:" in html
    bd = pd.read_csv(run_dir / "report" / "exports" / "bd_deltas.csv").set_index("metric")
    assert (bd["method"] == "fbcnn").all() and (bd["reference"] == "jpeg").all()
    assert bd.loc["psnr", "bd_quality_gain"] > 0.5 and bd.loc["lpips", "bd_quality_gain"] > 0  # fbcnn is better
    assert "Robustness to real-world JPEG" in html and "codec pillow" in html
    robust = pd.read_csv(run_dir / "report" / "exports" / "robustness.csv")
    pooled = robust[(robust["qf"] == "all") & (robust["metric"] == "psnr")]
    assert np.allclose(pooled["drop"], 0.5) and set(pooled["variant"]) == {"pillow"}
    assert (run_dir / "report" / "plots" / "rate_quality_sample.png").is_file()
    assert (run_dir / "report" / "plots" / "robustness_sample.png").is_file()
