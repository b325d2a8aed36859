"""What each metric is, declared once: name, label, direction, reference, how it is computed, which files it
reads. Torch-free, so that listing metrics stays fast; the pieces that need the libraries are named as
`"module:attr"` strings and imported when a metric is created.

Metrics are entries of the `metric` registry (`METRICS`), open to plugins through the entry-point group
`codiff_bench.metrics`: a plugin's entry points at a `MetricSpec` (with `compute` set to its own factory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from bench.core.errors import BenchError
from bench.core.registry import Registry, registry


class MetricError(BenchError, RuntimeError):
    """A metric cannot be created (unknown name, missing or broken weights) or was called wrongly."""


@dataclass(frozen=True)
class MetricSpec:
    """A metric. `pyiqa_name` names pyiqa's metric; otherwise `compute` names a factory `f(**options)` returning
    `score(out, ref)`. `files` names `f(options) -> list[MetricFile]` (the weight files it reads);
    `pyiqa_kwargs` a function mapping options onto pyiqa's keyword arguments. `cpu` names a factory of a faster
    CPU implementation of the same values, used on the CPU when it takes every option given (its parameters)."""

    name: str
    label: str
    summary: str
    lower_better: bool
    full_reference: bool
    pyiqa_name: str | None = None
    files: str | None = None
    pyiqa_kwargs: str | None = None
    compute: str | None = None
    dtype: Literal["float32", "float64"] = "float32"
    cpu: str | None = None

    @property
    def description(self) -> str:
        return f"{self.summary}; {'lower' if self.lower_better else 'higher'} is better"

    def info(self) -> dict[str, Any]:
        """The facts a run records with its results, so that reports need no table of their own."""
        return {"label": self.label, "lower_better": self.lower_better, "full_reference": self.full_reference,
                "description": self.description}


_LUMA = "luma Y = 0.299 R + 0.587 G + 0.114 B (pyiqa's default colour space 'yiq')"
_CATALOG = "bench.metrics.catalog"
_CLASSICAL = "bench.metrics.classical"

PSNR = MetricSpec("psnr", "PSNR", f"PSNR in dB on the {_LUMA}, data range 1 (pyiqa 'psnry')", False, True,
                  pyiqa_name="psnry", dtype="float64", cpu=f"{_CLASSICAL}:psnr_metric")
SSIM = MetricSpec("ssim", "SSIM", f"SSIM on the {_LUMA} rounded to 8-bit levels, 11x11 Gaussian window (sigma 1.5), "
                                  "no downsampling (pyiqa 'ssim')", False, True, pyiqa_name="ssim", dtype="float64",
                  cpu=f"{_CLASSICAL}:ssim_metric")
PSNR_B = MetricSpec("psnr_b", "PSNR-B", f"PSNR-B in dB (Yim and Bovik 2011: PSNR with the blocking effect factor of "
                                        f"the 8x8 grid) on the {_LUMA}", False, True,
                    compute="bench.metrics.psnrb:psnr_b_metric", dtype="float64", cpu=f"{_CLASSICAL}:psnr_b_metric")
PSNR_RGB = MetricSpec("psnr_rgb", "PSNR (RGB)", "PSNR in dB over the three RGB channels (pyiqa 'psnr')", False, True,
                      pyiqa_name="psnr", dtype="float64", cpu=f"{_CLASSICAL}:psnr_rgb_metric")
SSIM_RGB = MetricSpec("ssim_rgb", "SSIM (RGB)", "SSIM averaged over the RGB channels (pyiqa 'ssimc')", False, True,
                      pyiqa_name="ssimc", dtype="float64", cpu=f"{_CLASSICAL}:ssim_rgb_metric")
LPIPS = MetricSpec("lpips", "LPIPS", "LPIPS v0.1, AlexNet features (pyiqa 'lpips')", True, True, pyiqa_name="lpips",
                   files=f"{_CATALOG}:lpips_files")
DISTS = MetricSpec("dists", "DISTS", "DISTS, VGG16 features (pyiqa 'dists')", True, True, pyiqa_name="dists",
                   files=f"{_CATALOG}:dists_files")
MUSIQ = MetricSpec("musiq", "MUSIQ", "MUSIQ trained on KonIQ-10k, no reference (pyiqa 'musiq')", False, False,
                   pyiqa_name="musiq", files=f"{_CATALOG}:musiq_files")
MANIQA = MetricSpec("maniqa", "MANIQA", "MANIQA trained on KonIQ-10k, ViT-B/8 backbone, mean over 20 crops of 224 px, "
                                        "no reference (pyiqa 'maniqa')", False, False, pyiqa_name="maniqa",
                    files=f"{_CATALOG}:maniqa_files")
CLIPIQA = MetricSpec("clipiqa", "CLIPIQA", "CLIP-IQA with CLIP RN50 and pyiqa's ensemble of antonym prompts, no "
                                           "reference (pyiqa 'clipiqa')", False, False, pyiqa_name="clipiqa",
                     files=f"{_CATALOG}:clipiqa_files", pyiqa_kwargs=f"{_CATALOG}:clipiqa_kwargs")

METRICS: Registry[MetricSpec] = registry("metric", group="codiff_bench.metrics", base=MetricSpec, builtins={
    spec.name: f"bench.metrics.specs:{attr}" for attr, spec in dict(globals()).items()
    if isinstance(spec, MetricSpec)})
