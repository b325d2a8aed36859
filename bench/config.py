"""Run configuration: a typed YAML config (see `bench.core.config`) with defaults, overridden by flags.

`methods` entries are names or mappings (`MethodSpec.parse`); `method_defaults` gives options once for every
entry of a method (for example the Stable Diffusion folder of all `codiff` rows); `analyses` lists post-run
analyses by name or `{name: ..., options}`; `variants` lists protocol variants run beside the protocol
(`Variant.parse`), each its own block of results under its own protocol key.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from bench.core.config import apply_overrides, from_dict, merge, read_yaml, to_dict
from bench.core.errors import ConfigError
from bench.core.protocol import JpegProtocol

log = logging.getLogger(__name__)
DEFAULT_METRICS = ["psnr", "ssim", "psnr_b", "lpips", "dists", "musiq", "maniqa", "clipiqa"]


@dataclass
class MethodSpec:
    """A method as a run config names it: a display label, the registered method, and its options."""

    label: str
    method: str
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, entry: str | dict[str, Any], defaults: dict[str, dict[str, Any]] | None = None) -> "MethodSpec":
        """Accept 'jpeg' or {'name': 'codiff-fp32', 'method': 'codiff', 'dtype': 'fp32', ...}; options in
        `defaults[method]` apply where the entry is silent."""
        if isinstance(entry, str):
            entry = {"method": entry}
        if not isinstance(entry, dict):
            raise ConfigError(f"a method entry must be a name or a mapping, not {entry!r}")
        entry = dict(entry)
        method = entry.pop("method", None) or entry.get("name")
        label = entry.pop("name", None) or method
        if not method:
            raise ConfigError(f"method entry {entry!r} names no method")
        options = dict(entry.pop("config", None) or {})
        options.update(entry)
        options = merge(dict((defaults or {}).get(str(method)) or {}), options)
        return cls(label=str(label), method=str(method), config=options)


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
    def parse(cls, entry: Any, base: JpegProtocol) -> "Variant":
        """A variant from a config entry: `{name: LABEL, ...protocol values}`, the values replacing the base
        protocol's, e.g. `{name: double-90, before: [{jpeg: 90}]}` or `{name: pillow, codec: pillow}`."""
        if not isinstance(entry, dict) or not entry.get("name"):
            raise ConfigError(f"a variant is a mapping with a `name` and protocol values, e.g. {{name: double-90, "
                              f"before: [{{jpeg: 90}}]}}; got {entry!r}")
        values = dict(entry)
        label = str(values.pop("name"))
        if not values:
            raise ConfigError(f"variant {label!r} changes nothing in the protocol")
        merged = {k: v for k, v in base.to_dict().items() if k != "quality"}
        merged.update(values)
        try:
            return cls(label, JpegProtocol.from_dict(merged))
        except ConfigError as exc:
            raise ConfigError(f"variant {label!r}: {exc}") from None


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
    methods: list[Any] = field(default_factory=lambda: ["jpeg"])
    method_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    protocol: JpegProtocol = field(default_factory=JpegProtocol)
    analyses: list[Any] = field(default_factory=list)
    variants: list[Any] = field(default_factory=list)
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
    def from_file(cls, path: str | os.PathLike, overrides: list[str] | None = None) -> "RunConfig":
        config = cls.from_dict(apply_overrides(read_yaml(path, "run config"), list(overrides or [])))
        config.sources.append(str(path))
        return config

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        if data.get("images") and "datasets" not in data:
            data = {**data, "datasets": []}
        return from_dict(cls, data)

    def override(self, **values: Any) -> "RunConfig":
        """Apply command-line values (None means 'not given')."""
        for key, value in values.items():
            if value is not None:
                setattr(self, key, value)
        self.validate()
        return self

    def validate(self) -> None:
        for name in ("datasets", "images", "qf", "methods", "metrics"):
            value = getattr(self, name)
            if isinstance(value, (str, int)):
                setattr(self, name, [value])
        bad = [q for q in self.qf if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= 100]
        if bad:
            raise ConfigError(f"quality factors must be whole numbers within 1..100, not {bad}")
        twice = sorted({q for q in self.qf if self.qf.count(q) > 1})
        if twice:
            log.warning("quality factors listed more than once are run once: %s", ", ".join(map(str, twice)))
            self.qf = list(dict.fromkeys(self.qf))
        if not self.methods:
            raise ConfigError("no methods to run: name at least one (`methods:` in the config, or --methods jpeg,...)")
        if not self.datasets and not self.images:
            raise ConfigError("no images to run on: name a dataset (`datasets:`, --datasets) or an image folder "
                              "(`images:`, --images)")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise ConfigError(f"limit must be a whole number of images of at least 1 (or absent for every image), "
                              f"got {self.limit!r}")
        self.method_specs()
        self.protocol_variants()

    def method_specs(self) -> list[MethodSpec]:
        specs = [MethodSpec.parse(m, self.method_defaults) for m in self.methods]
        labels = [s.label for s in specs]
        dupes = {x for x in labels if labels.count(x) > 1}
        if dupes:
            raise ConfigError(f"method labels must be unique: {sorted(dupes)} (give each entry a `name`)")
        return specs

    def protocol_variants(self) -> list[Variant]:
        """The protocol ('clean') followed by the configured variants; labels and protocols must be unique."""
        variants = [Variant(CLEAN, self.protocol)] + [Variant.parse(v, self.protocol) for v in self.variants]
        for what, values in (("label", [v.label for v in variants]), ("protocol", [v.key for v in variants])):
            twice = sorted({x for x in values if values.count(x) > 1})
            if twice:
                names = [v.label for v in variants if (v.label if what == "label" else v.key) in twice]
                raise ConfigError(f"variants must differ in {what}: {', '.join(names)} (the run's own protocol is "
                                  f"'{CLEAN}')")
        return variants

    def to_dict(self) -> dict[str, Any]:
        return {**to_dict(self), "protocol": self.protocol.to_dict()}


def load_config(path: str | os.PathLike | None, overrides: list[str] | None = None) -> RunConfig:
    """The config at `path` (the embedded default when None), with `--set` overrides applied."""
    from bench.core.resources import embedded_file

    return RunConfig.from_file(path or embedded_file("default.yaml"), overrides)
