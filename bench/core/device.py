"""The compute device a user asks for, checked before any work starts."""

from __future__ import annotations

from bench.core.errors import BenchError


class DeviceError(BenchError):
    """The requested device is not there (no CUDA, a GPU index out of range, a misspelt name)."""


def checked_device(name: str | None) -> str:
    """`name` (default 'cpu') when this machine has it; DeviceError saying what is available otherwise."""
    import torch

    name = (name or "cpu").strip()
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device {name!r}: use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise DeviceError(f"device {name!r} asked for, but this machine has no CUDA GPU visible to PyTorch "
                              "(use --device cpu)")
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {name!r} asked for, but only {count} CUDA GPU(s) are visible")
    elif device.type != "cpu":
        raise DeviceError(f"device {name!r} is not supported here: use cpu, cuda or cuda:N")
    return name
