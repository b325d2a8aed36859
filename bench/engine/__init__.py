"""The run engine: the planner (which units exist and what identifies each), the run folder's layout, input
preparation, the executor (restore, score, resume, shards), the runner that ties them together, and the
up-to-date stamp. It knows no particular model."""

from bench.engine.layout import RunFolderError, RunLayout
from bench.engine.planner import ImageEntry, Planner, RunPlan, WorkUnit
from bench.engine.runner import Runner
from bench.engine.summary import RunSummary, write_summary_csv

__all__ = ["ImageEntry", "Planner", "RunFolderError", "RunLayout", "RunPlan", "RunSummary", "Runner", "WorkUnit",
           "write_summary_csv"]
