"""Write constraints.txt: the exact version of every distribution installed in this environment (the project
itself excepted), so that `make install` rebuilds the environment the results were measured in.

    make lock            (or: .venv/bin/python scripts/lock_constraints.py constraints.txt)

Run it from the environment to lock, after changing dependencies; commit the file with the change.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
from pathlib import Path

from bench.core.atomic import atomic_write_text

PROJECT = "codiff-bench"
HEADER = ("# Exact versions of every distribution in the environment codiff-bench is tested in (Python {python}).\n"
          "# Installed with `pip install -c constraints.txt ...` by the Makefile; regenerate with `make lock`.\n")


def canonical(name: str) -> str:
    """A distribution name as package indexes compare them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    """{canonical name: version} of every installed distribution except the project."""
    found = {canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()
             if d.metadata["Name"]}
    found.pop(PROJECT, None)
    return dict(sorted(found.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", nargs="?", default="constraints.txt", help="file to write (default constraints.txt)")
    out = Path(parser.parse_args(argv).output)
    python = ".".join(map(str, sys.version_info[:2]))
    text = HEADER.format(python=python) + "".join(f"{name}=={version}\n" for name, version in installed().items())
    atomic_write_text(out, text)
    print(f"{out}: {text.count('==')} distributions pinned")
    return 0


if __name__ == "__main__":
    sys.exit(main())
