"""BatchNorm whose training statistics span the global batch of every process, on any device.

torch's SyncBatchNorm runs on GPUs only; `GlobalBatchNorm2d` does the same with differentiable all-reduces
that gloo (CPU) supports, so N processes with batch B/N train exactly like one process with batch B.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _SumAllProcesses(torch.autograd.Function):
    """Sum over processes; the gradient of a sum shared by all is the sum of their gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = tensor.clone()
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out = grad.clone()
        dist.all_reduce(out)
        return out


def all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    return _SumAllProcesses.apply(tensor)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d with mean and variance over all processes' batches while training."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and _distributed()):
            return super().forward(x)
        dims = (0, 2, 3)
        count = all_reduce(torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device))
        mean = all_reduce(x.sum(dims)) / count
        centred = x - mean[None, :, None, None]
        var = all_reduce((centred * centred).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * count / (count - 1).clamp(min=1)
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(unbiased, momentum)
        out = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            out = out * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return out


class GroupedBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d that, while training, normalises each run of `group` samples of its batch on its own and
    keeps the running statistics of the first run only: the release's DataParallel, whose replicas (16
    samples each) normalise apart and whose replica 0 holds the module's buffers."""

    def __init__(self, *args: Any, group: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.shape[0] <= self.group:
            return super().forward(x)
        first, *rest = x.split(self.group)
        return torch.cat([super().forward(first)] + [
            F.batch_norm(part, None, None, self.weight, self.bias, True, 0.0, self.eps) for part in rest])


def _swap_batchnorm(module: nn.Module, make: Callable[[nn.BatchNorm2d], nn.BatchNorm2d]) -> nn.Module:
    """Replace every plain BatchNorm2d of `module` by make(it), keeping its state and mode."""
    for name, child in list(module.named_modules()):
        if type(child) is not nn.BatchNorm2d:
            continue
        replacement = make(child)
        replacement.load_state_dict(child.state_dict())
        replacement.train(child.training)
        parent_name, _, attr = name.rpartition(".")
        setattr(module.get_submodule(parent_name) if parent_name else module, attr, replacement)
    return module


def _args(bn: nn.BatchNorm2d) -> tuple:
    return bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats


def globalise_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm2d of `module` for a global one (SyncBatchNorm on GPUs), keeping its state."""
    if any(p.is_cuda for p in module.parameters()):
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _swap_batchnorm(module, lambda bn: GlobalBatchNorm2d(*_args(bn)))


def group_batchnorm(module: nn.Module, group: int) -> nn.Module:
    """Swap every BatchNorm2d of `module` for a `GroupedBatchNorm2d` over runs of `group` samples."""
    return _swap_batchnorm(module, lambda bn: GroupedBatchNorm2d(*_args(bn), group=group))
