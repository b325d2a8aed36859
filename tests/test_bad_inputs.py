"""A corpus of awkward and broken input files: each is either converted as documented (and the conversion
recorded and shown) or a clear error naming the file and the reason; the run goes on, every other image's
results are intact, and the exit status and the summary say what failed."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from bench.cli import main
from bench.config import RunConfig
from bench.core.imageio import ImageError, read_rgb8
from bench.core.protocol import JpegProtocol, ProtocolError
from bench.store import ResultsStore

MAX_PIXELS = 5000  # the run's limit here; the corpus's "large" image exceeds it, every other image is below

# name -> ("ok", notes the images table must record), ("error", words the error must contain) or ("skipped",
# words of the reason it is not an image of the set at all)
EXPECTED: dict[str, tuple[str, list[str]]] = {
    "empty.png": ("error", ["empty file"]),
    "truncated.jpg": ("error", ["truncated"]),
    "corrupt-header-chunk.png": ("error", ["not a readable image"]),
    "corrupt-data-chunk.png": ("error", ["corrupt"]),
    "text-file.png": ("error", ["not a readable image"]),
    "gray.png": ("ok", ["grayscale expanded to RGB"]),
    "palette.png": ("ok", ["palette converted to RGB"]),
    "rgba.png": ("ok", ["alpha channel dropped"]),
    "gray16.png": ("ok", ["reduced to 8 bits", "grayscale expanded to RGB"]),
    "rgb16.png": ("ok", ["16 bits per channel reduced to 8"]),
    "cmyk.jpg": ("ok", ["CMYK converted to RGB"]),
    "exif-rotated.jpg": ("ok", ["EXIF orientation 6 applied"]),
    "tiny-1x1.png": ("error", ["1x1", "smaller than one 8x8 block"]),
    "tiny-7x13.png": ("error", ["7x13", "smaller than one 8x8 block"]),
    "odd-31x33.png": ("ok", ["HQ lanczos from 31x33 to 24x32"]),
    "large-100x60.png": ("error", ["100x60", f"exceeds the limit of {MAX_PIXELS} pixels"]),
    "header-claims-400MP.png": ("error", ["20000x20000", "exceeds the limit"]),
    "with space.png": ("ok", []),
    "ünïcødé 画像.png": ("ok", []),
    "$(touch PWNED); `touch PWNED2` | rm -rf x & 'q' \"d\".png": ("ok", []),
    "-n.png": ("ok", []),
    "new\nline\x1b[31m.png": ("ok", []),
    "..png": ("skipped", ["hidden file"]),
    "._same.png": ("skipped", ["AppleDouble"]),
    "animated.gif": ("error", ["animated image (2 frames)"]),
    "same.png": ("ok", []),
    "same.jpg": ("ok", []),
}
SIZE_RULE = {"tiny-1x1.png", "tiny-7x13.png", "odd-31x33.png"}  # decided by the protocol, after reading
NOT_UTF8 = b"latin1-caf\xe9.png"  # a file name that is not valid UTF-8 (Linux allows it)


def _rgb(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _encoded(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def build_corpus(folder: Path) -> dict[str, tuple[str, list[str]]]:
    """Write the corpus into `folder`; return what is expected of each file (see EXPECTED)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rgb = _rgb(48, 64, 0)
    png = _encoded(Image.fromarray(rgb), "PNG")
    jpeg = _encoded(Image.fromarray(rgb), "JPEG", quality=90)
    files = {
        "empty.png": b"",
        "truncated.jpg": jpeg[: len(jpeg) * 2 // 3],
        "text-file.png": b"this is a text file, not an image\n",
        "gray.png": _encoded(Image.fromarray(rgb[:, :, 1]), "PNG"),
        "palette.png": _encoded(Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16), "PNG"),
        "rgba.png": _encoded(Image.fromarray(np.dstack([rgb, rgb[:, :, :1]])), "PNG"),
        "gray16.png": _encoded(Image.fromarray((rgb[:, :, 0].astype(np.uint16) * 257)), "PNG"),
        "rgb16.png": cv2.imencode(".png", rgb[:, :, ::-1].astype(np.uint16) * 257)[1].tobytes(),
        "cmyk.jpg": _encoded(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95),
        "tiny-1x1.png": _encoded(Image.fromarray(_rgb(1, 1, 1)), "PNG"),
        "tiny-7x13.png": _encoded(Image.fromarray(_rgb(13, 7, 2)), "PNG"),
        "odd-31x33.png": _encoded(Image.fromarray(_rgb(33, 31, 3)), "PNG"),
        "large-100x60.png": _encoded(Image.fromarray(_rgb(60, 100, 4)), "PNG"),
        # A valid header for 20000 x 20000 RGB and a few bytes of data: rejected before any decoding.
        "header-claims-400MP.png": (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000,
                                    8, 2, 0, 0, 0)) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
                                    + _png_chunk(b"IEND", b"")),
        "same.png": png,
        "same.jpg": jpeg,
        "animated.gif": _encoded(Image.fromarray(rgb), "GIF", save_all=True,
                                 append_images=[Image.fromarray(255 - rgb)], duration=100),
    }
    header = bytearray(png)
    header[16] ^= 0xFF  # the IHDR width, now disagreeing with the chunk's CRC
    files["corrupt-header-chunk.png"] = bytes(header)
    data = bytearray(png)
    start = data.find(b"IDAT") + 8
    data[start:start + 64] = bytes(64)  # compressed pixel data overwritten
    files["corrupt-data-chunk.png"] = bytes(data)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 64 wide and 48 high, to be shown rotated by 90 degrees
    files["exif-rotated.jpg"] = _encoded(Image.fromarray(rgb), "JPEG", quality=95, exif=exif.tobytes())
    for index, name in enumerate(n for n in EXPECTED if n not in files):
        files[name] = _encoded(Image.fromarray(_rgb(40, 56, 10 + index)), "PNG")
    for name, content in files.items():
        (folder / name).write_bytes(content)
    expected = dict(EXPECTED)
    if sys.platform.startswith("linux"):
        with open(os.path.join(os.fsencode(folder), NOT_UTF8), "wb") as fh:
            fh.write(_encoded(Image.fromarray(_rgb(40, 56, 99)), "PNG"))
        expected[os.fsdecode(NOT_UTF8)] = ("ok", [])
    return expected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict[str, tuple[str, list[str]]]]:
    folder = tmp_path_factory.mktemp("bad-inputs") / "corpus"
    return folder, build_corpus(folder)


