"""The executor: restores and scores this process's units, reusing whatever the store holds for their identity.

A unit is reused when its restoration is recorded and the file still holds that content, and each metric
value when it is stored for the unit under the metric's current fingerprint; anything missing is computed.
One bad unit becomes an error row, never a crash.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.core.imageio import encode_png, read_rgb8, to_tensor, to_uint8
from bench.core.protocol import decode_jpeg
from bench.core.terminal import shown
from bench.engine.inputs import describe
from bench.engine.layout import RunFolderError, RunLayout
from bench.engine.planner import WorkUnit
from bench.store import ResultsStore
from methods.base import Method, MethodError, RestoreRequest, Unit

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


class Executor:
    """Runs units of one plan against the store; counts what it restored and reused."""

    def __init__(self, layout: RunLayout, store: ResultsStore, metrics: dict[str, Any], device: str,
                 block_ids: dict[tuple[str, str, int], str]) -> None:
        self.layout, self.store, self.metrics, self.device = layout, store, metrics, device
        self.metric_fps = {name: m.fingerprint() for name, m in metrics.items()}
        self.block_ids = block_ids  # (dataset, protocol key, QF) -> identity of the block's images
        self.restored = self.reused = 0

    def run(self, methods: dict[str, Method], units: list[WorkUnit], *, total: int, progress: bool,
            count_all: bool) -> None:
        """Restore and score `units`; the bar counts every process's work when `count_all`."""
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="restore+score", unit="unit", disable=not progress)
        for label, method in methods.items():
            todo = [u for u in units if u.method == label]
            loaded = self._load(method, todo)
            for unit in todo:
                variant = "" if unit.variant.label == "clean" else f" {unit.variant.label}"
                bar.set_postfix_str(shown(f"{label}{variant} qf{unit.qf} {unit.entry.image[:30]}"), refresh=False)
                if loaded:
                    self.process(method, unit)
                bar.update(self.store.count_finished_units() - bar.n if count_all else 1)
        bar.close()

    def unit(self, unit: WorkUnit) -> Unit:
        """What a method is told of the unit it restores."""
        return self.layout.unit(unit, self.block_ids.get((unit.entry.dataset, unit.variant.key, unit.qf), ""))

    def _load(self, method: Method, units: list[WorkUnit]) -> bool:
        """Load a method's weights once; a failure becomes an error on each of its units."""
        try:
            method.load()
            return True
        except Exception as exc:  # noqa: BLE001 - any failure to load is recorded, not raised
            message = f"loading failed: {type(exc).__name__}: {exc}"
            log.error("method %s: %s", method.name, message)
            for unit in units:
                self.store.put_error(unit.unit_id, "restore", message)
            return False

    def process(self, method: Method, unit: WorkUnit) -> None:
        import torch

        done = self.store.done_metrics(unit.unit_id, self.metric_fps)
        todo = [m for m in self.metrics if m not in done]
        row = self.store.get_output(unit.unit_id)
        have_output = row is not None and self.layout.holds(row["path"], row["sha256"])
        if have_output and not todo:
            self.reused += 1
            return
        try:
            hq = to_tensor(read_rgb8(self.layout.hq(unit.entry.dataset, unit.variant.key, unit.entry.stem)).rgb)
            if have_output:
                out = to_tensor(read_rgb8(self.layout / row["path"]).rgb)
                self.reused += 1
            else:
                out = self._restore(method, unit, hq.shape)
                self.restored += 1
        except RunFolderError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad unit never ends the run
            self.store.put_error(unit.unit_id, "restore", describe(exc, unit.entry.path))
            log.debug("restore failed: %s", traceback.format_exc())
            return
        values = {}
        for name in todo:
            try:
                with torch.inference_mode():
                    metric = self.metrics[name]
                    ref = hq.to(self.device) if metric.full_reference else None
                    value = float(metric(out.to(self.device), ref)[0])
                if not np.isfinite(value):
                    raise ValueError(f"metric returned {value}")
                values[name] = value
            except Exception as exc:  # noqa: BLE001
                self.store.put_error(unit.unit_id, f"metric:{name}", describe(exc, unit.entry.path))
        if values:
            self.store.put_results(unit.unit_id, values, self.metric_fps)

    def _restore(self, method: Method, unit: WorkUnit, shape: tuple[int, ...]) -> torch.Tensor:
        import torch

        e = unit.entry
        request_unit = self.unit(unit)
        jpeg = request_unit.lq_path.read_bytes()
        lq = to_tensor(decode_jpeg(jpeg)).to(self.device)
        start = time.perf_counter()
        with torch.inference_mode():
            out = method.restore(RestoreRequest(lq, qf=unit.qf, jpeg_bytes=jpeg, unit=request_unit))
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if tuple(out.shape) != tuple(shape):
            raise MethodError(f"method returned shape {tuple(out.shape)} for an input of {tuple(shape)}")
        if not torch.isfinite(out).all():
            raise MethodError("method returned non-finite values")
        rgb8 = to_uint8(out.float().cpu())
        variant = None if unit.variant.label == "clean" else unit.variant.label
        path = self.layout.output(e.dataset, unit.method, variant, unit.qf, e.stem, unit.unit_id)
        self.store.put_output(unit.unit_id, *self.layout.write(path, encode_png(rgb8)), seconds, [])
        return to_tensor(rgb8)
