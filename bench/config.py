"""Run configuration: a typed YAML config (see `bench.core.config`) with defaults, overridden by flags.

`methods` entries are names or mappings (`MethodSpec.from_entry`); `method_defaults` gives options once for every
entry of a method (for example the Stable Diffusion folder of all `codiff` rows); `analyses` lists post-run
analyses by name or `{name: ..., when: auto|always, options}`; `variants` lists protocol variants run beside the
protocol (`VariantSpec`), each its own block of results under its own protocol key. Every entry is typed: the
config system reads each through its class's `from_entry`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.core.config import (
    apply_overrides,
    entry_name,
    from_dict,
    merge,
    read_yaml,
    to_dict,
)
from bench.core.errors import ConfigError
from bench.core.protocol import JpegProtocol

log = logging.getLogger(__name__)
DEFAULT_METRICS = ["psnr", "ssim", "psnr_b", "lpips", "dists", "musiq", "maniqa", "clipiqa"]


@dataclass
class MethodSpec:
    """A method as a run config names it: a display label, the registered method, and its options (a string
    entry names the method; a mapping gives `method`, an optional `name` as its label, and options)."""

    label: str
    method: str
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, entry: Any, key: str = "method") -> MethodSpec:
        """Accept 'jpeg' or {'name': 'codiff-fp32', 'method': 'codiff', 'dtype': 'fp32', ...}."""
        if isinstance(entry, cls):
            return entry
        if isinstance(entry, str):
            entry = {"method": entry}
        if not isinstance(entry, dict):
            raise ConfigError(f"{key}: a method entry must be a name or a mapping, not {entry!r}")
        entry = dict(entry)
        method = entry.pop("method", None) or entry.get("name")
        label = entry.pop("name", None) or method
        if not method:
            raise ConfigError(f"{key}: method entry {entry!r} names no method")
        options = dict(entry.pop("config", None) or {})
        options.update(entry)
        return cls(label=str(label), method=str(method), config=options)

    def with_defaults(self, defaults: dict[str, dict[str, Any]]) -> MethodSpec:
        """This entry with `defaults[method]` filling the options it does not give."""
        return MethodSpec(self.label, self.method, merge(dict(defaults.get(self.method) or {}), self.config))

    def to_entry(self) -> dict[str, Any]:
        return {"name": self.label, "method": self.method, **self.config}


@dataclass
class AnalysisSpec:
    """A post-run analysis as a run config names it: its registered name, when it runs, and its options.
    `when: auto` runs it only when the run holds a method it analyses; `always` runs it regardless."""

    name: str
    when: Literal["auto", "always"] = "auto"
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_entry(cls, entry: Any, key: str = "analysis") -> AnalysisSpec:
        if isinstance(entry, cls):
            return entry
        values = {"name": entry} if isinstance(entry, str) else dict(entry) if isinstance(entry, dict) else None
        if not values or not values.get("name"):
            raise ConfigError(f"{key}: an analysis entry is a name or a mapping with a `name`, not {entry!r}")
        name, when = str(values.pop("name")), values.pop("when", "auto")
        if when not in ("auto", "always"):
            raise ConfigError(f"{key}.when: {when!r} is not one of 'auto', 'always'")
        return cls(name, when, values)

    def to_entry(self) -> dict[str, Any]:
        return {"name": self.name, "when": self.when, **self.options}


@dataclass
class VariantSpec:
    """A protocol variant as a run config names it: a label and the protocol values it replaces, e.g.
    `{name: double-90, before: [{jpeg: 90}]}` or `{name: pillow, codec: pillow}`."""

    label: str
    values: dict[str, Any]

    @classmethod
    def from_entry(cls, entry: Any, key: str = "variant") -> VariantSpec:
        if isinstance(entry, cls):
            return entry
        if not isinstance(entry, dict) or not entry.get("name"):
            raise ConfigError(f"{key}: a variant is a mapping with a `name` and protocol values, e.g. {{name: "
                              f"double-90, before: [{{jpeg: 90}}]}}; got {entry!r}")
        values = dict(entry)
        label = str(values.pop("name"))
        if not values:
            raise ConfigError(f"{key}: variant {label!r} changes nothing in the protocol")
        return cls(label, values)

    def to_entry(self) -> dict[str, Any]:
        return {"name": self.label, **self.values}


CLEAN = "clean"


@dataclass(frozen=True)
class Variant:
    """A labelled protocol of a run: the run's own protocol ('clean') or a degraded variant of it."""

    label: str
    protocol: JpegProtocol

    @property
    def key(self) -> str:
        return self.protocol.key()

    @classmethod
    def of(cls, spec: VariantSpec, base: JpegProtocol) -> Variant:
        """The variant a spec describes: its values replacing the base protocol's."""
        merged = {k: v for k, v in base.to_dict().items() if k != "quality"}
        merged.update(spec.values)
        try:
            return cls(spec.label, JpegProtocol.from_dict(merged))
        except ConfigError as exc:
            raise ConfigError(f"variant {spec.label!r}: {exc}") from None


