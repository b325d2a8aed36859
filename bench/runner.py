"""The run engine: for every protocol variant, method, dataset, QF and image, make or reuse the LQ, restore,
save, score.

Every unit of work is keyed in the results store by the method's fingerprint and the protocol, so a
killed run resumes where it stopped, a second run with nothing changed recomputes nothing, and a changed
method configuration invalidates only that method's rows. One bad image becomes an error row, never a crash.
"""

from __future__ import annotations

import errno
import json
import logging
import sqlite3
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from bench.analysis import Analysis, AnalysisInputs, create_analysis
from bench.config import CLEAN, RunConfig, Variant
from bench.core.atomic import (
    atomic_write_bytes,
    atomic_write_text,
    remove_stale_temporaries,
)
from bench.core.device import checked_device
from bench.core.errors import BenchError, UnknownNameError
from bench.core.imageio import ImageError, encode_png, read_rgb8, to_tensor, to_uint8
from bench.core.lock import RunLock
from bench.core.paths import (
    ANALYSES_FOLDER,
    inside,
    printable_id,
    safe_component,
    safe_names,
)
from bench.core.protocol import JpegProtocol, ProtocolError, decode_jpeg
from bench.core.terminal import shown
from bench.core.weights import WeightFile, unusable_files
from bench.datasets import Dataset, DatasetError, folder_dataset, resolve_dataset
from bench.distributed import Shard, current_shard
from bench.store import ResultsStore, UnitKey
from methods.base import Method, MethodError, RestoreRequest, Unit
from methods.registry import METHODS, create_method

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


class RunFolderError(BenchError, OSError):
    """The run folder cannot be written (read-only, full, a file in the way): the run stops, since no image
    could succeed; everything finished so far is kept and a rerun resumes."""


@dataclass(frozen=True)
class ImageEntry:
    """One image of a dataset with the file stem used for everything derived from it."""

    dataset: str
    image: str
    path: Path
    stem: str


@dataclass(frozen=True)
class WorkUnit:
    """One image restored by one method at one QF, under one protocol variant (None: the run's protocol)."""

    method: str
    entry: ImageEntry
    qf: int
    variant: Variant | None = None


@dataclass
class RunSummary:
    run_dir: Path
    units: int = 0
    restored: int = 0
    reused: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    report: Path | None = None
    is_main: bool = True
    weight_files: list[str] = field(default_factory=list)  # every weight file consulted, present or not

    @property
    def exit_status(self) -> int:
        return 1 if self.errors else 0


@dataclass
class RunPlan:
    """Everything a run will do, resolved before anything is written: its datasets and images, the methods
    it can run (created, not loaded), the metrics whose files are present, the analyses, and what is skipped
    (weights absent) with the reason. A dry run prints it; a run executes it."""

    datasets: list[Dataset]
    entries: list[ImageEntry]
    methods: dict[str, Method]
    metrics: list[str]
    analyses: list[tuple[str, Analysis]]
    skipped_methods: dict[str, str] = field(default_factory=dict)
    skipped_metrics: dict[str, str] = field(default_factory=dict)
    absent_datasets: dict[str, str] = field(default_factory=dict)  # lenient plans only: name -> why
    broken_methods: dict[str, str] = field(default_factory=dict)  # lenient plans only: label -> why
    method_weights: list[str] = field(default_factory=list)  # every weight file the methods name
    variants: list[Variant] = field(default_factory=list)  # the run's protocol first, then those that can run
    skipped_variants: dict[str, str] = field(default_factory=dict)  # label -> why (an encoder not installed)


