"""The command-line side of training, shared by `train-cave` and `train-codiff`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from bench.core.arguments import at_least


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training config YAML (configs/train/*.yaml)")
    parser.add_argument("--max-steps", dest="max_steps", type=at_least(1),
                        help="stop at this step (overrides train.steps; a later run resumes from there)")
    parser.add_argument("--dry-run", dest="dry_run", action="store_true",
                        help="build everything and take one step; write nothing")
    parser.add_argument("--resume", default="auto",
                        help="'auto' (newest complete checkpoint of the output folder), 'never', or a step folder")
    parser.add_argument("--output-dir", dest="output_dir", help="overrides train.output_dir")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a config value (YAML syntax), e.g. --set train.batch_size=16 (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run_training_command(args: argparse.Namespace, config_cls: type, task_factory: Callable[[Any], Any]) -> int:
    """Load the config, run the Trainer, print a JSON summary (a user's mistake is a BenchError: the CLI prints
    it and exits with status 2)."""
    from bench.core.config import load_config
    from bench.core.paths import check_output_folder
    from methods.codiff.training.trainer import RunOptions, Trainer

    overrides = list(args.overrides) + ([f"train.output_dir={args.output_dir}"] if args.output_dir else [])
    config = load_config(config_cls, args.config, overrides, what="training config")
    check_output_folder(config.train.output_dir, "training output folder (train.output_dir, --output-dir)")
    options = RunOptions(max_steps=args.max_steps, dry_run=args.dry_run, resume=args.resume, progress=not args.quiet)
    result = Trainer(task_factory(config), options).run()
    if not result.main_process:
        return 0
    print(json.dumps({"step": result.step, "losses": result.losses, "validation": result.validation,
                      "checkpoint": str(result.checkpoint) if result.checkpoint else None,
                      "exported": [str(p) for p in result.exported], **({"summary": result.summary}
                                                                         if args.dry_run else {})},
                     indent=2, default=str))
    return 0
