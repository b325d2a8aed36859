"""An exclusive lock on a run folder, so that two runs never write the same results at once."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bench.core.errors import BenchError


class RunFolderBusy(BenchError, RuntimeError):
    """Another process holds the run folder's lock."""


class RunLock:
    """`with RunLock(run_dir): ...` holds `<run_dir>/.lock` (flock; released by the OS if the process dies)."""

    def __init__(self, run_dir: str | Path, name: str = ".lock") -> None:
        self.path = Path(run_dir) / name
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunFolderBusy(f"run folder {self.path.parent} is in use by another codiff-bench process "
                                f"(pid {holder}); wait for it to finish or choose another --run-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