class Runner:
    """Runs one `RunConfig` into its run folder."""

    def __init__(self, config: RunConfig, *, progress: bool = True, shard: Shard | None = None) -> None:
        self.config = config
        self.shard = shard or current_shard()
        self.device = self.shard.device(config.device)
        self.run_dir = Path(config.run_dir)
        self.protocol: JpegProtocol = config.protocol
        self.pkey = self.protocol.key()
        self.clean = Variant(CLEAN, self.protocol)
        self.progress = progress and self.shard.is_main

    # -- public ---------------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        """Check everything the config names, then (and only then) create the run folder and run."""
        plan = self.plan()  # every user mistake surfaces here, before anything is written
        self._check_run_folder()
        lock_name = ".lock" if self.shard.is_main else f".lock-rank{self.shard.rank}"
        with RunLock(self.run_dir, lock_name):
            if self.shard.is_main:  # one process creates the store (schema, WAL mode) before the others open it
                remove_stale_temporaries(self.run_dir)
                ResultsStore.in_run_dir(self.run_dir).close()
            self.shard.barrier()
            try:
                with ResultsStore.in_run_dir(self.run_dir) as store:
                    return self._run(store, plan)
            except sqlite3.Error as exc:
                raise RunFolderError(errno.EIO, f"results store in {self.run_dir}: {exc} (finished results are "
                                                "kept, rerun to resume)") from exc

    def plan(self, *, lenient: bool = False) -> RunPlan:
        """Check every name and value and resolve everything the run needs; raises BenchError (an unknown
        name, a missing dataset, a bad option, no GPU) before anything is written. Methods and metrics
        whose weights are absent are skipped with the reason (an error with `strict`). A `lenient` plan (the
        dry run's) records absent datasets and methods that cannot be created instead of raising."""
        from bench.metrics import METRICS, check_metrics

        checked_device(self.device)
        for spec in self.config.method_specs() if not lenient else []:
            METHODS.check(spec.method)
        for name in self.config.metrics:
            METRICS.check(name)
        analyses = [(a.name, a) for a in map(create_analysis, self.config.analyses)]
        absent: dict[str, str] = {}
        datasets = self.datasets(absent if lenient else None)
        metrics, skipped_metrics = check_metrics(self.config.metrics, strict=self.config.strict and not lenient)
        broken: dict[str, str] = {}
        methods, skipped_methods, weight_paths = self._create_methods(broken if lenient else None)
        variants, skipped_variants = self._check_variants(strict=self.config.strict and not lenient)
        return RunPlan(datasets, self.entries(datasets), methods, metrics, analyses, skipped_methods,
                       skipped_metrics, absent, broken, weight_paths, variants, skipped_variants)

    def _check_variants(self, *, strict: bool) -> tuple[list[Variant], dict[str, str]]:
        """The protocol variants that can run here, and those skipped (an encoder's package is absent)."""
        variants, skipped = [], {}
        for variant in self.config.protocol_variants():
            why = variant.protocol.missing()
            if why and (strict or variant.label == self.clean.label):
                raise ProtocolError(f"protocol {variant.label!r}: {why}")
            if why:
                skipped[variant.label] = why
            else:
                variants.append(variant)
        return variants, skipped

    def datasets(self, absent: dict[str, str] | None = None) -> list[Dataset]:
        """The configured datasets, resolved (raises DatasetError with what is expected where, or records it
        in `absent` when given)."""
        sources = [(name, lambda n=name: resolve_dataset(n, root=self.config.data_root))
                   for name in self.config.datasets]
        sources += [(folder, lambda f=folder: folder_dataset(f)) for folder in self.config.images]
        sets = []
        for name, resolve in sources:
            try:
                sets.append(resolve())
            except DatasetError as exc:
                if absent is None or isinstance(exc, UnknownNameError):
                    raise
                absent[name] = str(exc)
        names = [ds.name for ds in sets]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise DatasetError(f"two datasets are named {twice}: results are keyed by dataset name, so give the "
                               "image folders different names")
        return sets

    def entries(self, datasets: Iterable[Dataset]) -> list[ImageEntry]:
        entries = []
        for ds in datasets:
            items = ds.items()[: self.config.limit] if self.config.limit else ds.items()
            items = [(printable_id(image), path) for image, path in items]
            stems = safe_names([image for image, _ in items])
            entries += [ImageEntry(ds.name, image, path, stems[image]) for image, path in items]
        return entries

    # -- the run ------------------------------------------------------------------------------------------
    def _run(self, store: ResultsStore, plan: RunPlan) -> RunSummary:
        import torch

        from bench.metrics import create_metric
        from bench.provenance import manifest

        torch.manual_seed(self.config.seed)
        summary = RunSummary(self.run_dir, is_main=self.shard.is_main)
        datasets, entries, methods = plan.datasets, plan.entries, plan.methods
        metrics = {name: create_metric(name, device=self.device) for name in plan.metrics}
        main = self.shard.is_main
        if main:
            store.set_skipped("metric", plan.skipped_metrics)
            store.set_skipped("method", plan.skipped_methods)
            store.set_skipped("variant", plan.skipped_variants)
            store.set_skipped("file", {f"{ds.name}/{printable_id(image)}": reason
                                       for ds in datasets for image, reason in ds.left_out})
            warnings = jpeg_reference_warnings(entries)
            for warning in warnings:
                log.warning(warning)
            store.set_meta("warnings", warnings)
            store.set_methods({label: (m.fingerprint(), m.describe()) for label, m in methods.items()})
            store.set_scope([(e.dataset, e.image, qf) for e in entries for qf in self.config.qf])
            for name in store.invalidate_changed_metrics({n: m.fingerprint() for n, m in metrics.items()}):
                log.info("metric %s changed (options, version or weight files): its stored values are recomputed", name)

        weights = {name: [_weight_record(w) for w in m.required_files()] for name, m in metrics.items()}
        weights.update({label: [_weight_record(w) for w in m.required_weights()] for label, m in methods.items()})
        record = manifest(self.config.to_dict(), self.protocol.to_dict(), weights, self.device, self.config.seed)
        record["processes"] = self.shard.world
        if main:
            store.set_meta("protocol", self.protocol.to_dict())
            store.set_meta("protocol_key", self.pkey)
            store.set_meta("variants", {v.label: {"key": v.key, "protocol": v.protocol.to_dict()}
                                        for v in plan.variants})
            store.set_meta("config", self.config.to_dict())
            store.set_meta("metric_info", {n: m.info() for n, m in metrics.items()})
            store.set_meta("dataset_info", {ds.name: {"label": ds.label, "description": ds.description}
                                            for ds in plan.datasets})
            store.set_meta("manifest", record)
        self.shard.barrier()

        all_units = [WorkUnit(label, e, qf, v) for v in plan.variants for label in methods for e in entries
                     for qf in self.config.qf]
        units = self.shard.take(all_units)
        good = set()
        for variant in plan.variants:
            needed = {u.entry for u in units if u.variant == variant}
            prepared = self._prepare_inputs(store, [e for e in entries if e in needed], variant)
            good |= {(e, variant) for e in prepared}
        units = [u for u in units if (u.entry, u.variant) in good]
        summary.units = len(units)
        self._process(store, methods, metrics, units, summary, total=len(all_units))
        self.shard.barrier()
        summary.errors = store.errors_frame().to_dict("records")
        if not main:
            return summary

        record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        store.set_meta("manifest", record)
        atomic_write_text(self.run_dir / "manifest.json", json.dumps(record, indent=2, default=str))
        store.set_skipped("analysis", self._analyse(plan))
        summary.skipped = store.skipped()
        write_summary_csv(store, self.run_dir)
        from bench.metrics import metric_files

        summary.weight_files = plan.method_weights + [str(f.path) for name in self.config.metrics
                                                      for f in metric_files(name)]
        return summary

    def _analyse(self, plan: RunPlan) -> dict[str, str]:
        """Run the configured analyses into `<run_dir>/analyses/<name>/`; what failed or was left out is
        returned as skipped items (`name` or `name:item`), never raised: an analysis never ends a run."""
        images = [(f"{e.dataset}/{e.image}", e.path) for e in plan.entries]
        skipped: dict[str, str] = {}
        for name, analysis in plan.analyses:
            inputs = AnalysisInputs(images, self.protocol, self.run_dir / ANALYSES_FOLDER / safe_component(name),
                                    progress=self.progress)
            try:
                skipped.update({f"{name}:{item}": why for item, why in analysis.run(inputs).items()})
            except Exception as exc:  # noqa: BLE001 - recorded as skipped
                log.error("analysis %s skipped: %s", name, exc)
                skipped[name] = f"{type(exc).__name__}: {exc}"
        return skipped

    def _create_methods(self, broken: dict[str, str] | None = None
                        ) -> tuple[dict[str, Method], dict[str, str], list[str]]:
        """The methods, created (not loaded), those skipped for absent weights, and every weight file they
        name (present or not); a method that cannot be created raises, or is recorded in `broken` when given."""
        methods: dict[str, Method] = {}
        skipped: dict[str, str] = {}
        weight_paths: list[str] = []
        for spec in self.config.method_specs():
            try:
                method = create_method(spec.method, device=self.device, **spec.config)
            except BenchError as exc:
                if broken is None:
                    raise
                broken[spec.label] = str(exc)
                continue
            weight_paths += [str(w.path) for w in method.required_weights()]
            missing = method.missing_weights()
            if missing:
                reason = unusable_files(missing)
                if self.config.strict and broken is None:
                    raise MethodError(f"method {spec.label!r}: {reason}")
                skipped[spec.label] = reason
                continue
            methods[spec.label] = method
        return methods, skipped, weight_paths

    # -- inputs -------------------------------------------------------------------------------------------
    def hq_path(self, entry: ImageEntry, variant: Variant | None = None) -> Path:
        key = (variant or self.clean).key
        return self.run_dir / "hq" / safe_component(entry.dataset) / key / f"{entry.stem}.png"

    def lq_path(self, entry: ImageEntry, qf: int, variant: Variant | None = None) -> Path:
        key = (variant or self.clean).key
        return self.run_dir / "lq" / safe_component(entry.dataset) / key / f"qf{qf}" / f"{entry.stem}.jpg"

    def output_path(self, unit: WorkUnit) -> Path:
        e = unit.entry
        variant = [] if unit.variant in (None, self.clean) else [safe_component(unit.variant.label)]
        return self.run_dir.joinpath("outputs", safe_component(e.dataset), safe_component(unit.method), *variant,
                                     f"qf{unit.qf}", f"{e.stem}.png")

    def unit(self, unit: WorkUnit) -> Unit:
        """What a method is told of the unit it restores (also used by dry runs)."""
        e = unit.entry
        key = (unit.variant or self.clean).key
        work_dir = self.run_dir / "work" / safe_component(unit.method) / safe_component(e.dataset) / key
        return Unit(e.dataset, e.image, e.stem, unit.qf, self.lq_path(e, unit.qf, unit.variant),
                    work_dir / f"qf{unit.qf}")

    def _prepare_inputs(self, store: ResultsStore, entries: list[ImageEntry], variant: Variant) -> list[ImageEntry]:
        """Write each HQ reference and its LQ files once under `variant`; return the images that could be
        prepared."""
        from tqdm.auto import tqdm

        good = []
        desc = "inputs" if variant == self.clean else shown(f"inputs {variant.label}")
        for entry in tqdm(entries, desc=desc, unit="img", disable=not self.progress or not entries):
            key = UnitKey(entry.dataset, entry.image, "*", 0, "", variant.key)
            try:
                self._prepare_one(store, entry, variant)
            except RunFolderError:
                raise
            except (ImageError, ProtocolError) as exc:
                store.put_error(key, "input", _describe_input(exc, entry.path))
                continue
            except Exception as exc:  # noqa: BLE001 - one bad image never ends the run
                store.put_error(key, "input", _describe(exc, entry.path))
                continue
            store.clear_errors(entry.dataset, entry.image, variant.key)
            good.append(entry)
        return good

    def _prepare_one(self, store: ResultsStore, entry: ImageEntry, variant: Variant) -> None:
        hq_file = self.hq_path(entry, variant)
        lq_files = {qf: self.lq_path(entry, qf, variant) for qf in self.config.qf}
        if (hq_file.is_file() and all(p.is_file() for p in lq_files.values())
                and store.has_inputs(entry.dataset, entry.image, variant.key, self.config.qf)):
            return
        p = variant.protocol
        loaded = read_rgb8(entry.path, grayscale=p.grayscale, alpha=p.alpha, exif=p.exif,
                           max_pixels=self.config.max_pixels)
        prepared = p.prepare_hq(loaded.rgb)
        hq = p.reference(prepared)
        notes = list(loaded.notes)
        if prepared.shape != loaded.rgb.shape:
            notes.append(f"HQ {p.resize} from {loaded.rgb.shape[1]}x{loaded.rgb.shape[0]} "
                         f"to {prepared.shape[1]}x{prepared.shape[0]}")
        if hq.shape != prepared.shape:
            notes.append(f"HQ reference {hq.shape[1]}x{hq.shape[0]} after the variant's shift or resize")
        if not hq_file.is_file():
            self._write(hq_file, encode_png(hq))
        store.put_image(entry.dataset, entry.image, variant.key, self._rel(hq_file), hq.shape[1], hq.shape[0], notes)
        for qf, path in lq_files.items():
            if not path.is_file():
                data = p.compress(prepared, qf)
                self._write(path, data)
            store.put_lq(entry.dataset, entry.image, variant.key, qf, self._rel(path), path.stat().st_size)

    def _check_run_folder(self) -> None:
        """Fail early, with the reason, when the run folder cannot be created or written."""
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise RunFolderError(errno.ENOTDIR, f"the run folder {self.run_dir} exists and is not a folder")
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=self.run_dir).close()
        except OSError as exc:
            raise RunFolderError(exc.errno, f"cannot write to the run folder {self.run_dir}: "
                                            f"{exc.strerror or exc}") from exc

    def _write(self, path: Path, data: bytes) -> None:
        """Write a file of the run folder atomically; failing to is the run folder's problem, not the image's."""
        try:
            atomic_write_bytes(inside(self.run_dir, path), data)
        except OSError as exc:
            raise RunFolderError(exc.errno, f"cannot write {path}: {exc.strerror or exc} (run folder "
                                            f"{self.run_dir}; finished results are kept, rerun to resume)") from exc

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.run_dir).as_posix()

    # -- restoration and scoring --------------------------------------------------------------------------
    def _process(self, store: ResultsStore, methods: dict[str, Method], metrics: dict[str, Any],
                 units: list[WorkUnit], summary: RunSummary, total: int) -> None:
        """Restore and score this process's units; the main process's bar counts every process's work."""
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="restore+score", unit="unit", disable=not self.progress)
        for label, method in methods.items():
            todo = [u for u in units if u.method == label]
            loaded = self._load_method(store, method, todo)
            for unit in todo:
                variant = "" if unit.variant in (None, self.clean) else f" {unit.variant.label}"
                bar.set_postfix_str(shown(f"{label}{variant} qf{unit.qf} {unit.entry.image[:30]}"), refresh=False)
                if loaded:
                    self._process_unit(store, method, metrics, unit, summary)
                if self.shard.distributed:
                    bar.update(store.count_finished_units() - bar.n)
                else:
                    bar.update(1)
        bar.close()

    def _load_method(self, store: ResultsStore, method: Method, units: list[WorkUnit]) -> bool:
        """Load a method's weights once; a failure becomes an error on each of its units that is not done."""
        try:
            method.load()
            return True
        except Exception as exc:  # noqa: BLE001 - any failure to load is recorded, not raised
            message = f"loading failed: {type(exc).__name__}: {exc}"
            log.error("method %s: %s", method.name, message)
            for unit in units:
                store.put_error(self._key(method, unit), "restore", message)
            return False

    def _key(self, method: Method, unit: WorkUnit) -> UnitKey:
        return UnitKey(unit.entry.dataset, unit.entry.image, unit.method, unit.qf, method.fingerprint(),
                       (unit.variant or self.clean).key)

    def _process_unit(self, store: ResultsStore, method: Method, metrics: dict[str, Any], unit: WorkUnit,
                      summary: RunSummary) -> None:
        import torch

        key = self._key(method, unit)
        done = store.done_metrics(*key.astuple())
        todo = [m for m in metrics if m not in done]
        row = store.get_output(*key.astuple())
        out_file = self.output_path(unit)
        if row is not None and out_file.is_file() and not todo:
            summary.reused += 1
            return
        try:
            hq = to_tensor(decode_png(self.hq_path(unit.entry, unit.variant)))
            if row is not None and out_file.is_file():
                out = to_tensor(decode_png(out_file))
                summary.reused += 1
            else:
                out = self._restore(store, method, unit, key, hq.shape)
                summary.restored += 1
        except RunFolderError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad unit never ends the run
            store.put_error(key, "restore", _describe(exc, unit.entry.path))
            log.debug("restore failed: %s", traceback.format_exc())
            return
        values = {}
        for name in todo:
            try:
                with torch.inference_mode():
                    ref = hq if metrics[name].full_reference else None
                    value = float(metrics[name](out.to(self.device), None if ref is None else ref.to(self.device))[0])
                if not np.isfinite(value):
                    raise ValueError(f"metric returned {value}")
                values[name] = value
            except Exception as exc:  # noqa: BLE001
                store.put_error(key, f"metric:{name}", _describe(exc, unit.entry.path))
        if values:
            store.put_results(key, values)

    def _restore(self, store: ResultsStore, method: Method, unit: WorkUnit, key: UnitKey,
                 shape: tuple[int, ...]) -> "torch.Tensor":
        import torch

        jpeg = self.lq_path(unit.entry, unit.qf, unit.variant).read_bytes()
        lq = to_tensor(decode_jpeg(jpeg)).to(self.device)
        request = RestoreRequest(lq, qf=unit.qf, jpeg_bytes=jpeg, unit=self.unit(unit))
        start = time.perf_counter()
        with torch.inference_mode():
            out = method.restore(request)
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if tuple(out.shape) != tuple(shape):
            raise MethodError(f"method returned shape {tuple(out.shape)} for an input of {tuple(shape)}")
        if not torch.isfinite(out).all():
            raise MethodError("method returned non-finite values")
        rgb8 = to_uint8(out.float().cpu())
        out_file = self.output_path(unit)
        self._write(out_file, encode_png(rgb8))
        store.put_output(key, self._rel(out_file), seconds, [])
        return to_tensor(rgb8)


