"""Stage-2 training (the CODiff generator): loss combinations, the GAN's gradients, prompts, resume, and exports
that the `codiff` method loads and runs exactly as trained."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from bench.core.config import from_dict, merge
from bench.core.errors import ConfigError
from methods.base import MethodError
from methods.codiff.training.config import CodiffTrainConfig
from methods.codiff.training.data import build_train_pairs, train_loader
from methods.codiff.training.stage2 import CodiffTask, empty_prompt_embedding
from methods.codiff.training.trainer import (
    RunOptions,
    Trainer,
    batch_to_device,
    make_accelerator,
)

PARITY = Path(__file__).resolve().parents[1].parent / "shared" / "parity" / "official-tiny"


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> dict[str, Path]:
    """A tiny SD folder and CaVE: the parity vectors' when present, else stand-ins built from configs."""
    if (PARITY / "tiny-sd").is_dir() and (PARITY / "cave.pth").is_file():
        return {"sd": PARITY / "tiny-sd", "cave": PARITY / "cave.pth"}
    from methods.codiff.standins import write_standin_weights

    return write_standin_weights(tmp_path_factory.mktemp("tiny-weights"))


def codiff_config(weights: dict[str, Path], images: Path, output: Path, **sections) -> CodiffTrainConfig:
    """A tiny stage-2 config: LoRA rank 4, 32 px patches, batch 2, fp32, one thread, no DISTS."""
    base = {
        "model": {"sd_path": str(weights["sd"]), "cave_path": str(weights["cave"]), "lora_rank": 4},
        "loss": {"mse": 1.0, "dists": 0.0, "gan": 0.05, "disc": 1.0},
        "optim": {"lr": 1.0e-3}, "disc_optim": {"lr": 1.0e-3},
        "train": {"output_dir": str(output), "steps": 3, "batch_size": 2, "log_every": 1, "checkpoint_every": 2,
                  "keep_checkpoints": 5, "mixed_precision": "no", "grad_clip": 1.0, "threads": 1,
                  "tensorboard": False},
        "data": {"train": [str(images)], "patch_size": 32, "num_workers": 0, "preload": True},
        "val": {"folder": str(images), "qfs": [10], "every": 0, "max_images": 1, "crop": 32},
    }
    return from_dict(CodiffTrainConfig, merge(base, sections))


def built_task(config: CodiffTrainConfig) -> tuple[CodiffTask, dict]:
    """A task set up outside the Trainer, and a fixed batch."""
    task = CodiffTask(config)
    accelerator = make_accelerator(config.train, task.find_unused_parameters)
    torch.manual_seed(0)
    task.setup(accelerator)
    pairs = build_train_pairs(config.data, seed=0)
    loader = train_loader(pairs, start_step=0, global_batch=2, rank=0, world_size=1, num_workers=0, seed=0)
    return task, batch_to_device(next(iter(loader)), accelerator.device)


COMBINATIONS = {  # the first also runs the UNet and VAE with gradient checkpointing
    "mse": {"gan": 0.0},
    "mse+gan": {},
    "mse+gan(release, no gradient)": {"release_gan_nograd": True},
    "mse+dists+gan": {"dists": 1.0},
}


@pytest.mark.parametrize("name", list(COMBINATIONS))
def test_loss_combinations_reduce_the_loss_on_a_fixed_batch(name, tiny_weights, train_images, tmp_path, one_thread,
                                                              request, monkeypatch):
    loss = COMBINATIONS[name]
    if loss.get("dists"):
        from bench.metrics.caches import cache_environment

        for key, value in cache_environment(request.getfixturevalue("dists_cache")).items():
            monkeypatch.setenv(key, value)
    checkpointing = name == "mse"
    task, batch = built_task(codiff_config(tiny_weights, train_images, tmp_path, loss=loss,
                                           model={"gradient_checkpointing": checkpointing}))
    assert task.objective.generator.unet.is_gradient_checkpointing == checkpointing
    steps = [task.train_step(batch, step) for step in range(5)]
    terms = {"mse"} | ({"dists"} if loss.get("dists") else set()) | ({"gan", "disc"} if "gan" in name else set())
    assert set(steps[0]) == terms | {"loss"}
    fidelity = [float(s["mse"] + s.get("dists", 0)) for s in steps]
    assert fidelity[-1] < 0.95 * fidelity[0], fidelity
    if "gan" in name:
        disc = [float(s["disc"]) for s in steps]
        assert disc[-1] < disc[0], disc


