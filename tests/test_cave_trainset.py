"""scripts/make_cave_trainset.py on tiny synthetic sources: split by photo, licences, manifest, the `sample`
images kept out."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: wallpapers

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: 16.04/bridge_by_someone.jpg
       16.04/dragonfly.jpg
Copyright: 2018 Someone Else
License: CC-BY-SA-4.0

Files: debian/*
 AUTHORS
Copyright: 2022 A Packager
License: Expat

License: Expat
 Permission is hereby granted...
"""


@pytest.fixture(scope="module")
def trainset():
    spec = importlib.util.spec_from_file_location("make_cave_trainset", REPO / "scripts" / "make_cave_trainset.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script loads
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_licences_follow_the_copyright_file(trainset):
    stanzas = trainset.copyright_licences(COPYRIGHT)
    assert [s[1] for s in stanzas] == ["GPL-2+", "CC-BY-SA-4.0", "Expat"]
    assert stanzas[1][0] == ["16.04/bridge_by_someone.jpg", "16.04/dragonfly.jpg"]
    assert trainset.licence_of("dragonfly.jpg", stanzas) == "CC-BY-SA-4.0"  # by base name; `debian/*` ignored
    assert trainset.licence_of("other.jpg", stanzas) == "GPL-2+"


def test_split_is_by_photo_and_depends_only_on_names_and_seed(trainset):
    names = [f"p{i}.jpg" for i in range(10)]
    train, held = trainset.split_names(names, 2, seed=0)
    assert len(held) == 2 and not set(train) & set(held) and sorted(train + held) == sorted(names)
    assert trainset.split_names(list(reversed(names)), 2, seed=0) == (train, held)
    assert trainset.split_names(names, 2, seed=1) != (train, held)
    assert [trainset.heldout_count(n) for n in (1, 2, 5, 12, 14)] == [0, 1, 1, 2, 3]


def _photo_package(root: Path, count: int, seed: int = 0) -> str:
    """An importable package `fakephotos_<seed>` with `count` JPEG photos under images/."""
    import cv2

    name = f"fakephotos_{seed}"
    folder = root / name / "images"
    folder.mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    rng = np.random.default_rng(seed)
    for i in range(count):
        base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (160, 120),
                          interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"photo{i}.jpg"), base)
    (folder / "drawing.jpg").write_bytes((folder / "photo0.jpg").read_bytes())
    importlib.invalidate_caches()
    return name


def test_build_writes_a_disjoint_split_and_a_manifest_with_hashes(trainset, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    module = _photo_package(tmp_path / "pkgs", 6)
    source = trainset.Source("fake", "python", "numpy", "images", exclude=("drawing.jpg",), module=module,
                             min_factor=2.0, licence="CC0-1.0")
    manifest = trainset.build(tmp_path / "out", None, seed=0, max_side=768, sources=(source,))
    files = manifest["files"]
    assert manifest["counts"] == {"train": 5, "heldout": 1} and len(files) == 6
    assert "drawing.jpg" not in {f["original"] for f in files}
    for split in ("train", "heldout"):
        on_disk = sorted(p.name for p in (tmp_path / "out" / split).glob("*.png"))
        assert on_disk == sorted(Path(f["file"]).name for f in files if f["split"] == split)
    assert not {f["original"] for f in files if f["split"] == "train"} & \
        {f["original"] for f in files if f["split"] == "heldout"}
    for entry in files:
        assert hashlib.sha256((tmp_path / "out" / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
        assert entry["size"] == [80, 60] and entry["factor"] == 2.0 and entry["licence"] == "CC0-1.0"
    assert manifest["sources"][0]["version"] and manifest["excluded_sample_images"]
    assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == manifest


def test_a_sample_evaluation_image_stops_the_build(trainset, tmp_path, monkeypatch):
    from bench.datasets import resolve_dataset

    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    module = _photo_package(tmp_path / "pkgs", 2, seed=1)
    sample = resolve_dataset("sample").files[0]
    (tmp_path / "pkgs" / module / "images" / "copy.jpg").write_bytes(sample.read_bytes())
    source = trainset.Source("fake", "python", "numpy", "images", module=module, licence="CC0-1.0")
    with pytest.raises(SystemExit, match="sample"):
        trainset.build(tmp_path / "out", None, seed=0, max_side=768, sources=(source,))
