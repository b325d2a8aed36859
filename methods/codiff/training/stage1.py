"""Stage 1: CaVE dual learning (explicit: QF regression; implicit: reconstruction; dual: both).

Adam with MultiStepLR and the release's initialisation. Validation reports, per QF, the decoder's PSNR and
PSNR-B (the harness's, on luma; modes that train the decoder) and the QF head's squared error in QF units
(modes that train it).
Exports `cave.pth` (the release's plain state dict) and `cave.safetensors` + `cave.json` (this project's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from methods.codiff.cave import (
    CaVE,
    CaVEConfig,
    init_cave_weights,
    save_cave,
    save_cave_official,
)
from methods.codiff.training.config import CaveTrainConfig
from methods.codiff.training.data import ValPair
from methods.codiff.training.distributed import globalise_batchnorm
from methods.codiff.training.losses import cave_losses
from methods.codiff.training.trainer import (
    Batch,
    TrainTask,
    adam_optimizer,
    multistep_scheduler,
)
from methods.codiff.training.validation import ValidationScores


class CaveObjective(nn.Module):
    """CaVE returning what a mode trains: (decoder output or None, QF head output or None).

    The explicit mode runs only the encoder and QF head, so the decoder costs nothing there.
    """

    def __init__(self, cave: CaVE, mode: str) -> None:
        super().__init__()
        self.cave = cave
        self.mode = mode

    def forward(self, lq: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if self.mode == "explicit":
            return None, self.cave.qf_head_output(lq)
        restored, qf = self.cave(lq)
        return restored, (qf if self.mode == "dual" else None)


class CaveTask(TrainTask):
    """The stage-1 training task driven by the shared Trainer."""

    name = "cave"

    def __init__(self, config: CaveTrainConfig) -> None:
        super().__init__(config)
        self.find_unused_parameters = config.mode != "dual"

    def build_model(self) -> CaveObjective:
        model_cfg = self.config.model
        cave = CaVE(CaVEConfig(nc=tuple(model_cfg.nc), nb=model_cfg.nb))
        if model_cfg.init == "release":
            init_cave_weights(cave)
        return CaveObjective(cave, self.config.mode)

    def setup(self, accelerator: Any) -> None:
        self.accelerator = accelerator
        model = self.build_model().to(accelerator.device).train()
        if self.config.model.sync_batchnorm and accelerator.num_processes > 1:
            globalise_batchnorm(model)
        optimizer = adam_optimizer(list(model.parameters()), self.config.optim, decoupled=False)
        self.schedulers = {"cave": multistep_scheduler(optimizer, self.config.optim)}
        model, optimizer = accelerator.prepare(model, optimizer)
        self.modules, self.optimizers = {"cave": model}, {"cave": optimizer}

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        model = self.modules["cave"]
        with self.accelerator.autocast():
            restored, qf_output = model(batch["lq"])
        losses = cave_losses(restored, qf_output, batch["hq"], batch["qf"], self.config.loss)
        self.optimise(losses["loss"], "cave", list(model.parameters()))
        return {k: v.detach() for k, v in losses.items()}

    @property
    def cave(self) -> CaVE:
        return self.unwrap("cave").cave

    @torch.no_grad()
    def validate(self, pairs: list[ValPair]) -> list[dict[str, Any]]:
        cave, mode = self.cave, self.config.mode
        was_training = cave.training
        cave.eval()
        scores = ValidationScores()
        try:
            for pair in pairs:
                restored, qf_output = cave(pair.lq.to(self.device))
                scores.add_images(pair.qf, pair.lq, pair.hq, prefix="lq_")
                if mode != "explicit":
                    scores.add_images(pair.qf, restored, pair.hq)
                if mode != "implicit":
                    predicted = 100.0 * (1.0 - qf_output.float().item())
                    scores.add(pair.qf, qf_pred=predicted, qf_mse=(predicted - pair.qf) ** 2)
        finally:
            cave.train(was_training)
        return scores.rows()

    def export(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        cave = self.cave
        return [save_cave_official(cave, folder / "cave.pth"), save_cave(cave, folder / "cave")]
