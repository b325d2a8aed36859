"""FBCNN (Jiang et al., ICCV 2021), the flexible blind JPEG artifact removal CNN, through spandrel.

Spandrel knows the architecture and detects it from the official state dict; this adapter reads the file
itself with `torch.load(weights_only=True)` (or safetensors), so a checkpoint can never run code, and calls
the network directly so that FBCNN's QF input can be fed. Blind by default: the network predicts the QF.

Config:
  weights       path of `fbcnn_color.pth` (default: $CODIFF_BENCH_WEIGHTS/fbcnn_color.pth, else
                ~/.cache/codiff-bench/weights/fbcnn_color.pth). `fbcnn_gray.pth` works too (see gray_mode).
  qf_override   null (blind, the paper's setting), an integer 1..100 fed to every image, or "true" to feed
                the true QF of each image (non-blind).
  gray_mode     for one-channel weights (`fbcnn_gray.pth`) on colour images: "y" restores the BT.601 luma
                and keeps the decoded chroma; "channels" restores R, G and B one by one.
  tile          0 restores whole images; N > 0 restores N x N tiles overlapping by `tile_overlap` pixels,
                averaged, to bound memory on very large images (each tile predicts its own QF when blind).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.core.torchload import RefusedPickle, load_weights_only
from bench.core.weights import WeightFile, default_weights_dir
from methods.base import Method, MethodError, RestoreRequest

if TYPE_CHECKING:
    import torch

RELEASE = "https://github.com/jiaxi-jiang/FBCNN/releases/download/v1.0"
DEFAULT_FILE = "fbcnn_color.pth"
GRAY_MODES = ("y", "channels")
# BT.601 luma, as JPEG's YCbCr.
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class FbcnnOptions:
    """The `fbcnn` method's configuration (see the module docstring)."""

    weights: str | None = None
    qf_override: int | str | None = None
    gray_mode: str = "y"
    tile: int = 0
    tile_overlap: int = 32

    def __post_init__(self) -> None:
        q = self.qf_override
        if q is not None and q != "true" and not (isinstance(q, int) and not isinstance(q, bool) and 1 <= q <= 100):
            raise MethodError(f"fbcnn: qf_override must be null, an integer 1..100 or \"true\", not {q!r}")
        if self.gray_mode not in GRAY_MODES:
            raise MethodError(f"fbcnn: gray_mode must be one of {GRAY_MODES}, not {self.gray_mode!r}")
        if self.tile < 0 or (self.tile and not 0 <= self.tile_overlap < self.tile):
            raise MethodError(f"fbcnn: need tile >= 0 and 0 <= tile_overlap < tile (got {self.tile}, "
                              f"{self.tile_overlap})")


