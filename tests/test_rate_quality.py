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
INTERPOLATIONS = ("pchip", "cubic")


def _polynomial_gap(xa, ya, xb, yb):
    """The cubic of VCEG-M33 as this project computed it before using the bjontegaard package: least-squares
    polynomials of degree min(3, n - 1), integrated over the overlap of the x ranges."""
    low, high = max(min(xa), min(xb)), min(max(xa), max(xb))
    ia = np.polynomial.Polynomial.fit(xa, ya, min(3, len(xa) - 1)).integ()
    ib = np.polynomial.Polynomial.fit(xb, yb, min(3, len(xb) - 1)).integ()
    return (ib(high) - ib(low) - ia(high) + ia(low)) / (high - low)


@pytest.mark.parametrize("seed", range(20))
def test_the_library_cubic_matches_the_hand_written_cubic_on_the_same_curves(seed):
    # rate-quality curves as runs make them: 4 to 7 QFs, bpp rising with QF, quality rising with bpp
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(2):
        n = int(rng.integers(4, 8))
        bpp = np.sort(rng.uniform(0.1, 3.0, n))
        quality = 24 + 4 * np.log2(bpp) + np.cumsum(rng.uniform(0.0, 0.4, n))
        curves.append((bpp, quality))
    (ra, qa), (rb, qb) = curves
    expected_quality = _polynomial_gap(np.log10(ra), qa, np.log10(rb), qb)
    expected_rate = 10 ** _polynomial_gap(qa, np.log10(ra), qb, np.log10(rb)) - 1
    assert bd_quality(ra, qa, rb, qb, "cubic") == pytest.approx(expected_quality, rel=1e-9, abs=1e-12)
    assert bd_rate(ra, qa, rb, qb, "cubic") == pytest.approx(expected_rate, rel=1e-9, abs=1e-12)
    assert bd_quality(ra, qa, rb, qb) == bd_quality(ra, qa, rb, qb, "pchip")  # the default


def test_pchip_follows_the_points_where_the_cubic_overshoots():
    # B: quality 0, 1, 1 at log10 rate 0, 1, 3; A: 0 everywhere. pchip is 0 -> 1 on [0, 1] (end slope 4/3, inner
    # slope 0: integral 1/2 + (4/3)/12 = 11/18) then flat at 1 on [1, 3]: mean gap (11/18 + 2) / 3 = 47/54.
    # The fit below four points, y = -x^2/3 + 4x/3, climbs to 4/3 between the last two points: mean gap 3/3 = 1.
    rates, zeros, quality = [1.0, 10.0, 1000.0], [0.0, 0.0, 0.0], [0.0, 1.0, 1.0]
    assert bd_quality(rates, zeros, rates, quality) == pytest.approx(47 / 54)
    assert bd_quality(rates, zeros, rates, quality, "cubic") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="choose from pchip, cubic"):
        bd_quality(rates, zeros, rates, quality, "akima")
    # a curve that repeats a rate has no interpolant: no delta
    assert math.isnan(bd_quality([1.0, 1.0, 10.0], zeros, rates, quality))


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_bd_deltas_of_two_parallel_lines(interpolation):
    # Q_A = 30 + 2 log10 R, Q_B = 31 + 2 log10 R: B is 1 better at every rate; at equal quality B needs
    # log10 R lower by 1/2 everywhere, i.e. 10^-0.5 - 1 = -68.4% rate.
    quality_a = [30 + 2 * math.log10(r) for r in RATES]
    quality_b = [31 + 2 * math.log10(r) for r in RATES]
    assert bd_quality(RATES, quality_a, RATES, quality_b, interpolation) == pytest.approx(1.0)
    assert bd_rate(RATES, quality_a, RATES, quality_b, interpolation) == pytest.approx(10 ** -0.5 - 1)
    assert bd_rate(RATES, quality_b, RATES, quality_a, interpolation) == pytest.approx(10 ** 0.5 - 1)
    # the order of the points does not matter
    assert bd_quality(RATES[::-1], quality_a[::-1], RATES, quality_b, interpolation) == pytest.approx(1.0)


@pytest.mark.parametrize("interpolation", INTERPOLATIONS)
def test_bd_quality_averages_a_growing_gap_over_the_shared_range(interpolation):
    # Q_A = x^2, Q_B = x^2 + x for x = log10 R in [0, 3]: the gap x averages (1/3) * integral_0^3 x dx = 1.5.
    x = np.log10(RATES)
    assert bd_quality(RATES, x ** 2, RATES, x ** 2 + x, interpolation) == pytest.approx(1.5)


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
    assert "Rate-quality" in html and "the bjontegaard package" in html and "Limits:" in html
    bd = pd.read_csv(run_dir / "report" / "exports" / "bd_deltas.csv").set_index("metric")
    assert (bd["method"] == "fbcnn").all() and (bd["reference"] == "jpeg").all()
    assert bd.loc["psnr", "bd_quality_gain"] > 0.5 and bd.loc["lpips", "bd_quality_gain"] > 0  # fbcnn is better
    assert (bd["interpolation"] == "pchip").all() and bd.loc["psnr", "bd_quality_gain_cubic"] > 0.5
    assert "BD-quality gain (pchip)" in html and "BD-rate change % (cubic, VCEG-M33)" in html
    assert "Robustness to real-world JPEG" in html and "codec pillow" in html
    robust = pd.read_csv(run_dir / "report" / "exports" / "robustness.csv")
    pooled = robust[(robust["qf"] == "all") & (robust["metric"] == "psnr")]
    assert np.allclose(pooled["drop"], 0.5) and set(pooled["variant"]) == {"pillow"}
    assert (run_dir / "report" / "plots" / "rate_quality_sample.png").is_file()
    assert (run_dir / "report" / "plots" / "robustness_sample.png").is_file()
