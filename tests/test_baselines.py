"""Baseline adapters: FBCNN through spandrel (safe loading, QF feeding, errors), precomputed outputs, commands."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from methods.base import MethodError, Unit
from methods.fbcnn import _starts
from methods.registry import create_method

torch.set_num_threads(1)


def _image(h: int = 40, w: int = 48, seed: int = 0) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(seed))


# -- FBCNN ------------------------------------------------------------------------------------------------
def test_fbcnn_restores_through_spandrel_blind_and_with_a_fed_qf(baselines_fbcnn_weights):
    from spandrel.architectures.FBCNN import FBCNN

    reference = FBCNN(nc=[8, 16, 32, 512], nb=2).eval()
    reference.load_state_dict(torch.load(baselines_fbcnn_weights, weights_only=True))
    lq = _image()
    with torch.no_grad():
        expected_blind = reference(lq)[0].clamp(0, 1)
        expected_q10 = reference(lq, torch.tensor([[0.9]]))[0].clamp(0, 1)

    blind = create_method("fbcnn", weights=str(baselines_fbcnn_weights))
    assert blind.blind and blind.missing_weights() == []
    out = blind(lq, qf=10)
    assert out.shape == lq.shape and 0 <= out.min() and out.max() <= 1
    torch.testing.assert_close(out, expected_blind)

    fixed = create_method("fbcnn", weights=str(baselines_fbcnn_weights), qf_override=10)(lq, qf=50)
    torch.testing.assert_close(fixed, expected_q10)
    assert not torch.allclose(fixed, expected_blind)
    true_qf = create_method("fbcnn", weights=str(baselines_fbcnn_weights), qf_override="true")
    assert not true_qf.blind
    torch.testing.assert_close(true_qf(lq, qf=10), expected_q10)


def test_fbcnn_tiles_cover_the_image_and_gray_weights_work_on_colour(tmp_path, baselines_fbcnn_weights,
                                                                      baselines_fbcnn_state_dict):
    for size, tile, overlap in [(40, 16, 4), (37, 16, 8), (16, 16, 4), (100, 32, 0)]:
        covered = np.zeros(size, bool)
        for start in _starts(size, tile, overlap):
            assert 0 <= start <= max(size - tile, 0)
            covered[start:start + tile] = True
        assert covered.all()
    lq = _image(37, 45)
    tiled = create_method("fbcnn", weights=str(baselines_fbcnn_weights), tile=16, tile_overlap=4)(lq)
    assert tiled.shape == lq.shape and torch.isfinite(tiled).all()

    gray = tmp_path / "fbcnn_gray.pth"
    torch.save(baselines_fbcnn_state_dict(in_nc=1), gray)
    lq = _image(24, 32)
    y_mode = create_method("fbcnn", weights=str(gray))(lq)
    # "y" restores luma only: the difference to the input is the same in R, G and B (chroma kept)
    delta = y_mode - lq
    inside = (y_mode > 0) & (y_mode < 1)
    assert inside.all(dim=1).any()
    mask = inside.all(dim=1, keepdim=True).expand_as(delta)
    d = torch.where(mask, delta, torch.nan)
    torch.testing.assert_close(d[:, 0][mask[:, 0]], d[:, 1][mask[:, 1]])
    per_channel = create_method("fbcnn", weights=str(gray), gray_mode="channels")(lq)
    assert per_channel.shape == lq.shape and not torch.allclose(per_channel, y_mode)


def test_fbcnn_configuration_errors():
    with pytest.raises(MethodError, match="qf_override"):
        create_method("fbcnn", qf_override=0)
    with pytest.raises(MethodError, match="unknown key wieghts \\(did you mean 'weights'\\?\\)"):
        create_method("fbcnn", wieghts="x.pth")
    with pytest.raises(MethodError, match="tile_overlap"):
        create_method("fbcnn", tile=16, tile_overlap=16)


def test_fbcnn_default_location_and_missing_file_message(tmp_path, monkeypatch):
    monkeypatch.setenv("CODIFF_BENCH_WEIGHTS", str(tmp_path / "w"))
    method = create_method("fbcnn")
    (weight,) = method.required_weights()
    assert weight.path == tmp_path / "w" / "fbcnn_color.pth"
    assert weight.url == "https://github.com/jiaxi-jiang/FBCNN/releases/download/v1.0/fbcnn_color.pth"
    with pytest.raises(MethodError) as info:
        method.load()
    assert str(weight.path) in str(info.value) and "missing" in str(info.value) and weight.url in str(info.value)


def _bad_weights(kind: str, folder: Path, good: Path, state_dict) -> Path:
    path = folder / f"{kind}.pth"
    if kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "wrong-shape":
        state = state_dict()
        state["m_down1.0.res.0.weight"] = torch.zeros(8, 8, 5, 5)
        torch.save(state, path)
    elif kind == "wrong-architecture":
        torch.save(torch.nn.Conv2d(3, 3, 3).state_dict(), path)
    elif kind == "not-a-dict":
        torch.save([torch.zeros(3)], path)
    return path


@pytest.mark.parametrize("kind, message", [
    ("truncated", "not a readable weights-only tensor file"),
    ("empty", "not a readable weights-only tensor file"),
    ("wrong-shape", "tensors do not fit FBCNN"),
    ("wrong-architecture", "not a recognised architecture"),
    ("not-a-dict", "not a state dict"),
])
def test_fbcnn_broken_weight_files_are_clear_errors(tmp_path, baselines_fbcnn_weights, baselines_fbcnn_state_dict,
                                                   kind, message):
    path = _bad_weights(kind, tmp_path, baselines_fbcnn_weights, baselines_fbcnn_state_dict)
    with pytest.raises(MethodError) as info:
        create_method("fbcnn", weights=str(path)).load()
    text = str(info.value)
    assert str(path) in text and message in text
    if kind in ("wrong-shape", "wrong-architecture"):
        assert "fbcnn_color.pth" in text and "m_head" in text  # what was expected and where it comes from


class _Hostile:
    """Unpickling this object runs a shell command (what a malicious checkpoint does)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def test_fbcnn_refuses_a_pickle_that_would_run_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "fbcnn_color.pth"
    torch.save({"m_head.weight": torch.zeros(1), "payload": _Hostile(marker)}, path)
    with pytest.raises(MethodError, match="refused") as info:
        create_method("fbcnn", weights=str(path)).load()
    assert str(path) in str(info.value)
    assert not marker.exists()
    # the file is genuinely hostile: an unrestricted load runs the command
    torch.load(path, weights_only=False)
    assert marker.exists()