class Fbcnn(Method):
    """FBCNN on RGB in [0, 1], whole image or tiled, blind or with a fed QF."""

    blind = True
    steps = 1
    description = "FBCNN (flexible blind JPEG artifact removal CNN), official weights via spandrel"

    config_class = FbcnnOptions

    def __init__(self, **config) -> None:
        super().__init__(**config)
        self.blind = self.opts.qf_override != "true"
        self.model: torch.nn.Module | None = None
        self.in_channels = 3

    def weights_path(self) -> Path:
        return Path(self.opts.weights).expanduser() if self.opts.weights else default_weights_dir() / DEFAULT_FILE

    def required_weights(self) -> list[WeightFile]:
        path = self.weights_path()
        release_name = path.name if path.name in ("fbcnn_color.pth", "fbcnn_gray.pth") else DEFAULT_FILE
        return [WeightFile(
            label="FBCNN weights", path=path, url=f"{RELEASE}/{release_name}",
            where=f"download {RELEASE}/{release_name} to this path, or set `weights:` in the method config "
                  "(the default folder is $CODIFF_BENCH_WEIGHTS, else ~/.cache/codiff-bench/weights)")]

    def _load(self) -> None:
        from spandrel import ModelLoader, UnsupportedModelError, canonicalize_state_dict

        weight = self.required_weights()[0]
        state = canonicalize_state_dict(read_state_dict(weight.path))
        expected = (f"an FBCNN state dict such as the official {weight.url} (keys m_head.*, m_down1..3.*, "
                    f"m_body_encoder.*, qf_pred.*, ...); it belongs at {weight.path}")
        try:
            descriptor = ModelLoader(self.device).load_from_state_dict(state)
        except UnsupportedModelError as exc:
            raise MethodError(f"{weight.path}: not a recognised architecture; expected {expected}") from exc
        except (RuntimeError, KeyError, ValueError, IndexError) as exc:
            raise MethodError(f"{weight.path}: tensors do not fit FBCNN ({_first_line(exc)}); "
                              f"expected {expected}") from exc
        if descriptor.architecture.id != "FBCNN":
            raise MethodError(f"{weight.path}: holds a {descriptor.architecture.name} model; expected {expected}")
        self.model = descriptor.model.eval()
        self.in_channels = descriptor.input_channels

    # -- restoration ---------------------------------------------------------------------------------
    def restore(self, request: RestoreRequest) -> torch.Tensor:
        import torch

        self.load()
        with torch.no_grad():
            return self._restore(request.lq.to(self.device, torch.float32), request.qf)

    def _restore(self, x: torch.Tensor, qf: int | None) -> torch.Tensor:
        import torch

        qf_input = self._qf_input(qf, x.shape[0])
        if self.in_channels == 3:
            return self._tiled(x, qf_input).clamp(0, 1)
        if self.opts.gray_mode == "channels":
            channels = [self._tiled(x[:, c:c + 1], qf_input) for c in range(3)]
            return torch.cat(channels, dim=1).clamp(0, 1)
        luma = torch.tensor(_LUMA, device=x.device).view(1, 3, 1, 1)
        y = (x * luma).sum(dim=1, keepdim=True)
        return (x + (self._tiled(y, qf_input) - y)).clamp(0, 1)

    def _qf_input(self, qf: int | None, batch: int) -> torch.Tensor | None:
        """FBCNN's QF input is 1 - QF/100 (its QF head predicts the same quantity)."""
        value = self.opts.qf_override
        if value is None:
            return None
        if value == "true":
            if qf is None:
                raise MethodError("fbcnn: qf_override is \"true\" but the true QF was not given")
            value = qf
        import torch

        return torch.full((batch, 1), 1.0 - int(value) / 100.0, device=self.device)

    def _forward(self, x: torch.Tensor, qf_input: torch.Tensor | None) -> torch.Tensor:
        assert self.model is not None
        return self.model(x, qf_input)[0]

    def _tiled(self, x: torch.Tensor, qf_input: torch.Tensor | None) -> torch.Tensor:
        import torch

        tile = self.opts.tile
        h, w = x.shape[-2:]
        if not tile or (h <= tile and w <= tile):
            return self._forward(x, qf_input)
        out = torch.zeros_like(x)
        count = torch.zeros_like(x[:, :1])
        for top in _starts(h, tile, self.opts.tile_overlap):
            for left in _starts(w, tile, self.opts.tile_overlap):
                window = (..., slice(top, top + tile), slice(left, left + tile))
                out[window] += self._forward(x[window], qf_input)
                count[window] += 1
        return out / count


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: every `tile - overlap` pixels, the last flush with the edge."""
    if size <= tile:
        return [0]
    return sorted(set(range(0, size - tile, tile - overlap)) | {size - tile})


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, read without executing code: safetensors, or torch.load(weights_only=True)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = load_weights_only(path)
    except FileNotFoundError as exc:
        raise MethodError(f"{path}: file not found") from exc
    except RefusedPickle as exc:
        raise MethodError(str(exc)) from None
    except Exception as exc:  # unpickling and archive errors have many types; all mean "refused"
        raise MethodError(f"{path}: not a readable weights-only tensor file (truncated, corrupt, or a pickle that "
                          f"would need to run code, which is refused): {_first_line(exc)}") from exc
    if not isinstance(state, dict):
        raise MethodError(f"{path}: holds a {type(state).__name__}, not a state dict of tensors")
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
