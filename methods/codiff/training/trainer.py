"""The one training loop both stages share: accelerate, data, logging, validation, checkpoints, resume.

A stage is a `TrainTask`: it builds and prepares its modules and optimisers, takes one optimisation step on
a batch, validates, and exports inference-format files. The loop owns everything else, so a resumed run
continues exactly where the checkpoint left it (models, optimisers, schedulers, grad scaler, RNG states and
the step, with data drawn by global sample number), on one CPU process or many GPUs under `accelerate launch`.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from bench.core.atomic import atomic_write_text
from bench.core.config import to_dict
from bench.core.errors import BenchError, ConfigError
from methods.codiff.checkpoint import CheckpointError
from methods.codiff.training.checkpointing import (
    STATE_FILE,
    CheckpointFolder,
    load_tensors,
    rng_state,
    save_tensors,
    set_rng_state,
)
from methods.codiff.training.config import AdamConfig, LoopConfig
from methods.codiff.training.data import (
    ValPair,
    build_train_pairs,
    build_val_pairs,
    train_loader,
)
from methods.codiff.training.logs import MetricsLog, rows_to_csv

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]


class TrainTask(ABC):
    """A training stage. Subclasses fill `modules`, `optimizers` and `schedulers` in `setup` and implement
    `train_step`, `validate` and `export`; modules named in `trainable_only` checkpoint only their trainable
    parameters (the frozen rest is rebuilt from its source files)."""

    name: ClassVar[str] = ""
    find_unused_parameters: bool = False  # DDP: some parameters may get no gradient in a step

    def __init__(self, config: Any) -> None:
        self.config = config
        self.accelerator: Any = None
        self.modules: dict[str, nn.Module] = {}
        self.trainable_only: set[str] = set()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, Any] = {}

    @property
    def loop(self) -> LoopConfig:
        return self.config.train

    # -- what a stage implements ---------------------------------------------------------------------------
    @abstractmethod
    def setup(self, accelerator: Any) -> None:
        """Build modules and optimisers, prepared with `accelerator`."""

    @abstractmethod
    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        """One optimisation step on this process's share of the batch; returns detached scalar losses."""

    @abstractmethod
    def validate(self, pairs: list[ValPair]) -> list[dict[str, Any]]:
        """Rows of validation results (one per QF), computed on the main process."""

    @abstractmethod
    def export(self, folder: Path) -> list[Path]:
        """Write the trained modules in the formats the inference path loads; return the files."""

    def summary(self) -> dict[str, Any]:
        """Parameter counts of each module (all and trainable)."""
        out = {}
        for name in self.modules:
            params = list(self.unwrap(name).parameters())
            out[name] = {"parameters": sum(p.numel() for p in params),
                         "trainable": sum(p.numel() for p in params if p.requires_grad)}
        return out

    # -- shared helpers -----------------------------------------------------------------------------------
    def unwrap(self, name: str) -> nn.Module:
        return self.accelerator.unwrap_model(self.modules[name])

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def optimise(self, loss: torch.Tensor, optimizer: str, parameters: list[nn.Parameter]) -> None:
        """Backward, optional gradient-norm clipping, step, scheduler step, zero grads."""
        self.accelerator.backward(loss)
        if self.loop.grad_clip:
            self.accelerator.clip_grad_norm_(parameters, self.loop.grad_clip)
        self.optimizers[optimizer].step()
        if optimizer in self.schedulers:
            self.schedulers[optimizer].step()
        self.optimizers[optimizer].zero_grad(set_to_none=True)

    def learning_rates(self) -> dict[str, float]:
        return {f"lr_{name}" if len(self.optimizers) > 1 else "lr": opt.param_groups[0]["lr"]
                for name, opt in self.optimizers.items()}

    def _module_state(self, name: str) -> dict[str, torch.Tensor]:
        module = self.unwrap(name)
        state = module.state_dict()
        if name in self.trainable_only:
            keep = {k for k, p in module.named_parameters() if p.requires_grad}
            state = {k: v for k, v in state.items() if k in keep}
        return {k: v.detach().cpu() for k, v in state.items()}

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "modules": {name: self._module_state(name) for name in self.modules},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: sch.state_dict() for name, sch in self.schedulers.items()},
        }
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any], source: str) -> None:
        for name in self.modules:
            if name not in state["modules"]:
                raise CheckpointError(f"{source}: no state for module {name!r}")
            module = self.unwrap(name)
            saved = state["modules"][name]
            if name in self.trainable_only:
                expected = {k for k, p in module.named_parameters() if p.requires_grad}
                if set(saved) != expected:
                    raise CheckpointError(f"{source}: trainable parameters of {name!r} do not match this config "
                                          f"(missing {sorted(expected - set(saved))[:5]}, "
                                          f"unexpected {sorted(set(saved) - expected)[:5]})")
                module.load_state_dict(saved, strict=False)
            else:
                module.load_state_dict(saved)
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sch in self.schedulers.items():
            sch.load_state_dict(state["schedulers"][name])
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])


