"""The results store of one run folder: SQLite, transactional, resumable and queryable.

Two kinds of table. The cache tables hold what was computed, keyed on content identities only: prepared
inputs on (image id, protocol key), LQ files on (image id, protocol key, QF), restorations on the unit id (a
hash of image id, protocol, QF, method fingerprint and seed), metric values on (unit id, metric,
metric fingerprint). The plan tables hold the run as configured now, with the names people read (dataset,
image, method label, variant) mapped to those identities. A report joins the two, so a renamed, moved or
replaced file can never lend its numbers to another. WAL mode and a busy timeout let several processes write.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.core.errors import BenchError
from bench.record import RunRecord

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS inputs (
    image_id TEXT, protocol TEXT, hq_path TEXT, hq_sha256 TEXT, width INTEGER, height INTEGER, notes TEXT,
    PRIMARY KEY (image_id, protocol));
CREATE TABLE IF NOT EXISTS lq (
    image_id TEXT, protocol TEXT, qf INTEGER, path TEXT, sha256 TEXT, bytes INTEGER,
    PRIMARY KEY (image_id, protocol, qf));
CREATE TABLE IF NOT EXISTS outputs (
    unit_id TEXT PRIMARY KEY, path TEXT, sha256 TEXT, seconds REAL, notes TEXT, created REAL);
CREATE TABLE IF NOT EXISTS results (
    unit_id TEXT, metric TEXT, metric_fp TEXT, value REAL, created REAL,
    PRIMARY KEY (unit_id, metric, metric_fp));
CREATE TABLE IF NOT EXISTS errors (
    subject TEXT, stage TEXT, message TEXT, created REAL, PRIMARY KEY (subject, stage));
CREATE TABLE IF NOT EXISTS plan_images (
    variant TEXT, dataset TEXT, image TEXT, image_id TEXT, protocol TEXT, PRIMARY KEY (variant, dataset, image));
CREATE TABLE IF NOT EXISTS plan_units (
    variant TEXT, dataset TEXT, image TEXT, method TEXT, qf INTEGER, unit_id TEXT,
    PRIMARY KEY (variant, dataset, image, method, qf));
CREATE TABLE IF NOT EXISTS plan_metrics (metric TEXT PRIMARY KEY, fingerprint TEXT);
CREATE TABLE IF NOT EXISTS skipped (kind TEXT, name TEXT, reason TEXT, PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
CLEAN = "clean"


def input_subject(image_id: str, protocol: str) -> str:
    """The error subject of an image's input stage under a protocol (a unit's subject is its unit id)."""
    return f"input:{image_id}:{protocol}"


class StoreError(BenchError, OSError):
    """The results store belongs to another schema version of this program."""


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
            self._check_version()
            self.conn.executescript(SCHEMA)
            self.conn.execute("PRAGMA user_version = %d" % SCHEMA_VERSION)
        self.conn.row_factory = sqlite3.Row

    def _check_version(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        tables = self.conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if tables and version != SCHEMA_VERSION:
            self.conn.close()
            raise StoreError(f"{self.path} was written by another version of codiff-bench (store schema {version}, "
                             f"this one writes {SCHEMA_VERSION}): use a new run folder, or delete the old one")

    @classmethod
    def in_run_dir(cls, run_dir: str | Path, **kwargs: Any) -> ResultsStore:
        return cls(Path(run_dir) / cls.FILENAME, **kwargs)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ResultsStore:
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

    # -- the record and the plan ----------------------------------------------------------------------
    def set_record(self, record: RunRecord) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (RunRecord.META_KEY, record.to_json()))

    def record(self) -> RunRecord:
        """The run record (an empty one before a run has written its own)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (RunRecord.META_KEY,)).fetchone()
        return RunRecord.from_json(row[0]) if row else RunRecord()

    def set_plan(self, images: Iterable[tuple[str, str, str, str, str]],
                 units: Iterable[tuple[str, str, str, str, int, str]], metrics: dict[str, str]) -> None:
        """Replace the run as configured now: its images (variant, dataset, image, image id, protocol key), its
        units (variant, dataset, image, method label, QF, unit id) and its metrics (name -> fingerprint)."""
        with self.transaction() as c:
            c.execute("DELETE FROM plan_images")
            c.execute("DELETE FROM plan_units")
            c.execute("DELETE FROM plan_metrics")
            c.executemany("INSERT OR REPLACE INTO plan_images VALUES (?, ?, ?, ?, ?)", images)
            c.executemany("INSERT OR REPLACE INTO plan_units VALUES (?, ?, ?, ?, ?, ?)", units)
            c.executemany("INSERT INTO plan_metrics VALUES (?, ?)", metrics.items())

    def set_skipped(self, kind: str, skipped: dict[str, str]) -> None:
        """Replace the list of skipped items of one kind ('metric', 'method', 'file', ...) with their reasons."""
        with self.transaction() as c:
            c.execute("DELETE FROM skipped WHERE kind = ?", (kind,))
            c.executemany("INSERT INTO skipped VALUES (?, ?, ?)", [(kind, n, r) for n, r in skipped.items()])

    def skipped(self) -> list[dict[str, str]]:
        return [dict(r) for r in self.conn.execute("SELECT kind, name, reason FROM skipped ORDER BY kind, name")]

    # -- the cache: inputs ----------------------------------------------------------------------------
    def get_input(self, image_id: str, protocol: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM inputs WHERE image_id = ? AND protocol = ?",
                                 (image_id, protocol)).fetchone()

    def put_input(self, image_id: str, protocol: str, hq_path: str, hq_sha256: str, width: int, height: int,
                  notes: list[str]) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO inputs VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (image_id, protocol, hq_path, hq_sha256, width, height, json.dumps(notes)))
            c.execute("DELETE FROM errors WHERE subject = ?", (input_subject(image_id, protocol),))

    def get_lq(self, image_id: str, protocol: str) -> dict[int, sqlite3.Row]:
        rows = self.conn.execute("SELECT * FROM lq WHERE image_id = ? AND protocol = ?", (image_id, protocol))
        return {int(r["qf"]): r for r in rows}

    def put_lq(self, image_id: str, protocol: str, qf: int, path: str, sha256: str, size: int) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO lq VALUES (?, ?, ?, ?, ?, ?)", (image_id, protocol, qf, path, sha256, size))

    # -- the cache: restorations, metric values, errors ---------------------------------------------------
    def get_output(self, unit_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM outputs WHERE unit_id = ?", (unit_id,)).fetchone()

    def put_output(self, unit_id: str, path: str, sha256: str, seconds: float, notes: list[str]) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?)",
                      (unit_id, path, sha256, seconds, json.dumps(notes), time.time()))
            c.execute("DELETE FROM errors WHERE subject = ? AND stage = 'restore'", (unit_id,))

    def done_metrics(self, unit_id: str, fingerprints: dict[str, str]) -> dict[str, float]:
        """The stored values of these metrics (name -> fingerprint) for a unit."""
        rows = self.conn.execute("SELECT metric, metric_fp, value FROM results WHERE unit_id = ?", (unit_id,))
        return {r["metric"]: r["value"] for r in rows if fingerprints.get(r["metric"]) == r["metric_fp"]}

    def put_results(self, unit_id: str, values: dict[str, float], fingerprints: dict[str, str]) -> None:
        now = time.time()
        with self.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)",
                          [(unit_id, metric, fingerprints[metric], float(v), now) for metric, v in values.items()])
            c.executemany("DELETE FROM errors WHERE subject = ? AND stage = ?",
                          [(unit_id, f"metric:{metric}") for metric in values])

    def put_error(self, subject: str, stage: str, message: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO errors VALUES (?, ?, ?, ?)", (subject, stage, message, time.time()))

    # -- queries for summaries and reports (current rows: the plan joined with the cache) -------------------
    def _query(self, sql: str, variants: bool, where: str = ""):
        import pandas as pd

        clause = "" if variants else f"p.variant = '{CLEAN}'"
        conditions = " AND ".join(c for c in (clause, where) if c)
        frame = pd.read_sql_query(sql + (f" WHERE {conditions}" if conditions else ""), self.conn)
        return frame if variants else frame.drop(columns=["variant"])

    def results_frame(self, *, variants: bool = False):
        """Current per-image metric values: dataset, image, method, qf, metric, value (and variant)."""
        return self._query("SELECT p.dataset, p.image, p.method, p.qf, r.metric, r.value, p.variant "
                           "FROM plan_units p JOIN results r ON r.unit_id = p.unit_id "
                           "JOIN plan_metrics m ON m.metric = r.metric AND m.fingerprint = r.metric_fp", variants)

    def outputs_frame(self, *, variants: bool = False):
        """Current outputs: dataset, image, method, qf, path (relative to the run folder), seconds, notes."""
        return self._query("SELECT p.dataset, p.image, p.method, p.qf, o.path, o.seconds, o.notes, p.variant "
                           "FROM plan_units p JOIN outputs o ON o.unit_id = p.unit_id", variants)

    def images_frame(self, *, variants: bool = False):
        """Current prepared images: dataset, image, hq_path, width, height, notes (and variant)."""
        return self._query("SELECT p.dataset, p.image, i.hq_path, i.width, i.height, i.notes, p.variant "
                           "FROM plan_images p JOIN inputs i ON i.image_id = p.image_id AND i.protocol = p.protocol",
                           variants)

    def lq_frame(self, *, variants: bool = False):
        """The LQ files at the run's QFs: dataset, image, qf, path and size in `bytes` (and variant)."""
        qfs = ",".join(str(int(q)) for q in self.record().qfs) or "NULL"
        return self._query("SELECT p.dataset, p.image, l.qf, l.path, l.bytes, p.variant FROM plan_images p "
                           "JOIN lq l ON l.image_id = p.image_id AND l.protocol = p.protocol", variants,
                           f"l.qf IN ({qfs})")

    def errors_frame(self):
        """Current errors of every protocol variant, with its label in `variant` (input errors carry method
        '*' and QF 0)."""
        import pandas as pd

        sql = ("SELECT p.dataset, p.image, p.method, p.qf, e.stage, e.message, p.variant FROM plan_units p "
               "JOIN errors e ON e.subject = p.unit_id UNION ALL "
               "SELECT p.dataset, p.image, '*', 0, e.stage, e.message, p.variant FROM plan_images p "
               "JOIN errors e ON e.subject = 'input:' || p.image_id || ':' || p.protocol ORDER BY 1, 2, 3, 4")
        return pd.read_sql_query(sql, self.conn)

    def count_finished_units(self) -> int:
        """Units of the current plan (every variant) that have an output or a restore error."""
        return int(self.conn.execute(
            "SELECT count(*) FROM plan_units p WHERE EXISTS (SELECT 1 FROM outputs o WHERE o.unit_id = p.unit_id) "
            "OR EXISTS (SELECT 1 FROM errors e WHERE e.subject = p.unit_id AND e.stage = 'restore')").fetchone()[0])

    def variants(self) -> dict[str, str]:
        """The run's protocol variants, label -> protocol key, the run's own protocol ('clean') first."""
        return {v.label: v.key for v in self.record().variants}

    def fingerprints(self) -> dict[str, str]:
        """The run's methods: label -> fingerprint."""
        return {m.label: m.fingerprint for m in self.record().methods}

    def methods(self) -> dict[str, dict[str, Any]]:
        return {m.label: m.description for m in self.record().methods}
