"""Stage 1: CaVE dual learning (explicit: QF regression; implicit: reconstruction; dual: both).

Adam with MultiStepLR and the configured initialisation. Validation (cave_eval) reports, per QF, the
decoder's PSNR and PSNR-B gain over the JPEG (modes that train the decoder), the QF head's MAE and MSE in QF
units (modes that train it), and over all QFs the embedding's silhouette and linear-probe error.
Exports `cave.safetensors` + `cave.json` (this project's format) and, when the network is the release's
architecture, `cave.pth` (the release's plain state dict).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.core.errors import ConfigError
from methods.codiff.cave import (
    CaVE,
    init_cave_weights,
    init_scaled_weights,
    load_cave,
    save_cave,
    save_cave_official,
)
from methods.codiff.training.cave_eval import evaluate_cave
from methods.codiff.training.config import CaveTrainConfig
from methods.codiff.training.data import ValPair
from methods.codiff.training.distributed import globalise_batchnorm, group_batchnorm
from methods.codiff.training.losses import cave_losses
from methods.codiff.training.trainer import (
    Batch,
    TrainTask,
    adam_optimizer,
    multistep_scheduler,
)

INITIALISERS = {"release": init_cave_weights, "scaled": init_scaled_weights, "default": lambda model: model}
DECODER_PARTS = ("m_body_decoder", "m_up3", "m_up2", "m_up1", "m_tail")  # what `trainable: decoder` trains


class CaveObjective(nn.Module):
    """CaVE returning what a mode trains: (decoder output or None, QF head output or None).

    The explicit mode runs only the encoder and QF head, so the decoder costs nothing there.
    """

    def __init__(self, cave: CaVE, mode: str, trainable: str = "all") -> None:
        super().__init__()
        self.cave = cave
        self.mode = mode
        self.trainable = trainable

    @property
    def frozen(self) -> list[nn.Module]:
        """The parts of CaVE that do not train."""
        if self.trainable == "all":
            return []
        return [module for name, module in self.cave.named_children() if name not in DECODER_PARTS]

    def freeze(self) -> CaveObjective:
        """Stop gradients to the frozen parts (call after any module swap, such as grouped BatchNorm)."""
        for module in self.frozen:
            module.requires_grad_(False)
        return self.train(self.training)

    def train(self, mode: bool = True) -> CaveObjective:
        """As nn.Module.train, but frozen parts stay in eval mode (their BatchNorm statistics never move)."""
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self

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
        model = self.config.model
        cave = CaVE(model.architecture())
        if model.start_from:
            start = load_cave(model.start_from)
            if start.config != cave.config:
                raise ConfigError(f"model.start_from {model.start_from}: its architecture {start.config.to_dict()} "
                                  f"is not the config's {cave.config.to_dict()}")
            cave.load_state_dict(start.state_dict())
        else:
            INITIALISERS[model.init](cave)
        return CaveObjective(cave, self.config.mode, model.trainable)

    def setup(self, accelerator: Any) -> None:
        self.accelerator = accelerator
        model = self.build_model().to(accelerator.device).train()
        if self.config.model.sync_batchnorm and accelerator.num_processes > 1:
            globalise_batchnorm(model)
        if self.config.model.batchnorm_group:
            group_batchnorm(model, self.config.model.batchnorm_group)
        model.freeze()
        self.trained = [p for p in model.parameters() if p.requires_grad]
        optimizer = adam_optimizer(self.trained, self.config.optim, decoupled=False)
        self.schedulers = {"cave": multistep_scheduler(optimizer, self.config.optim)}
        model, optimizer = accelerator.prepare(model, optimizer)
        self.modules, self.optimizers = {"cave": model}, {"cave": optimizer}

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        model = self.modules["cave"]
        with self.accelerator.autocast():
            restored, qf_output = model(batch["lq"])
        losses = cave_losses(restored, qf_output, batch["hq"], batch["qf"], self.config.loss)
        self.optimise(losses["loss"], "cave", self.trained)
        return {k: v.detach() for k, v in losses.items()}

    @property
    def cave(self) -> CaVE:
        return self.unwrap("cave").cave

    def validate(self, pairs: list[ValPair]) -> list[dict[str, Any]]:
        mode = self.config.mode
        return evaluate_cave(self.cave, pairs, self.config.val.unseen, qf_head=mode != "implicit",
                             decoder=mode != "explicit", device=self.device)

    def export(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        cave = self.cave
        files = [save_cave(cave, folder / "cave")]
        if set(cave.config.to_dict()) == {"nc", "nb"}:  # the release's format cannot say more than the widths
            files.insert(0, save_cave_official(cave, folder / "cave.pth"))
        return files