def test_generator_gradient_flows_through_the_frozen_discriminator(tiny_weights, train_images, tmp_path, one_thread):
    task, batch = built_task(codiff_config(tiny_weights, train_images, tmp_path))
    discriminator = task.unwrap("discriminator")
    z = torch.randn(2, 4, 16, 16, requires_grad=True)
    task._score_fixed(z).mean().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert all(p.grad is None for p in discriminator.parameters())  # held fixed for the generator's step
    assert all(p.requires_grad for p in discriminator.trainable_parameters())  # and trainable again after
    task.config.loss.release_gan_nograd = True  # the release: no gradient leaves L_G ...
    assert not task._score_fixed(z).requires_grad
    lora = {n: p.detach().clone() for n, p in discriminator.named_parameters() if "lora_B" in n or n == "context"}
    head = [p.detach().clone() for p in discriminator.head.parameters()]
    task._discriminator_step(batch["hq"], torch.randn(2, 4, 16, 16))
    after = dict(discriminator.named_parameters())
    assert all(torch.equal(v, after[n]) for n, v in lora.items())  # ... and only the head trains
    assert not all(torch.equal(a, b) for a, b in zip(head, discriminator.head.parameters()))


def test_learnable_prompt_trains_instead_of_proj_and_is_exported(tiny_weights, train_images, tmp_path, one_thread):
    task, batch = built_task(codiff_config(tiny_weights, train_images, tmp_path,
                                           model={"prompt": "learnable"}, loss={"gan": 0.0}))
    objective = task.objective
    prompt, proj = objective.prompt.detach().clone(), objective.generator.proj.weight.detach().clone()
    task.train_step(batch, 0)
    assert not torch.equal(prompt, objective.prompt) and torch.equal(proj, objective.generator.proj.weight)
    names = [p.name for p in task.export(tmp_path / "export")]
    assert names == ["codiff.pkl", "codiff.safetensors", "prompt.safetensors"]
    assert json.loads((tmp_path / "export" / "prompt.json").read_text())["config"] == {"source": "learnable"}

    # the Table 3 row as a harness method: conditioned on the exported prompt, no CaVE file needed
    from methods.registry import create_method

    method = create_method("codiff", sd_path=str(tiny_weights["sd"]), codiff=str(tmp_path / "export" / "codiff.pkl"),
                           prompt="learnable", cave=str(tmp_path / "absent.pth"), color_fix="none", merge_lora=False)
    assert method.missing_weights() == [] and method.pipeline is None
    method.load()
    lq = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        trained = objective.eval()(lq)[0]
    assert (method.pipeline.generate(lq) * 0.5 + 0.5 - trained).abs().max() < 1e-5
    with pytest.raises(MethodError, match="prompt: .dape. is not one of"):
        create_method("codiff", prompt="dape")


def test_empty_prompt_needs_a_text_encoder(tiny_weights, tmp_path):
    with pytest.raises(ConfigError, match=r"text encoder and tokenizer .*text_encoder/config\.json"):
        empty_prompt_embedding(str(tiny_weights["sd"]))
    from methods.codiff.standins import write_tiny_text_encoder

    sd = tmp_path / "sd"
    sd.mkdir()
    for part in ("unet", "vae", "scheduler"):
        (sd / part).symlink_to(Path(tiny_weights["sd"]).resolve() / part)
    write_tiny_text_encoder(sd)
    embedding = empty_prompt_embedding(str(sd))
    assert embedding.shape == (1, 77, 1024) and torch.equal(embedding, empty_prompt_embedding(str(sd)))


def test_missing_dists_weights_and_no_loss_are_clear_errors(tiny_weights, train_images, tmp_path, monkeypatch):
    from methods.codiff.training.losses import DistsLoss

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(MethodError, match=r"DISTS_weights-f5e65c96\.pth is missing: expected at .*empty/hub/pyiqa"):
        DistsLoss()
    with pytest.raises(ConfigError, match="no generator loss"):
        CodiffTask(codiff_config(tiny_weights, train_images, tmp_path, loss={"mse": 0.0, "release_gan_nograd": True}))


def read_losses(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="") as fh:
        return [(row["step"], row["loss"]) for row in csv.DictReader(fh)]


