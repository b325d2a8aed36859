"""The run folder's layout: every path the engine writes, in one place, and the one way it writes them.

Paths carry names for people (dataset, image stem, method label, variant); what a file holds is recorded
with its SHA-256 in the results store and checked before the file is reused, so a name that now holds other
content is never mistaken for a result.
"""

from __future__ import annotations

import errno
import hashlib
import tempfile
from pathlib import Path

from bench.core.atomic import atomic_write_bytes
from bench.core.errors import BenchError
from bench.core.paths import ANALYSES_FOLDER, inside, safe_component
from bench.engine.planner import WorkUnit
from methods.base import Unit


class RunFolderError(BenchError, OSError):
    """The run folder cannot be written (read-only, full, a file in the way): the run stops, since no image
    could succeed; everything finished so far is kept and a rerun resumes."""


class RunLayout:
    """The files and folders of one run folder."""

    STORE = "results.sqlite"
    MANIFEST = "manifest.json"
    SUMMARY = "summary.csv"
    STAMP = "uptodate.json"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __truediv__(self, name: str) -> Path:
        return self.root / name

    @property
    def report_index(self) -> Path:
        return self.root / "report" / "index.html"

    def lock_name(self, rank: int) -> str:
        return ".lock" if rank == 0 else f".lock-rank{rank}"

    def hq(self, dataset: str, protocol_key: str, stem: str) -> Path:
        return self.root / "hq" / safe_component(dataset) / protocol_key / f"{stem}.png"

    def lq(self, dataset: str, protocol_key: str, qf: int, stem: str) -> Path:
        """The LQ file; its folder holds the dataset's other LQ files at that QF (per-folder tools read it)."""
        return self.root / "lq" / safe_component(dataset) / protocol_key / f"qf{qf}" / f"{stem}.jpg"

    def output(self, dataset: str, method: str, variant: str | None, qf: int, stem: str, unit_id: str) -> Path:
        """A restoration, named for people and made unique by its unit's identity."""
        folder = [safe_component(dataset), safe_component(method)] + ([safe_component(variant)] if variant else [])
        return self.root.joinpath("outputs", *folder, f"qf{qf}", f"{stem}.{unit_id[:10]}.png")

    def work(self, method: str, dataset: str, protocol_key: str, qf: int, block_id: str) -> Path:
        """A method's scratch folder for one block of images; other images in the block give another folder."""
        return self.root.joinpath("work", safe_component(method), safe_component(dataset), protocol_key,
                                  f"qf{qf}-{block_id[:10]}")

    def unit(self, unit: WorkUnit, block_id: str) -> Unit:
        """What a method is told of the unit it restores: names, its LQ file and its block's work folder."""
        e, key = unit.entry, unit.variant.key
        return Unit(e.dataset, e.image, e.stem, unit.qf, self.lq(e.dataset, key, unit.qf, e.stem),
                    self.work(unit.method, e.dataset, key, unit.qf, block_id))

    def analysis(self, name: str) -> Path:
        return self.root / ANALYSES_FOLDER / safe_component(name)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def check_writable(self) -> None:
        """Fail early, with the reason, when the run folder cannot be created or written."""
        if self.root.exists() and not self.root.is_dir():
            raise RunFolderError(errno.ENOTDIR, f"the run folder {self.root} exists and is not a folder")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=self.root).close()
        except OSError as exc:
            raise RunFolderError(exc.errno, f"cannot write to the run folder {self.root}: "
                                            f"{exc.strerror or exc}") from exc

    def write(self, path: Path, data: bytes) -> tuple[str, str]:
        """Write a file of the run folder atomically; return its relative path and SHA-256, as the store records
        them. Failing to write is the run folder's problem, not the image's."""
        try:
            atomic_write_bytes(inside(self.root, path), data)
        except OSError as exc:
            raise RunFolderError(exc.errno, f"cannot write {path}: {exc.strerror or exc} (run folder "
                                            f"{self.root}; finished results are kept, rerun to resume)") from exc
        return self.relative(path), hashlib.sha256(data).hexdigest()

    def holds(self, relative: str | None, sha256: str | None) -> bool:
        """True when the run folder's file at `relative` holds exactly the content recorded as `sha256`."""
        from bench.core.hashcache import content_sha256

        if not relative or not sha256:
            return False
        path = self.root / relative
        try:
            return path.is_file() and content_sha256(path) == sha256
        except OSError:
            return False
