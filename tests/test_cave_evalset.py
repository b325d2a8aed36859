"""scripts/make_cave_evalset.py: the `cave-eval` set's manifest, and its disjointness from the training set
(each build refuses the other's photos by selection and by hash)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.test_cave_trainset import _photo_package

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script loads
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scripts():
    trainset = _load("make_cave_trainset")
    evalset = _load("make_cave_evalset")
    yield trainset, evalset
    for name in ("make_cave_trainset", "make_cave_evalset"):
        sys.modules.pop(name, None)


def _fake_source(trainset, module: str, name: str = "fake", **kwargs):
    return trainset.Source(name, "python", "numpy", "images", module=module, min_factor=2.0, licence="CC0-1.0",
                           **kwargs)


def test_build_converts_every_photo_into_one_folder_with_a_manifest(scripts, tmp_path, monkeypatch):
    trainset, evalset = scripts
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    module = _photo_package(tmp_path / "pkgs", 4, seed=10)
    source = _fake_source(trainset, module, exclude=("drawing.jpg",))
    manifest = evalset.build(tmp_path / "eval", None, 768, None, sources=(source,), training=())
    files = manifest["files"]
    assert manifest["counts"] == {"photos": 4} and [f["split"] for f in files] == [""] * 4
    assert sorted(p.name for p in (tmp_path / "eval").glob("*.png")) == [f"photo{i}.png" for i in range(4)]
    for entry in files:
        assert hashlib.sha256((tmp_path / "eval" / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
        original = tmp_path / "pkgs" / module / "images" / entry["original"]
        assert hashlib.sha256(original.read_bytes()).hexdigest() == entry["source_sha256"]
        assert entry["licence"] == "CC0-1.0" and entry["size"] == [80, 60]
    assert manifest["sources"][0]["version"] and manifest["excluded"]["sample_images"]
    assert json.loads((tmp_path / "eval" / "manifest.json").read_text()) == manifest


def test_each_build_refuses_the_other_sets_photos_by_hash(scripts, tmp_path, monkeypatch):
    trainset, evalset = scripts
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    evaluated = _fake_source(trainset, _photo_package(tmp_path / "pkgs", 3, seed=11), exclude=("drawing.jpg",))
    evalset.build(tmp_path / "eval", None, 768, None, sources=(evaluated,), training=())
    # the training build refuses a photo of the evaluation set (the same bytes under another name)
    other = _photo_package(tmp_path / "pkgs", 3, seed=12)
    folder = tmp_path / "pkgs" / other / "images"
    (folder / "renamed.jpg").write_bytes((tmp_path / "pkgs" / evaluated.module / "images" / "photo1.jpg").read_bytes())
    training = _fake_source(trainset, other, name="train", exclude=("drawing.jpg",))
    with pytest.raises(SystemExit, match="refused: .*renamed.jpg has the bytes of `cave-eval` photo fake/photo1.jpg"):
        trainset.build(tmp_path / "train", None, 0, 768, sources=(training,),
                       eval_manifest=tmp_path / "eval" / "manifest.json")
    # and the evaluation build refuses a photo of the training set
    (folder / "renamed.jpg").unlink()
    trainset.build(tmp_path / "train", None, 0, 768, sources=(training,),
                   eval_manifest=tmp_path / "eval" / "manifest.json")
    (tmp_path / "pkgs" / evaluated.module / "images" / "copy.jpg").write_bytes((folder / "photo2.jpg").read_bytes())
    with pytest.raises(SystemExit, match="refused: .*copy.jpg has the bytes of training photo train/photo2.jpg"):
        evalset.build(tmp_path / "eval2", None, 768, tmp_path / "train" / "manifest.json", sources=(evaluated,),
                      training=())


def test_each_build_refuses_what_the_other_sets_sources_select(scripts, tmp_path, monkeypatch):
    trainset, evalset = scripts
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    source = _fake_source(trainset, _photo_package(tmp_path / "pkgs", 2, seed=13), exclude=("drawing.jpg",))
    selecting = trainset.Source("other", "deb", "numpy", "anywhere", include=("photo1.jpg",))
    with pytest.raises(SystemExit, match="refused: fake/photo1.jpg is a photo of other in the other set"):
        evalset.build(tmp_path / "eval", None, 768, None, sources=(source,), training=(selecting,))


def test_a_sample_image_stops_the_evaluation_build(scripts, tmp_path, monkeypatch):
    from bench.datasets import resolve_dataset

    trainset, evalset = scripts
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    module = _photo_package(tmp_path / "pkgs", 1, seed=14)
    (tmp_path / "pkgs" / module / "images" / "x.png").write_bytes(resolve_dataset("sample").files[1].read_bytes())
    source = _fake_source(trainset, module, include=("*.jpg", "*.png"), exclude=("drawing.jpg",))
    with pytest.raises(SystemExit, match="`sample` image"):
        evalset.build(tmp_path / "eval", None, 768, None, sources=(source,), training=())


def test_the_registered_sources_select_disjoint_photos(scripts):
    trainset, _ = scripts
    assert sum(len(s.include) for s in trainset.EVAL_SOURCES) == 26  # datasets.yaml's count for cave-eval
    for evaluated in trainset.EVAL_SOURCES:
        for training in trainset.SOURCES:
            if training.package != evaluated.package:
                continue
            assert not any(fnmatch(a, b) or fnmatch(b, a) for a in evaluated.include for b in training.include)
    eval_packages = {s.package for s in trainset.EVAL_SOURCES} - {"opencv-doc"}  # OpenCV: distinct photos each
    assert not eval_packages & {s.package for s in trainset.SOURCES}


def test_the_python_training_sources_are_installed_photos(scripts, tmp_path):
    trainset, _ = scripts
    for source in (s for s in trainset.SOURCES if s.kind == "python"):
        if importlib.util.find_spec(source.module) is None:
            pytest.skip(f"{source.module} is not installed")
        folder, record, licences = trainset.unpack(source, None, tmp_path)
        assert len(trainset.select(folder, source)) == len(source.include) or source.include == ("*.jpg",)
        assert record["version"] and all(licences.values())


def test_the_built_evaluation_set_matches_its_manifest():
    from bench.datasets import data_root, resolve_dataset

    root = data_root()
    if root is None or not (root / "cave-eval" / "manifest.json").is_file():
        pytest.skip("no cave-eval set under the data root (CODIFF_BENCH_DATA): build it with "
                    "scripts/make_cave_evalset.py --out $CODIFF_BENCH_DATA/cave-eval")
    manifest = json.loads((root / "cave-eval" / "manifest.json").read_text())
    dataset = resolve_dataset("cave-eval", root=root)  # checks the count
    assert sorted(dataset.image_id(p) for p in dataset.files) == sorted(f["file"] for f in manifest["files"])
    for entry in manifest["files"]:
        assert hashlib.sha256((dataset.root / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
        assert entry["licence"] not in ("", "unknown")
    train_manifest = root / "cave-train" / "manifest.json"
    if train_manifest.is_file():
        trained = json.loads(train_manifest.read_text())["files"]
        assert not {h for f in trained for h in (f["sha256"], f["source_sha256"])} & \
            {h for f in manifest["files"] for h in (f["sha256"], f["source_sha256"])}
    assert os.path.basename(dataset.root) == "cave-eval"
