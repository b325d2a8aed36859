"""jpegqs as a method: the LQ file itself reaches the program, its output is decoded as the harness decodes
JPEG, its version and binary key the cache, an absent program is skipped with the install command; and the
README's worked example (jpegqs through `command` beside the adapter) runs."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from bench.core.imageio import to_tensor
from bench.core.protocol import decode_jpeg
from methods.base import MethodError
from methods.registry import create_method

README = Path(__file__).resolve().parents[1] / "README.md"
JPEGQS = shutil.which("jpegqs")
needs_jpegqs = pytest.mark.skipif(JPEGQS is None, reason="jpegqs is not installed (apt-get install jpegqs; .ci/run "
                                                         "does this before the tests)")

# Stands in for jpegqs: prints a version, keeps the file it is given, writes a blurred JPEG.
FAKE_JPEGQS = """#!{python}
import sys
from pathlib import Path
if "--help" in sys.argv:
    print("JPEG Quant Smooth : Copyright (C) 2020-2021 Ilya Kurdyukov : {version}")
    sys.exit(0)
if "--verbose" in sys.argv:
    print("Compiled with libjpeg-turbo version 2.1.2")
    sys.exit(0)
import cv2
source, target = sys.argv[-2:]
Path(sys.argv[0] + ".argv").write_text(" ".join(sys.argv[1:]))
Path(sys.argv[0] + ".input").write_bytes(Path(source).read_bytes())
image = cv2.GaussianBlur(cv2.imread(source), (5, 5), 0)
Path(target).write_bytes(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 97])[1].tobytes())
"""


def _fake_jpegqs(folder: Path, version: str = "1.20210408") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    program = folder / "jpegqs"
    program.write_text(FAKE_JPEGQS.format(python=sys.executable, version=version))
    program.chmod(0o755)
    return program


def _jpeg(height: int = 24, width: int = 40, qf: int = 10, seed: int = 0) -> bytes:
    import cv2

    rng = np.random.default_rng(seed)
    smooth = cv2.resize(rng.integers(0, 256, (4, 6, 3), dtype=np.uint8), (width, height), interpolation=cv2.INTER_CUBIC)
    return cv2.imencode(".jpg", smooth, [cv2.IMWRITE_JPEG_QUALITY, qf])[1].tobytes()


def test_jpegqs_gets_the_lq_file_byte_for_byte_and_its_output_is_decoded_as_the_harness_does(tmp_path):
    program = _fake_jpegqs(tmp_path)
    method = create_method("jpegqs", program=str(program), quality=4, iterations=2, threads=1)
    data = _jpeg()
    lq = to_tensor(decode_jpeg(data))
    out = method(lq, jpeg_bytes=data)
    assert Path(str(program) + ".input").read_bytes() == data
    assert Path(str(program) + ".argv").read_text().startswith("-q 4 -n 2 -i 0 -t 1 ")
    assert out.shape == lq.shape and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    blurred = decode_jpeg(_fake_output(data))
    assert torch.equal(out, to_tensor(blurred))
    with pytest.raises(MethodError, match="JPEG files only"):
        method(lq)


def _fake_output(data: bytes) -> bytes:
    import cv2

    image = cv2.GaussianBlur(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), (5, 5), 0)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 97])[1].tobytes()


def test_the_fingerprint_follows_the_program_and_the_options_that_change_outputs(tmp_path):
    program = _fake_jpegqs(tmp_path / "a")
    first = create_method("jpegqs", program=str(program))
    assert first.describe()["config"] == {"quality": 6, "iterations": 3, "version": "1.20210408",
                                          "libjpeg": "libjpeg-turbo version 2.1.2"}
    same = create_method("jpegqs", program=str(program), threads=3, timeout=5)  # neither changes outputs
    assert same.fingerprint() == first.fingerprint()
    assert create_method("jpegqs", program=str(program), quality=5).fingerprint() != first.fingerprint()
    assert create_method("jpegqs", program=str(program), iterations=4).fingerprint() != first.fingerprint()
    moved = _fake_jpegqs(tmp_path / "b")
    assert create_method("jpegqs", program=str(moved)).fingerprint() == first.fingerprint()  # same file, elsewhere
    upgraded = _fake_jpegqs(tmp_path / "c", version="1.20990101")
    assert create_method("jpegqs", program=str(upgraded)).fingerprint() != first.fingerprint()
    with pytest.raises(MethodError, match="quality: 7 is outside jpegqs's range 1-6"):
        create_method("jpegqs", quality=7)


def test_an_absent_jpegqs_is_skipped_with_the_install_command(tmp_path):
    from bench.config import RunConfig
    from bench.engine import Runner

    method = create_method("jpegqs", program="no-such-jpegqs")
    with pytest.raises(MethodError, match="apt-get install jpegqs"):
        method.load()
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(_jpeg())
    config = RunConfig.from_dict({"datasets": [], "images": [str(images)], "qf": [10], "metrics": ["psnr"],
                                  "run_dir": str(tmp_path / "run"), "report": False,
                                  "methods": ["jpeg", {"name": "jpegqs", "method": "jpegqs",
                                                       "program": "no-such-jpegqs"}]})
    summary = Runner(config, progress=False).run()
    reasons = {row["name"]: row["reason"] for row in summary.skipped if row["kind"] == "method"}
    assert "apt-get install jpegqs" in reasons.get("jpegqs", ""), summary.skipped
    assert summary.restored == 1 and not summary.errors


@needs_jpegqs
def test_real_jpegqs_restores_and_does_not_depend_on_its_thread_count():
    import cv2
    from skimage import data as samples

    hq = np.ascontiguousarray(samples.astronaut()[128:256, 160:288])
    jpeg = cv2.imencode(".jpg", hq[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 10])[1].tobytes()
    lq = to_tensor(decode_jpeg(jpeg))
    one = create_method("jpegqs", threads=1)(lq, jpeg_bytes=jpeg)
    two = create_method("jpegqs", threads=2)(lq, jpeg_bytes=jpeg)
    assert torch.equal(one, two)
    assert create_method("jpegqs").versions["version"]
    reference = to_tensor(hq)
    assert _psnr(one, reference) > _psnr(lq, reference) + 0.1


def _psnr(image: torch.Tensor, reference: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / torch.mean((image - reference) ** 2)))


def _readme_blocks(heading: str) -> dict[str, list[str]]:
    """The fenced blocks of one README section, by language."""
    text = README.read_text()
    section = text[text.index(heading):]
    section = section[:len(heading) + re.search(r"\n##+ |$", section[len(heading):]).start()]
    blocks: dict[str, list[str]] = {}
    for language, body in re.findall(r"```(\w+)\n(.*?)```", section, re.S):
        blocks.setdefault(language, []).append(body)
    return blocks


@needs_jpegqs
def test_the_readme_worked_example_runs_and_both_ways_give_the_same_restorations(tmp_path, monkeypatch, capsys):
    from bench.cli import main
    from bench.store import ResultsStore

    blocks = _readme_blocks("### Any tool as a method: `command`")
    config = blocks["yaml"][0]
    name = config.splitlines()[0].lstrip("# ").strip()
    (tmp_path / name).write_text(config)
    monkeypatch.chdir(tmp_path)
    commands = [shlex.split(line) for line in blocks["bash"][0].splitlines() if line.strip()]
    assert [argv[:2] for argv in commands] == [["codiff-bench", "methods"], ["codiff-bench", "run"]]
    assert main(commands[0][1:]) == 0
    shown = capsys.readouterr().out
    assert "{input}" in shown and "command  " in shown and "str | list[str]" in shown
    assert main([*commands[1][1:], "--limit", "1", "--qf", "10", "--no-report", "--quiet"]) == 0  # kept short
    run_dir = tmp_path / yaml.safe_load(config)["run_dir"]
    with ResultsStore.in_run_dir(run_dir, readonly=True) as store:
        frame = store.results_frame()
    values = frame.pivot_table(index="metric", columns="method", values="value")
    assert values.shape == (3, 3) and values.notna().all().all()
    assert (values["jpegqs"] == values["jpegqs-command"]).all()
    assert values.loc["psnr_b", "jpegqs"] > values.loc["psnr_b", "jpeg"] + 1


def test_the_embedded_default_lists_the_installable_restorers_beside_jpeg_and_cave_small():
    from bench.config import RunConfig

    default = Path(__file__).resolve().parents[1] / "bench" / "data" / "default.yaml"
    methods = [spec.method for spec in RunConfig.load(default).method_specs()]
    assert methods[:4] == ["jpeg", "jpegqs", "ffmpeg-spp", "cave-small"]
    robustness = Path(__file__).resolve().parents[1] / "configs" / "robustness.yaml"
    assert {"jpegqs", "ffmpeg-spp"} <= {spec.method for spec in RunConfig.load(robustness).method_specs()}


@needs_jpegqs
def test_the_default_report_shows_jpegqs_beside_jpeg_and_cave_small(tmp_path):
    import pandas as pd

    from bench.cli import main

    run_dir = tmp_path / "run"
    assert main(["run", "--limit", "1", "--qf", "10", "--metrics", "psnr", "--run-dir", str(run_dir),
                 "--set", "analyses=[]", "--quiet"]) == 0
    summary = pd.read_csv(run_dir / "summary.csv")
    assert {"jpeg", "jpegqs", "cave-small"} <= set(summary["method"])
    html = (run_dir / "report" / "index.html").read_text()
    assert all(name in html for name in ("jpegqs", "cave-small", "jpeg"))


def test_methods_name_prints_typed_options_and_an_example_that_configures_the_method(capsys):
    from bench.cli import main

    assert main(["methods", "jpegqs"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"quality\s+int\s+default: 6", text) and re.search(r"threads\s+int \| None\s+default: null", text)
    example = yaml.safe_load(text[text.index("Example (a run config):") + len("Example (a run config):"):])
    entry = example["methods"][0]
    assert entry["method"] == "jpegqs" and create_method(entry.pop("method"), **{k: v for k, v in entry.items()
                                                                                  if k != "name"}).opts.quality == 6
    assert main(["methods", "outputs"]) == 0
    assert "dataset_names  dict[str, str]" in capsys.readouterr().out
