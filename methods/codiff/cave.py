"""CaVE, the compression-aware visual embedder of CODiff (stage 1), with the release's module and key names.

An FBCNN-style UNet: `m_head` (3x3 conv), three down stages of `nb` residual blocks and a strided conv
(kernel = stride = 2, 4, 4), the encoder body (`m_body_encoder`), a QF head on the body output
(`qf_pred`: residual blocks, global pool, MLP, sigmoid; target (100 - QF) / 100) and a decoder
(`m_body_decoder`, `m_up3..1` transposed convs with stride 4, 4, 2, `m_tail`) used to train the encoder.
The body output, flattened row-major to (B, h*w, nc3) tokens, is the visual embedding c_L that conditions the
generator. Inputs are RGB in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from methods.codiff.checkpoint import (
    CheckpointError,
    is_project_checkpoint,
    load_project,
    load_torch_file,
    save_project,
    save_torch_file,
)

DOWN_STRIDES = (2, 4, 4)  # m_down1..3; the decoder mirrors them (m_up3: 4, m_up2: 4, m_up1: 2)
EMBED_MULTIPLE = 8  # the release pads inputs to a multiple of 8 before encoding; strided convs then floor
FORWARD_MULTIPLE = 32  # the full forward (with decoder skips) needs a multiple of the total stride
BN_MOMENTUM, BN_EPS = 0.9, 1e-4  # the release's (PyTorch convention: each batch weighs 0.9 in the running stats)
HIGHPASS_GAIN = 10.0  # the high-passed input, gain * (x - box3x3(x)), lands roughly on the scale of x itself
UP_OFFSET = 1.0  # the constant (QF-attention beta) that the release's decoder blocks add
CHECKPOINT_KIND = "cave"
INPUT_CHANNELS = {"rgb": 3, "highpass": 3, "rgb+highpass": 6}  # m_head's input channels per CaVEConfig.input


@dataclass(frozen=True)
class CaVEConfig:
    """The network's shape; every default is the release's.

    - `nc`, `nb`: widths of the four levels and residual blocks per stage; the release: (64,128,256,512), 4.
    - `input`: what `m_head` sees: `rgb` (the release), `highpass` (HIGHPASS_GAIN * (x - box3x3(x)), replicate
      padding: the 8x8 block edges and ringing without the content's low frequencies), or `rgb+highpass`
      (both, six channels).
    - `global_residual`: the decoder predicts a correction added to its input (x + tail(...)), as restorers
      of high-passed features need; the release outputs tail(...) alone.
    - `bn_momentum`, `bn_eps`: BatchNorm's (PyTorch convention).
    - `restore_gate`: None (the release), or [qf_low, qf_high]: `restore` blends the decoder output into the
      input with weight 1 at an estimated QF <= qf_low falling linearly to 0 at >= qf_high, so that images
      the model judges good are left as they are.
    - `qf_tile`: None (the release: the QF head sees the whole input), or the patch size the QF head was
      trained on: inputs with room for two or more tiles of that size are estimated as the mean over
      non-overlapping tiles from the top-left (a small CaVE's estimate drifts with the input size, as its QF
      head pools a few border-dominated tokens).
    """

    nc: tuple[int, int, int, int] = (64, 128, 256, 512)
    nb: int = 4
    input: Literal["rgb", "highpass", "rgb+highpass"] = "rgb"
    global_residual: bool = False
    bn_momentum: float = BN_MOMENTUM
    bn_eps: float = BN_EPS
    restore_gate: tuple[float, float] | None = None
    qf_tile: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "nc", tuple(int(c) for c in self.nc))
        if len(self.nc) != 4 or self.nb < 1:
            raise ValueError(f"CaVEConfig needs four widths and nb >= 1, got nc={self.nc} nb={self.nb}")
        if self.input not in INPUT_CHANNELS:
            raise ValueError(f"CaVEConfig.input must be one of {', '.join(INPUT_CHANNELS)}, not {self.input!r}")
        if self.restore_gate is not None:
            low, high = (float(q) for q in self.restore_gate)
            if not low < high:
                raise ValueError(f"CaVEConfig.restore_gate needs qf_low < qf_high, got {self.restore_gate}")
            object.__setattr__(self, "restore_gate", (low, high))
        if self.qf_tile is not None and (int(self.qf_tile) < FORWARD_MULTIPLE or int(self.qf_tile) % EMBED_MULTIPLE):
            raise ValueError(f"CaVEConfig.qf_tile must be a multiple of {EMBED_MULTIPLE} of at least "
                             f"{FORWARD_MULTIPLE}, not {self.qf_tile}")

    @classmethod
    def from_state_dict(cls, state_dict: Mapping[str, torch.Tensor]) -> "CaVEConfig":
        """Read `nc` and `nb` from a state dict's tensor shapes (as the released `cave.pth` stores them)."""
        if "m_head.weight" not in state_dict:
            raise CheckpointError("not a CaVE state dict: it has no 'm_head.weight'")
        nb = sum(1 for k in state_dict if k.startswith("m_down1.") and k.endswith(".res.0.weight"))
        try:
            nc = (state_dict["m_head.weight"].shape[0],
                  *(state_dict[f"m_down{i}.{nb}.weight"].shape[0] for i in (1, 2, 3)))
        except KeyError as exc:
            raise CheckpointError(f"not a CaVE state dict: missing {exc.args[0]!r} (nb={nb})") from exc
        return cls(nc=nc, nb=nb)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "CaVEConfig":
        """The config a checkpoint's JSON stores (`to_dict`), read with the typed config system; keys this code
        does not know, or values of the wrong kind, are errors."""
        from bench.core.config import from_dict
        from bench.core.errors import BenchError

        try:
            return from_dict(cls, dict(values))
        except (BenchError, TypeError, ValueError) as exc:
            raise CheckpointError(f"invalid CaVE config {dict(values)}: {exc}") from None

    def to_dict(self) -> dict:
        """`nc` and `nb`, plus every other field that differs from the release (release files stay as they were)."""
        out: dict[str, Any] = {"nc": list(self.nc), "nb": self.nb}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in out and value != f.default:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _sequential(*modules: nn.Module) -> nn.Module:
    """One module as itself, several as nn.Sequential: the release's naming (`m_body_encoder.res.0` when nb=1)."""
    return modules[0] if len(modules) == 1 else nn.Sequential(*modules)


class ResBlock(nn.Module):
    """x + conv3x3(ReLU(BN(conv3x3(x)))) + offset, with the release's layout `res.0` conv, `res.1` BN, `res.3` conv.

    The release's decoder blocks are FBCNN's QF-attention blocks called with gamma = beta = 1, i.e. residual
    blocks that add a constant 1 (`offset=1.0`); every other block has offset 0.
    """

    def __init__(self, channels: int, offset: float = 0.0, momentum: float = BN_MOMENTUM, eps: float = BN_EPS) -> None:
        super().__init__()
        self.offset = offset
        self.res = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels, momentum=momentum, eps=eps),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x + self.res(x)
        return out + self.offset if self.offset else out


