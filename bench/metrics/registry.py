"""The metric registry: `create_metric(name, device)`, `list_metrics()`, and `check_metrics(names)` before a run.

All but PSNR-B are pyiqa metrics with pyiqa's default variants (those the CODiff paper reports). Weights are
read from the caches only: every file is checked first, and pyiqa builds the network offline.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable

import torch

from bench.metrics import catalog
from bench.metrics.base import Metric, MetricError
from bench.metrics.caches import library_caches
from bench.metrics.files import MetricFile, inspect_files

log = logging.getLogger(__name__)


def _no_files(options: dict[str, Any]) -> list[MetricFile]:
    return []


def _clipiqa_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """`clip_path` (a CLIP RN50 TorchScript archive) goes to pyiqa's CLIP loader in place of the backbone name."""
    options = dict(options)
    path = options.pop("clip_path", None)
    if path:
        options["backbone"] = str(path)
    return options


@dataclass(frozen=True)
class MetricSpec:
    """A registry entry. `pyiqa_name` None means the metric is computed by `compute(options)` here."""

    name: str
    summary: str
    lower_better: bool
    full_reference: bool
    pyiqa_name: str | None = None
    files: Callable[[dict[str, Any]], list[MetricFile]] = _no_files
    pyiqa_kwargs: Callable[[dict[str, Any]], dict[str, Any]] = dict
    compute: Callable[..., Callable] | None = None
    dtype: torch.dtype = torch.float32

    @property
    def description(self) -> str:
        return f"{self.summary}; {'lower' if self.lower_better else 'higher'} is better"


def _psnr_b(color_space: str = "yiq") -> Callable:
    from bench.metrics.psnrb import psnr_b

    return partial(psnr_b, color_space=color_space)


_LUMA = "luma Y = 0.299 R + 0.587 G + 0.114 B (pyiqa's default colour space 'yiq')"

_SPECS: dict[str, MetricSpec] = {s.name: s for s in [
    MetricSpec("psnr", f"PSNR in dB on the {_LUMA}, data range 1 (pyiqa 'psnry')", False, True,
               pyiqa_name="psnry", dtype=torch.float64),
    MetricSpec("ssim", f"SSIM on the {_LUMA} rounded to 8-bit levels, 11x11 Gaussian window (sigma 1.5), "
                       "no downsampling (pyiqa 'ssim')", False, True, pyiqa_name="ssim", dtype=torch.float64),
    MetricSpec("psnr_b", f"PSNR-B in dB (Yim and Bovik 2011: PSNR with the blocking effect factor of the "
                         f"8x8 grid) on the {_LUMA}", False, True, compute=_psnr_b, dtype=torch.float64),
    MetricSpec("psnr_rgb", "PSNR in dB over the three RGB channels (pyiqa 'psnr')", False, True,
               pyiqa_name="psnr", dtype=torch.float64),
    MetricSpec("ssim_rgb", "SSIM averaged over the RGB channels (pyiqa 'ssimc')", False, True,
               pyiqa_name="ssimc", dtype=torch.float64),
    MetricSpec("lpips", "LPIPS v0.1, AlexNet features (pyiqa 'lpips')", True, True, pyiqa_name="lpips",
               files=catalog.lpips_files),
    MetricSpec("dists", "DISTS, VGG16 features (pyiqa 'dists')", True, True, pyiqa_name="dists",
               files=catalog.dists_files),
    MetricSpec("musiq", "MUSIQ trained on KonIQ-10k, no reference (pyiqa 'musiq')", False, False,
               pyiqa_name="musiq", files=catalog.musiq_files),
    MetricSpec("maniqa", "MANIQA trained on KonIQ-10k, ViT-B/8 backbone, mean over 20 crops of 224 px, "
                         "no reference (pyiqa 'maniqa')", False, False, pyiqa_name="maniqa",
               files=catalog.maniqa_files),
    MetricSpec("clipiqa", "CLIP-IQA with CLIP RN50 and pyiqa's ensemble of antonym prompts, no reference "
                          "(pyiqa 'clipiqa')", False, False, pyiqa_name="clipiqa", files=catalog.clipiqa_files,
               pyiqa_kwargs=_clipiqa_kwargs),
]}


