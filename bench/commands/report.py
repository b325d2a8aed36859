"""`codiff-bench report`: re-render a run's HTML report, plots and exports from its stored results."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="render the HTML report of a run folder", description=__doc__)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (holds results.sqlite)")
    parser.add_argument("--reference", metavar="METHOD",
                        help="compare every method with this one (default: the best mean per column)")
    parser.add_argument("--images", nargs="+", metavar="IMAGE",
                        help="images for the visual comparison: names, or dataset:name (default: the first "
                             "of each dataset)")
    parser.add_argument("--single-file", action="store_true",
                        help="also write report/standalone.html: the whole report as one HTML file, every image, "
                             "style and script inlined (to mail or attach to a paper)")
    parser.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    from bench.core.terminal import shown
    from reports import render_report

    if args.images:
        check_images(args.run_dir, args.images)
    print(shown(render_report(args.run_dir, reference=args.reference, images=args.images,
                              single_file=args.single_file)))
    return 0


def check_images(run_dir: str, requested: list[str]) -> None:
    """Refuse `--images` names that match no image of the run, before the report is written."""
    from reports.rundata import ReportError, RunData
    from reports.visual import choose_images

    data = RunData.load(run_dir)
    unknown = choose_images(data, requested)[1]
    if unknown:
        known = sorted({f"{d}:{i}" for d, i in data.images[["dataset", "image"]].itertuples(index=False)})
        raise ReportError(f"--images: {', '.join(unknown)} matches no image of the run; give an image name or "
                          f"dataset:name, one of {', '.join(known[:10])}" + (" ..." if len(known) > 10 else ""))
