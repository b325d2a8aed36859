"""Protocol variants: degradation steps, their files made as by hand, one block of results per variant."""

from __future__ import annotations

import hashlib
import json
import sys

import cv2
import numpy as np
import pytest

from bench.config import ConfigError, RunConfig
from bench.core.protocol import JpegProtocol, decode_jpeg
from bench.engine import Planner, Runner
from bench.store import ResultsStore

VARIANTS = [{"name": "double-90-shift", "before": [{"jpeg": 90}, {"shift": [3, 5]}]},
            {"name": "chroma-444", "subsampling": "444"},
            {"name": "resize-half", "before": [{"resize": 0.5}]}]


def _config(tmp_path, folder, variants, **kw) -> RunConfig:
    return RunConfig.from_dict(dict(images=[str(folder)], datasets=[], qf=[10, 30], methods=["jpeg"],
                                    metrics=["psnr"], run_dir=str(tmp_path / "run"), report=False,
                                    variants=variants, **kw))


def _opencv(rgb: np.ndarray, quality: int, factor: int = cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420) -> bytes:
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]),
                           [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, factor])
    assert ok
    return buf.tobytes()


def test_double_compression_with_a_shifted_grid_is_byte_identical_to_doing_it_by_hand(tmp_path, image_folder):
    Runner(_config(tmp_path, image_folder, VARIANTS[:1]), progress=False).run()
    with ResultsStore.in_run_dir(tmp_path / "run", readonly=True) as store:
        lq = store.lq_frame(variants=True)
        images = store.images_frame(variants=True)
    row = lq[(lq["variant"] == "double-90-shift") & (lq["qf"] == 30) & (lq["image"] == "img00.png")].iloc[0]
    hq = cv2.imread(str(image_folder / "img00.png"))[:, :, ::-1]  # 48 x 64, a multiple of 8 already
    first = cv2.imdecode(np.frombuffer(_opencv(hq, 90), np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    shifted = first[5:, 3:]
    shifted = shifted[: shifted.shape[0] // 8 * 8, : shifted.shape[1] // 8 * 8]
    assert (tmp_path / "run" / row["path"]).read_bytes() == _opencv(shifted, 30)
    ref = images[(images["variant"] == "double-90-shift") & (images["image"] == "img00.png")].iloc[0]
    assert (ref["width"], ref["height"]) == (56, 40)  # the reference is shifted and cropped alike
    hq_ref = cv2.imread(str(tmp_path / "run" / ref["hq_path"]))[:, :, ::-1]
    assert np.array_equal(hq_ref, hq[5:45, 3:59])


def test_each_variant_is_its_own_block_and_the_default_frames_keep_the_protocol(tmp_path, image_folder):
    summary = Runner(_config(tmp_path, image_folder, VARIANTS), progress=False).run()
    assert summary.exit_status == 0 and summary.restored == 4 * 3 * 2
    with ResultsStore.in_run_dir(tmp_path / "run", readonly=True) as store:
        clean, every = store.results_frame(), store.results_frame(variants=True)
        keys = store.variants()
        lq = store.lq_frame(variants=True)
    assert list(keys) == ["clean", "double-90-shift", "chroma-444", "resize-half"] and len(set(keys.values())) == 4
    assert set(clean.columns) == {"dataset", "image", "method", "qf", "metric", "value"} and len(clean) == 3 * 2
    assert every.groupby("variant").size().to_dict() == {label: 6 for label in keys}
    merged = every.pivot_table(index=["image", "qf"], columns="variant", values="value")
    assert not np.allclose(merged["clean"], merged["chroma-444"])  # another subsampling, other numbers
    sizes = lq.groupby("variant")["bytes"].sum()
    assert sizes["chroma-444"] > sizes["clean"] > sizes["resize-half"]


def test_a_protocol_without_steps_keeps_its_key():
    values = JpegProtocol(codec="pillow").to_dict()
    values.pop("quality"), values.pop("before")
    legacy = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]
    assert JpegProtocol(codec="pillow").key() == legacy
    assert JpegProtocol(before=({"jpeg": 90},)).key() != legacy
    stepped = JpegProtocol.from_dict({"before": [{"jpeg": {"quality": 90, "subsampling": "4:4:4"}}, {"shift": 4}]})
    assert JpegProtocol.from_dict({k: v for k, v in stepped.to_dict().items()}) == stepped


@pytest.mark.parametrize("variants, words", [
    ([{"name": "a", "before": [{"blur": 2}]}], "unknown degradation 'blur'"),
    ([{"name": "a", "before": [{"jpeg": 0}]}], "within 1..100"),
    ([{"name": "a", "before": [{"shift": [1, 2, 3]}]}], "at most 2 values"),
    ([{"name": "a", "subsampling": "444"}, {"name": "a", "codec": "pillow"}], "differ in label"),
    ([{"name": "a", "subsampling": "444"}, {"name": "b", "subsampling": "4:4:4"}], "differ in protocol"),
    ([{"name": "clean", "codec": "pillow"}], "differ in label"),
    ([{"before": [{"jpeg": 90}]}], "with a `name`"),
    ([{"name": "same"}], "changes nothing"),
])
def test_variant_mistakes_are_config_errors(tmp_path, image_folder, variants, words):
    with pytest.raises(ConfigError, match=words):
        _config(tmp_path, image_folder, variants).validate()
    assert not (tmp_path / "run").exists()


def test_a_variant_whose_encoder_is_not_installed_is_skipped_with_the_reason(tmp_path, image_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "simplejpeg", None)  # import fails as when the package is absent
    summary = Runner(_config(tmp_path, image_folder, [{"name": "turbo", "codec": "simplejpeg"}]),
                     progress=False).run()
    assert summary.exit_status == 0
    assert [(s["kind"], s["name"]) for s in summary.skipped] == [("variant", "turbo")]
    assert "pip install simplejpeg" in summary.skipped[0]["reason"]
    with pytest.raises(Exception, match="pip install simplejpeg"):
        Planner(_config(tmp_path, image_folder, [{"name": "turbo", "codec": "simplejpeg"}], strict=True)).plan()


def test_simplejpeg_codec_writes_what_simplejpeg_writes():
    simplejpeg = pytest.importorskip("simplejpeg")
    rgb = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    data = JpegProtocol(codec="simplejpeg", subsampling="422").encode(rgb, 40)
    assert data == simplejpeg.encode_jpeg(rgb, quality=40, colorspace="RGB", colorsubsampling="422")
    assert decode_jpeg(data).shape == rgb.shape


def test_the_robustness_config_names_distinct_variants():
    from pathlib import Path

    config = RunConfig.load(Path(__file__).resolve().parents[1] / "configs" / "robustness.yaml")
    config.validate()
    variants = config.protocol_variants()
    assert variants[0].label == "clean" and len(variants) == 9 and len({v.key for v in variants}) == 9
    assert len(config.qf) >= 4  # a cubic rate-quality fit per method
