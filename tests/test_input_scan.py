"""Which files of an image folder become benchmark images: hidden and AppleDouble files skipped, other files
ignored, folders never images, animated images refused, JPEG references warned about; `images:` in a config
and `--images` mean the same."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from bench.cli import main
from bench.config import RunConfig
from bench.core.imageio import ImageError, read_rgb8, scan_images
from bench.datasets import folder_dataset


@pytest.fixture
def messy_folder(tmp_path, make_images):
    """Two images, plus everything a copied folder collects around them."""
    folder = tmp_path / "photos"
    make_images(folder, [(16, 24), (24, 16)])
    (folder / "._img00.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (folder / ".DS_Store").write_bytes(b"Bud1")
    (folder / ".ipynb_checkpoints").mkdir()
    make_images(folder / ".ipynb_checkpoints", [(16, 16)])
    (folder / "notes.txt").write_text("where these came from")
    (folder / "x.png").mkdir()
    make_images(folder / "x.png", [(16, 16)])
    return folder


def test_folder_scan_sorts_files_into_images_skipped_and_ignored(messy_folder):
    scan = scan_images(messy_folder)
    relative = lambda paths: [p.relative_to(messy_folder).as_posix() for p in paths]  # noqa: E731
    assert relative(scan.images) == ["img00.png", "img01.png", "x.png/img00.png"]
    assert relative(scan.skipped) == [".DS_Store", "._img00.png", ".ipynb_checkpoints"]
    assert "AppleDouble" in scan.skipped[messy_folder / "._img00.png"]
    assert "hidden folder" in scan.skipped[messy_folder / ".ipynb_checkpoints"]
    assert relative(scan.ignored) == ["notes.txt"] and "not an image" in scan.ignored[messy_folder / "notes.txt"]

    dataset = folder_dataset(messy_folder)
    assert dict(dataset.left_out) == {
        ".DS_Store": scan.skipped[messy_folder / ".DS_Store"],
        "._img00.png": scan.skipped[messy_folder / "._img00.png"],
        ".ipynb_checkpoints": scan.skipped[messy_folder / ".ipynb_checkpoints"],
        "notes.txt": "ignored: " + scan.ignored[messy_folder / "notes.txt"]}


def _frames(n: int) -> list[Image.Image]:
    return [Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)) for i in range(n)]


@pytest.mark.parametrize("suffix,kwargs", [(".gif", {}), (".png", {}), (".webp", {"lossless": True})])
def test_animated_images_are_refused_and_stills_read(tmp_path, suffix, kwargs):
    animated, still = tmp_path / f"moving{suffix}", tmp_path / f"still{suffix}"
    first, *rest = _frames(3)
    first.save(animated, save_all=True, append_images=rest, duration=100, loop=0, **kwargs)
    first.save(still, **kwargs)
    with pytest.raises(ImageError, match=r"animated image \(3 frames\).*extract the frame"):
        read_rgb8(animated)
    assert read_rgb8(still).rgb.shape == (16, 16, 3)


def test_images_in_a_config_replace_the_default_dataset_as_the_flag_does(tmp_path):
    assert RunConfig().datasets == ["sample"]
    assert RunConfig.from_dict({"images": [str(tmp_path)]}).datasets == []
    both = RunConfig.from_dict({"images": [str(tmp_path)], "datasets": ["sample"]})
    assert both.datasets == ["sample"] and both.images == [str(tmp_path)]


def test_a_run_lists_what_it_left_out_and_warns_about_jpeg_references(tmp_path, messy_folder, capsys):
    Image.open(messy_folder / "img01.png").convert("RGB").save(messy_folder / "img02.jpg", quality=90)
    config = tmp_path / "run.yaml"
    config.write_text(f"images: [{messy_folder}]\nmethods: [jpeg]\nmetrics: [psnr]\nqf: [10]\n"
                      f"run_dir: {tmp_path / 'run'}\n")
    assert main(["run", "--config", str(config), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "4 units" in out  # img00, img01, img02.jpg, x.png/img00: the sample set is not added
    assert "skipped file photos/.DS_Store: hidden file" in out
    assert "skipped file photos/notes.txt: ignored: not an image file" in out
    assert "warning: dataset photos: 1 of 4 HQ references are JPEG files (e.g. img02.jpg)" in out
    html = (tmp_path / "run" / "report" / "index.html").read_text()
    assert "1 of 4 HQ references are JPEG files" in html and "._img00.png" in html
