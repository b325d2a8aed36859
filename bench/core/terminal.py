"""Text bound for a terminal or a log: nothing taken from a file name or a user's label may control it.

A file name can hold ESC sequences (recolouring, moving the cursor, retitling the window), other control
characters, or bytes that are not UTF-8; every path and message that commands print goes through `shown`.
"""

from __future__ import annotations

import logging

_SURROGATES = range(0xDC80, 0xDD00)  # bytes that are not UTF-8, as Python keeps them in file names


def shown(text: object, *, multiline: bool = False) -> str:
    """`text` with every character that is not printable written as an escape: \\x1b for ESC, \\n for a new line,
    \\xNN for a byte that is not UTF-8. With `multiline`, the new lines of a structured message are kept (a
    new line cannot control a terminal; the characters that can are still escaped)."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() or (multiline and char == "\n") else _escape(char) for char in text)


def _escape(char: str) -> str:
    if ord(char) in _SURROGATES:
        return f"\\x{ord(char) - 0xDC00:02x}"
    return char.encode("unicode_escape").decode("ascii")


class EscapingFormatter(logging.Formatter):
    """A log formatter whose messages pass through `shown` (new lines kept)."""

    def format(self, record: logging.LogRecord) -> str:
        return shown(super().format(record), multiline=True)


def print_input_problems(problems: list[str], left_out: list[str]) -> None:
    """Inputs that could not be used (errors) and folder files left out (notes), on stderr."""
    import sys

    for message in left_out:
        print(f"skipped {shown(message)}", file=sys.stderr)
    for message in problems:
        print(f"error: {shown(message)}", file=sys.stderr)


def print_image_error(path: object, error: object) -> None:
    """`error: PATH: reason` on stderr, once: messages that already begin with the path keep it only once."""
    import sys

    text = shown(error, multiline=True)
    prefix = f"{shown(path)}: "
    print(f"error: {prefix}{text[len(prefix):] if text.startswith(prefix) else text}", file=sys.stderr)
