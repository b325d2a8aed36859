"""The identity baseline: the decoded JPEG itself, the floor every restorer must beat."""

from __future__ import annotations

from methods.base import Method, RestoreRequest


class JpegIdentity(Method):
    """Returns the decoded low-quality input unchanged."""

    blind = True
    steps = 0
    description = "decoded JPEG (no restoration)"

    def restore(self, request: RestoreRequest):
        return request.lq.clone()
