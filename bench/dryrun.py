"""`codiff-bench run --dry-run`: every block a config would run, and everything the user must still supply.

Nothing is computed or written: data sets are resolved, methods are created but not loaded, their weight
files and per-block inputs (`Method.preflight`: precomputed outputs, command programs) are looked up, and
metric weights are checked. The exit status is 0 when nothing is missing, else 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.config import CLEAN, RunConfig
from bench.core.config import unset_variables
from bench.core.terminal import shown
from bench.engine.layout import RunLayout
from bench.engine.planner import RunPlan

DATA, WEIGHTS, INPUTS, CONFIG, METRICS, ENV, PACKAGES, DEVICE = (
    "data sets", "method weights", "method inputs (precomputed outputs, commands)", "configuration",
    "metric weights", "environment variables", "Python packages (protocol variants skipped without them)",
    "compute device")
GROUPS = (ENV, DEVICE, DATA, WEIGHTS, INPUTS, METRICS, PACKAGES, CONFIG)


@dataclass
class Block:
    """One dataset x QF x method block and whether it could run now."""

    dataset: str
    qf: int
    method: str
    images: int | None
    problems: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """What a run would do and what it lacks, grouped by what the user must supply."""

    config: RunConfig
    blocks: list[Block] = field(default_factory=list)
    variants: list[str] = field(default_factory=lambda: ["clean"])  # protocol variants that would run
    missing: dict[str, list[str]] = field(default_factory=lambda: {g: [] for g in GROUPS})

    @property
    def exit_status(self) -> int:
        return 1 if any(self.missing.values()) else 0

    def add(self, group: str, message: str) -> None:
        if message not in self.missing[group]:
            self.missing[group].append(message)

    def render(self) -> str:
        cfg = self.config
        source = ", ".join(cfg.sources) or "the default configuration"
        units = sum(b.images or 0 for b in self.blocks) * len(self.variants)
        each = "" if len(self.variants) == 1 else f" under each of {len(self.variants)} protocol variants"
        lines = [f"Dry run of {source}: nothing is computed or written.",
                 f"run folder: {cfg.run_dir}; protocol: {cfg.protocol.to_dict()}",
                 f"metrics: {', '.join(cfg.metrics)}",
                 *([f"protocol variants: {', '.join(self.variants)}"] if each else []),
                 f"{len(self.blocks)} blocks (dataset x QF x method){each}, {units} image restorations:", ""]
        width = max([len(b.dataset) for b in self.blocks] + [7])
        mwidth = max([len(b.method) for b in self.blocks] + [6])
        lines.append(f"  {'dataset':<{width}}  {'QF':>3}  {'method':<{mwidth}}  {'images':>6}  status")
        for b in self.blocks:
            images = "?" if b.images is None else str(b.images)
            status = "ready" if not b.problems else "missing: " + ", ".join(b.problems)
            lines.append(f"  {b.dataset:<{width}}  {b.qf:>3}  {b.method:<{mwidth}}  {images:>6}  {status}")
        lines.append("")
        if self.exit_status:
            lines.append("Missing, by what you must supply:")
            for group in GROUPS:
                if self.missing[group]:
                    lines.append(f"{group}:")
                    lines += [f"  - {m}" for m in self.missing[group]]
        else:
            lines.append("Nothing is missing: every block can run.")
        return "\n".join(lines)


def plan_run(config: RunConfig) -> Plan:
    """The run engine's own plan of `config` (lenient: absent data, a missing GPU, unset variables and broken
    methods are listed, never raised), with every block and what each method still lacks."""
    from bench.engine.planner import Planner
    from bench.engine.runner import block_ids

    plan = Plan(config)
    run = Planner(config).plan(lenient=True)
    for var, where in unset_variables(config.to_dict()):
        plan.add(ENV, f"{var} is not set (used in {', '.join(where)})")
    for why in run.problems.get("device", {}).values():
        plan.add(DEVICE, why)
    for why in run.problems.get("data", {}).values():
        plan.add(DATA, why)
    for label, why in run.problems.get("method", {}).items():
        plan.add(CONFIG, f"{label}: {why}")
    for name, reason in run.skipped_metrics.items():
        plan.add(METRICS, f"{name}: {reason}")
    plan.variants = [v.label for v in run.variants]
    for label, reason in run.skipped_variants.items():
        plan.add(PACKAGES, f"variant {label}: {reason}")
    absent = {name: _expected_count(name, config) for name in run.problems.get("data", {})}
    blocks = block_ids(run)
    for spec in config.method_specs():
        _plan_method(spec.label, run, RunLayout(config.run_dir), blocks, absent, plan)
    order = [ds.name for ds in run.datasets] + list(absent)
    plan.blocks.sort(key=lambda b: (order.index(b.dataset), b.qf))
    return plan


def _expected_count(name: str, config: RunConfig) -> int | None:
    """A registered dataset's expected image count (within the limit), for blocks whose data is absent."""
    from bench.datasets import load_registry

    count = (load_registry().get(name) or {}).get("count") if name in config.datasets else None
    return min(count, config.limit) if count and config.limit else count


def _plan_method(label: str, run: RunPlan, layout: RunLayout, blocks: dict, absent: dict[str, int | None],
                 plan: Plan) -> None:
    """One method's blocks, with its missing weights and per-block inputs."""
    config = plan.config
    method = run.methods.get(label)
    problems = ["configuration"] if label in run.problems.get("method", {}) else []
    if label in run.skipped_methods:
        plan.add(WEIGHTS, f"{label}: {run.skipped_methods[label]}")
        problems = ["weights"]
    for ds in run.datasets:
        for qf in config.qf:
            units = [u for u in run.units if u.method == label and u.qf == qf and u.entry.dataset == ds.name
                     and u.variant.label == CLEAN]
            found = method.preflight([layout.unit(u, blocks.get((ds.name, u.variant.key, qf), "")) for u in units]
                                     ) if method else []
            for line in found:
                plan.add(INPUTS, f"{label}: {line}")
            plan.blocks.append(Block(ds.name, qf, label, len(units), problems + (["inputs"] if found else [])))
    for line in method.preflight([]) if method and not run.datasets else []:
        plan.add(INPUTS, f"{label}: {line}")
    for name, count in absent.items():
        plan.blocks += [Block(name, qf, label, count, ["data", *problems]) for qf in config.qf]


def dry_run(config: RunConfig) -> int:
    """Print the plan for `config`; return 0 when nothing is missing, else 1."""
    plan = plan_run(config)
    print(shown(plan.render(), multiline=True))
    return plan.exit_status
