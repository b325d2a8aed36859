"""The dataset registry: the embedded sample set, data-root sets with count checks, ad hoc folders."""

from __future__ import annotations

import pytest

from bench.datasets import DatasetError, folder_dataset, load_registry, resolve_dataset


def test_sample_set_ships_with_the_install():
    ds = resolve_dataset("sample")
    assert len(ds.files) == 4 and all(p.is_file() for p in ds.files)
    assert [i for i, _ in ds.items()] == ["astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png"]


def test_paper_sets_are_registered_with_their_counts():
    registry = load_registry()
    assert {k: registry[k]["count"] for k in ("live1", "urban100", "div2k-val")} == \
        {"live1": 29, "urban100": 100, "div2k-val": 100}


def test_missing_root_and_missing_folder_say_what_is_expected_where(tmp_path, monkeypatch):
    monkeypatch.delenv("CODIFF_BENCH_DATA", raising=False)
    with pytest.raises(DatasetError, match="CODIFF_BENCH_DATA"):
        resolve_dataset("live1")
    with pytest.raises(DatasetError, match=r"LIVE1 not found \(expected 29 images"):
        resolve_dataset("live1", root=tmp_path)


def test_incomplete_set_is_refused(tmp_path, image_folder):
    (tmp_path / "data").mkdir()
    image_folder.rename(tmp_path / "data" / "LIVE1")
    with pytest.raises(DatasetError, match="expected 29 images .* found 3"):
        resolve_dataset("live1", root=tmp_path / "data")


def test_complete_set_resolves_via_environment(tmp_path, monkeypatch, make_images):
    make_images(tmp_path / "Urban100", [(16, 16)] * 100)
    monkeypatch.setenv("CODIFF_BENCH_DATA", str(tmp_path))
    ds = resolve_dataset("urban100")
    assert ds.name == "urban100" and len(ds.files) == 100 and ds.root == tmp_path / "Urban100"


def test_unknown_dataset_lists_the_registered_ones():
    with pytest.raises(DatasetError, match="known: .*sample"):
        resolve_dataset("nope")


def test_folder_dataset(image_folder, tmp_path):
    ds = folder_dataset(image_folder)
    assert ds.name == "images" and len(ds.files) == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        folder_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="not found"):
        folder_dataset(tmp_path / "absent")
