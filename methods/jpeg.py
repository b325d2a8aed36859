"""The identity baseline: the decoded JPEG itself, the floor every restorer must beat."""

from __future__ import annotations

import torch

from methods.base import Method
from methods.registry import register_method


@register_method("jpeg")
class JpegIdentity(Method):
    """Returns the decoded low-quality input unchanged."""

    blind = True
    steps = 0
    description = "decoded JPEG (no restoration)"

    def restore(self, lq: torch.Tensor, *, qf: int | None = None, jpeg_bytes: bytes | None = None) -> torch.Tensor:
        return lq.clone()
