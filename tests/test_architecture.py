"""The project's shape: import-linter contracts, plugins through entry points, a wheel that works on its own,
and commands that start without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    from importlinter.application.use_cases import read_user_options
    from importlinter.cli import lint_imports

    options = read_user_options(config_filename=str(REPO / "pyproject.toml"))
    assert len(options.contracts_options) == 5  # layers, two forbidden, training, acyclic
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def _modules_after(argv: list[str], cwd: Path) -> set[str]:
    """The modules a fresh interpreter has imported after running `codiff-bench ARGV`."""
    code = ("import sys, contextlib, io\nfrom bench.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        main({argv!r})\n    except SystemExit:\n        pass\n"
            "print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("argv", [["--help"], ["methods"], ["metrics"], ["run", "--help"]])
def test_light_commands_import_no_torch(argv, tmp_path):
    modules = _modules_after(argv, tmp_path)
    assert "bench.cli" in modules and "torch" not in modules


def test_report_imports_no_torch(tmp_path, report_run_builder):
    run_dir = report_run_builder(tmp_path / "run")
    modules = _modules_after(["report", str(run_dir)], tmp_path)
    assert (run_dir / "report" / "index.html").is_file()
    assert "reports.html" in modules and "torch" not in modules


# -- plugins ----------------------------------------------------------------------------------------------
PLUGIN = '''
"""A third-party plugin: one method, one metric, one analysis."""
import json
from dataclasses import dataclass

from bench.analysis import Analysis
from bench.metrics import MetricSpec
from methods.base import Method


@dataclass(frozen=True)
class BrightenOptions:
    amount: float = 0.1


class Brighten(Method):
    description = "adds a constant (a plugin)"
    config_class = BrightenOptions

    def restore(self, request):
        return (request.lq + self.opts.amount).clamp(0, 1)


def mean_score():
    return lambda out, ref: out.mean(dim=(1, 2, 3))


MEAN = MetricSpec("mean", "Mean", "mean intensity (a plugin)", False, False, compute="toy_plugin:mean_score")


class Count(Analysis):
    def run(self, inputs):
        inputs.out_dir.mkdir(parents=True, exist_ok=True)
        (inputs.out_dir / "summary.json").write_text(json.dumps({"title": "Toy count", "images": len(inputs.images)}))
        return {}
'''


def _install_plugin(site: Path) -> None:
    """A distribution as an installer leaves it: the module and a .dist-info with its entry points."""
    site.mkdir()
    (site / "toy_plugin.py").write_text(PLUGIN)
    info = site / "toy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [codiff_bench.methods]
        brighten = toy_plugin:Brighten
        [codiff_bench.metrics]
        mean = toy_plugin:MEAN
        [codiff_bench.analyses]
        count = toy_plugin:Count
        """))


@pytest.mark.slow
def test_a_plugin_distribution_runs_through_the_cli(tmp_path, image_folder):
    site = tmp_path / "site"
    _install_plugin(site)
    config = tmp_path / "plugin.yaml"
    config.write_text(json.dumps({"datasets": [], "images": [str(image_folder)], "qf": [10], "metrics": ["psnr", "mean"],
                                  "methods": ["jpeg", {"name": "bright", "method": "brighten", "amount": 0.2}],
                                  "analyses": ["count"], "run_dir": str(tmp_path / "run"), "report": True}))
    env = {**os.environ, "PYTHONPATH": str(site)}
    listed = subprocess.run([sys.executable, "-m", "bench", "methods"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, check=True).stdout
    assert "brighten" in listed and "a plugin" in listed
    run = subprocess.run([sys.executable, "-m", "bench", "run", "--config", str(config), "--quiet"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    summary = (tmp_path / "run" / "summary.csv").read_text()
    assert ",bright,10,mean," in summary and ",jpeg,10,psnr," in summary
    means = {line.split(",")[1]: float(line.split(",")[4]) for line in summary.splitlines()
             if ",10,mean," in line}
    assert means["bright"] > means["jpeg"]
    assert json.loads((tmp_path / "run" / "analyses" / "count" / "summary.json").read_text())["images"] == 3
    assert "Toy count" in (tmp_path / "run" / "report" / "index.html").read_text()
    misspelt = subprocess.run([sys.executable, "-m", "bench", "run", "--config", str(config), "--methods", "brighton"],
                              capture_output=True, text=True, env=env, cwd=tmp_path)
    assert misspelt.returncode == 2 and "did you mean 'brighten'" in misspelt.stderr


# -- the wheel --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_wheel_runs_the_embedded_default_without_the_repository(tmp_path):
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    source = tmp_path / "source"
    for name in filter(None, files.decode().split("\0")):
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_symlink():
            target.symlink_to(os.readlink(REPO / name))
        elif (REPO / name).is_file():
            target.write_bytes((REPO / name).read_bytes())
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("codiff_bench-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(site)  # a pure-Python wheel installs by unpacking
    for needed in ("bench/data/default.yaml", "bench/data/datasets.yaml", "bench/data/paper_tables/table1_quality.csv",
                   "methods/codiff/configs/sd21-base/unet/config.json", "reports/templates/report.html.j2",
                   "methods/codiff/cave_small/weights/MODEL_CARD.md"):
        assert needed in names, needed
    # -S: no site-packages processing, so the editable install of this repository is not on the path; the
    # environment's libraries are added after the unpacked wheel.
    libraries = next(p for p in sys.path if p.endswith("site-packages"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), libraries])}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import sys, bench; from bench.cli import main; print('module', bench.__file__); "
            "sys.exit(main(['run', '--dry-run']))")
    run = subprocess.run([sys.executable, "-S", "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert f"module {site / 'bench' / '__init__.py'}" in run.stdout, run.stdout + run.stderr
    assert "Dry run of" in run.stdout and "sample" in run.stdout and "cave-small" in run.stdout, run.stderr
    assert run.returncode in (0, 1)  # 1: metric weights are absent on this machine, which the plan lists
    assert not (elsewhere / "runs").exists()
