"""The results store of one run folder: SQLite, transactional, resumable and queryable.

One row per image x method x QF x metric (plus output and error rows), keyed by the method's fingerprint
and the protocol key, so that a changed configuration invalidates only its own rows and a rerun never
duplicates one. WAL mode and a busy timeout let several processes write to one store.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS outputs (
    dataset TEXT, image TEXT, method TEXT, qf INTEGER, fingerprint TEXT, protocol TEXT,
    path TEXT, seconds REAL, notes TEXT, created REAL,
    PRIMARY KEY (dataset, image, method, qf, fingerprint, protocol));
CREATE TABLE IF NOT EXISTS results (
    dataset TEXT, image TEXT, method TEXT, qf INTEGER, metric TEXT, value REAL,
    fingerprint TEXT, protocol TEXT, created REAL,
    PRIMARY KEY (dataset, image, method, qf, metric, fingerprint, protocol));
CREATE TABLE IF NOT EXISTS errors (
    dataset TEXT, image TEXT, method TEXT, qf INTEGER, stage TEXT, message TEXT,
    fingerprint TEXT, protocol TEXT, created REAL,
    PRIMARY KEY (dataset, image, method, qf, stage, fingerprint, protocol));
CREATE TABLE IF NOT EXISTS images (
    dataset TEXT, image TEXT, protocol TEXT, hq_path TEXT, width INTEGER, height INTEGER, notes TEXT,
    PRIMARY KEY (dataset, image, protocol));
CREATE TABLE IF NOT EXISTS lq (
    dataset TEXT, image TEXT, protocol TEXT, qf INTEGER, path TEXT, bytes INTEGER,
    PRIMARY KEY (dataset, image, protocol, qf));
CREATE TABLE IF NOT EXISTS methods (
    method TEXT PRIMARY KEY, fingerprint TEXT, description TEXT);
CREATE TABLE IF NOT EXISTS skipped (
    kind TEXT, name TEXT, reason TEXT, PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS scope (
    dataset TEXT, image TEXT, qf INTEGER, PRIMARY KEY (dataset, image, qf));
"""

# Rows that belong to the run as currently configured: the current fingerprint of each method, the current
# protocol key, and the images and QFs in the run's scope (all rows when no scope was recorded). Frames
# asked for every variant take the keys of the run's protocol variants (meta 'variants') as well.
_PROTOCOL = "(SELECT json_extract(value, '$') FROM meta WHERE key = 'protocol_key')"
_VARIANT_KEYS = ("(SELECT json_extract(j.value, '$.key') FROM meta, json_each(meta.value) j "
                 "WHERE meta.key = 'variants')")
_ANY_PROTOCOL = f"(t.protocol = {_PROTOCOL} OR t.protocol IN {_VARIANT_KEYS})"
_IN_SCOPE = ("(NOT EXISTS (SELECT 1 FROM scope) OR EXISTS (SELECT 1 FROM scope s WHERE s.dataset = t.dataset "
             "AND s.image = t.image{qf}))")
CURRENT = ("JOIN methods m ON m.method = t.method AND m.fingerprint = t.fingerprint "
           f"WHERE t.protocol = {_PROTOCOL} AND " + _IN_SCOPE.format(qf=" AND s.qf = t.qf"))
CURRENT_INPUTS = f"WHERE t.protocol = {_PROTOCOL} AND " + _IN_SCOPE.format(qf="")


