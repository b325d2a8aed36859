"""The non-diffusion rows: FBCNN (spandrel's architecture at the released size) and the `jpeg` identity."""

from __future__ import annotations

from bench.profile.architecture import Architecture, InputSpec, Part, Stage, image_calls
from methods.architectures.stages import Apply


def fbcnn_network():
    """FBCNN as released (nc 64/128/256/512, nb 4, strided-conv down, transposed-conv up), random weights."""
    from spandrel.architectures.FBCNN import FBCNN

    return FBCNN()


def fbcnn() -> Architecture:
    stage = Stage("FBCNN", ("fbcnn",), lambda p: Apply(p["fbcnn"], lambda m, x: m(x)[0]),
                  lambda e: [InputSpec((1, 3, *e["image"]))], image_calls(), {"image": 8})
    return Architecture(method="fbcnn", label="FBCNN", steps=1, parts=[Part("fbcnn", fbcnn_network)],
                        stages=[stage], notes=["Blind: the QF predictor runs on every image."])


def jpeg() -> Architecture:
    return Architecture(method="jpeg", label="JPEG (no restoration)", steps=0, parts=[], stages=[],
                        notes=["The decoded JPEG itself: no network, no cost."])
