"""Stage-1 training (CaVE): configs, on-the-fly pairs, each mode's loss, exact resume, two processes, kills."""

from __future__ import annotations

import csv
import itertools
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from bench.core.config import from_dict, load_config, merge
from bench.core.errors import ConfigError
from methods.codiff.training.checkpointing import CheckpointFolder
from methods.codiff.training.config import CaveTrainConfig, QFComponent, QFMixtureConfig
from methods.codiff.training.data import (
    QFSampler,
    build_train_pairs,
    flip_rotate,
    train_loader,
)
from methods.codiff.training.stage1 import CaveTask
from methods.codiff.training.trainer import (
    RunOptions,
    Trainer,
    batch_to_device,
    make_accelerator,
)

REPO = Path(__file__).resolve().parents[1]


def cave_config(images: Path, output: Path, **sections) -> dict:
    """A tiny stage-1 config as a mapping (CaVE 8-16-32-64, 32 px patches, batch 4, one thread)."""
    base = {
        "mode": "dual",
        "model": {"nc": [8, 16, 32, 64], "nb": 1},
        "optim": {"lr": 1.0e-3, "milestones": [3], "gamma": 0.5},
        "train": {"output_dir": str(output), "steps": 4, "batch_size": 4, "log_every": 1, "checkpoint_every": 2,
                  "keep_checkpoints": 10, "threads": 1, "tensorboard": False},
        "data": {"train": [str(images)], "patch_size": 32, "num_workers": 0, "preload": True},
        "val": {"folder": str(images), "qfs": [10, 50], "every": 2, "max_images": 1, "crop": 32},
    }
    return merge(base, sections)


def run_cave(data: dict, **options) -> tuple[CaveTask, object]:
    task = CaveTask(from_dict(CaveTrainConfig, data))
    return task, Trainer(task, RunOptions(progress=False, **options)).run()


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def exported(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(folder / "cave.pth", map_location="cpu", weights_only=True)


# -- configs and data ---------------------------------------------------------------------------------------

def test_config_rejects_unknown_keys_and_merges_bases(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.patchsize"):
        from_dict(CaveTrainConfig, {"data": {"patchsize": 64}})
    with pytest.raises(ConfigError, match="mode"):
        from_dict(CaveTrainConfig, {"mode": "both"})
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"model": {"nc": [8, 16, 32, 64], "nb": 2},
                                                        "optim": {"lr": "2e-5"}}))
    (tmp_path / "top.yaml").write_text(yaml.safe_dump({"base": "base.yaml", "model": {"nb": 1}, "mode": "explicit"}))
    config = load_config(CaveTrainConfig, tmp_path / "top.yaml", ["train.batch_size=16", "data.qf.exclude=[1, 5, 7]"])
    assert (config.model.nc, config.model.nb, config.mode) == ((8, 16, 32, 64), 1, "explicit")
    assert config.optim.lr == 2e-5 and config.train.batch_size == 16 and config.data.qf.exclude == [1, 5, 7]
    release = load_config(CaveTrainConfig, REPO / "configs" / "train" / "cave.yaml")
    assert (release.optim.lr, release.train.batch_size, release.model.nb, release.data.patch_size) == \
        (2e-5, 128, 4, 256)


def test_every_shipped_training_config_parses():
    from methods.codiff.training.config import CodiffTrainConfig

    files = sorted((REPO / "configs" / "train").glob("*.yaml"))
    assert {"cave.yaml", "cave-tiny.yaml", "codiff.yaml", "codiff-tiny.yaml"} <= {f.name for f in files}
    for path in files:
        config = load_config(CaveTrainConfig if path.name.startswith("cave") else CodiffTrainConfig, path)
        assert config.train.output_dir.startswith("runs/train/"), path


def test_qf_mixture_follows_the_release_and_never_draws_excluded_qfs():
    sampler = QFSampler(QFMixtureConfig())
    rng = np.random.default_rng(0)
    draws = np.array([sampler.draw(rng) for _ in range(4000)])
    assert sampler.describe() == "8-96" and not np.isin(draws, [1, 5]).any()
    listed = np.isin(draws, [10, 20, 30, 40, 50, 60]).mean()
    assert 0.75 < listed < 0.85  # 3/4 from the list plus the uniform part's share of those six values
    custom = QFSampler(QFMixtureConfig(mixture=[QFComponent(prob=1.0, range=[1, 12])], exclude=[1, 5]))
    assert custom.support() == set(range(1, 13)) - {1, 5}
    with pytest.raises(ConfigError, match="no QF left"):
        QFSampler(QFMixtureConfig(mixture=[QFComponent(prob=1.0, choices=[1, 5])], exclude=[1, 5]))