def jpeg_reference_warnings(entries: list[ImageEntry]) -> list[str]:
    """One warning per dataset whose HQ references are JPEG files: the benchmark compresses them a second
    time, so its scores measure the restoration of doubly compressed images."""
    found: dict[str, list[ImageEntry]] = {}
    for entry in entries:
        found.setdefault(entry.dataset, [])
        if _is_jpeg(entry.path):
            found[entry.dataset].append(entry)
    return [f"dataset {printable_id(name)}: {len(jpegs)} of {sum(e.dataset == name for e in entries)} HQ "
            f"references are JPEG files (e.g. {jpegs[0].image}); they are compressed a second time, so the scores "
            "measure restoration from double compression: use lossless originals (PNG) where they exist"
            for name, jpegs in found.items() if jpegs]


def _is_jpeg(path: Path) -> bool:
    """True when the file starts with the JPEG start-of-image marker (whatever its extension)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(3) == b"\xff\xd8\xff"
    except OSError:
        return False


def decode_png(path: Path) -> np.ndarray:
    """Read a PNG that the harness wrote (always 8-bit RGB)."""
    return read_rgb8(path).rgb


def _describe(exc: BaseException, path: Path) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if str(path) in text else f"{path}: {text}"


def _describe_input(exc: BaseException, path: Path) -> str:
    """An input error names the file and the reason (a ProtocolError says only the reason)."""
    return str(exc) if str(path) in str(exc) else f"{path}: {exc}"


def _weight_record(w: WeightFile) -> dict[str, Any]:
    """Path, status, size and SHA-256 of a weight file (the hash cache reads each version of a file once)."""
    record: dict[str, Any] = {"label": w.label, "path": str(w.path), "status": w.status()}
    if w.path.is_file():
        record.update(size=w.path.stat().st_size, sha256=w.sha256())
    return record


def write_summary_csv(store: ResultsStore, run_dir: Path) -> Path:
    """Means per dataset x method x QF x metric, with the image count, as `<run_dir>/summary.csv`."""
    frame = store.results_frame()
    if frame.empty:
        text = "dataset,method,qf,metric,mean,std,n\n"
    else:
        grouped = frame.groupby(["dataset", "method", "qf", "metric"])["value"]
        table = grouped.agg(["mean", "std", "count"]).reset_index().rename(columns={"count": "n"})
        text = table.to_csv(index=False, float_format="%.6g")
    path = run_dir / "summary.csv"
    atomic_write_text(path, text)
    return path