def test_trained_generator_loads_in_the_codiff_method_and_resumes_exactly(tiny_weights, train_images, tmp_path,
                                                                         one_thread):
    from methods.registry import create_method

    config = codiff_config(tiny_weights, train_images, tmp_path / "whole")
    task = CodiffTask(config)
    result = Trainer(task, RunOptions(progress=False)).run()
    assert result.step == 3 and [p.name for p in result.exported] == ["codiff.pkl", "codiff.safetensors"]
    assert {"psnr", "ssim", "lq_psnr"} <= set(result.validation[0])
    lq = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(1))
    objective = task.objective.eval()
    with torch.no_grad():
        trained = objective(lq)[0]
    for name, merge_lora, tolerance in (("codiff.pkl", False, 0.0), ("codiff.safetensors", True, 1e-4)):
        method = create_method("codiff", sd_path=str(tiny_weights["sd"]), codiff=str(tmp_path / "whole" / name),
                               cave=str(tiny_weights["cave"]), color_fix="none", merge_lora=merge_lora)
        method.load()
        out = method.pipeline.generate(lq) * 0.5 + 0.5
        assert (out - trained).abs().max() <= tolerance, (name, merge_lora)

    # resume from the step-2 checkpoint in a fresh folder: the same final weights and losses
    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "whole" / "checkpoints" / "step-00000002", resumed / "checkpoints" / "step-00000002")
    again = Trainer(CodiffTask(codiff_config(tiny_weights, train_images, resumed)), RunOptions(progress=False)).run()
    assert again.step == 3
    a = torch.load(tmp_path / "whole" / "codiff.pkl", weights_only=True)
    b = torch.load(resumed / "codiff.pkl", weights_only=True)
    for part in ("state_dict_unet", "state_dict_vae", "proj"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), part
    assert read_losses(resumed / "train.csv") == read_losses(tmp_path / "whole" / "train.csv")[2:]
    state = torch.load(resumed / "checkpoints" / "step-00000003" / "state.pt", weights_only=True)
    assert set(state["task"]["modules"]) == {"generator", "discriminator"}
    assert not any("cave." in k for k in state["task"]["modules"]["generator"])  # frozen parts are not stored


def test_real_latents_are_the_release_s_pristine_vae_samples(tiny_weights, train_images, tmp_path, one_thread):
    from methods.codiff.sd import load_sd_components

    task, batch = built_task(codiff_config(tiny_weights, train_images, tmp_path))
    hq = batch["hq"]
    assert not any("lora" in name for name, _ in task.real_latents.named_parameters())
    vae = load_sd_components(str(tiny_weights["sd"])).vae  # SD's own encoder, no adapters
    torch.manual_seed(5)
    with torch.no_grad():
        expected = vae.encode(hq * 2 - 1).latent_dist.sample() * vae.config.scaling_factor
    torch.manual_seed(5)
    real = task.real_latents(hq)
    assert torch.equal(real, expected) and not torch.equal(real, task.real_latents(hq))  # a sample each time
    adapted = task.objective.latents(hq).detach()  # the generator's LoRA encoder, posterior mode
    with torch.no_grad():  # a trained VAE adapter changes the generator's latents, not the real ones
        for name, p in task.objective.generator.vae.named_parameters():
            if "lora_B" in name:
                p.fill_(0.05)
    assert (task.objective.latents(hq).detach() - adapted).abs().max() > 1e-3
    torch.manual_seed(5)
    assert torch.equal(task.real_latents(hq), expected)
    discriminator = task.unwrap("discriminator")
    lora = {n: p.detach() for n, p in discriminator.named_parameters() if "lora_" in n}
    assert all(float(p.abs().max()) == 0 for n, p in lora.items() if "lora_B" in n)
    # peft's default init of A (Kaiming-uniform, within 1 / sqrt(fan-in)), not "gaussian" (std 1 / rank)
    assert all(float(p.abs().max()) <= p[0].numel() ** -0.5 for n, p in lora.items() if "lora_A" in n)

    old, _ = built_task(codiff_config(tiny_weights, train_images, tmp_path, discriminator={"real_latents": "generator"},
                                      model={"sample_latent": True}))
    assert old.real_latents is None and old.objective.generator.sample_latent
    seen = []
    old.unwrap("generator").latents = lambda image: seen.append(image) or torch.zeros(2, 4, 16, 16)
    old._discriminator_step(hq, torch.randn(2, 4, 16, 16))
    assert len(seen) == 1 and torch.equal(seen[0], hq)


def test_validation_reports_the_paper_metrics_present_after_the_colour_fix(tiny_weights, train_images, tmp_path,
                                                                          one_thread, dists_cache, monkeypatch):
    from bench.core.protocol import JpegProtocol
    from bench.metrics.caches import cache_environment
    from methods.codiff.training.data import build_val_pairs

    for key, value in cache_environment(dists_cache).items():
        monkeypatch.setenv(key, value)
    config = codiff_config(tiny_weights, train_images, tmp_path, loss={"gan": 0.0},
                           val={"metrics": ["dists", "lpips"], "color_fix": "adain"})
    task, _ = built_task(config)
    assert config.val.qfs == [10] and set(task.config.val.metrics) == {"dists", "lpips"}
    pairs = build_val_pairs(config.val, JpegProtocol.from_dict(config.data.protocol))
    rows = task.validate(pairs)
    assert {"psnr", "ssim", "dists", "lq_psnr", "lq_ssim"} <= set(rows[0]) and "lpips" not in rows[0]
    assert ".pth" in task.scores.skipped["lpips"]  # its weights are absent: skipped, saying which file
    fixed = task.validate(pairs)[0]["psnr"]
    task.config.val.color_fix = "none"
    assert task.validate(pairs)[0]["psnr"] != fixed