def test_pairs_are_a_function_of_the_sample_number(train_images, tmp_path):
    config = from_dict(CaveTrainConfig, cave_config(train_images, tmp_path))
    pairs = build_train_pairs(config.data, seed=0)
    first, again = pairs[5], build_train_pairs(config.data, seed=0)[5]
    assert first["hq"].shape == first["lq"].shape == (3, 32, 32) and first["hq"].dtype == torch.uint8
    assert torch.equal(first["hq"], again["hq"]) and torch.equal(first["lq"], again["lq"])
    assert first["qf"] == again["qf"] and 8 <= first["qf"] <= 96
    assert not torch.equal(first["lq"], first["hq"])  # JPEG changed it
    other = build_train_pairs(config.data, seed=1)[5]
    assert not torch.equal(first["hq"], other["hq"])
    # rank 1 of 2 gets the second half of the same global batch
    one = next(iter(train_loader(pairs, start_step=3, global_batch=4, rank=0, world_size=1, num_workers=0, seed=0)))
    half = next(iter(train_loader(pairs, start_step=3, global_batch=4, rank=1, world_size=2, num_workers=0, seed=0)))
    assert torch.equal(one["lq"][2:], half["lq"])
    worker = next(iter(train_loader(pairs, start_step=3, global_batch=4, rank=0, world_size=1, num_workers=1, seed=0)))
    assert torch.equal(one["lq"], worker["lq"]) and torch.equal(one["qf"], worker["qf"])  # workers change nothing
    variants = {flip_rotate(np.arange(12).reshape(3, 4), m).tobytes() for m in range(8)}
    assert len(variants) == 8