def list_metrics() -> list[str]:
    """Names of every metric the harness can compute."""
    return sorted(_SPECS)


def metric_spec(name: str) -> MetricSpec:
    """The registry entry of `name`; MetricError for unknown names."""
    try:
        return _SPECS[name]
    except KeyError:
        raise MetricError(f"unknown metric {name!r}; known: {', '.join(list_metrics())}") from None


def metric_files(name: str, **options: Any) -> list[MetricFile]:
    """The weight files metric `name` reads (with `options`), whether or not they are present."""
    spec = metric_spec(name)
    try:
        return spec.files(options)
    except KeyError as exc:  # a variant the library's own tables do not list
        raise MetricError(f"metric {name!r}: no weights known for options {options} ({exc})") from exc


def check_metrics(names: Iterable[str], *, strict: bool = False,
                  verify_hash: bool = False) -> tuple[list[str], dict[str, str]]:
    """Split `names` into metrics whose files are all usable and skipped ones with the reason.

    A reason names each missing or broken file and the folder it belongs in. With `strict`, any skipped
    metric raises MetricError instead. `verify_hash` also compares SHA-256 prefixes known from file names.
    Unknown names always raise.
    """
    available: list[str] = []
    skipped: dict[str, str] = {}
    for name in dict.fromkeys(names):
        problems = inspect_files(metric_files(name), verify_hash=verify_hash)
        if problems:
            skipped[name] = problems[0] if len(problems) == 1 else "\n".join(
                [f"{len(problems)} weight files not usable:", *(f"  - {p}" for p in problems)])
        else:
            available.append(name)
    if strict and skipped:
        raise MetricError("metrics cannot run:\n" + "\n".join(f"{n}: {why}" for n, why in skipped.items()))
    return available, skipped


def create_metric(name: str, device: str | torch.device = "cpu", **options: Any) -> Metric:
    """Create metric `name` on `device`, reading weights from the caches only (never the network).

    `options` go to the pyiqa network (for example `test_sample` for maniqa), or to PSNR-B. Raises
    MetricError naming every missing or broken file, what was expected and where it belongs.
    """
    import pyiqa

    spec = metric_spec(name)
    device = torch.device(device)
    files = metric_files(name, **options)
    problems = inspect_files(files)
    if problems:
        raise MetricError(f"metric {name!r} cannot be created: " + "; ".join(problems))
    network = None
    if spec.compute is not None:
        try:
            compute = spec.compute(**options)
        except TypeError as exc:
            raise MetricError(f"metric {name!r}: bad options {options}: {exc}") from exc
    else:
        network = _pyiqa_network(spec, device, options, files)
        compute = partial(_pyiqa_scores, network)
    return Metric(name=name, lower_better=spec.lower_better, full_reference=spec.full_reference,
                  description=spec.description, options=dict(options), device=device, files=files,
                  compute=compute, network=network, dtype=spec.dtype, version=f"pyiqa {pyiqa.__version__}")


def _pyiqa_network(spec: MetricSpec, device: torch.device, options: dict[str, Any],
                   files: list[MetricFile]) -> torch.nn.Module:
    """Build the pyiqa network offline; its loading messages go to the debug log."""
    import pyiqa

    printed = io.StringIO()
    try:
        with library_caches(), contextlib.redirect_stdout(printed), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation, inside pyiqa's CLIP
            model = pyiqa.create_metric(spec.pyiqa_name, device=device, **spec.pyiqa_kwargs(options))
    except Exception as exc:  # noqa: BLE001 - reported with the files it read
        sources = ", ".join(str(f.path) for f in files) or "no weight files"
        raise MetricError(f"metric {spec.name!r}: pyiqa could not build {spec.pyiqa_name!r} from {sources}: "
                          f"{type(exc).__name__}: {exc}") from exc
    finally:
        if printed.getvalue().strip():
            log.debug("pyiqa: %s", printed.getvalue().strip())
    return model.eval()


def _pyiqa_scores(network: torch.nn.Module, out: torch.Tensor, ref: torch.Tensor | None) -> torch.Tensor:
    return network(out) if ref is None else network(out, ref)
