"""`codiff-bench cave-analysis`: how CaVE checkpoints separate JPEG quality factors (paper Figs. 2, 4, 7).

For every image patch and QF, each checkpoint's mean-pooled embedding and QF estimate; t-SNE panels,
QF-estimate MSE per QF and silhouette scores in embedding space, written as PNG/SVG figures, CSV tables and
summary.json into the output folder.
"""

from __future__ import annotations

import argparse
import sys

from bench.core.arguments import at_least
from bench.core.terminal import shown


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def register(subparsers) -> None:
    parser = subparsers.add_parser("cave-analysis", help="t-SNE, QF-estimate error and silhouette of CaVE "
                                   "checkpoints", description=__doc__)
    parser.add_argument("--cave", action="append", required=True, metavar="CKPT",
                        help="a CaVE checkpoint (cave.pth or this project's .safetensors), LABEL=PATH, or a shipped "
                             "name (cave-small-dual, cave-small-explicit, cave-small-implicit); repeat to compare "
                             "side by side")
    parser.add_argument("--dataset", action="append", default=[], help="a dataset name from datasets.yaml")
    parser.add_argument("--images", action="append", default=[], help="a folder of images (repeatable)")
    parser.add_argument("--data-root", dest="data_root", help="root of the registered datasets")
    parser.add_argument("--limit", type=at_least(1), help="at most N images per dataset")
    parser.add_argument("--qfs", type=_ints, default=None, help="quality factors (default 1,5,10,20,...,90)")
    parser.add_argument("--unseen", type=_ints, default=[1, 5], help="QFs left out of training (default 1,5)")
    parser.add_argument("--crops", type=at_least(0), default=8,
                        help="patches per image, so that small sets give enough points (0: whole images)")
    parser.add_argument("--crop-size", dest="crop_size", type=at_least(8), default=128, help="patch size in pixels")
    parser.add_argument("--seed", type=int, default=0, help="seed of patch positions and t-SNE")
    parser.add_argument("--out", help="output folder (default: RUN_DIR/analyses/cave, or runs/analyses/cave)")
    parser.add_argument("--run-dir", dest="run_dir", help="a run folder; the analysis goes in its analyses/cave/, "
                        "where its report shows it")
    parser.add_argument("--threads", type=at_least(1), help="torch CPU threads")
    parser.add_argument("--force", action="store_true", help="recompute even if the folder is up to date")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=cave_analysis_command)


def output_dir(args: argparse.Namespace):
    from pathlib import Path

    from bench.core.paths import ANALYSES_FOLDER

    from bench.core.paths import check_output_folder

    out = Path(args.out) if args.out else Path(args.run_dir or "runs") / ANALYSES_FOLDER / "cave"
    return check_output_folder(out, "output folder (--out, --run-dir)")


def cave_analysis_command(args: argparse.Namespace) -> int:
    import torch

    from bench.datasets import folder_dataset, resolve_dataset
    from methods.codiff.analysis.cave import (
        DEFAULT_QFS,
        CaveAnalysisConfig,
        CaveAnalysisError,
        run_cave_analysis,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    config = CaveAnalysisConfig(caves=args.cave, qfs=args.qfs or DEFAULT_QFS, unseen=args.unseen,
                                crops=args.crops, crop_size=args.crop_size, seed=args.seed)
    sets = [resolve_dataset(name, root=args.data_root) for name in args.dataset]
    sets += [folder_dataset(folder) for folder in args.images]
    if not sets:
        raise CaveAnalysisError("give at least one --dataset or --images folder")
    images = [(f"{ds.name}/{image}", path) for ds in sets
              for image, path in (ds.items()[: args.limit] if args.limit else ds.items())]
    out = output_dir(args)
    summary = run_cave_analysis(config, images, out, progress=not args.quiet, force=args.force,
                                source=", ".join([*args.dataset, *args.images]))
    print_summary(summary, out)
    return 1 if summary["errors"] else 0


def print_summary(summary: dict, out) -> None:
    print(f"CaVE analysis -> {shown(out)}")
    for line in summary["notes"]:
        print(f"  {shown(line)}")
    for err in summary["errors"]:
        print(f"error: {shown(err['item'])}: {shown(err['error'], multiline=True)}", file=sys.stderr)
