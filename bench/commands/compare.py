"""`codiff-bench compare`: one HTML page comparing run folders (two checkpoints, two commits, two protocols)
image by image, with confidence intervals, corrected significance tests and the runs' provenance side by side.
Exit status 3 when `--fail-if-worse` finds a significant regression beyond its tolerance (for CI)."""

from __future__ import annotations

import argparse
import sys

REGRESSION_EXIT = 3


def register(subparsers) -> None:
    parser = subparsers.add_parser("compare", help="compare run folders image by image (paired tests)",
                                   description=__doc__)
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR",
                        help="run folders: the baseline first, then one or more runs compared with it")
    parser.add_argument("--out", default="comparison", metavar="DIR",
                        help="folder for index.html, compare.csv and provenance.json (default: ./comparison)")
    parser.add_argument("--correction", choices=["holm", "bh"], default="holm",
                        help="multiple-comparison correction over each run's rows: holm (family-wise error "
                             "rate, the default) or bh (Benjamini-Hochberg false discovery rate)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--fail-if-worse", action="append", default=[], metavar="METRIC:TOLERANCE",
                        help="exit with status 3 when a run is significantly worse than the baseline on METRIC "
                             "by more than TOLERANCE (metric units), e.g. psnr:0.05; may be repeated")
    parser.set_defaults(func=compare_command)


def compare_command(args: argparse.Namespace) -> int:
    from bench.core.terminal import shown
    from reports.runcompare import (
        CompareError,
        Tolerance,
        compare_runs,
        load_runs,
        render_comparison,
    )

    tolerances = [Tolerance.parse(text) for text in args.fail_if_worse]
    if not 0 < args.alpha < 1:
        raise CompareError(f"--alpha must lie between 0 and 1, not {args.alpha}")
    result = compare_runs(load_runs(args.runs), correction=args.correction, alpha=args.alpha,
                          fail_if_worse=tolerances)
    print(shown(render_comparison(result, args.out)))
    if result.rows.empty:
        print("the runs share no scored image, method, QF and metric", file=sys.stderr)
    if not result.regressions.empty:
        print(f"{len(result.regressions)} significant regression(s) beyond the tolerance:", file=sys.stderr)
        for r in result.regressions.itertuples():
            print(shown(f"  run {r.run}: {r.dataset} {r.variant} QF {r.qf} {r.metric} {r.method}: "
                        f"{r.difference:+.4g} (adjusted p {r.p_adjusted:.3g}, n={r.n})"), file=sys.stderr)
        return REGRESSION_EXIT
    return 0
