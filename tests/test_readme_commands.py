"""Every command the READMEs show runs: each ```bash / ```console block of README.md and
methods/codiff/README.md is run on tiny inputs (tiny stand-in models and metric weights), or its entry in
tests/readme_commands.yaml says what stands in for it and why (a GPU, hours, the reader's own folders).
A README command without an entry fails here, so that every new block is either run or listed."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
READMES = ["README.md", "methods/codiff/README.md"]
LIST = Path(__file__).with_name("readme_commands.yaml")
BLOCK = re.compile(r"^```(bash|console|sh|shell)[ \t]*\n(.*?)^```", re.S | re.M)


def readme_blocks(text: str) -> list[list[str]]:
    """The commands of each shell block: one per line (continuations joined; comments, prompts and console
    output dropped), as `shlex` reads them, so that spacing and comments never change a command's key."""
    blocks = []
    for kind, body in BLOCK.findall(text):
        lines = body.replace("\\\n", " ").splitlines()
        if kind == "console":
            lines = [line[2:] for line in lines if line.startswith("$ ")]
        commands = [" ".join(shlex.split(line, comments=True)) for line in lines]
        blocks.append([c for c in commands if c])
    return blocks


def entries() -> dict[str, dict[str, dict]]:
    return yaml.safe_load(LIST.read_text())


BLOCKS = [(readme, i, block) for readme in READMES
          for i, block in enumerate(readme_blocks((ROOT / readme).read_text())) if block]


def test_every_readme_command_is_run_or_listed():
    listed = entries()
    for readme in READMES:
        shown = {c for r, _, block in BLOCKS if r == readme for c in block}
        missing = sorted(shown - set(listed.get(readme, {})))
        assert not missing, (f"{readme} shows commands that tests/readme_commands.yaml neither runs nor lists "
                             f"(add an entry for each): {missing}")
        stale = sorted(set(listed.get(readme, {})) - shown)
        assert not stale, f"tests/readme_commands.yaml lists commands {readme} no longer shows: {stale}"


def test_the_command_list_says_why_for_whatever_it_does_not_run():
    for readme, commands in entries().items():
        for command, entry in commands.items():
            ways = [k for k in ("run", "stand_in", "covered_by", "not_run") if entry.get(k)]
            assert len(ways) == 1, (readme, command, entry)
            if ways[0] in ("stand_in", "covered_by"):
                assert entry.get("why"), (readme, command)
            if ways[0] == "stand_in":
                assert entry["stand_in"].startswith("codiff-bench "), (readme, command)
            if ways[0] == "covered_by":
                file, _, test = entry["covered_by"].partition("::")
                assert re.search(rf"^def {re.escape(test)}\(", (ROOT / file).read_text(), re.M), entry["covered_by"]


@pytest.fixture(scope="session")
def readme_weights(tmp_path_factory) -> Path:
    """$CODIFF_BENCH_WEIGHTS as the READMEs expect it, with tiny stand-ins: stable-diffusion-2-1-base/,
    codiff.pkl, cave.pth."""
    from methods.codiff.standins import write_standin_weights

    folder = tmp_path_factory.mktemp("readme-weights")
    paths = write_standin_weights(folder)
    paths["sd"].rename(folder / "stable-diffusion-2-1-base")
    return folder


@pytest.mark.parametrize("readme,index,block", BLOCKS, ids=[f"{r}#{i}" for r, i, _ in BLOCKS])
def test_readme_block_runs(readme, index, block, tmp_path, monkeypatch, readme_weights, metrics_standins,
                           make_images, one_thread):
    from PIL import Image

    from bench.cli import main

    listed = entries()[readme]
    runnable = []
    for command in block:
        entry = listed.get(command)
        assert entry is not None, f"{readme}: {command!r} is not in tests/readme_commands.yaml"
        if entry.get("run") or entry.get("stand_in"):
            runnable.append((command, entry.get("stand_in") or command, entry.get("exit", [0])))
    if not runnable:
        pytest.skip("every command of this block is stood in for by another test or not runnable (see the list)")
    for i, png in enumerate(make_images(tmp_path / "png", [(48, 64), (64, 40)])):
        Image.open(png).convert("RGB").save(tmp_path / ("img.jpg" if i == 0 else f"photo{i}.jpg"), quality=20)
    (tmp_path / "photos").mkdir()
    for name in ("img.jpg", "photo1.jpg"):
        (tmp_path / "photos" / name).write_bytes((tmp_path / name).read_bytes())
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    (tmp_path / "weights").symlink_to(readme_weights)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CODIFF_BENCH_WEIGHTS", str(readme_weights))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    for command, argv, accepted in runnable:
        words = shlex.split(argv)
        assert words[0] == "codiff-bench", argv
        status = main(words[1:])
        assert status in accepted, f"{readme}: {command!r} (ran as {argv!r}) exited {status}"


def test_blocks_are_read_as_a_reader_runs_them():
    text = ("```bash\ncodiff-bench run   --limit 1   # one image\n# a comment line\n\ncodiff-bench report \\\n"
            "  runs/x\n```\n```console\n$ codiff-bench methods\njpeg  ...output...\n```\n```yaml\nqf: [5]\n```\n")
    assert readme_blocks(text) == [["codiff-bench run --limit 1", "codiff-bench report runs/x"],
                                   ["codiff-bench methods"]]
    listed = {c for commands in entries().values() for c in commands}
    assert "codiff-bench run --limit 1" not in listed  # so a README that gained this block would fail the check
