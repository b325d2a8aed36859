"""Colour corrections that pull a restored image's colours back to its low-quality input.

`adain` (the release's default) matches each channel's mean and standard deviation; `wavelet` keeps the
output's high frequencies and takes the input's low frequencies (five levels of a dilated 3x3 blur);
`none` leaves the output alone. Images are B x 3 x H x W in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

COLOR_FIXES = ("adain", "wavelet", "none")
_EPS = 1e-5
_WAVELET_LEVELS = 5


def _mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    flat = x.flatten(2)
    return flat.mean(-1)[..., None, None], (flat.var(-1) + _EPS).sqrt()[..., None, None]


def adain(output: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Per-channel AdaIN: normalise `output`, then give it `source`'s mean and (unbiased) std; clamped."""
    out_mean, out_std = _mean_std(output)
    src_mean, src_std = _mean_std(source)
    return ((output - out_mean) / out_std * src_std + src_mean).clamp(0, 1)


def _blur(x: torch.Tensor, dilation: int) -> torch.Tensor:
    kernel = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=x.dtype, device=x.device) / 16
    kernel = kernel.expand(x.shape[1], 1, 3, 3)
    padded = F.pad(x, (dilation,) * 4, mode="replicate")
    return F.conv2d(padded, kernel, groups=x.shape[1], dilation=dilation)


def _split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(high, low) frequency parts with high + low == x."""
    low = x
    for level in range(_WAVELET_LEVELS):
        low = _blur(low, 2 ** level)
    return x - low, low


def wavelet(output: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """The output's high frequencies on the source's low frequencies; clamped."""
    return (_split(output)[0] + _split(source)[1]).clamp(0, 1)


def color_fix(output: torch.Tensor, source: torch.Tensor, mode: str = "adain") -> torch.Tensor:
    """Apply the colour fix `mode` (one of COLOR_FIXES) in float32; returns [0, 1]."""
    if mode == "none":
        return output.clamp(0, 1)
    if mode not in COLOR_FIXES:
        raise ValueError(f"unknown colour fix {mode!r}; choose one of {', '.join(COLOR_FIXES)}")
    fix = adain if mode == "adain" else wavelet
    return fix(output.float(), source.float())