def _blocks(channels: int, config: CaVEConfig, offset: float = 0.0) -> list[nn.Module]:
    return [ResBlock(channels, offset, config.bn_momentum, config.bn_eps) for _ in range(config.nb)]


def _down(c_in: int, c_out: int, stride: int, config: CaVEConfig) -> nn.Module:
    """`nb` residual blocks, then a strided conv with kernel = stride (floors odd sizes)."""
    return _sequential(*_blocks(c_in, config), nn.Conv2d(c_in, c_out, stride, stride))


def _up(c_in: int, c_out: int, stride: int, config: CaVEConfig) -> nn.Module:
    """A transposed conv with kernel = stride (index 0), then `nb` decoder blocks (indices 1..nb)."""
    return _sequential(nn.ConvTranspose2d(c_in, c_out, stride, stride), *_blocks(c_out, config, UP_OFFSET))


def highpass(x: torch.Tensor) -> torch.Tensor:
    """HIGHPASS_GAIN * (x - its 3x3 box blur), replicate-padded: what is left after removing smooth content."""
    blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return HIGHPASS_GAIN * (x - blurred)


def _pad_bottom_right(x: torch.Tensor, multiple: int, minimum: int = 0) -> torch.Tensor:
    """Replicate-pad the bottom and right edges up to a multiple of `multiple` (and at least `minimum`)."""
    h, w = x.shape[-2:]
    ph = max(-(-h // multiple) * multiple, minimum) - h
    pw = max(-(-w // multiple) * multiple, minimum) - w
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


class CaVE(nn.Module):
    """The CaVE network. Public entry points:

    - `embed(lq)`: visual embedding c_L, (B, tokens, nc3), exactly as the release computes it
      (`embed_grid(lq)` is the same before flattening, (B, nc3, h, w));
    - `qf_head_output(lq)`: the QF head's sigmoid output, (B, 1), an estimate of (100 - QF) / 100;
    - `predict_qf(lq)`: the estimated quality factor on the 1-100 scale, (B,);
    - `forward(x)`: (restored, qf_output): the decoder's restoration of x, (B, 3, H, W) on the [0, 1] scale,
      unclamped, at any size (padded to a multiple of 32, cropped back), and `qf_head_output`'s value.
    All take RGB in [0, 1], (B, 3, H, W).
    """

    def __init__(self, config: CaVEConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or CaVEConfig()
        nc = cfg.nc
        self.m_head = nn.Conv2d(INPUT_CHANNELS[cfg.input], nc[0], 3, padding=1)
        self.m_down1 = _down(nc[0], nc[1], DOWN_STRIDES[0], cfg)
        self.m_down2 = _down(nc[1], nc[2], DOWN_STRIDES[1], cfg)
        self.m_down3 = _down(nc[2], nc[3], DOWN_STRIDES[2], cfg)
        self.m_body_encoder = _sequential(*_blocks(nc[3], cfg))
        self.m_body_decoder = _sequential(*_blocks(nc[3], cfg))
        self.m_up3 = _up(nc[3], nc[2], DOWN_STRIDES[2], cfg)
        self.m_up2 = _up(nc[2], nc[1], DOWN_STRIDES[1], cfg)
        self.m_up1 = _up(nc[1], nc[0], DOWN_STRIDES[0], cfg)
        self.m_tail = nn.Conv2d(nc[0], 3, 3, padding=1)
        self.qf_pred = nn.Sequential(
            *_blocks(nc[3], cfg), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
            nn.Linear(nc[3], nc[3]), nn.ReLU(inplace=True),
            nn.Linear(nc[3], nc[3]), nn.ReLU(inplace=True),
            nn.Linear(nc[3], 1), nn.Sigmoid(),
        )

    def _head_input(self, x: torch.Tensor) -> torch.Tensor:
        """What `m_head` sees of an RGB input (see CaVEConfig.input)."""
        if self.config.input == "rgb":
            return x
        if self.config.input == "highpass":
            return highpass(x)
        return torch.cat([x, highpass(x)], dim=1)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Features of every level (x1..x4) and the encoder-body output."""
        x1 = self.m_head(self._head_input(x))
        x2 = self.m_down1(x1)
        x3 = self.m_down2(x2)
        x4 = self.m_down3(x3)
        return x1, x2, x3, x4, self.m_body_encoder(x4)

    def embed_grid(self, lq: torch.Tensor) -> torch.Tensor:
        """The encoder-body output, (B, nc3, h, w) on the 1/32 grid, for lq (RGB in [0, 1]).

        Pads to a multiple of 8 as the release does (the strided convs then floor); images under 32 px are
        padded to 32 so that at least one token exists (the release cannot encode them at all).
        """
        x = self._head_input(_pad_bottom_right(lq, EMBED_MULTIPLE, minimum=FORWARD_MULTIPLE))
        for stage in (self.m_head, self.m_down1, self.m_down2, self.m_down3, self.m_body_encoder):
            x = stage(x)  # no skip features are kept: only the body output is needed
        return x

    def embed(self, lq: torch.Tensor) -> torch.Tensor:
        """Visual embedding c_L of `lq` (RGB in [0, 1]): (B, h*w, nc3) tokens, row-major over the 1/32 grid."""
        return self.embed_grid(lq).flatten(2).transpose(1, 2)

    def qf_head_output(self, lq: torch.Tensor) -> torch.Tensor:
        """The QF head's sigmoid output, (B, 1): the estimate of (100 - QF) / 100 that training regresses
        (averaged over `qf_tile` tiles when the config sets a tile and the input holds two or more)."""
        tile = self.config.qf_tile
        b, _, h, w = lq.shape
        if not tile or (h // tile) * (w // tile) < 2:  # room for one tile at most: the input as it is
            return self.qf_pred(self.embed_grid(lq))
        tiles = lq.unfold(2, tile, tile).unfold(3, tile, tile)  # (B, 3, rows, cols, tile, tile)
        tiles = tiles.permute(0, 2, 3, 1, 4, 5).reshape(-1, lq.shape[1], tile, tile)
        return self.qf_pred(self.embed_grid(tiles)).view(b, -1).mean(dim=1, keepdim=True)

    def predict_qf(self, lq: torch.Tensor) -> torch.Tensor:
        """Estimated JPEG quality factor on the 1-100 scale, (B,)."""
        return (100.0 * (1.0 - self.qf_head_output(lq).squeeze(1))).clamp(1.0, 100.0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(restored, qf_output): decoder restoration on the [0, 1] scale (unclamped) and the QF head output."""
        h, w = x.shape[-2:]
        padded = _pad_bottom_right(x, FORWARD_MULTIPLE)
        x1, x2, x3, x4, body = self._encode(padded)
        qf = self.qf_pred(body)
        y = self.m_body_decoder(body) + x4
        y = self.m_up3(y) + x3
        y = self.m_up2(y) + x2
        y = self.m_up1(y) + x1
        y = self.m_tail(y)
        if self.config.global_residual:
            y = y + padded
        return y[..., :h, :w], qf

    def restore(self, lq: torch.Tensor) -> torch.Tensor:
        """The decoder's restoration of `lq`, blended back into `lq` by the QF gate when the config has one
        (see CaVEConfig.restore_gate); unclamped."""
        restored, _ = self(lq)
        if self.config.restore_gate is None:
            return restored
        weight = gate_weight(self.predict_qf(lq).float(), self.config.restore_gate).view(-1, 1, 1, 1)
        return lq + weight.to(restored.dtype) * (restored - lq)


def gate_weight(qf_estimate: torch.Tensor, gate: tuple[float, float]) -> torch.Tensor:
    """The restoration's weight for an estimated QF: 1 at or below gate[0], 0 at or above gate[1], linear between."""
    low, high = gate
    return ((high - qf_estimate) / (high - low)).clamp(0.0, 1.0)


def init_cave_weights(model: nn.Module, gain: float = 0.2) -> nn.Module:
    """The release's initialisation: orthogonal (gain 0.2) conv/linear weights with zero bias; BatchNorm
    weights uniform in [0.1, 1] with zero bias. Returns `model`."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.orthogonal_(module.weight, gain=gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.uniform_(module.weight, 0.1, 1.0)
            nn.init.zeros_(module.bias)
    return model


def init_scaled_weights(model: nn.Module) -> nn.Module:
    """An initialisation that keeps a narrow CaVE's activations at unit scale: He-normal convs and linears
    (fan-in; ReLU gain for the first conv of each residual branch, linear gain elsewhere, since CaVE's main
    path has no non-linearity, so the residual branches are the network's only non-linear signal and keep
    their full scale), `m_tail` and the QF head's last linear layer scaled by 0.1 so that a global residual
    starts close to its input and the QF sigmoid away from saturation; zero biases, BatchNorm weights 1.
    Returns `model`."""
    last_linear = [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            relu_follows = name.endswith("res.0") or isinstance(module, nn.Linear)
            mode = "fan_out" if isinstance(module, nn.ConvTranspose2d) else "fan_in"  # its weight is (in, out, ...)
            nn.init.kaiming_normal_(module.weight, mode=mode, nonlinearity="relu" if relu_follows else "linear")
            if name == "m_tail" or module in last_linear:
                module.weight.data.mul_(0.1)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def cave_from_state_dict(state_dict: Mapping[str, torch.Tensor], source: str = "state dict",
                         config: CaVEConfig | None = None) -> CaVE:
    """Build a CaVE (`config`, or sized from `state_dict`'s shapes) and load it strictly; eval mode."""
    model = CaVE(config or CaVEConfig.from_state_dict(state_dict))
    try:
        result = model.load_state_dict(dict(state_dict), strict=False)
    except RuntimeError as exc:  # shape mismatches: the tensors are not of this config
        raise CheckpointError(f"{source}: CaVE tensors do not fit config {model.config.to_dict()}: {exc}") from exc
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(f"{source}: CaVE keys do not match: missing {result.missing_keys[:8]}, "
                              f"unexpected {result.unexpected_keys[:8]}")
    return model.eval()


def load_cave(path: str | Path) -> CaVE:
    """Load CaVE from the official `cave.pth` (a plain state dict) or this project's safetensors + JSON pair."""
    if is_project_checkpoint(path):
        tensors, config = load_project(path, CHECKPOINT_KIND)
        return cave_from_state_dict(tensors, str(path), CaVEConfig.from_dict(config) if config else None)
    state = load_torch_file(path, "CaVE checkpoint (cave.pth)")
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: expected a CaVE state dict, found {type(state).__name__}")
    return cave_from_state_dict(state, str(path))


def save_cave(model: CaVE, path: str | Path, evaluation: dict[str, Any] | None = None) -> Path:
    """Save in this project's format (NAME.safetensors + NAME.json, with measured figures in `evaluation`);
    returns the tensors path."""
    return save_project(path, model.state_dict(), CHECKPOINT_KIND, model.config.to_dict(), evaluation)


def save_cave_official(model: CaVE, path: str | Path) -> Path:
    """Save as the release does: a plain state dict written by torch.save (loads with weights_only=True)."""
    return save_torch_file(model.state_dict(), path)