# -- precomputed outputs -------------------------------------------------------------------------------
def _context(tmp_path: Path, image: str = "a.png", qf: int = 10, dataset: str = "set") -> Unit:
    stem = Path(image).stem
    return Unit(dataset, image, stem, qf, tmp_path / "lq" / dataset / f"qf{qf}" / f"{stem}.jpg",
                tmp_path / "work" / f"qf{qf}")


def _write_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


def test_outputs_reads_files_through_the_template(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    _write_png(tmp_path / "tool" / "SET" / "q10" / "sub" / "a.png", rgb)
    method = create_method("outputs", root=str(tmp_path / "tool"), template="{root}/{dataset}/q{qf}/{name}.png",
                           dataset_names={"set": "SET"})
    unit = _context(tmp_path, image="sub/a.bmp")
    out = method(torch.zeros(1, 3, 16, 24), unit=unit)
    assert np.array_equal((out * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy(), rgb)

    unit = _context(tmp_path, image="sub/b.bmp")
    with pytest.raises(MethodError, match="restoration not found") as info:
        method(torch.zeros(1, 3, 16, 24), unit=unit)
    assert str(tmp_path / "tool" / "SET" / "q10" / "sub" / "b.png") in str(info.value)

    unit = _context(tmp_path, image="sub/a.bmp")
    with pytest.raises(MethodError, match="is 24x16 but .* is 24x8 .*never resized"):
        method(torch.zeros(1, 3, 8, 24), unit=unit)

    lines = method.preflight([_context(tmp_path, image=i) for i in ("sub/a.bmp", "sub/b.bmp", "c.png")])
    assert len(lines) == 1 and lines[0].startswith("set qf10: 2 of 3 restorations missing")


def test_outputs_configuration_errors(tmp_path):
    with pytest.raises(MethodError, match="unknown placeholders \\['foo'\\]"):
        create_method("outputs", root=str(tmp_path), template="{root}/{foo}.png")
    with pytest.raises(MethodError, match="unknown placeholders"):
        create_method("outputs", root=str(tmp_path), template="{root.__class__}/{stem}.png")
    with pytest.raises(MethodError, match="set `root`"):
        create_method("outputs")
    with pytest.raises(MethodError, match="names no unit"):
        create_method("outputs", root=str(tmp_path))(torch.zeros(1, 3, 8, 8))


# -- external commands ---------------------------------------------------------------------------------
COPY_SCRIPT = """
import sys
from pathlib import Path
from PIL import Image, ImageFilter
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
print("restoring", src)
with open(Path(sys.argv[3]), "a") as fh:
    fh.write("x")
for f in sorted(src.glob("*.jpg")):
    Image.open(f).convert("RGB").filter(ImageFilter.BoxBlur(1)).save(dst / (f.stem + ".png"))
"""


def _lq_folder(tmp_path: Path, qf: int = 10, names=("a", "b")) -> Path:
    from PIL import Image

    folder = tmp_path / "lq dir" / "set" / f"qf{qf}"
    folder.mkdir(parents=True)
    for i, name in enumerate(names):
        rgb = np.random.default_rng(i).integers(0, 256, (16, 24, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(folder / f"{name}.jpg", quality=qf)
    return folder


def _command_context(tmp_path: Path, lq: Path, name: str, qf: int = 10) -> Unit:
    return Unit("set", f"{name}.png", name, qf, lq / f"{name}.jpg", tmp_path / "run" / "work" / "cmd" / f"qf{qf}")


def test_command_runs_once_per_block_and_reads_its_outputs(tmp_path):
    script = tmp_path / "restore.py"
    script.write_text(COPY_SCRIPT)
    calls = tmp_path / "calls.txt"
    lq = _lq_folder(tmp_path)
    method = create_method("command", command=f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} "
                                              f"{{input_dir}} {{output_dir}} {shlex.quote(str(calls))}")
    outs = []
    for name in ("a", "b"):
        unit = _command_context(tmp_path, lq, name)
        outs.append(method(torch.zeros(1, 3, 16, 24), unit=unit))
    assert calls.read_text() == "x"  # one run for the block, although the input folder has a space in its path
    block = method.block_dir(_command_context(tmp_path, lq, "a"))
    assert sorted(p.name for p in (block / "output").iterdir()) == ["a.png", "b.png"]
    assert "restoring" in (block / "command.log").read_text() and "[exit status 0" in (block / "command.log").read_text()
    assert not list(block.glob(".tmp-*"))
    assert outs[0].shape == (1, 3, 16, 24) and not torch.equal(outs[0], outs[1])

    again = create_method("command", command=method.opts.command)  # a new process: outputs are reused
    unit = _command_context(tmp_path, lq, "a")
    again(torch.zeros(1, 3, 16, 24), unit=unit)
    assert calls.read_text() == "x"


@pytest.mark.parametrize("command, shell, timeout, status", [
    ("{python} -c 'import sys; print(\"bad input\"); sys.exit(3)'", False, 120, "exit status 3"),
    ("{python} -c 'import time; time.sleep(30)'", False, 1, "timed out"),
    ("echo {input_dir} >&2; exit 4", True, 120, "exit status 4"),
])
def test_a_failing_command_is_an_error_for_each_unit_of_its_block(tmp_path, command, shell, timeout, status):
    lq = _lq_folder(tmp_path)
    method = create_method("command", command=command.replace("{python}", shlex.quote(sys.executable)),
                           shell=shell, timeout=timeout)
    messages = []
    for name in ("a", "b"):
        unit = _command_context(tmp_path, lq, name)
        with pytest.raises(MethodError) as info:
            method(torch.zeros(1, 3, 16, 24), unit=unit)
        messages.append(str(info.value))
    assert status in messages[0] and "command.log" in messages[0] and messages[0] == messages[1]
    log = (method.block_dir(_command_context(tmp_path, lq, "a")) / "command.log").read_text()
    assert status in log
    if "bad input" in command:
        assert "bad input" in messages[0] and "bad input" in log
    if shell:
        assert str(lq) in log  # the quoted folder reached the shell as one word


def test_command_configuration_and_preflight(tmp_path):
    with pytest.raises(MethodError, match="set `command`"):
        create_method("command")
    with pytest.raises(MethodError, match="unknown placeholders \\['input_dir'\\]"):
        create_method("command", command=f"{sys.executable} {{input}} {{output}} {{input_dir}}")
    with pytest.raises(MethodError, match="names both \\{input\\} and \\{output\\}"):
        create_method("command", command=f"{sys.executable} {{input}}")
    with pytest.raises(MethodError, match="unknown placeholders \\['stem'\\]"):
        create_method("command", command=f"{sys.executable} {{input_dir}} {{output_dir}}/{{stem}}")
    with pytest.raises(MethodError, match="one string"):
        create_method("command", command=["a", "b"], shell=True)
    assert create_method("command", command=[sys.executable, "x.py", "{input_dir}"]).preflight([]) == []
    with pytest.raises(MethodError, match="'no-such-program-xyz' not found"):  # a user error before any run
        create_method("command", command="no-such-program-xyz {input_dir}")
    assert create_method("command", command="no-such-program-xyz {input_dir}", shell=True).preflight([]) == []


# Restores one file: a blurred copy written as JPEG under the name it is given with .jpg (the template says .png).
PER_FILE_SCRIPT = """
import sys
from pathlib import Path
from PIL import Image, ImageFilter
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
if src.stem == "b" and len(sys.argv) > 3:
    print("cannot restore", src.name)
    sys.exit(5)
Image.open(src).convert("RGB").filter(ImageFilter.BoxBlur(1)).save(dst.with_suffix(".jpg"), quality=95)
"""


def test_a_per_file_command_runs_once_per_image_and_its_outputs_are_found_whatever_their_extension(tmp_path):
    from bench.core.imageio import to_tensor
    from bench.core.protocol import decode_jpeg

    script = tmp_path / "restore one.py"
    script.write_text(PER_FILE_SCRIPT)
    lq = _lq_folder(tmp_path)
    command = [sys.executable, str(script), "{input}", "{output}"]
    method = create_method("command", command=command)
    out = method(torch.zeros(1, 3, 16, 24), unit=_command_context(tmp_path, lq, "a"))
    block = method.block_dir(_command_context(tmp_path, lq, "a"))
    assert sorted(p.name for p in (block / "output").iterdir()) == ["a.jpg"]  # only the image asked for
    assert "[exit status 0" in (block / "logs" / "a.log").read_text()
    assert torch.equal(out, to_tensor(decode_jpeg((block / "output" / "a.jpg").read_bytes())))
    method(torch.zeros(1, 3, 16, 24), unit=_command_context(tmp_path, lq, "b"))
    assert sorted(p.name for p in (block / "output").iterdir()) == ["a.jpg", "b.jpg"]
    assert not list(block.glob(".tmp-*"))

    failing = create_method("command", command=[*command, "fail b"])
    failing(torch.zeros(1, 3, 16, 24), unit=_command_context(tmp_path, lq, "a"))  # one bad image ends nothing
    with pytest.raises(MethodError, match=r"command for 'b.png' failed \(exit status 5\).*cannot restore b.jpg"):
        failing(torch.zeros(1, 3, 16, 24), unit=_command_context(tmp_path, lq, "b"))