@dataclass
class RunConfig:
    """Everything a run needs.

    `images` (folders of images, each an ad hoc dataset) replaces the default `sample` dataset: a config
    that lists `images` and no `datasets` runs on those folders alone, as `--images` does on the command
    line; list `datasets` too to run on both.
    """

    datasets: list[str] = field(default_factory=lambda: ["sample"])
    images: list[str] = field(default_factory=list)
    qf: list[int] = field(default_factory=lambda: [10])
    methods: list[MethodSpec] = field(default_factory=lambda: [MethodSpec("jpeg", "jpeg")])
    method_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    metric_options: dict[str, dict[str, Any]] = field(default_factory=dict)  # e.g. {psnr: {color_space: ycbcr}}
    protocol: JpegProtocol = field(default_factory=JpegProtocol)
    analyses: list[AnalysisSpec] = field(default_factory=list)
    variants: list[VariantSpec] = field(default_factory=list)
    run_dir: str = "runs/default"
    data_root: str | None = None
    limit: int | None = None
    strict: bool = False
    device: str = "cpu"
    seed: int = 0
    max_pixels: int | None = 16_000_000
    report: bool = True
    sources: list[str] = field(default_factory=list, init=False)

    @classmethod
    def load(cls, path: str | os.PathLike, overrides: list[str] | None = None,
             flags: dict[str, Any] | None = None) -> RunConfig:
        """The config in `path`, with `--set` overrides, then command-line flags (None: not given), all read by
        the one config system. `methods` flags may name a config entry by its label (its options come along)."""
        data = apply_overrides(read_yaml(path, "run config"), list(overrides or []))
        given = {key: value for key, value in (flags or {}).items() if value is not None}
        if "methods" in given:
            entries = {entry_name(e): e for e in data.get("methods") or []}
            given["methods"] = [entries.get(name, name) for name in given["methods"]]
        config = cls.from_dict({**data, **given})
        config.sources.append(str(path))
        return config

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        if data.get("images") and "datasets" not in data:
            data = {**data, "datasets": []}
        return from_dict(cls, data)

    def validate(self) -> None:
        """Values the types allow but a run cannot use (called by the config system after construction)."""
        bad = [q for q in self.qf if not 1 <= q <= 100]
        if bad:
            raise ConfigError(f"quality factors must be whole numbers within 1..100, not {bad}")
        if not self.qf:
            raise ConfigError("no quality factors to run: give at least one (`qf:` in the config, or --qf 5,10)")
        twice = sorted({q for q in self.qf if self.qf.count(q) > 1})
        if twice:
            log.warning("quality factors listed more than once are run once: %s", ", ".join(map(str, twice)))
            self.qf = list(dict.fromkeys(self.qf))
        if not self.methods:
            raise ConfigError("no methods to run: name at least one (`methods:` in the config, or --methods jpeg,...)")
        if not self.metrics:
            raise ConfigError("no metrics to compute: name at least one (`metrics:` in the config, or --metrics psnr)")
        stray = sorted(set(self.metric_options) - set(self.metrics))
        if stray:
            raise ConfigError(f"metric_options names {stray}, which `metrics` does not list")
        if not self.datasets and not self.images:
            raise ConfigError("no images to run on: name a dataset (`datasets:`, --datasets) or an image folder "
                              "(`images:`, --images)")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be a whole number of images of at least 1 (or absent for every image), "
                              f"got {self.limit!r}")
        if self.max_pixels is not None and self.max_pixels < 64:
            raise ConfigError(f"max_pixels must be at least 64 (one 8x8 block), or null for no limit; got "
                              f"{self.max_pixels}")
        if not str(self.run_dir).strip():
            raise ConfigError("run_dir is empty: give the run folder (`run_dir:` or --run-dir)")
        self.method_specs()
        self.protocol_variants()

    def method_specs(self) -> list[MethodSpec]:
        """The method entries with `method_defaults` applied; labels must be unique."""
        specs = [spec.with_defaults(self.method_defaults) for spec in self.methods]
        labels = [s.label for s in specs]
        dupes = {x for x in labels if labels.count(x) > 1}
        if dupes:
            raise ConfigError(f"method labels must be unique: {sorted(dupes)} (give each entry a `name`)")
        return specs

    def protocol_variants(self) -> list[Variant]:
        """The protocol ('clean') followed by the configured variants; labels and protocols must be unique."""
        variants = [Variant(CLEAN, self.protocol)] + [Variant.of(v, self.protocol) for v in self.variants]
        for what, values in (("label", [v.label for v in variants]), ("protocol", [v.key for v in variants])):
            twice = sorted({x for x in values if values.count(x) > 1})
            if twice:
                names = [v.label for v in variants if (v.label if what == "label" else v.key) in twice]
                raise ConfigError(f"variants must differ in {what}: {', '.join(names)} (the run's own protocol is "
                                  f"'{CLEAN}')")
        return variants

    def to_dict(self) -> dict[str, Any]:
        """The config as YAML-able values, entries in the shape a config file gives them."""
        return {**to_dict(self), "protocol": self.protocol.to_dict(),
                "methods": [m.to_entry() for m in self.methods],
                "analyses": [a.to_entry() for a in self.analyses],
                "variants": [v.to_entry() for v in self.variants]}


def load_config(path: str | os.PathLike | None, overrides: list[str] | None = None,
                flags: dict[str, Any] | None = None) -> RunConfig:
    """The config at `path` (the embedded default when None), with `--set` overrides and flags applied."""
    from bench.core.resources import embedded_file

    return RunConfig.load(path or embedded_file("default.yaml"), overrides, flags)