# -- the three modes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["explicit", "implicit", "dual"])
def test_each_mode_reduces_its_loss_on_a_fixed_batch(mode, train_images, tmp_path, one_thread):
    config = from_dict(CaveTrainConfig, cave_config(train_images, tmp_path, mode=mode,
                                                    loss={"qf_weight": 1.0}))
    task = CaveTask(config)
    accelerator = make_accelerator(config.train, task.find_unused_parameters)
    torch.manual_seed(0)
    task.setup(accelerator)
    pairs = build_train_pairs(config.data, seed=0)
    batch = batch_to_device(next(iter(train_loader(pairs, start_step=0, global_batch=4, rank=0, world_size=1,
                                                   num_workers=0, seed=0))), accelerator.device)
    decoder = {k: v.clone() for k, v in task.cave.m_tail.state_dict().items()}
    head = {k: v.clone() for k, v in task.cave.qf_pred.state_dict().items()}
    losses = [task.train_step(batch, step) for step in range(8)]
    expected_terms = {"explicit": {"qf"}, "implicit": {"rec"}, "dual": {"rec", "qf"}}[mode]
    assert set(losses[0]) == expected_terms | {"loss"}
    values = [float(step["loss"]) for step in losses]
    assert all(b < a for a, b in itertools.pairwise(values)) and values[-1] < 0.98 * values[0], values
    # a mode trains only what its loss reaches
    assert all(torch.equal(v, task.cave.m_tail.state_dict()[k]) for k, v in decoder.items()) == (mode == "explicit")
    head_weights_same = all(torch.equal(v, task.cave.qf_pred.state_dict()[k]) for k, v in head.items()
                            if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert head_weights_same == (mode == "implicit")


def test_a_decoder_fine_tune_trains_only_the_decoder_from_a_checkpoint(train_images, tmp_path, one_thread):
    """`model.start_from` + `trainable: decoder` (configs/train/cave-small-finetune.yaml): the encoder, the QF
    head and their BatchNorm statistics end bit for bit as in the starting checkpoint, the decoder moves, and
    the gradient term is in the loss."""
    from methods.codiff.cave import load_cave
    from methods.codiff.training.stage1 import DECODER_PARTS

    _, start = run_cave(cave_config(train_images, tmp_path / "start"))
    tuned = tmp_path / "tuned"
    config = cave_config(train_images, tuned, mode="implicit", loss={"gradient_weight": 1.0},
                         model={"start_from": str(start.exported[-1]), "trainable": "decoder",
                                "batchnorm_group": 2})  # swapped BatchNorm modules stay frozen too
    run_cave(config)
    before, after = load_cave(start.exported[-1]).state_dict(), load_cave(tuned / "cave.safetensors").state_dict()
    moved = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert moved and moved <= set(DECODER_PARTS)
    assert float(read_csv(tuned / "train.csv")[0]["gradient"]) > 0
    wrong = merge(config, {"model": {"nc": [8, 16, 32, 32]}})
    with pytest.raises(ConfigError, match="architecture"):
        run_cave(wrong)
    with pytest.raises(ConfigError, match="needs model.start_from"):
        from_dict(CaveTrainConfig, cave_config(train_images, tmp_path / "x", model={"trainable": "decoder"}))


def test_the_gradient_loss_is_zero_only_for_equal_differences():
    from methods.codiff.training.losses import gradient_l1

    x = torch.rand(2, 3, 16, 16)
    assert float(gradient_l1(x, x + 0.3)) == pytest.approx(0.0, abs=1e-7)  # a shift keeps every difference
    assert float(gradient_l1(x, torch.zeros_like(x))) > 0


# -- checkpoints, resume, export ------------------------------------------------------------------------------

def test_resume_continues_exactly_and_exports_load(train_images, tmp_path):
    from methods.codiff.cave import load_cave

    whole = tmp_path / "whole"
    _, result = run_cave(cave_config(train_images, whole))
    assert result.step == 4 and [p.name for p in result.exported] == ["cave.pth", "cave.safetensors"]
    parts = tmp_path / "parts"
    _, first = run_cave(cave_config(train_images, parts), max_steps=2)
    assert first.step == 2 and CheckpointFolder(parts / "checkpoints").latest().name == "step-00000002"
    _, second = run_cave(cave_config(train_images, parts))
    assert second.step == 4
    a, b = exported(whole), exported(parts)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows_whole, rows_parts = read_csv(whole / "train.csv"), read_csv(parts / "train.csv")
    key = ("step", "loss", "rec", "qf", "lr")
    assert [tuple(r[k] for k in key) for r in rows_whole] == [tuple(r[k] for k in key) for r in rows_parts]
    assert [r["step"] for r in rows_parts] == ["1", "2", "3", "4"] and rows_parts[-1]["lr"] == "0.0005"
    val = read_csv(parts / "val.csv")
    assert [(r["step"], r["qf"]) for r in val] == [("2", "10"), ("2", "50"), ("2", "all"),
                                                   ("4", "10"), ("4", "50"), ("4", "all")]
    assert {"psnr", "psnr_b", "psnr_gain", "qf_mae", "qf_mse", "lq_psnr"} <= set(val[0])
    assert {"qf_mae_seen", "psnr_gain_seen", "silhouette_all"} <= set(val[2])
    assert (parts / "checkpoints" / "step-00000004" / "validation.csv").is_file()
    # both export formats load in the inference path and compute the trained network
    lq = torch.rand(1, 3, 64, 64)
    project = load_cave(parts / "cave.safetensors")
    with torch.no_grad():
        for model in (load_cave(parts / "cave.pth"), project):
            assert torch.allclose(model.embed(lq), load_cave(whole / "cave.pth").embed(lq))
    # nothing left to do: a rerun stops at once
    _, again = run_cave(cave_config(train_images, parts))
    assert again.step == 4 and again.checkpoint is None


def test_dry_run_writes_nothing_and_bad_configs_exit_2(train_images, tmp_path, capsys):
    from bench.cli import main

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(cave_config(train_images, tmp_path / "out")))
    assert main(["train-cave", "--config", str(config), "--dry-run", "--quiet"]) == 0
    assert not (tmp_path / "out").exists()
    assert '"images": 4' in capsys.readouterr().out
    assert main(["train-cave", "--config", str(config), "--set", "data.patch_size=512", "--quiet"]) == 2
    assert "no usable training image" in capsys.readouterr().err


def test_a_second_run_on_the_same_folder_is_refused(train_images, tmp_path, capsys):
    from bench.cli import main
    from bench.core.lock import RunLock

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(cave_config(train_images, tmp_path / "out")))
    with RunLock(tmp_path / "out"):
        assert main(["train-cave", "--config", str(config), "--quiet"]) == 2
    assert "in use by another codiff-bench process" in capsys.readouterr().err
    assert not (tmp_path / "out" / "checkpoints").exists()


# -- two processes (gloo) ---------------------------------------------------------------------------------------

@pytest.mark.slow
class _TwoProcesses:
    """Just enough of an accelerator for `CaveTask.setup`: two processes, nothing wrapped."""

    device, num_processes = torch.device("cpu"), 2

    @staticmethod
    def prepare(*objects):
        return objects

    @staticmethod
    def unwrap_model(module):
        return module


