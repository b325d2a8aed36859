"""What commands print: names from files escaped (no ESC sequence reaches the terminal), several missing files
as a structured list, the folders an output-folder baseline reads listed by `weights`."""

from __future__ import annotations

import logging

import pytest
from PIL import Image

from bench.cli import main
from bench.core.terminal import EscapingFormatter, shown

HOSTILE = "red\x1b[31m\x1b]0;retitled\x07.png"


def test_shown_escapes_what_can_control_a_terminal_and_nothing_else():
    assert shown("ünïcødé 画像 with space.png") == "ünïcødé 画像 with space.png"
    assert shown(HOSTILE) == "red\\x1b[31m\\x1b]0;retitled\\x07.png"
    assert shown("caf\udce9.png") == "caf\\xe9.png"  # a byte that is not UTF-8
    assert shown("two\nlines\x1b") == "two\\nlines\\x1b"
    assert shown("two\nlines\x1b", multiline=True) == "two\nlines\\x1b"
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "image %s", (HOSTILE,), None)
    assert "\x1b" not in EscapingFormatter("%(message)s").format(record)


def test_restore_never_prints_a_name_raw(tmp_path, capsys, make_images):
    folder = tmp_path / "in"
    make_images(folder, [(16, 16)])
    (folder / "img00.png").rename(folder / HOSTILE)
    (folder / f"broken-{HOSTILE}").write_bytes(b"not an image")
    (folder / f".hidden-{HOSTILE}").write_bytes(b"")
    out_dir = tmp_path / "out\x1b[2J"
    status = main(["restore", str(folder), "-o", str(out_dir), "--method", "jpeg", "--quiet"])
    out, err = capsys.readouterr()
    assert status == 1 and "\x1b" not in out + err and "\x07" not in out + err
    assert f"error: {folder}/broken-red\\x1b[31m\\x1b]0;retitled\\x07.png: " in err
    assert f"skipped {folder}/.hidden-red\\x1b[31m" in err
    assert "1 of 2 images restored into" in out and "out\\x1b[2J" in out
    assert Image.open(out_dir / HOSTILE).size == (16, 16)


def test_several_missing_files_are_one_line_each(tmp_path, monkeypatch):
    from methods.base import MethodError
    from methods.registry import create_method

    monkeypatch.setenv("CODIFF_BENCH_WEIGHTS", str(tmp_path / "weights"))
    method = create_method("codiff", sd_path=str(tmp_path / "sd"))
    with pytest.raises(MethodError) as info:
        method.load()
    lines = str(info.value).splitlines()
    assert lines[0] == "method 'codiff' cannot load, 7 weight files not usable:"
    assert sum(line.startswith("  - ") for line in lines) == 7
    assert f"  - CODiff weights is missing: {tmp_path / 'weights' / 'codiff.pkl'}" in lines
    assert sum("hub repository stabilityai/stable-diffusion-2-1-base" in line for line in lines) == 1  # said once
    assert max(map(len, lines)) < 300


def test_weights_lists_the_folders_an_output_baseline_reads(tmp_path, capsys):
    (tmp_path / "jdec" / "sample" / "qf5").mkdir(parents=True)
    config = tmp_path / "run.yaml"
    config.write_text(f"datasets: [sample]\nqf: [5, 10]\nmetrics: [psnr]\n"
                      f"methods: [{{name: jdec, method: outputs, root: {tmp_path / 'jdec'}}}]\n")
    assert main(["weights", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    section = out[out.index("method jdec"):]
    assert "(no files)" not in section
    assert f"present     folder of restorations of sample at QF 5\n{'':14}{tmp_path / 'jdec' / 'sample' / 'qf5'}" in out
    assert f"missing     folder of restorations of sample at QF 10\n{'':14}{tmp_path / 'jdec' / 'sample' / 'qf10'}" in out
    assert "2 files and folders: 1 missing, 1 present" in out
