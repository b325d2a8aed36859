"""Argparse value types shared by the commands, so that a bad number is argparse's one message and exit 2."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def at_least(minimum: int | float, kind: type = int) -> Callable[[str], int | float]:
    """An argparse type: a `kind` number of `minimum` or more."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {'whole ' if kind is int else ''}number, got {text!r}") \
                from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {text}")
        return value

    parse.__name__ = f"{kind.__name__} of {minimum} or more"
    return parse


def image_size(minimum: int) -> Callable[[str], tuple[int, int]]:
    """An argparse type: 'N' -> (N, N), 'WxH' -> (W, H), each side `minimum` or more."""

    def parse(text: str) -> tuple[int, int]:
        try:
            parts = [int(x) for x in text.lower().split("x")]
        except ValueError:
            parts = []
        if len(parts) == 1:
            parts *= 2
        if len(parts) != 2 or min(parts) < minimum:
            raise argparse.ArgumentTypeError(f"size must be N or WxH with sides of at least {minimum}, not {text!r}")
        return parts[0], parts[1]

    parse.__name__ = "size"
    return parse
