"""`codiff-bench run`: benchmark methods on datasets at quality factors and write results and a report."""

from __future__ import annotations

import argparse
import json
import sys

from bench.core.terminal import shown


def _csv(kind, *, empty_ok: bool = False):
    """An argparse type for a comma-separated list of `kind` (str or int), with messages in words; an empty
    list is refused unless `empty_ok`."""
    what = "a whole number" if kind is int else "a name"

    def parse(text: str) -> list:
        items = [x.strip() for x in text.split(",")]
        if not any(items) and empty_ok:
            return []
        if not any(items):
            raise argparse.ArgumentTypeError(f"{text!r} is an empty list: give {what}, or several separated by commas")
        if "" in items:
            raise argparse.ArgumentTypeError(f"{text!r} has an empty item: give {what} between every two commas, "
                                             f"e.g. {'5,10,20' if kind is int else 'jpeg,fbcnn'}")
        values = []
        for item in items:
            try:
                values.append(kind(item))
            except ValueError:
                raise argparse.ArgumentTypeError(f"{item!r} is not {what} (expected a comma-separated list such as "
                                                 f"{'5,10,20' if kind is int else 'jpeg,fbcnn'})") from None
        return values

    return parse


def _count(text: str) -> int:
    """An argparse type for a count of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value} (leave it out to use every image)")
    return value


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by every command that runs a config (each overrides the config file)."""
    parser.add_argument("--config", help="run config YAML (default: the embedded default benchmark)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value (YAML syntax), e.g. --set protocol.subsampling=444 "
                             "(repeatable)")
    parser.add_argument("--datasets", type=_csv(str, empty_ok=True), help="comma-separated names from datasets.yaml "
                        "('' for none)")
    parser.add_argument("--images", action="append", help="a folder of images as an ad hoc dataset (repeatable; replaces the config's "
                        "datasets unless --datasets is given too)")
    parser.add_argument("--methods", type=_csv(str), help="comma-separated method names (see `methods`) or labels of "
                        "the config's method entries (their options come along)")
    parser.add_argument("--qf", type=_csv(int), help="comma-separated quality factors, e.g. 5,10,20")
    parser.add_argument("--metrics", type=_csv(str), help="comma-separated metric names")
    parser.add_argument("--limit", type=_count, help="at most N images per dataset (N >= 1)")
    parser.add_argument("--run-dir", dest="run_dir", help="run folder (results, outputs, report)")
    parser.add_argument("--data-root", dest="data_root", help="root of the registered datasets "
                        "(default: $CODIFF_BENCH_DATA)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ...")
    parser.add_argument("--cache-dir", dest="cache_dir", help="read metric weights from this folder's torch and "
                        "Hugging Face caches (as `weights --cache-dir` filled them)")
    parser.add_argument("--strict", action="store_true", default=None,
                        help="fail instead of skipping metrics or methods whose weights are missing")


def config_from_args(args: argparse.Namespace):
    from bench.config import load_config

    if getattr(args, "cache_dir", None):
        from bench.metrics import use_cache_dir

        use_cache_dir(args.cache_dir)
    datasets = args.datasets if args.datasets is not None or not args.images else []
    flags = dict(datasets=datasets, images=args.images, methods=args.methods, qf=args.qf, metrics=args.metrics,
                 limit=args.limit, run_dir=args.run_dir, data_root=args.data_root, device=args.device,
                 strict=args.strict, report=getattr(args, "report", None))
    return load_config(args.config, getattr(args, "overrides", None), flags)


def register(subparsers) -> None:
    parser = subparsers.add_parser("run", help="run a benchmark", description=__doc__)
    add_run_arguments(parser)
    parser.add_argument("--no-report", dest="report", action="store_false", default=None,
                        help="skip rendering the HTML report")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--dry-run", dest="dry_run", action="store_true",
                        help="compute nothing: list every block and everything missing (data, weights, outputs); "
                             "exit 0 when nothing is missing, else 1")
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from bench.engine.stamp import finished_summary, is_up_to_date

    config = config_from_args(args)
    if args.dry_run:
        from bench.dryrun import dry_run

        return dry_run(config)
    if is_up_to_date(config):  # a finished run of exactly this: nothing to compute, load or render
        summary = finished_summary(config)
        print_summary(summary)
        return summary.exit_status
    from bench.engine import Runner

    summary = Runner(config, progress=not args.quiet).run()
    if summary.is_main:
        if config.report:
            from reports import render_report

            summary.report = render_report(summary.run_dir)
        print_summary(summary)
    return summary.exit_status


SHOWN_FILES = 20  # files left out of the datasets listed in the terminal (the report lists them all)


def print_summary(summary) -> None:
    import pandas as pd

    from bench.store import ResultsStore

    with ResultsStore.in_run_dir(summary.run_dir, readonly=True) as store:
        frame = store.results_frame()
        images = store.images_frame()
        warnings = store.record().warnings
    print(f"\n{summary.units} units: {summary.restored} restored, {summary.reused} reused from earlier runs")
    if not frame.empty:
        table = frame.pivot_table(index=["dataset", "method"], columns=["metric", "qf"], values="value",
                                  aggfunc="mean")
        with pd.option_context("display.width", 200, "display.max_columns", 60, "display.float_format", "{:.4f}".format):
            print(shown(table.to_string(), multiline=True))
    files = [item for item in summary.skipped if item["kind"] == "file"]
    for item in [item for item in summary.skipped if item["kind"] != "file"] + files[:SHOWN_FILES]:
        print(f"skipped {item['kind']} {shown(item['name'])}: {shown(item['reason'], multiline=True)}")
    if len(files) > SHOWN_FILES:
        print(f"... and {len(files) - SHOWN_FILES} more files left out of the datasets (all are listed in the report)")
    for warning in warnings:
        print(f"warning: {shown(warning)}")
    noted = [(row.dataset, row.image, json.loads(row.notes or "[]")) for row in images.itertuples()]
    converted = [item for item in noted if item[2]]
    if converted:
        print(f"\n{len(converted)} images converted on input (recorded with the run):")
        for dataset, image, notes in converted[:50]:
            print(f"  {shown(dataset)}/{shown(image)}: {'; '.join(notes)}")
    if summary.errors:
        print(f"\n{len(summary.errors)} failed:", file=sys.stderr)
        for err in summary.errors[:50]:
            unit = "" if err["method"] == "*" else f" {err['method']} qf{err['qf']}"
            print(f"  [{err['stage']}] {shown(err['dataset'])}/{shown(err['image'])}{shown(unit)}: "
                  f"{shown(err['message'], multiline=True)}",
                  file=sys.stderr)
    print(f"\nresults: {shown(summary.run_dir / 'summary.csv')}")
    if summary.report:
        print(f"report:  {shown(summary.report)}")

