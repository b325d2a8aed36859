"""Creating metrics: `create_metric(name, device)`, `list_metrics()`, and `check_metrics(names)` before a run.

The metrics themselves are declared in `bench.metrics.specs`. All but PSNR-B are pyiqa metrics with pyiqa's
default variants (those the CODiff paper reports). Weights are read from the caches only: every file is
checked first, and pyiqa builds the network offline.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from functools import partial
from typing import TYPE_CHECKING, Any, Iterable

from bench.core.registry import load_target
from bench.metrics.specs import METRICS, MetricError, MetricSpec

if TYPE_CHECKING:
    import torch

    from bench.metrics.base import Metric
    from bench.metrics.files import MetricFile

log = logging.getLogger(__name__)


def list_metrics() -> list[str]:
    """Names of every metric the harness can compute."""
    return METRICS.names()


def metric_spec(name: str) -> MetricSpec:
    """The registry entry of `name`; UnknownNameError (with a "did you mean") for unknown names."""
    return METRICS.get(name)


def metric_files(name: str, **options: Any) -> list[MetricFile]:
    """The weight files metric `name` reads (with `options`), whether or not they are present."""

    spec = metric_spec(name)
    if spec.files is None:
        return []
    try:
        return load_target(spec.files)(options)
    except KeyError as exc:  # a variant the library's own tables do not list
        raise MetricError(f"metric {name!r}: no weights known for options {options} ({exc})") from exc


def check_metrics(names: Iterable[str], *, strict: bool = False, verify_hash: bool = False,
                  options: dict[str, dict[str, Any]] | None = None) -> tuple[list[str], dict[str, str]]:
    """Split `names` into metrics whose files (with `options[name]`) are all usable and skipped ones with the reason.

    A reason names each missing or broken file and the folder it belongs in. With `strict`, any skipped
    metric raises MetricError instead. `verify_hash` also compares SHA-256 prefixes known from file names.
    Unknown names always raise.
    """
    from bench.metrics.files import inspect_files

    available: list[str] = []
    skipped: dict[str, str] = {}
    for name in dict.fromkeys(names):
        problems = inspect_files(metric_files(name, **(options or {}).get(name, {})), verify_hash=verify_hash)
        if problems:
            skipped[name] = problems[0] if len(problems) == 1 else "\n".join(
                [f"{len(problems)} weight files not usable:", *(f"  - {p}" for p in problems)])
        else:
            available.append(name)
    if strict and skipped:
        raise MetricError("metrics cannot run:\n" + "\n".join(f"{n}: {why}" for n, why in skipped.items()))
    return available, skipped


def create_metric(name: str, device: str | torch.device = "cpu", *, reference: bool = False, **options: Any) -> Metric:
    """Create metric `name` on `device`, reading weights from the caches only (never the network).

    `options` go to the pyiqa network (for example `test_sample` for maniqa), or to PSNR-B. On the CPU the
    classical metrics use their faster implementation unless `reference` asks for pyiqa's (or PSNR-B's own). Raises
    MetricError naming every missing or broken file, what was expected and where it belongs.
    """
    import pyiqa
    import torch

    from bench.metrics.base import Metric
    from bench.metrics.files import inspect_files

    spec = metric_spec(name)
    device = torch.device(device)
    files = metric_files(name, **options)
    problems = inspect_files(files)
    if problems:
        raise MetricError(f"metric {name!r} cannot be created: " + "; ".join(problems))
    network = None
    version = f"pyiqa {pyiqa.__version__}"
    fast = None if reference else _cpu_factory(spec, device, options)
    if fast is not None:
        compute, version = fast
    elif spec.compute is not None:
        try:
            compute = load_target(spec.compute)(**options)
        except TypeError as exc:
            raise MetricError(f"metric {name!r}: bad options {options}: {exc}") from exc
    else:
        network = _pyiqa_network(spec, device, options, files)
        compute = partial(_pyiqa_scores, network)
    return Metric(spec=spec, options=dict(options), device=device, files=files, compute=compute, network=network,
                  version=version, converts=fast is not None)


def _cpu_factory(spec: MetricSpec, device: torch.device, options: dict[str, Any]) -> tuple[Any, str] | None:
    """(score function, version) of the metric's faster CPU implementation, when it applies to `device` and
    takes every option given; None otherwise (pyiqa or the metric's own `compute` serves it)."""
    import inspect

    if spec.cpu is None or device.type != "cpu":
        return None
    factory = load_target(spec.cpu)
    if not set(options) <= set(inspect.signature(factory).parameters):
        return None
    module = spec.cpu.partition(":")[0]
    return factory(**options), f"{spec.cpu} {load_target(f'{module}:VERSION')}"


def _pyiqa_network(spec: MetricSpec, device: torch.device, options: dict[str, Any],
                   files: list[MetricFile]) -> torch.nn.Module:
    """Build the pyiqa network offline; its loading messages go to the debug log."""
    import pyiqa

    from bench.metrics.caches import library_caches

    kwargs = load_target(spec.pyiqa_kwargs)(options) if spec.pyiqa_kwargs else dict(options)
    printed = io.StringIO()
    try:
        with library_caches(), contextlib.redirect_stdout(printed), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation, inside pyiqa's CLIP
            model = pyiqa.create_metric(spec.pyiqa_name, device=device, **kwargs)
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
