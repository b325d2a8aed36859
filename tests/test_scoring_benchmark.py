"""`codiff-bench scoring-benchmark` times every part of a unit with the run engine's own functions."""

from __future__ import annotations

import json

import pytest

from bench.cli import main


def test_reports_each_part_and_the_speedup_of_the_cpu_metrics(tmp_path, capsys):
    path = tmp_path / "figures.json"
    assert main(["scoring-benchmark", "--units", "2", "--size", "48", "--compare", "--json", str(path)]) == 0
    figures = json.loads(path.read_text())
    parts = ["read", "restore", "write", "store"] + [f"metric {n}{r}" for n in ("psnr", "ssim", "psnr_b")
                                                     for r in ("", " (reference)")]
    assert set(figures["median_ms"]) == set(parts)
    assert all(ms > 0 for ms in figures["median_ms"].values())
    assert figures["harness_ms"] == pytest.approx(sum(figures["median_ms"][p] for p in ("read", "write", "store")))
    assert set(figures["speedup"]) == {"psnr", "ssim", "psnr_b"}
    assert figures["megapixels"] == pytest.approx(48 * 48 / 1e6)
    printed = capsys.readouterr().out
    assert "harness (read + write + store)" in printed and "speed-up of ssim" in printed


@pytest.mark.parametrize(("argv", "message"), [
    (["--metrics", "psnr,ssimm"], "unknown metric 'ssimm'"),
    (["--method", "nosuch"], "unknown method 'nosuch'"),
    (["--size", "4000"], "smaller than --size 4000"),
    (["--image", "missing.png"], "missing.png"),
])
def test_user_mistakes_are_one_message_and_exit_2(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["scoring-benchmark", "--units", "1", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
