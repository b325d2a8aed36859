"""Parameter counts of full-size architectures, built on the meta device (no memory, no computation)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from bench.profile.architecture import Architecture

LORA_MARK = "lora_"


@dataclass
class PartParams:
    """Counted parameters of one stored network: total, the LoRA adapters' share, per top-level child."""

    part: str
    total: int
    lora: int
    children: dict[str, int] = field(default_factory=dict)
    note: str = ""


def count_module(module: nn.Module) -> tuple[int, int, dict[str, int]]:
    """(total, lora, per top-level child) of a module's parameters."""
    total = lora = 0
    children: dict[str, int] = {}
    for name, param in module.named_parameters():
        n = param.numel()
        total += n
        lora += n if LORA_MARK in name else 0
        child = name.split(".", 1)[0]
        children[child] = children.get(child, 0) + n
    return total, lora, children


def count_parameters(arch: Architecture) -> list[PartParams]:
    """Every part of `arch`, built on the meta device one at a time, counted."""
    result = []
    for part in arch.parts:
        with torch.device("meta"):
            module = part.build()
        total, lora, children = count_module(module)
        result.append(PartParams(part.name, total, lora, children, part.note))
        del module
    return result