def adam_optimizer(parameters: list[nn.Parameter], config: AdamConfig, decoupled: bool) -> torch.optim.Optimizer:
    """Adam (decoupled=False) or AdamW with the config's settings."""
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    return cls(parameters, lr=config.lr, betas=tuple(config.betas), eps=config.eps, weight_decay=config.weight_decay)


def multistep_scheduler(optimizer: torch.optim.Optimizer, config: AdamConfig) -> Any:
    """MultiStepLR over optimisation steps; without milestones the learning rate stays constant."""
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.milestones), gamma=config.gamma)


def make_accelerator(loop: LoopConfig, find_unused_parameters: bool) -> Any:
    """An Accelerator for the loop's device and precision (fp16 needs a GPU; on a CPU it trains in fp32)."""
    from accelerate import Accelerator, DistributedDataParallelKwargs

    cpu = loop.cpu or not torch.cuda.is_available()
    precision = loop.mixed_precision
    if cpu and precision == "fp16":
        log.info("fp16 mixed precision needs a GPU: training in fp32 on the CPU")
        precision = "no"
    return Accelerator(cpu=cpu, mixed_precision=precision,
                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=find_unused_parameters)])


@dataclass
class RunOptions:
    """Command-line choices of a training run.

    resume: 'auto' (the newest complete checkpoint in the output folder, if any), 'never', or a step folder.
    """

    max_steps: int | None = None
    dry_run: bool = False
    resume: str = "auto"
    progress: bool = True


@dataclass
class RunResult:
    """What a run did: the step reached, the last losses, validation rows and written files."""

    step: int
    losses: dict[str, float] = field(default_factory=dict)
    validation: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None
    exported: list[Path] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    main_process: bool = True


