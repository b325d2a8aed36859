"""The one base class of every error a user can cause and fix.

The CLI catches `BenchError` once: it prints the message and exits with status 2, without a traceback. Any
other exception is a bug in this project and keeps its traceback (exit 1).
"""

from __future__ import annotations

import difflib
from typing import Iterable


class BenchError(Exception):
    """A mistake or a missing piece that the user can fix: unknown name, bad value, missing file, no GPU."""


class ConfigError(BenchError, ValueError):
    """A configuration (YAML file, `--set` override or command-line value) is malformed; the message names
    the offending key."""


class UnknownNameError(ConfigError):
    """A name (method, metric, dataset, command, config key) that nothing is registered under."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}{did_you_mean(name, self.known)}; "
                         f"known: {', '.join(self.known) or '(none)'}")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known names, or '' when none is close."""
    close = difflib.get_close_matches(str(name), list(known), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
