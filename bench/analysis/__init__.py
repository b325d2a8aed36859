"""Post-run analyses: studies of a run's images that are not per-image scores (for example how a model's
embeddings separate compression levels), registered like methods and run after scoring.

An analysis is a subclass of `Analysis` with a typed `config_class`, registered in the entry-point group
`codiff_bench.analyses` (or with `ANALYSES.register`). A run config lists them under `analyses:`, each as a
name or `{name: NAME, ...options}`; each writes into `<run_dir>/analyses/<name>/` with a `summary.json`
(figures, captions, tables, notes) that reports show generically. `separation` holds shared tools.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from bench.core.config import NoOptions, from_dict
from bench.core.errors import BenchError
from bench.core.protocol import JpegProtocol
from bench.core.registry import Registry, registry


@dataclass(frozen=True)
class AnalysisInputs:
    """What a run gives an analysis: its images (`dataset/image` id, HQ path), the protocol, the output
    folder, and whether to show progress."""

    images: list[tuple[str, Path]]
    protocol: JpegProtocol
    out_dir: Path
    progress: bool = True


class Analysis(ABC):
    """A registered post-run analysis; construction validates the options and is cheap."""

    name: ClassVar[str] = ""
    config_class: ClassVar[type] = NoOptions
    analyses_methods: ClassVar[tuple[str, ...]] = ()  # registered methods it studies: runs (`when: auto`) only
    # where one of them is in the run; empty: always

    def __init__(self, **options: Any) -> None:
        try:
            self.opts = from_dict(self.config_class, options)
        except BenchError as exc:
            raise BenchError(f"analysis {self.name!r}: {exc}") from None

    @abstractmethod
    def run(self, inputs: AnalysisInputs) -> dict[str, str]:
        """Write the analysis into `inputs.out_dir`; return what was skipped ({item: reason}). Raises only for
        a failure of the whole analysis (the run engine records it as skipped)."""


ANALYSES: Registry[type[Analysis]] = registry("analysis", group="codiff_bench.analyses", base=Analysis)


def create_analysis(entry: str | dict[str, Any]) -> Analysis:
    """An analysis from a run config's entry: a name, or {name: NAME, ...options}."""
    options = {"name": entry} if isinstance(entry, str) else dict(entry)
    name = options.pop("name", None)
    if not name:
        raise BenchError(f"analysis entry {entry!r} names no analysis (give it a `name`)")
    return ANALYSES.get(str(name))(**options)