class Trainer:
    """Runs a TrainTask to `steps` (or `--max-steps`), resuming from the newest complete checkpoint."""

    def __init__(self, task: TrainTask, options: RunOptions | None = None) -> None:
        self.task = task
        self.options = options or RunOptions()
        self.loop: LoopConfig = task.config.train
        self.output = Path(self.loop.output_dir)
        self.checkpoints = CheckpointFolder(self.output / "checkpoints", self.loop.keep_checkpoints)

    def run(self) -> RunResult:
        from accelerate.utils import set_seed

        loop, task, dry = self.loop, self.task, self.options.dry_run
        steps = int(self.options.max_steps if self.options.max_steps is not None else loop.steps)
        threads = torch.get_num_threads()
        if loop.threads:
            torch.set_num_threads(loop.threads)
        accelerator = make_accelerator(loop, task.find_unused_parameters)
        task.accelerator = accelerator
        set_seed(loop.seed)
        lock = None
        made = _first_missing(self.output)
        try:
            if accelerator.is_main_process and not dry:
                from bench.core.lock import RunLock

                lock = RunLock(self.output)
                lock.acquire()
            return self._run(accelerator, steps)
        except BenchError:
            if lock is not None and made is not None:  # a mistake found before any write: leave no folder behind
                lock.release()
                lock = None
                _remove_if_only_lock(self.output, made)
            raise
        finally:
            if lock is not None:
                lock.release()
            torch.set_num_threads(threads)

    def _run(self, accelerator: Any, steps: int) -> RunResult:
        loop, task, dry = self.loop, self.task, self.options.dry_run
        main = accelerator.is_main_process
        task.setup(accelerator)
        pairs = build_train_pairs(task.config.data, loop.seed)
        start = 0 if dry else self._resume(accelerator)
        result = RunResult(step=start, main_process=main, summary={
            "images": len(pairs), "qf_support": pairs.synth.qf.describe(), "processes": accelerator.num_processes,
            **task.summary()})
        if dry:
            log.info("dry run: %s", result.summary)
        if start >= steps and not dry:
            log.info("%s: already at step %d of %d; nothing to train", task.name, start, steps)
            return result
        writes = main and not dry
        val_pairs = build_val_pairs(task.config.val, pairs.synth.protocol, task.config.data.data_root) \
            if writes else []
        loader = train_loader(pairs, start_step=start, global_batch=loop.batch_size, rank=accelerator.process_index,
                              world_size=accelerator.num_processes, num_workers=task.config.data.num_workers,
                              seed=loop.seed)
        if writes:  # only now, with every input checked
            atomic_write_text(self.output / "config.yaml", _yaml(to_dict(task.config)))
        metrics = MetricsLog(self.output, resume_step=start, tensorboard=loop.tensorboard) if writes else None
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=start, desc=f"train-{task.name}", unit="step", dynamic_ncols=True,
                   disable=not (main and self.options.progress))
        meter = LossMeter(loop.batch_size)
        batches = iter(loader)
        try:
            for step in range(start, steps):
                meter.add(task.train_step(batch_to_device(next(batches), accelerator.device), step))
                done = result.step = step + 1
                bar.update(1)
                last = done == steps or dry
                logging_step = last or done % max(1, loop.log_every) == 0
                if logging_step:
                    result.losses = self._log_losses(accelerator, meter, metrics, done)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in result.losses.items()}, refresh=False)
                if dry:
                    break
                if last or _every(done, task.config.val.every):
                    result.validation = self._validate(accelerator, val_pairs, metrics, done)
                if last or _every(done, loop.checkpoint_every):
                    result.checkpoint = self._save(accelerator, done, result.validation)
                if metrics is not None and logging_step:
                    metrics.flush()
        finally:
            bar.close()
            if metrics is not None:
                metrics.close()
        if writes and result.checkpoint is not None:
            result.exported = task.export(self.output)
        accelerator.wait_for_everyone()
        return result

    def _log_losses(self, accelerator: Any, meter: LossMeter, metrics: MetricsLog | None,
                    step: int) -> dict[str, float]:
        """Mean losses since the last log, averaged over processes; a `train` row on the main process."""
        means, seconds = meter.take(accelerator)
        if metrics is not None:
            metrics.add("train", {"step": step, **means, **self.task.learning_rates(), "seconds_per_step": seconds,
                                  "samples_per_second": meter.batch_size / seconds if seconds else math.nan})
        return means

    # -- pieces ---------------------------------------------------------------------------------------------
    def _resume(self, accelerator: Any) -> int:
        """Load the checkpoint the options name (or the newest complete one) and return its step."""
        choice = self.options.resume
        if accelerator.is_main_process:
            self.checkpoints.remove_stale()
        accelerator.wait_for_everyone()
        if choice == "never":
            if self.checkpoints.complete():
                raise ConfigError(f"{self.checkpoints.root} already holds checkpoints; resume or choose another "
                                  "train.output_dir")
            return 0
        path = self.checkpoints.latest() if choice == "auto" else Path(choice)
        if path is None:
            return 0
        if not self.checkpoints.is_complete(path):
            raise CheckpointError(f"checkpoint {path} is incomplete or missing (no valid {path / 'manifest.json'})")
        state = load_tensors(path / STATE_FILE)
        self.task.load_state_dict(state["task"], str(path))
        rng_file = path / f"rng-{accelerator.process_index}.pt"
        if rng_file.is_file() and state.get("world_size") == accelerator.num_processes:
            set_rng_state(load_tensors(rng_file))
        else:
            log.warning("%s was saved by %s process(es); random states not restored for this process count",
                        path, state.get("world_size"))
        log.info("resumed %s from %s (step %d)", self.task.name, path, state["step"])
        return int(state["step"])

    def _validate(self, accelerator: Any, pairs: list[ValPair], metrics: MetricsLog | None,
                  step: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        if accelerator.is_main_process and pairs:
            rows = self.task.validate(pairs)
            for row in rows:
                if metrics is not None:
                    metrics.add("val", {"step": step, **row}, tag=f"qf{row['qf']}")
            log.info("step %d validation: %s", step, "; ".join(
                ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
                for row in rows))
        accelerator.wait_for_everyone()
        return rows

    def _save(self, accelerator: Any, step: int, validation: list[dict[str, Any]]) -> Path | None:
        """Write a checkpoint: every process its RNG state, the main process the rest, then commit.

        On several nodes the output folder must be on a file system they share."""
        staging = self.checkpoints.staging(step)
        if accelerator.is_main_process:
            self.checkpoints.prepare_staging(step)
        accelerator.wait_for_everyone()
        save_tensors(rng_state(), staging / f"rng-{accelerator.process_index}.pt")
        accelerator.wait_for_everyone()
        final = None
        if accelerator.is_main_process:
            save_tensors({"step": step, "world_size": accelerator.num_processes, "task": self.task.state_dict()},
                         staging / STATE_FILE)
            self.task.export(staging / "export")
            if validation:
                (staging / "validation.csv").write_text(rows_to_csv(validation))
            final = self.checkpoints.commit(staging, step, {"stage": self.task.name})
        accelerator.wait_for_everyone()
        return final if final is not None else self.checkpoints.path_for(step)


class LossMeter:
    """Sums of the losses of the steps since the last log, and their wall time."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.sums: dict[str, torch.Tensor] = {}
        self.count, self.tick = 0, time.perf_counter()

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for key, value in losses.items():
            self.sums[key] = self.sums.get(key, 0) + value.detach().float()
        self.count += 1

    def take(self, accelerator: Any) -> tuple[dict[str, float], float]:
        """(mean losses over steps and processes, seconds per step), then start over."""
        means = {k: accelerator.reduce(v / self.count, "mean").item() for k, v in self.sums.items()}
        seconds = (time.perf_counter() - self.tick) / max(1, self.count)
        self.sums, self.count, self.tick = {}, 0, time.perf_counter()
        return means, seconds


def _first_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist yet (None when `folder` exists)."""
    missing = None
    for part in (folder, *folder.parents):
        if part.exists():
            return missing
        missing = part
    return missing


def _remove_if_only_lock(folder: Path, made: Path) -> None:
    """Remove `folder`'s lock file, then the empty folders up to `made`, the outermost one this run created."""
    if any(p.name != ".lock" for p in folder.iterdir()):
        return
    (folder / ".lock").unlink(missing_ok=True)
    for part in (folder, *folder.parents):
        part.rmdir()
        if part == made:
            return


def _every(step: int, interval: int) -> bool:
    return bool(interval) and step % interval == 0


def batch_to_device(batch: dict[str, Any], device: torch.device) -> Batch:
    """uint8 image tensors to float [0, 1] on the device; QFs to a float tensor."""
    return {"hq": batch["hq"].to(device).float().div_(255.0), "lq": batch["lq"].to(device).float().div_(255.0),
            "qf": torch.as_tensor(batch["qf"], device=device).float()}


def _yaml(data: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)
