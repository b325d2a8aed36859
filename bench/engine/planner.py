"""The planner: which units a run config asks for, with the content identity of each, found before anything is
written. The run, the dry run and the up-to-date stamp all plan through it.

An image's identity is the SHA-256 of its file's bytes (through the hash cache: once per file version); a
unit's identity hashes that, the protocol key, the QF, the method's fingerprint (registered method, options,
weight files by content) and the run's seed. Names and paths are labels for people only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.analysis import Analysis, create_analysis
from bench.config import CLEAN, RunConfig, Variant
from bench.core.config import unset_variables
from bench.core.device import DeviceError, checked_device
from bench.core.errors import BenchError, ConfigError, UnknownNameError
from bench.core.hashcache import content_sha256
from bench.core.paths import printable_id, safe_names
from bench.core.protocol import ProtocolError
from bench.core.weights import unusable_files
from bench.datasets import Dataset, DatasetError, folder_dataset, resolve_dataset
from methods.base import Method, MethodError
from methods.registry import METHODS, create_method


@dataclass(frozen=True)
class ImageEntry:
    """One image of a dataset: its id in the dataset, its file, a file-safe stem, and its content identity."""

    dataset: str
    image: str
    path: Path
    stem: str
    image_id: str


@dataclass(frozen=True)
class WorkUnit:
    """One image restored by one method (by label) at one QF under one protocol variant, and its identity."""

    method: str
    entry: ImageEntry
    qf: int
    variant: Variant
    unit_id: str


@dataclass
class RunPlan:
    """Everything a run will do, resolved before anything is written. A lenient plan (the dry run's) records
    what is absent or broken instead of raising."""

    datasets: list[Dataset]
    entries: list[ImageEntry]
    methods: dict[str, Method]
    metrics: list[str]
    analyses: list[tuple[str, Analysis]]
    variants: list[Variant]
    units: list[WorkUnit] = field(default_factory=list)
    skipped_methods: dict[str, str] = field(default_factory=dict)
    skipped_metrics: dict[str, str] = field(default_factory=dict)
    skipped_variants: dict[str, str] = field(default_factory=dict)  # label -> why (an encoder not installed)
    skipped_analyses: dict[str, str] = field(default_factory=dict)
    problems: dict[str, dict[str, str]] = field(default_factory=dict)  # lenient only: kind -> {name: why}
    method_weights: list[str] = field(default_factory=list)  # every weight file the methods name


def image_identity(path: Path) -> str:
    """The SHA-256 of an image file's bytes; an unreadable file gets an identity of its own that no content
    can take, so that it becomes an input error of its own."""
    try:
        return content_sha256(path)
    except OSError:
        return "unreadable:" + hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()


def unit_identity(image_id: str, protocol_key: str, qf: int, method_fingerprint: str, seed: int) -> str:
    blob = json.dumps([image_id, protocol_key, int(qf), method_fingerprint, int(seed)]).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


class Planner:
    """Plans one `RunConfig`: checks every name and value, resolves data, methods, metrics and variants."""

    def __init__(self, config: RunConfig, device: str | None = None) -> None:
        self.config = config
        self.device = device or config.device

    def plan(self, *, lenient: bool = False) -> RunPlan:
        """The plan; raises BenchError (an unknown name, a missing dataset, a bad option, no GPU, an unset
        variable) before anything is written, unless `lenient`, which records such problems in `problems`."""
        from bench.metrics import METRICS, check_metrics

        cfg, strict = self.config, self.config.strict and not lenient
        problems: dict[str, dict[str, str]] = {}
        self._check(lambda: checked_device(self.device), problems, "device", self.device, lenient, DeviceError)
        self._check(lambda: _no_unset_variables(cfg), problems, "environment", "variables", lenient, ConfigError)
        for spec in cfg.method_specs():
            self._check(lambda: METHODS.check(spec.method), problems, "method", spec.label, lenient, UnknownNameError)
        for name in cfg.metrics:
            METRICS.check(name)
        analyses = [(spec.name, create_analysis({"name": spec.name, **spec.options})) for spec in cfg.analyses]
        datasets = self.datasets(problems.setdefault("data", {}) if lenient else None)
        metrics, skipped_metrics = check_metrics(cfg.metrics, strict=strict, options=cfg.metric_options)
        device = "cpu" if problems.get("device") else self.device
        methods, skipped_methods, weights = self._methods(device, problems.setdefault("method", {}) if lenient else None)
        variants, skipped_variants = self._variants(strict=strict)
        entries = self.entries(datasets)
        plan = RunPlan(datasets, entries, methods, metrics, analyses, variants, skipped_methods=skipped_methods,
                       skipped_metrics=skipped_metrics, skipped_variants=skipped_variants, problems=problems,
                       method_weights=weights)
        plan.units = self.units(plan)
        plan.analyses, plan.skipped_analyses = self._analyses_that_apply(plan)
        return plan

    @staticmethod
    def _check(check, problems: dict[str, dict[str, str]], kind: str, name: str, lenient: bool,
               error: type[BenchError]) -> None:
        try:
            check()
        except error as exc:
            if not lenient:
                raise
            problems.setdefault(kind, {})[name] = str(exc)

    def units(self, plan: RunPlan) -> list[WorkUnit]:
        """Every unit of the plan (variant x method x image x QF), each with its content identity."""
        prints = {label: method.fingerprint() for label, method in plan.methods.items()}
        return [WorkUnit(label, e, qf, v, unit_identity(e.image_id, v.key, qf, prints[label], self.config.seed))
                for v in plan.variants for label in plan.methods for e in plan.entries for qf in self.config.qf]

    def datasets(self, absent: dict[str, str] | None = None) -> list[Dataset]:
        """The configured datasets, resolved (raises DatasetError with what is expected where, or records it
        in `absent` when given)."""
        cfg = self.config
        sources = [(name, lambda n=name: resolve_dataset(n, root=cfg.data_root)) for name in cfg.datasets]
        sources += [(folder, lambda f=folder: folder_dataset(f)) for folder in cfg.images]
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
            raise DatasetError(f"two datasets are named {twice}: results are reported by dataset name, so give "
                               "the image folders different names")
        return sets

    def entries(self, datasets: Iterable[Dataset]) -> list[ImageEntry]:
        """The images of the datasets (within the limit), each with its content identity."""
        entries = []
        for ds in datasets:
            items = ds.items()[: self.config.limit] if self.config.limit else ds.items()
            items = [(printable_id(image), path) for image, path in items]
            stems = safe_names([image for image, _ in items])
            entries += [ImageEntry(ds.name, image, path, stems[image], image_identity(path)) for image, path in items]
        return entries

    def _methods(self, device: str, broken: dict[str, str] | None
                 ) -> tuple[dict[str, Method], dict[str, str], list[str]]:
        """The methods, created (not loaded), those skipped for absent weights, and every weight file they
        name. A method that cannot be created, or lacks what it runs (`preflight`: a command's program, a
        folder of restorations), raises, or is recorded in `broken` when given (the dry run lists the rest)."""
        methods: dict[str, Method] = {}
        skipped: dict[str, str] = {}
        weight_paths: list[str] = []
        for spec in self.config.method_specs():
            if broken is not None and spec.method not in METHODS:
                continue  # recorded by the name check
            try:
                method = create_method(spec.method, device=device, **spec.config)
                lacking = [] if broken is not None else method.preflight([])
                if lacking:
                    raise MethodError(f"method {spec.label!r}: {'; '.join(lacking)}")
            except BenchError as exc:
                if broken is None:
                    raise
                broken[spec.label] = str(exc)
                continue
            weight_paths += [str(w.path) for w in method.required_weights()]
            missing = method.missing_weights()
            unusable = unusable_files(missing) if missing else ""
            if unusable:
                if self.config.strict and broken is None:
                    raise MethodError(f"method {spec.label!r}: {unusable}")
                skipped[spec.label] = unusable
                continue
            methods[spec.label] = method
        return methods, skipped, weight_paths

    def _variants(self, *, strict: bool) -> tuple[list[Variant], dict[str, str]]:
        """The protocol variants that can run here, and those skipped (an encoder's package is absent)."""
        variants, skipped = [], {}
        for variant in self.config.protocol_variants():
            why = variant.protocol.missing()
            if why and (strict or variant.label == CLEAN):
                raise ProtocolError(f"protocol {variant.label!r}: {why}")
            if why:
                skipped[variant.label] = why
            else:
                variants.append(variant)
        return variants, skipped

    def _analyses_that_apply(self, plan: RunPlan) -> tuple[list[tuple[str, Analysis]], dict[str, str]]:
        """The analyses to run: `when: always` ones, and `auto` ones whose subject is among the run's methods."""
        chosen, skipped = [], {}
        present = {m.name for m in plan.methods.values()}
        for spec, (name, analysis) in zip(self.config.analyses, plan.analyses):
            subjects = set(type(analysis).analyses_methods)
            if spec.when == "always" or not subjects or subjects & present:
                chosen.append((name, analysis))
            else:
                skipped[name] = (f"not run: no method it analyses ({', '.join(sorted(subjects))}) is in this run; "
                                 "add one, or give the analysis `when: always`")
        return chosen, skipped


def _no_unset_variables(config: RunConfig) -> None:
    """A `${VAR}` left in the config (unset, no default) is a mistake of the environment: say which and where."""
    found = unset_variables(config.to_dict())
    if found:
        raise ConfigError("; ".join(f"{var} is not set (used in {', '.join(where)})" for var, where in found)
                          + ": set it, or give a default as ${VAR:-default}")

