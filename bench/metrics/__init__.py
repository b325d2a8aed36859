"""Image quality metrics: pyiqa's (with the variants the CODiff paper used) plus PSNR-B, read offline.

    create_metric(name, device="cpu", **options) -> Metric   # metric(out, ref) -> (B,) float64
    list_metrics() -> names
    check_metrics(names, strict=False) -> (available, {skipped name: reason})

Metrics (declared once, in `specs`): psnr, ssim, psnr_b (luma Y = 0.299 R + 0.587 G + 0.114 B, pyiqa's
default), psnr_rgb, ssim_rgb, lpips, dists, musiq, maniqa, clipiqa; plugins add theirs through the entry-point
group `codiff_bench.metrics`. Options: `color_space` ('yiq' or 'ycbcr') for psnr, ssim and psnr_b; pyiqa
network options such as `test_sample` (crops, default 20) for maniqa; `clip_path` for clipiqa (a CLIP RN50
TorchScript archive at another path, read through pyiqa's CLIP loader without its hash check).

Weights come only from TORCH_HOME and the Hugging Face cache; `codiff-bench weights --download` fetches them
beforehand (CODIFF_BENCH_WEIGHTS_MIRROR and HF_ENDPOINT name mirrors). This package imports no torch until a
metric is created.
"""

from bench.metrics.caches import use_cache_dir
from bench.metrics.registry import (
           check_metrics,
           create_metric,
           list_metrics,
           metric_files,
           metric_spec,
)
from bench.metrics.specs import METRICS, MetricError, MetricSpec

__all__ = ["METRICS", "MetricError", "MetricSpec", "check_metrics", "create_metric", "list_metrics", "metric_files",
           "metric_spec", "use_cache_dir"]
