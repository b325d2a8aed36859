"""Content hashes of weight files, computed once per version of a file.

Fingerprints and manifests identify weight files by their SHA-256, not their paths, so moving a checkpoint
(or the whole repository) keeps every cached result and swapping one invalidates exactly what read it. A
multi-gigabyte checkpoint is hashed once: the digest is kept in a small SQLite file keyed on the file's
identity (device, inode, size, modification and status-change times in ns). Any rewrite changes the
status-change time (ctime), which no tool can set back, so a checkpoint replaced in place with its mtime
reset (`touch -d`) is hashed afresh. A file changed within the last `RACY_WINDOW_NS` is never cached, since a
second change in the same clock tick could leave every timestamp as it was.

The cache lives at $CODIFF_BENCH_HASH_CACHE, else ~/.cache/codiff-bench/hashes.sqlite. SQLite transactions
make every write atomic and let several processes share it; when it cannot be opened or written, digests are
simply computed each time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)

HASH_CACHE_ENV = "CODIFF_BENCH_HASH_CACHE"
RACY_WINDOW_NS = 2_000_000_000  # coarser than any file system's timestamp granularity (FAT: 2 s)

_SCHEMA = """CREATE TABLE IF NOT EXISTS hashes (
    device INTEGER, inode INTEGER, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, sha256 TEXT, path TEXT,
    PRIMARY KEY (device, inode, size, mtime_ns, ctime_ns))"""

Identity = tuple[int, int, int, int, int]
_memo: dict[Identity, str] = {}


def default_cache_path() -> Path:
    """$CODIFF_BENCH_HASH_CACHE, else ~/.cache/codiff-bench/hashes.sqlite."""
    return Path(os.environ.get(HASH_CACHE_ENV) or "~/.cache/codiff-bench/hashes.sqlite").expanduser()


def identity(stat: os.stat_result) -> Identity:
    """What changes whenever a file's content may have: device, inode, size, mtime and ctime (ns)."""
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def content_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of the file at `path`, from the cache while the file is unchanged, else computed and
    remembered. Raises OSError when the file cannot be read."""
    path = Path(path)
    before = identity(path.stat())
    if before in _memo:
        return _memo[before]
    cached = _lookup(before)
    if cached:
        _memo[before] = cached
        return cached
    digest = file_sha256(path)
    if identity(path.stat()) == before and _settled(before):  # not rewritten while it was read
        _memo[before] = digest
        _store(before, digest, path)
    return digest


def _settled(key: Identity) -> bool:
    """True when the file's last change is older than the timestamp granularity of any file system."""
    return time.time_ns() - max(key[3], key[4]) > RACY_WINDOW_NS


def _connect() -> sqlite3.Connection | None:
    path = default_cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=30)
        connection.execute(_SCHEMA)
        return connection
    except (OSError, sqlite3.Error) as exc:
        log.debug("hash cache %s unavailable (%s): hashing without it", path, exc)
        return None


def _lookup(key: Identity) -> str | None:
    connection = _connect()
    if connection is None:
        return None
    try:
        row = connection.execute("SELECT sha256 FROM hashes WHERE device=? AND inode=? AND size=? AND mtime_ns=? "
                                 "AND ctime_ns=?", key).fetchone()
    except sqlite3.Error as exc:
        log.debug("hash cache unreadable (%s)", exc)
        row = None
    finally:
        connection.close()
    return row[0] if row else None


def _store(key: Identity, digest: str, path: Path) -> None:
    """Remember a digest in one transaction, replacing older versions of the same file (device, inode)."""
    connection = _connect()
    if connection is None:
        return
    try:
        with connection:
            connection.execute("DELETE FROM hashes WHERE device=? AND inode=?", key[:2])
            connection.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (*key, digest, str(path)))
    except sqlite3.Error as exc:
        log.debug("hash cache not written (%s)", exc)
    finally:
        connection.close()


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
