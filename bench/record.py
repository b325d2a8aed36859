"""The run record: what the engine knew about a run, typed and versioned, stored once with its results.

The engine writes it into the results store before any unit runs (and again with the finish time); reports
read it back as the same dataclasses, so they never re-derive labels, orders, protocols or metric facts.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SCHEMA_VERSION = 2


@dataclass
class VariantRecord:
    """A protocol the run compressed under: its label ('clean' for the run's own), key and values."""

    label: str
    key: str
    protocol: dict[str, Any]


@dataclass
class MethodRecord:
    """A configured method: its label in this run, the registered method, its fingerprint and description."""

    label: str
    method: str
    fingerprint: str
    description: dict[str, Any]


@dataclass
class MetricRecord:
    """A metric's facts as declared next to it (label, direction, reference) and its fingerprint."""

    name: str
    fingerprint: str
    info: dict[str, Any]


@dataclass
class DatasetRecord:
    """A dataset of the run, in run order: its name, display label and description."""

    name: str
    label: str = ""
    description: str = ""


@dataclass
class RunRecord:
    """Everything a report needs to know about a run besides its per-image rows."""

    schema_version: int = SCHEMA_VERSION
    config: dict[str, Any] = field(default_factory=dict)
    qfs: list[int] = field(default_factory=list)
    variants: list[VariantRecord] = field(default_factory=list)  # the run's protocol first
    methods: list[MethodRecord] = field(default_factory=list)  # in config order
    metrics: list[MetricRecord] = field(default_factory=list)  # in config order, those computed
    datasets: list[DatasetRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)

    META_KEY = "record"

    @property
    def protocol(self) -> dict[str, Any]:
        return self.variants[0].protocol if self.variants else {}

    @property
    def protocol_key(self) -> str:
        return self.variants[0].key if self.variants else ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        """The record of a stored run; an older or newer schema is refused with what to do."""
        data = json.loads(text)
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"run record schema {version}, this version reads {SCHEMA_VERSION}: rerun the run "
                             "with this version (cached results are kept where their identity still matches)")
        parts = {"variants": VariantRecord, "methods": MethodRecord, "metrics": MetricRecord,
                 "datasets": DatasetRecord}
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        for name, kind in parts.items():
            values[name] = [kind(**item) for item in values.get(name) or []]
        return cls(**values)
