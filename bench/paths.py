"""File names derived from image ids: safe on every file system and confined to the run folder."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_names(image_ids: list[str]) -> dict[str, str]:
    """Map each image id to a unique file stem made of [A-Za-z0-9._-] only.

    The stem is the id without its extension; where sanitising changed it, or two ids share a stem
    (a.png and a.jpg), a short hash of the id is appended.
    """
    stems = {i: _UNSAFE.sub("_", str(PurePosixPath(i).with_suffix(""))).strip("._") or "image" for i in image_ids}
    counts: dict[str, int] = {}
    for stem in stems.values():
        counts[stem] = counts.get(stem, 0) + 1
    names = {}
    for image_id, stem in stems.items():
        plain = str(PurePosixPath(image_id).with_suffix(""))
        if counts[stem] > 1 or stem != plain:
            stem = f"{stem[:80]}-{hashlib.sha1(image_id.encode()).hexdigest()[:8]}"
        names[image_id] = stem
    return names


def safe_component(name: str) -> str:
    """One path component from a user-given label (method or dataset name)."""
    cleaned = _UNSAFE.sub("_", name).strip("._")
    if not cleaned:
        raise ValueError(f"{name!r} cannot be used as a file name")
    return cleaned


def inside(root: Path, path: Path) -> Path:
    """Return `path` resolved, refusing anything that escapes `root`."""
    root_r, path_r = root.resolve(), path.resolve()
    if path_r != root_r and root_r not in path_r.parents:
        raise ValueError(f"refusing to write {path} outside the run folder {root}")
    return path