@pytest.mark.parametrize("sync", [False, True])
def test_batchnorm_is_per_process_unless_synchronised(sync, train_images, tmp_path):
    from methods.codiff.training.distributed import GlobalBatchNorm2d

    data = cave_config(train_images, tmp_path, **({"model": {"sync_batchnorm": True}} if sync else {}))
    task = CaveTask(from_dict(CaveTrainConfig, data))
    task.setup(_TwoProcesses())
    norms = [m for m in task.cave.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(isinstance(m, GlobalBatchNorm2d) == sync for m in norms)  # default: as the release


def test_two_processes_with_synchronised_batchnorm_train_like_one_with_the_same_global_batch(train_images, tmp_path):
    data = cave_config(train_images, tmp_path / "one", val={"folder": None}, model={"sync_batchnorm": True},
                       train={"steps": 3, "checkpoint_every": 1})
    run_cave(data)
    two = merge(data, {"train": {"output_dir": str(tmp_path / "two")}})
    config = tmp_path / "two.yaml"
    config.write_text(yaml.safe_dump(two))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", str(29400 + os.getpid() % 500), "-m", "bench", "train-cave",
                           "--config", str(config), "--quiet"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "two" / "checkpoints" / "step-00000003" / "rng-1.pt").is_file()
    assert not (tmp_path / "one" / "checkpoints" / "step-00000003" / "rng-1.pt").exists()
    one_rows, two_rows = read_csv(tmp_path / "one" / "train.csv"), read_csv(tmp_path / "two" / "train.csv")
    for a, b in zip(one_rows, two_rows, strict=True):
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-4)
    # The trained networks compute the same function. (Single parameters may not match: a conv bias followed by
    # BatchNorm has a zero gradient up to rounding, which Adam's normalisation turns into steps of +-lr.)
    from methods.codiff.cave import load_cave

    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        (rec_a, qf_a), (rec_b, qf_b) = (load_cave(tmp_path / name / "cave.pth")(x) for name in ("one", "two"))
        rec_step1 = load_cave(tmp_path / "one" / "checkpoints" / "step-00000001" / "export" / "cave.pth")(x)[0]
    assert torch.allclose(rec_a, rec_b, atol=1e-3) and torch.allclose(qf_a, qf_b, atol=1e-5)
    assert (rec_a - rec_step1).abs().max() > 2e-2  # two steps of training move far more than the tolerance


# -- killed runs ------------------------------------------------------------------------------------------------

DIE_WHILE_SAVING = """
import os, signal
import methods.codiff.training.trainer as trainer
_save = trainer.save_tensors
def save_then_die(obj, path):
    if path.name == "state.pt" and path.parent.name.endswith("step-00000004"):
        path.write_bytes(b"half a checkpoint")
        os.kill(os.getpid(), signal.SIGKILL)
    return _save(obj, path)
trainer.save_tensors = save_then_die
"""


@pytest.mark.slow
def test_killed_runs_resume_from_their_last_complete_checkpoint(train_images, tmp_path, reliability_server):
    data = cave_config(train_images, tmp_path / "reference", val={"folder": None},
                       train={"steps": 6, "checkpoint_every": 1})
    run_cave(data)
    config = tmp_path / "killed.yaml"
    config.write_text(yaml.safe_dump(merge(data, {"train": {"output_dir": str(tmp_path / "killed")}})))
    argv = ["train-cave", "--config", str(config), "--quiet"]

    # killed while writing step 4: that checkpoint stays a temporary folder and is never loaded
    assert reliability_server.spawn(argv, prelude=DIE_WHILE_SAVING).wait() == -9
    folder = CheckpointFolder(tmp_path / "killed" / "checkpoints")
    assert (folder.root / ".tmp-step-00000004" / "state.pt").read_bytes() == b"half a checkpoint"
    assert folder.latest().name == "step-00000003"

    # killed at a random moment (maybe mid-step, maybe mid-save), then resumed to the end
    rng = random.Random(os.getpid())
    process = reliability_server.spawn(argv)
    time.sleep(rng.uniform(0.2, 1.5))
    process.kill()
    process.wait()
    finish = reliability_server.spawn(argv)
    assert finish.wait() == 0, finish.stderr[-2000:]
    assert "resumed cave from" in finish.stderr
    assert not any(p.name.startswith(".tmp-") for p in folder.root.iterdir())
    a, b = exported(tmp_path / "reference"), exported(tmp_path / "killed")
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = read_csv(tmp_path / "killed" / "train.csv")
    assert [r["step"] for r in rows] == [str(s) for s in range(1, 7)]
    assert [r["loss"] for r in rows] == [r["loss"] for r in read_csv(tmp_path / "reference" / "train.csv")]
