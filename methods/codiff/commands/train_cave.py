"""`codiff-bench train-cave`: stage 1, train CaVE (explicit, implicit or dual learning) from a YAML config."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from methods.codiff.training.cli import add_training_arguments

    parser = subparsers.add_parser("train-cave", help="train CaVE (stage 1)", description=__doc__)
    add_training_arguments(parser)
    parser.set_defaults(func=train_cave_command)


def train_cave_command(args: argparse.Namespace) -> int:
    from methods.codiff.training.cli import run_training_command
    from methods.codiff.training.config import CaveTrainConfig
    from methods.codiff.training.stage1 import CaveTask

    return run_training_command(args, CaveTrainConfig, CaveTask)
