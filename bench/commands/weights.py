"""`codiff-bench weights`: every weight file the metrics and methods of a config need, and whether it is usable.

Each file is listed as present, missing, wrong size, wrong hash (its SHA-256 does not start with the prefix
in its name), unreadable (truncated, or not holding the expected tensors) or unchecked (it needs an unreadable
file before it). `--download` fetches what is
missing through the libraries' own downloaders into their own caches (TORCH_HOME, the Hugging Face cache),
for example on a login node before running offline on compute nodes; `--cache-dir` puts both caches under
one folder (pass the same folder, or TORCH_HOME and HF_HOME, to the runs). Mirrors:
CODIFF_BENCH_WEIGHTS_MIRROR=<base URL> serves files by name, HF_ENDPOINT serves Hugging Face repositories.
Exit status: 0 when every file is present, 1 otherwise, 2 for a bad config.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.commands.run import _csv
from bench.core.terminal import shown


@dataclass
class Group:
    """The files of one metric or method (and the folders of precomputed outputs it reads), or why they could
    not be listed."""

    title: str
    items: list = field(default_factory=list)
    error: str = ""
    folders: dict[Path, list[str]] = field(default_factory=dict)


def register(subparsers) -> None:
    parser = subparsers.add_parser("weights", help="list, check and download weight files", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="run config YAML whose `metrics` and `methods` to check")
    parser.add_argument("--metrics", type=_csv(str), help="comma-separated metric names, or 'all'")
    parser.add_argument("--methods", type=_csv(str), help="comma-separated method names, or 'all'")
    parser.add_argument("--download", action="store_true", help="fetch missing files into the caches")
    parser.add_argument("--cache-dir", dest="cache_dir",
                        help="use <DIR>/torch as TORCH_HOME and <DIR>/huggingface as HF_HOME")
    parser.set_defaults(func=weights_command)


def weights_command(args: argparse.Namespace) -> int:
    from bench.config import load_config
    from bench.metrics import use_cache_dir

    if args.cache_dir:
        from bench.core.paths import check_output_folder

        print(f"caches under {shown(use_cache_dir(check_output_folder(args.cache_dir, 'cache folder (--cache-dir)')))}")
    config = load_config(args.config)

    def groups() -> list[Group]:
        datasets = config.datasets + [Path(folder).expanduser().name for folder in config.images]
        return (metric_groups(args.metrics or config.metrics)
                + method_groups(args.methods or config.methods, datasets, config.qf, config.method_defaults))

    if args.download:
        download_missing(groups())
    return print_groups(groups())  # listed afresh: a download can change where a file is (a new snapshot)


def metric_groups(names: list[str]) -> list[Group]:
    from bench.metrics import MetricError, list_metrics, metric_files, metric_spec

    groups = []
    for name in list_metrics() if names == ["all"] else names:
        metric_spec(name)  # an unknown name is a user error before anything is listed
        try:
            groups.append(Group(f"metric {name}: {metric_spec(name).description}", metric_files(name)))
        except MetricError as exc:
            groups.append(Group(f"metric {name}", error=str(exc)))
    return groups


def method_groups(entries: list, datasets: list[str], qfs: list[int],
                  defaults: dict | None = None) -> list[Group]:
    """The files of each method, and the folders of precomputed outputs it reads for these datasets and QFs."""
    from bench.config import MethodSpec
    from bench.metrics.download import as_metric_file
    from methods.registry import METHODS, create_method, list_methods

    groups = []
    for entry in list_methods() if entries == ["all"] else entries:
        spec = MethodSpec.from_entry(entry).with_defaults(defaults or {})
        METHODS.check(spec.method)  # an unknown name is a user error before anything is listed
        try:
            method = create_method(spec.method, **spec.config)
            groups.append(Group(f"method {spec.label}", [as_metric_file(w) for w in method.required_weights()],
                                folders=method.input_folders(datasets, qfs)))
        except Exception as exc:  # noqa: BLE001 - a method that cannot even be configured is reported, not fatal
            groups.append(Group(f"method {spec.label}", error=f"cannot list its files: {type(exc).__name__}: {exc}"))
    return groups


def download_missing(groups: list[Group]) -> None:
    from bench.metrics.download import DownloadError, fetch, source_url

    seen = set()
    for item in (item for group in groups for item in group.items):
        if item.path in seen or item.weight.status() != "missing":
            continue
        seen.add(item.path)
        print(f"downloading {shown(item.weight.label)} from {shown(source_url(item) or '(no URL)')}", flush=True)
        try:
            print(f"  saved {shown(fetch(item))}")
        except DownloadError as exc:
            print(f"  {shown(exc, multiline=True)}", file=sys.stderr)


def statuses(group: Group) -> list[tuple[str, str]]:
    """(status, detail) per file; tensors are checked once all of the group's files are intact, in order,
    up to the first unreadable one (later files' networks would read it)."""
    from bench.metrics.files import first_tensor_problem

    found = [(item.weight.status(), "") for item in group.items]
    first = first_tensor_problem(group.items) if all(status == "present" for status, _ in found) else None
    if first:
        index, problem = first
        found[index] = ("unreadable", problem)
        label = group.items[index].weight.label
        found[index + 1:] = [("unchecked", f"tensors not checked until {label} is usable")] * (len(found) - index - 1)
    return found


def print_groups(groups: list[Group]) -> int:
    counts: dict[str, int] = {}
    failed = 0
    for group in groups:
        print(shown(group.title))
        if group.error:
            print(f"  error: {shown(group.error, multiline=True)}")
            failed += 1
            continue
        if not group.items and not group.folders:
            print("  (no files)")
        for item, (status, detail) in zip(group.items, statuses(group)):
            w = item.weight
            counts[status] = counts.get(status, 0) + 1
            print(f"  {status:<11} {shown(w.label)}\n{'':14}{shown(w.path)}")
            if status != "present":
                print(f"{'':14}belongs in: {shown(w.where or w.path.parent)}")
                if w.url:
                    print(f"{'':14}from: {shown(w.url)}")
                if detail:
                    print(f"{'':14}{shown(detail)}")
        for folder, holds in group.folders.items():
            status = "present" if folder.is_dir() else "missing"
            counts[status] = counts.get(status, 0) + 1
            print(f"  {status:<11} folder of {shown('; '.join(holds))}\n{'':14}{shown(folder)}")
    total = sum(counts.values())
    noun = "files and folders" if any(group.folders for group in groups) else "files"
    print(f"\n{total} {noun}: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) if total
          else "\nno files needed")
    if failed:
        print(f"{failed} entries could not be listed")
    return 0 if counts.get("present", 0) == total and not failed else 1
