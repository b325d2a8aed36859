"""`codiff-bench restore` and `codiff-bench estimate-qf` on folders and files, with stand-in weights."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bench.cli import main


def _jpegs(folder, make_images):
    paths = make_images(folder / "src", [(48, 64), (40, 56)])
    folder.joinpath("src", "nested").mkdir()
    jpegs = []
    for i, path in enumerate(paths):
        target = path.parent / ("nested" if i else "") / (path.stem + ".jpg")
        cv2.imwrite(str(target), cv2.imread(str(path)), [cv2.IMWRITE_JPEG_QUALITY, 10])
        path.unlink()
        jpegs.append(target)
    return jpegs


def test_restore_folder_and_file_with_codiff(tmp_path, make_images, codiff_standin_weights, capsys):
    jpegs = _jpegs(tmp_path, make_images)
    bad = tmp_path / "src" / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    w = codiff_standin_weights
    status = main(["restore", str(tmp_path / "src"), str(jpegs[0]), "-o", str(tmp_path / "out"), "--quiet",
                   "--method", "codiff", "--set", f"sd_path={w['sd']}", "--set", f"codiff={w['codiff']}",
                   "--set", f"cave={w['cave']}", "--set", "color_fix=wavelet", "--set", "tiles.latent_tile=16",
                   "--set", "tiles.latent_overlap=4"])
    assert status == 1  # the broken file is reported, the others are restored
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "would overwrite" in err  # the file given twice (folder and file)
    out = tmp_path / "out"
    first = cv2.imread(str(out / (jpegs[0].stem + ".png")))
    assert first is not None and first.shape == (48, 64, 3)
    assert (out / "nested" / (jpegs[1].stem + ".png")).is_file()


def test_restore_with_other_methods_and_bad_config(tmp_path, make_images, codiff_standin_weights, capsys):
    jpegs = _jpegs(tmp_path, make_images)
    out = tmp_path / "out"
    assert main(["restore", str(jpegs[0]), "-o", str(out), "--method", "cave", "--quiet",
                 "--set", f"cave={codiff_standin_weights['cave']}", "--set", "tile=32", "--set", "tile_overlap=8"]) == 0
    assert (out / (jpegs[0].stem + ".png")).is_file()
    assert main(["restore", str(jpegs[0]), "-o", str(out / "j"), "--method", "jpeg", "--quiet"]) == 0
    restored = cv2.imread(str(out / "j" / (jpegs[0].stem + ".png")))
    assert np.array_equal(restored, cv2.imread(str(jpegs[0])))
    assert main(["restore", str(jpegs[0]), "-o", str(out), "--method", "codiff", "--quiet",
                 "--set", f"codiff={tmp_path / 'none.pkl'}"]) == 2
    assert "none.pkl" in capsys.readouterr().err


def test_estimate_qf_prints_one_line_per_image(tmp_path, make_images, codiff_standin_weights, capsys):
    jpegs = _jpegs(tmp_path, make_images)
    status = main(["estimate-qf", str(tmp_path / "src"), str(tmp_path / "missing.jpg"), "--json",
                   "--cave", str(codiff_standin_weights["cave"])])
    captured = capsys.readouterr()
    assert status == 2 and "missing.jpg: no such file" in captured.err and not captured.out  # before any estimate
    status = main(["estimate-qf", str(tmp_path / "src"), "--json", "--cave", str(codiff_standin_weights["cave"])])
    captured = capsys.readouterr()
    assert status == 0
    lines = [line for line in captured.out.splitlines() if line.startswith("{")]
    assert len(lines) == len(jpegs)
    import json

    assert all(1 <= json.loads(line)["qf"] <= 100 for line in lines)


def test_estimate_qf_refuses_tiny_images_and_flags_files_that_are_not_jpeg(tmp_path, make_images, capsys):
    """A 4 x 4 image gets an error line and no number; a PNG gets its estimate flagged `not-jpeg`; each path once."""
    import json

    png = make_images(tmp_path / "png", [(64, 64)])[0]
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((4, 4, 3), np.uint8))
    jpeg = tmp_path / "q10.jpg"
    cv2.imwrite(str(jpeg), cv2.imread(str(png)), [cv2.IMWRITE_JPEG_QUALITY, 10])
    status = main(["estimate-qf", str(png), str(tiny), str(jpeg), "--json"])
    captured = capsys.readouterr()
    assert status == 1
    rows = {Path(r["path"]).name: r for r in map(json.loads, captured.out.splitlines())}
    assert set(rows) == {png.name, jpeg.name}
    assert "not-jpeg" in rows[png.name]["flag"] and "not-jpeg" not in (rows[jpeg.name]["flag"] or "")
    assert f"error: {tiny}: 4 x 4 pixels is too small" in captured.err and captured.err.count(str(tiny)) == 1
