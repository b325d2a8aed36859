"""Run configuration: YAML files with sensible defaults, overridden by command-line flags."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from bench.protocol import JpegProtocol
from bench.yamlfile import read_mapping
from methods.base import MethodSpec

_ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
log = logging.getLogger(__name__)
ALL_METRICS = ["psnr", "ssim", "psnr_b", "lpips", "dists", "musiq", "maniqa", "clipiqa"]


class ConfigError(ValueError):
    """A run configuration is malformed."""


@dataclass
class RunConfig:
    """Everything a run needs. `methods` entries are names or mappings (see `MethodSpec.parse`).

    `images` (folders of images, each an ad hoc dataset) replaces the default `sample` dataset: a config
    that lists `images` and no `datasets` runs on those folders alone, as `--images` does on the command
    line; list `datasets` too to run on both.
    """

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
    max_pixels: int | None = 16_000_000
    report: bool = True
    cave_analysis: dict[str, Any] | None = None  # after scoring: bench.analysis.cave.CaveAnalysisConfig keys
    sources: list[str] = field(default_factory=list)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "RunConfig":
        data = read_mapping(path, ConfigError, "run config")
        config = cls.from_dict(expand_env(data))
        config.sources.append(str(path))
        return config

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ConfigError(f"unknown run config keys: {sorted(unknown)}; known: {sorted(names)}")
        if data.get("images") and "datasets" not in data:
            data = {**data, "datasets": []}
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
        self.jpeg_protocol()
        self.method_specs()
        self.cave_analysis_config()

    def jpeg_protocol(self) -> JpegProtocol:
        return JpegProtocol.from_dict(self.protocol)

    def method_specs(self) -> list[MethodSpec]:
        specs = [MethodSpec.parse(m) for m in self.methods]
        labels = [s.label for s in specs]
        dupes = {x for x in labels if labels.count(x) > 1}
        if dupes:
            raise ConfigError(f"method labels must be unique: {sorted(dupes)} (give each entry a `name`)")
        return specs

    def cave_analysis_config(self):
        """The CaVE analysis to run into `<run_dir>/cave_analysis/` after scoring, or None."""
        if self.cave_analysis is None:
            return None
        from bench.analysis.cave import CaveAnalysisConfig, CaveAnalysisError

        try:
            return CaveAnalysisConfig.from_dict(self.cave_analysis)
        except (CaveAnalysisError, TypeError) as exc:
            raise ConfigError(f"cave_analysis: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def expand_env(value: Any) -> Any:
    """`${VAR}` and `${VAR:-default}` replaced in every string of a loaded config (lists and mappings too).

    A variable that is unset (or empty) and has no default stays as written, so messages about the path
    show which variable to set.
    """
    if isinstance(value, str):
        return _ENV_VAR.sub(lambda m: os.environ.get(m.group(1)) or (m.group(2) if m.group(2) is not None
                                                                      else m.group(0)), value)
    if isinstance(value, list):
        return [expand_env(v) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v) for k, v in value.items()}
    return value


def load_config(path: str | os.PathLike | None) -> RunConfig:
    """The config at `path`, or the defaults."""
    return RunConfig.from_file(path) if path else RunConfig()
