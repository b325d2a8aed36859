"""Training losses: CaVE's dual objective, DISTS as a loss (pyiqa), and the latent GAN's two sides.

Images enter every loss in [0, 1].
"""

from __future__ import annotations

import contextlib
import io
import logging

import torch
import torch.nn.functional as F
from torch import nn

from methods.base import MethodError
from methods.codiff.training.config import CaveLossConfig

log = logging.getLogger(__name__)


def qf_target(qf: torch.Tensor) -> torch.Tensor:
    """The QF head's regression target (100 - QF) / 100, shaped (B, 1)."""
    return ((100.0 - qf.float()) / 100.0).view(-1, 1)


def cave_losses(restored: torch.Tensor | None, qf_output: torch.Tensor | None, hq: torch.Tensor, qf: torch.Tensor,
                weights: CaveLossConfig) -> dict[str, torch.Tensor]:
    """rec_weight * L1(restored, HQ) + qf_weight * D(QF head, target), D the configured L1 or MSE; a term whose
    output is None is off."""
    losses: dict[str, torch.Tensor] = {}
    total = hq.new_zeros(())
    if restored is not None:
        losses["rec"] = F.l1_loss(restored.float(), hq)
        total = total + weights.rec_weight * losses["rec"]
        if weights.gradient_weight:
            losses["gradient"] = gradient_l1(restored.float(), hq)
            total = total + weights.gradient_weight * losses["gradient"]
    if qf_output is not None:
        distance = F.mse_loss if weights.qf_loss == "mse" else F.l1_loss
        losses["qf"] = distance(qf_output.float(), qf_target(qf).to(qf_output.device))
        total = total + weights.qf_weight * losses["qf"]
    losses["loss"] = total
    return losses


def gradient_l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean L1 between the horizontal and between the vertical neighbour differences of x and y."""
    return (F.l1_loss(x.diff(dim=-1), y.diff(dim=-1)) + F.l1_loss(x.diff(dim=-2), y.diff(dim=-2))) / 2


# -- DISTS ------------------------------------------------------------------------------------------------------
class DistsLoss(nn.Module):
    """pyiqa's DISTS as a differentiable loss (frozen network), built from the weight caches only.

    Raises MethodError naming each missing or broken weight file and the folder it belongs in.
    """

    def __init__(self) -> None:
        super().__init__()
        import pyiqa

        from bench.metrics import metric_files
        from bench.metrics.caches import library_caches
        from bench.metrics.files import inspect_files

        problems = inspect_files(metric_files("dists"))
        if problems:
            raise MethodError("the DISTS loss (loss.dists > 0) needs pyiqa's DISTS weights: " + "; ".join(problems)
                              + ". Put them there (see `codiff-bench weights`) or set loss.dists: 0.")
        printed = io.StringIO()
        with library_caches(), contextlib.redirect_stdout(printed):  # pyiqa prints each file it loads
            self.metric = pyiqa.create_metric("dists", as_loss=True, device="cpu")
        log.debug("pyiqa: %s", printed.getvalue().strip())
        self.metric.eval()
        self.metric.requires_grad_(False)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.metric(output.float(), target.float()).mean()


# -- GAN ----------------------------------------------------------------------------------------------------
def generator_gan_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """L_G = softplus(-logits).mean(): the generator wants its latents scored real."""
    return F.softplus(-fake_logits.float()).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_D = (BCE(real, 1) + BCE(fake, 0)) / 2."""
    real = F.binary_cross_entropy_with_logits(real_logits.float(), torch.ones_like(real_logits, dtype=torch.float))
    fake = F.binary_cross_entropy_with_logits(fake_logits.float(), torch.zeros_like(fake_logits, dtype=torch.float))
    return (real + fake) / 2
