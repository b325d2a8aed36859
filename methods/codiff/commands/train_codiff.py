"""`codiff-bench train-codiff`: stage 2, train the one-step generator (LoRA, MSE + DISTS + latent GAN)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from methods.codiff.training.cli import add_training_arguments

    parser = subparsers.add_parser("train-codiff", help="train the CODiff generator (stage 2)", description=__doc__)
    add_training_arguments(parser)
    parser.set_defaults(func=train_codiff_command)


def train_codiff_command(args: argparse.Namespace) -> int:
    from methods.codiff.training.cli import run_training_command
    from methods.codiff.training.config import CodiffTrainConfig
    from methods.codiff.training.stage2 import CodiffTask

    return run_training_command(args, CodiffTrainConfig, CodiffTask)