class ResultsStore:
    """Read and write one run's results (`<run_dir>/results.sqlite`)."""

    FILENAME = "results.sqlite"

    def __init__(self, path: str | Path, *, readonly: bool = False, timeout: float = 60.0) -> None:
        self.path = Path(path)
        if readonly:
            if not self.path.is_file():
                raise FileNotFoundError(f"no results store at {self.path}")
            # A folder that cannot be written (a read-only copy) cannot hold SQLite's WAL index: read it as immutable.
            immutable = "&immutable=1" if not os.access(self.path.parent, os.W_OK) else ""
            self.conn = sqlite3.connect(f"file:{self.path}?mode=ro{immutable}", uri=True, timeout=timeout)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=timeout)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(SCHEMA)
        self.conn.row_factory = sqlite3.Row

    @classmethod
    def in_run_dir(cls, run_dir: str | Path, **kwargs: Any) -> "ResultsStore":
        return cls(Path(run_dir) / cls.FILENAME, **kwargs)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: all of it lands, or none of it. BEGIN IMMEDIATE takes the write lock up front, so a
        writer waits (busy timeout) for another process's write instead of failing on a stale snapshot."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    # -- meta ---------------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value, default=str)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_methods(self, methods: dict[str, tuple[str, dict[str, Any]]]) -> None:
        """Record the run's methods (label -> (fingerprint, description)); labels no longer configured are
        dropped, so their stored rows stop counting as current results."""
        with self.transaction() as c:
            c.execute("DELETE FROM methods")
            c.executemany("INSERT INTO methods VALUES (?, ?, ?)",
                          [(label, fp, json.dumps(desc, default=str)) for label, (fp, desc) in methods.items()])

    def invalidate_changed_metrics(self, fingerprints: dict[str, str]) -> list[str]:
        """Drop stored values of metrics whose fingerprint (options, library version, weight files) changed
        since they were computed; record the current fingerprints. Returns the invalidated metric names."""
        known = self.get_meta("metric_fingerprints", {})
        changed = sorted(n for n, fp in fingerprints.items() if n in known and known[n] != fp)
        with self.transaction() as c:
            c.executemany("DELETE FROM results WHERE metric = ?", [(n,) for n in changed])
            c.execute("INSERT OR REPLACE INTO meta VALUES ('metric_fingerprints', ?)",
                      (json.dumps({**known, **fingerprints}),))
        return changed

    def set_scope(self, units: list[tuple[str, str, int]]) -> None:
        """Record the (dataset, image, QF) triples of the run as configured now; rows outside them (images
        or QFs dropped from the config) stop counting as current results."""
        with self.transaction() as c:
            c.execute("DELETE FROM scope")
            c.executemany("INSERT OR IGNORE INTO scope VALUES (?, ?, ?)", units)

    def set_skipped(self, kind: str, skipped: dict[str, str]) -> None:
        """Replace the list of skipped metrics or methods (kind 'metric' / 'method') with their reasons."""
        with self.transaction() as c:
            c.execute("DELETE FROM skipped WHERE kind = ?", (kind,))
            c.executemany("INSERT INTO skipped VALUES (?, ?, ?)", [(kind, n, r) for n, r in skipped.items()])

    def skipped(self) -> list[dict[str, str]]:
        return [dict(r) for r in self.conn.execute("SELECT kind, name, reason FROM skipped ORDER BY kind, name")]

    # -- images -------------------------------------------------------------------------------------
    def put_image(self, dataset: str, image: str, protocol: str, hq_path: str, width: int, height: int,
                  notes: list[str]) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (dataset, image, protocol, hq_path, width, height, json.dumps(notes)))

    def put_lq(self, dataset: str, image: str, protocol: str, qf: int, path: str, size: int) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO lq VALUES (?, ?, ?, ?, ?, ?)", (dataset, image, protocol, qf, path, size))

    def has_inputs(self, dataset: str, image: str, protocol: str, qfs: list[int]) -> bool:
        """True when the image's HQ row and an LQ row for every QF are recorded (a killed run may have
        written a file but not its row)."""
        if self.conn.execute("SELECT 1 FROM images WHERE dataset=? AND image=? AND protocol=?",
                             (dataset, image, protocol)).fetchone() is None:
            return False
        found = {r[0] for r in self.conn.execute("SELECT qf FROM lq WHERE dataset=? AND image=? AND protocol=?",
                                                 (dataset, image, protocol))}
        return set(qfs) <= found

    # -- outputs, results, errors -----------------------------------------------------------------
    def get_output(self, dataset: str, image: str, method: str, qf: int, fingerprint: str,
                   protocol: str) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT * FROM outputs WHERE dataset=? AND image=? AND method=? AND qf=? AND fingerprint=? AND protocol=?",
            (dataset, image, method, qf, fingerprint, protocol)).fetchone()

    def done_metrics(self, dataset: str, image: str, method: str, qf: int, fingerprint: str,
                     protocol: str) -> dict[str, float]:
        rows = self.conn.execute(
            "SELECT metric, value FROM results WHERE dataset=? AND image=? AND method=? AND qf=? "
            "AND fingerprint=? AND protocol=?", (dataset, image, method, qf, fingerprint, protocol))
        return {r["metric"]: r["value"] for r in rows}

    def put_output(self, key: "UnitKey", path: str, seconds: float, notes: list[str]) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (*key.astuple(), path, seconds, json.dumps(notes), time.time()))
            c.execute("DELETE FROM errors WHERE dataset=? AND image=? AND method=? AND qf=? AND stage='restore' "
                      "AND fingerprint=? AND protocol=?", key.astuple())

    def put_results(self, key: "UnitKey", values: dict[str, float]) -> None:
        now = time.time()
        d, i, m, q, f, p = key.astuple()
        with self.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          [(d, i, m, q, metric, float(v), f, p, now) for metric, v in values.items()])
            c.execute("DELETE FROM errors WHERE dataset=? AND image=? AND method=? AND qf=? AND stage LIKE 'metric%' "
                      "AND fingerprint=? AND protocol=?", key.astuple())

    def put_error(self, key: "UnitKey", stage: str, message: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO errors VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (*key.astuple()[:4], stage, message, *key.astuple()[4:], time.time()))

    def clear_errors(self, dataset: str, image: str, protocol: str) -> None:
        """Forget errors of an image's input stage (it read correctly this time)."""
        with self.transaction() as c:
            c.execute("DELETE FROM errors WHERE dataset=? AND image=? AND protocol=? AND stage='input'",
                      (dataset, image, protocol))

    # -- queries for summaries and reports ----------------------------------------------------------
    def _frame(self, table: str, columns: str, variants: bool = False, current: str = CURRENT):
        """Current rows of `table`; with `variants`, those of every protocol variant too, with a `variant`
        column holding each row's variant label."""
        import pandas as pd

        if not variants:
            return pd.read_sql_query(f"SELECT {columns} FROM {table} t {current}", self.conn)
        sql = f"SELECT {columns}, t.protocol FROM {table} t {_any_protocol(current)}"
        frame = pd.read_sql_query(sql, self.conn)
        labels = {key: label for label, key in self.variants().items()}
        frame["variant"] = frame.pop("protocol").map(labels)
        return frame

    def variants(self) -> dict[str, str]:
        """The run's protocol variants, label -> protocol key, the run's own protocol ('clean') first."""
        recorded = self.get_meta("variants") or {}
        if recorded:
            return {label: str(v["key"]) for label, v in recorded.items()}
        key = self.get_meta("protocol_key")
        return {"clean": key} if key else {}

    def results_frame(self, *, variants: bool = False):
        """Current per-image metric values: dataset, image, method, qf, metric, value (and variant)."""
        return self._frame("results", "t.dataset, t.image, t.method, t.qf, t.metric, t.value", variants)

    def outputs_frame(self):
        """Current outputs: dataset, image, method, qf, path (relative to the run folder), seconds, notes."""
        return self._frame("outputs", "t.dataset, t.image, t.method, t.qf, t.path, t.seconds, t.notes")

    def errors_frame(self):
        """Current errors of every protocol variant, with its label in `variant` (input errors carry method
        '*' and are always current)."""
        import pandas as pd

        columns = "t.dataset, t.image, t.method, t.qf, t.stage, t.message, t.protocol"
        sql = (f"SELECT {columns} FROM errors t {_any_protocol(CURRENT)} UNION ALL SELECT {columns} FROM errors t "
               f"{_any_protocol(CURRENT_INPUTS)} AND t.method = '*' ORDER BY 1, 2, 3, 4")
        frame = pd.read_sql_query(sql, self.conn)
        labels = {key: label for label, key in self.variants().items()}
        frame["variant"] = frame.pop("protocol").map(labels)
        return frame

    def images_frame(self, *, variants: bool = False):
        return self._frame("images", "t.dataset, t.image, t.hq_path, t.width, t.height, t.notes", variants,
                           CURRENT_INPUTS)

    def lq_frame(self, *, variants: bool = False):
        """The LQ files: dataset, image, qf, path and size in `bytes` (and variant)."""
        current = CURRENT_INPUTS.replace("s.image = t.image", "s.image = t.image AND s.qf = t.qf")
        return self._frame("lq", "t.dataset, t.image, t.qf, t.path, t.bytes", variants, current)

    def count_finished_units(self) -> int:
        """Units of the current configuration (every variant) that have an output or a restore error."""
        outputs = self.conn.execute(f"SELECT count(*) FROM outputs t {_any_protocol(CURRENT)}").fetchone()[0]
        failed = self.conn.execute(f"SELECT count(*) FROM errors t {_any_protocol(CURRENT)} "
                                   "AND t.stage = 'restore'").fetchone()[0]
        return int(outputs + failed)

    def fingerprints(self) -> dict[str, str]:
        """The run's methods: label -> fingerprint (what invalidates their stored rows)."""
        return {r["method"]: r["fingerprint"] for r in self.conn.execute("SELECT method, fingerprint FROM methods")}

    def methods(self) -> dict[str, dict[str, Any]]:
        return {r["method"]: json.loads(r["description"]) for r in self.conn.execute("SELECT * FROM methods")}


def _any_protocol(current: str) -> str:
    """A current-rows clause that accepts every protocol variant of the run."""
    return current.replace(f"t.protocol = {_PROTOCOL}", _ANY_PROTOCOL)


class UnitKey:
    """The identity of one unit of work: an image restored by a method at a QF under a protocol."""

    __slots__ = ("dataset", "image", "method", "qf", "fingerprint", "protocol")

    def __init__(self, dataset: str, image: str, method: str, qf: int, fingerprint: str, protocol: str) -> None:
        self.dataset, self.image, self.method = dataset, image, method
        self.qf, self.fingerprint, self.protocol = int(qf), fingerprint, protocol

    def astuple(self) -> tuple[str, str, str, int, str, str]:
        return (self.dataset, self.image, self.method, self.qf, self.fingerprint, self.protocol)

    def __repr__(self) -> str:
        return f"UnitKey{self.astuple()!r}"
