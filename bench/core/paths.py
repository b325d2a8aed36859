"""File names derived from image ids and labels: safe on every file system and confined to the run folder.

Names are made of [A-Za-z0-9._-] only and at most `MAX_STEM` characters; where cleaning changed a name, a
short hash of the original is appended, so that two different ids or labels never share a file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from pathlib import Path, PurePosixPath

from bench.core.errors import ConfigError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_STEM = 80
ANALYSES_FOLDER = "analyses"  # <run_dir>/analyses/<name>/: each post-run analysis writes its own folder


def _clean(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._")[:MAX_STEM].rstrip("._")


def _tag(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def _without_suffix(image_id: str) -> str:
    path = PurePosixPath(image_id)
    return str(path.with_suffix("")) if path.suffix else image_id


def safe_names(image_ids: list[str]) -> dict[str, str]:
    """Map each image id to a unique file stem made of [A-Za-z0-9._-] only.

    The stem is the id without its extension; where cleaning changed it, or two ids share a stem even
    when case is ignored (a.png and a.jpg, A.png and a.png), a short hash of the id is appended.
    """
    stems = {i: _clean(_without_suffix(i)) or "image" for i in image_ids}
    counts = Counter(stem.lower() for stem in stems.values())
    return {image_id: stem if counts[stem.lower()] == 1 and stem == _without_suffix(image_id)
            else f"{stem}-{_tag(image_id)}" for image_id, stem in stems.items()}


def safe_component(name: str) -> str:
    """One path component from a user-given label (method or dataset name); distinct labels never collide."""
    cleaned = _clean(name)
    return name if cleaned and cleaned == name else f"{cleaned or 'name'}-{_tag(name)}"


def printable_id(image_id: str) -> str:
    """An image id that every store and terminal accepts: bytes of a file name that are not valid UTF-8
    (kept by Python as surrogates) are written as \\xNN escapes."""
    return image_id.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def inside(root: Path, path: Path) -> Path:
    """Return `path`, refusing one whose name leaves `root` (an absolute part or '..'). The check is on the
    names only, so that folders the user linked into the run folder (outputs on another disk) still work."""
    relative = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    if relative == os.pardir or relative.startswith(os.pardir + os.sep) or os.path.isabs(relative):
        raise ValueError(f"refusing to write {path} outside the run folder {root}")
    return path


def check_output_folder(path: str | os.PathLike, what: str) -> Path:
    """`path` when a folder can be made or used there; a ConfigError naming the file in the way otherwise, so that
    a command stops before it writes anything."""
    path = Path(path).expanduser()
    for part in (path, *path.parents):
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                where = "is a file" if part == path else f"is inside {part}, which is a file"
                raise ConfigError(f"{what} {path} {where}, not a folder: give a folder path (it is made if missing)")
            return path
    return path


def check_output_file(path: str | os.PathLike, what: str) -> Path:
    """`path` when a file can be written there (its folder made if missing); a ConfigError naming what is in the
    way otherwise (a folder of that name, or a file where a parent folder should be)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder: give a file path")
    check_output_folder(path.parent, f"the folder of {what}")
    return path