def _display_id(name: str) -> str:
    """The image id the run records for a file name (bytes that are not UTF-8 as \\xNN escapes)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def test_each_file_is_read_or_refused_with_its_reason(corpus):
    folder, expected = corpus
    for name, (outcome, words) in expected.items():
        path = folder / name
        if name in SIZE_RULE or outcome == "skipped":
            continue
        if outcome == "error":
            with pytest.raises(ImageError) as info:
                read_rgb8(path, max_pixels=MAX_PIXELS)
            assert str(path) in str(info.value) and all(w in str(info.value) for w in words), name
        else:
            loaded = read_rgb8(path, max_pixels=MAX_PIXELS)
            assert loaded.rgb.dtype == np.uint8 and loaded.rgb.ndim == 3 and loaded.rgb.shape[2] == 3
            assert all(any(w in note for note in loaded.notes) for w in words), (name, loaded.notes)
    assert read_rgb8(folder / "exif-rotated.jpg").rgb.shape[:2] == (64, 48)
    assert read_rgb8(folder / "rgb16.png").rgb.tolist() == read_rgb8(folder / "same.png").rgb.tolist()


def test_sizes_follow_the_multiple_of_8_rule(corpus):
    folder, expected = corpus
    protocol = JpegProtocol()
    for name in ("tiny-1x1.png", "tiny-7x13.png"):
        with pytest.raises(ProtocolError) as info:
            protocol.prepare_hq(read_rgb8(folder / name).rgb)
        assert all(w in str(info.value) for w in expected[name][1])
    assert protocol.prepare_hq(read_rgb8(folder / "odd-31x33.png").rgb).shape == (32, 24, 3)


def test_the_default_limit_rejects_a_decompression_bomb_before_decoding(corpus):
    folder, _ = corpus
    limit = RunConfig().max_pixels
    assert limit == 16_000_000  # a 4K frame (8.3 MP) passes, a 6000 x 4000 photo (24 MP) is refused
    with pytest.raises(ImageError, match=f"exceeds the limit of {limit} pixels"):
        read_rgb8(folder / "header-claims-400MP.png", max_pixels=limit)


def test_truncated_files_stay_errors_when_a_library_relaxed_pillow(corpus, monkeypatch):
    from PIL import ImageFile

    folder, _ = corpus
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # what some libraries do on import
    with pytest.raises(ImageError, match="truncated"):
        read_rgb8(folder / "truncated.jpg")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True


def _run(tmp_path: Path, images: Path, name: str, capsys) -> tuple[int, str, str, Path]:
    run_dir = tmp_path / name
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({"datasets": [], "images": [str(images)], "methods": ["jpeg"],
                                      "metrics": ["psnr", "ssim"], "qf": [10], "max_pixels": MAX_PIXELS,
                                      "run_dir": str(run_dir), "report": False}))
    capsys.readouterr()
    status = main(["run", "--config", str(config), "--quiet"])
    out, err = capsys.readouterr()
    return status, out, err, run_dir


@pytest.mark.slow
def test_a_run_over_the_corpus_goes_on_and_says_what_failed(tmp_path, corpus, capsys, monkeypatch):
    folder, expected = corpus
    monkeypatch.chdir(tmp_path)
    status, out, err, run_dir = _run(tmp_path, folder, "run", capsys)
    assert status == 1
    failing = {_display_id(n): words for n, (outcome, words) in expected.items() if outcome == "error"}
    passing = {_display_id(n): words for n, (outcome, words) in expected.items() if outcome == "ok"}

    with ResultsStore.in_run_dir(run_dir, readonly=True) as store:
        errors, results = store.errors_frame(), store.results_frame()
        images, outputs = store.images_frame(), store.outputs_frame()
    assert sorted(errors["image"]) == sorted(failing)
    assert set(errors["stage"]) == {"input"}
    for row in errors.itertuples():
        assert str(folder / row.image) in row.message, row.message
        assert all(word in row.message for word in failing[row.image]), row.message
        assert f"{folder.name}/{row.image}: {row.message}" in err
    assert f"{len(failing)} failed" in err

    assert sorted(results["image"].unique()) == sorted(passing)
    assert len(results) == len(passing) * 2 and not results.duplicated(["image", "metric"]).any()
    notes = {row.image: json.loads(row.notes) for row in images.itertuples()}
    for name, words in passing.items():
        assert all(any(w in note for note in notes[name]) for w in words), (name, notes[name])
        if words:
            assert name in out and all(w in out for w in words)
    for name, (outcome, words) in expected.items():
        if outcome == "skipped":
            assert f"skipped file {folder.name}/{name}: {words[0]}" in out
    sizes = {row.image: (row.width, row.height) for row in images.itertuples()}
    assert sizes["odd-31x33.png"] == (24, 32) and sizes["exif-rotated.jpg"] == (48, 64)

    stems = {Path(p).stem for p in outputs["path"]}
    assert len(stems) == len(passing), "two images share an output file"
    for rel in outputs["path"]:
        assert read_rgb8(run_dir / rel).rgb.shape[2] == 3
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "PWNED2").exists()
    assert {p.name for p in run_dir.iterdir()} <= {"hq", "lq", "outputs", "results.sqlite", "results.sqlite-wal",
                                                    "results.sqlite-shm", ".lock", "manifest.json", "summary.csv"}

    # Every other image's results are the ones a run without the broken files gives.
    clean = tmp_path / "clean" / folder.name
    clean.mkdir(parents=True)
    for name in os.listdir(os.fsencode(folder)):
        if _display_id(os.fsdecode(name)) in passing:
            shutil.copy2(os.path.join(os.fsencode(folder), name), os.path.join(os.fsencode(clean), name))
    status, _, _, clean_dir = _run(tmp_path, clean, "clean-run", capsys)
    assert status == 0
    with ResultsStore.in_run_dir(clean_dir, readonly=True) as store:
        reference = store.results_frame()
    key = ["image", "metric"]
    assert (results.sort_values(key)[key + ["value"]].values.tolist()
            == reference.sort_values(key)[key + ["value"]].values.tolist())
