"""scripts/analyse_cave_seeds.py: intervals over seeds and photos, and the model card section it rewrites."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def analysis():
    spec = importlib.util.spec_from_file_location("analyse_cave_seeds", REPO / "scripts" / "analyse_cave_seeds.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _table(offset: float, seeds=(0, 1, 2), photos=8, spread=0.1):
    rng = np.random.default_rng(int(offset * 100))
    return {s: {f"p{i}": offset + i * 0.01 + spread * rng.standard_normal() for i in range(photos)} for s in seeds}


def test_bootstrap_interval_holds_the_mean_and_narrows_with_less_noise(analysis):
    rng = np.random.default_rng(0)
    noisy, quiet = analysis.bootstrap(_table(1.0), rng), analysis.bootstrap(_table(1.0, spread=0.001), rng)
    for cell in (noisy, quiet):
        assert cell["low"] <= cell["mean"] <= cell["high"] and cell["seeds"] == 3 and cell["photos"] == 8
    assert quiet["high"] - quiet["low"] < noisy["high"] - noisy["low"]


def test_a_paired_difference_excludes_zero_only_when_there_is_one(analysis):
    rng = np.random.default_rng(1)
    same = analysis.bootstrap(_table(1.0), rng, minus=_table(1.0, spread=0.1))
    apart = analysis.bootstrap(_table(2.0, spread=0.01), rng, minus=_table(1.0, spread=0.01))
    assert same["low"] < 0 < same["high"]
    assert apart["low"] > 0.9 and abs(apart["mean"] - 1.0) < 0.05


def test_seed_interval_is_a_t_interval(analysis):
    cell = analysis.seed_interval([0.1, 0.2, 0.3])
    assert cell["mean"] == pytest.approx(0.2) and cell["high"] - 0.2 == pytest.approx(4.303 * 0.1 / 3 ** 0.5, rel=1e-3)
    assert analysis.seed_interval([0.5])["low"] == 0.5


def test_the_card_section_is_written_once_and_replaced(analysis, tmp_path):
    cell = {"mean": 1.0, "low": 0.5, "high": 1.5}
    table = {"runs": {"dual": [0], "explicit": [0], "implicit": []}, "photos": 26, "patches_per_photo": 4,
             "metrics": {"dual": {"qf_mae_seen": cell}, "explicit": {"qf_mae_seen": cell}, "implicit": {}},
             "differences": {"dual-explicit": {"qf_mae_seen": cell}}}
    card = tmp_path / "CARD.md"
    card.write_text("# Card\n\ntext\n")
    analysis.write_card(card, analysis.card_section(table, "cmd"))
    first = card.read_text()
    assert first.startswith("# Card\n\ntext\n\n" + analysis.BEGIN) and "| QF head MAE, seen (10-90) | 1.00 [0.50, 1.50]" in first
    table["metrics"]["dual"]["qf_mae_seen"] = {"mean": 2.0, "low": 1.0, "high": 3.0}
    analysis.write_card(card, analysis.card_section(table, "cmd"))
    second = card.read_text()
    assert second.count(analysis.BEGIN) == 1 and "2.00 [1.00, 3.00]" in second and second.startswith("# Card\n\ntext\n")
