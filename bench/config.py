"""Run configuration: YAML files with sensible defaults, overridden by command-line flags."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from bench.protocol import JpegProtocol
from methods.base import MethodSpec

ALL_METRICS = ["psnr", "ssim", "psnr_b", "lpips", "dists", "musiq", "maniqa", "clipiqa"]


class ConfigError(ValueError):
    """A run configuration is malformed."""


@dataclass
class RunConfig:
    """Everything a run needs. `methods` entries are names or mappings (see `MethodSpec.parse`)."""

    datasets: list[str] = field(default_factory=lambda: ["sample"])
    images: list[str] = field(default_factory=list)
    qf: list[int] = field(default_factory=lambda: [10])
    methods: list[Any] = field(default_factory=lambda: ["jpeg"])
    metrics: list[str] = field(default_factory=lambda: list(ALL_METRICS))
    protocol: dict[str, Any] = field(default_factory=dict)
    run_dir: str = "runs/default"
    data_root: str | None = None
    limit: int | None = None
    strict: bool = False
    device: str = "cpu"
    seed: int = 0
    max_pixels: int | None = 64_000_000
    report: bool = True
    sources: list[str] = field(default_factory=list)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "RunConfig":
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"run config {path} not found")
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping")
        config = cls.from_dict(data)
        config.sources.append(str(path))
        return config

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"unknown run config keys: {sorted(unknown)}; known: {sorted(names)}")
        config = cls(**data)
        config.validate()
        return config

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
        self.qf = [int(q) for q in self.qf]
        bad = [q for q in self.qf if not 1 <= q <= 100]
        if bad:
            raise ConfigError(f"quality factors must be within 1..100: {bad}")
        self.jpeg_protocol()
        self.method_specs()

    def jpeg_protocol(self) -> JpegProtocol:
        return JpegProtocol.from_dict(self.protocol)

    def method_specs(self) -> list[MethodSpec]:
        specs = [MethodSpec.parse(m) for m in self.methods]
        labels = [s.label for s in specs]
        dupes = {x for x in labels if labels.count(x) > 1}
        if dupes:
            raise ConfigError(f"method labels must be unique: {sorted(dupes)} (give each entry a `name`)")
        return specs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_config(path: str | os.PathLike | None) -> RunConfig:
    """The config at `path`, or the defaults."""
    return RunConfig.from_file(path) if path else RunConfig()
