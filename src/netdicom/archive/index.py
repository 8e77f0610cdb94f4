"""The archive index: SQLite inside DIR (DIR/.netdicom/index.sqlite). All of its SQL is here.

Invariant: an instance is in the index if and only if its file is in place, as far as anyone
reading the index can tell. serve queues an instance (`Index.add_later`) after its file is
durable and before it answers success; the queue is added, as one batch, a second later on a
worker thread and before any read (`flush`, `find`, `files`, ...), so a query never misses an
instance answered as stored. `archive.rebuild.reconcile` restores the invariant at start-up after
a crash (files without a row are added, rows without a file removed) and rebuilds a missing or
damaged index from the files.

Durability: WAL journal with synchronous=NORMAL. A commit is not fsynced (that would cost a
disk flush per stored instance, more than the 10% of store throughput allowed); the last
commits can be lost on power failure, and the start-up reconciliation adds them back from the
files, which are fsynced by the writer.

Tables: patient, study, series, instance (one row per entity, the attributes of COLUMNS as
columns, text decoded, absent = ''), with per-entity counters kept on insert and delete for the
Number of ... Related ... attributes, and study_sop_class for SOP Classes in Study.
Matching: SQL pre-filters on columns (equality, UID lists, date ranges, GLOB for wildcards) to
narrow the candidates; every candidate is then checked with `matching.match_record`, which is
the one definition of the rules.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import field
from pathlib import Path
from typing import Final

from netdicom.archive.matching import (
    COLUMN_BY_TAG,
    COLUMNS,
    COMPUTED_BY_TAG,
    DATE_TIME_PAIRS,
    RANGE_VRS,
    WILDCARD_VRS,
    Column,
    Items,
    Key,
    Level,
    Model,
    Values,
    is_patient_attribute,
    match_date_time,
    match_record,
    normalise_date,
    normalise_person_name,
    parse_range,
    wildcard_glob,
)
from netdicom.core.records import frozen

log = logging.getLogger("netdicom.index")

# 3: person names folded one character for one (fold_case); instances by SOP class
SCHEMA_VERSION: Final = 4
INDEX_DIR: Final = ".netdicom"
INDEX_FILE: Final = "index.sqlite"

_TABLES: Final = {
    Level.PATIENT: ("patient", "p"),
    Level.STUDY: ("study", "st"),
    Level.SERIES: ("series", "se"),
    Level.IMAGE: ("instance", "i"),
}
_PN_COLUMNS: Final = frozenset(c.name for c in COLUMNS if c.vr == "PN")


def _column_defs(level: Level) -> str:
    parts = []
    for column in COLUMNS:
        if column.level is level:
            parts.append(f"{column.name} TEXT NOT NULL DEFAULT ''")
            if column.vr == "PN":
                parts.append(f"{column.name}_alpha TEXT NOT NULL DEFAULT ''")
    return ",\n    ".join(parts)


_SCHEMA: Final = f"""
CREATE TABLE patient (
    pk INTEGER PRIMARY KEY,
    {_column_defs(Level.PATIENT)},
    n_studies INTEGER NOT NULL DEFAULT 0,
    n_series INTEGER NOT NULL DEFAULT 0,
    n_instances INTEGER NOT NULL DEFAULT 0,
    -- A Patient ID identifies a patient; an empty one does not: such a patient row belongs to
    -- one study (its Study Instance UID here), so that studies of different people without
    -- an ID each keep their own name (all of them answered the first one's, walkthrough 6b).
    anonymous_study TEXT NOT NULL DEFAULT '',
    UNIQUE (patient_id, issuer, anonymous_study)
);
CREATE TABLE study (
    pk INTEGER PRIMARY KEY,
    patient_pk INTEGER NOT NULL REFERENCES patient(pk),
    {_column_defs(Level.STUDY)},
    n_series INTEGER NOT NULL DEFAULT 0,
    n_instances INTEGER NOT NULL DEFAULT 0,
    UNIQUE (study_uid)
);
CREATE TABLE series (
    pk INTEGER PRIMARY KEY,
    study_pk INTEGER NOT NULL REFERENCES study(pk),
    {_column_defs(Level.SERIES)},
    n_instances INTEGER NOT NULL DEFAULT 0,
    -- A Series Instance UID names one series, but one seen in two studies (a sender's
    -- error) is a series of each: filed under the first study, an instance was not in its
    -- own study's C-GET, which answered Success with nothing (walkthrough 6a).
    UNIQUE (series_uid, study_pk)
);
CREATE TABLE instance (
    pk INTEGER PRIMARY KEY,
    series_pk INTEGER NOT NULL REFERENCES series(pk),
    {_column_defs(Level.IMAGE)},
    transfer_syntax TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    UNIQUE (sop_uid)
);
CREATE TABLE study_sop_class (
    study_pk INTEGER NOT NULL REFERENCES study(pk),
    sop_class TEXT NOT NULL,
    PRIMARY KEY (study_pk, sop_class)
) WITHOUT ROWID;
-- Counters for the Number of ... Related ... attributes, and SOP Classes in Study, kept by
-- SQLite itself (one statement per insert from Python instead of five).
CREATE TRIGGER instance_added AFTER INSERT ON instance BEGIN
    UPDATE series SET n_instances = n_instances + 1 WHERE pk = NEW.series_pk;
    UPDATE study SET n_instances = n_instances + 1
        WHERE pk = (SELECT study_pk FROM series WHERE pk = NEW.series_pk);
    UPDATE patient SET n_instances = n_instances + 1 WHERE pk = (SELECT patient_pk FROM study
        WHERE pk = (SELECT study_pk FROM series WHERE pk = NEW.series_pk));
    INSERT OR IGNORE INTO study_sop_class (study_pk, sop_class)
        SELECT study_pk, NEW.sop_class FROM series WHERE pk = NEW.series_pk AND NEW.sop_class != '';
END;
CREATE TRIGGER instance_removed AFTER DELETE ON instance BEGIN
    UPDATE series SET n_instances = n_instances - 1 WHERE pk = OLD.series_pk;
    UPDATE study SET n_instances = n_instances - 1
        WHERE pk = (SELECT study_pk FROM series WHERE pk = OLD.series_pk);
    UPDATE patient SET n_instances = n_instances - 1 WHERE pk = (SELECT patient_pk FROM study
        WHERE pk = (SELECT study_pk FROM series WHERE pk = OLD.series_pk));
    DELETE FROM study_sop_class
        WHERE study_pk = (SELECT study_pk FROM series WHERE pk = OLD.series_pk)
        AND sop_class = OLD.sop_class
        AND NOT EXISTS (SELECT 1 FROM instance i JOIN series s ON s.pk = i.series_pk
            WHERE s.study_pk = (SELECT study_pk FROM series WHERE pk = OLD.series_pk)
            AND i.sop_class = OLD.sop_class);
END;
CREATE TRIGGER series_added AFTER INSERT ON series BEGIN
    UPDATE study SET n_series = n_series + 1 WHERE pk = NEW.study_pk;
    UPDATE patient SET n_series = n_series + 1
        WHERE pk = (SELECT patient_pk FROM study WHERE pk = NEW.study_pk);
END;
CREATE TRIGGER series_removed AFTER DELETE ON series BEGIN
    UPDATE study SET n_series = n_series - 1 WHERE pk = OLD.study_pk;
    UPDATE patient SET n_series = n_series - 1
        WHERE pk = (SELECT patient_pk FROM study WHERE pk = OLD.study_pk);
END;
CREATE TRIGGER study_added AFTER INSERT ON study BEGIN
    UPDATE patient SET n_studies = n_studies + 1 WHERE pk = NEW.patient_pk;
END;
CREATE TRIGGER study_removed AFTER DELETE ON study BEGIN
    UPDATE patient SET n_studies = n_studies - 1 WHERE pk = OLD.patient_pk;
    DELETE FROM study_sop_class WHERE study_pk = OLD.pk;
END;
CREATE INDEX patient_name_alpha ON patient (patient_name_alpha);
CREATE INDEX study_patient ON study (patient_pk);
CREATE INDEX study_date ON study (study_date);
CREATE INDEX study_accession ON study (accession);
CREATE INDEX series_study ON series (study_pk);
CREATE INDEX instance_series ON instance (series_pk);
CREATE UNIQUE INDEX instance_path ON instance (path);
CREATE INDEX instance_sop_class ON instance (sop_class, transfer_syntax);
PRAGMA user_version = {SCHEMA_VERSION};
"""


# (column name, tag, is a date) for building a row from an instance's values.
_ROW_COLUMNS: Final = tuple((c.name, c.tag, c.vr == "DA") for c in COLUMNS)


@functools.cache
def _insert_sql(level: Level, extra: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The INSERT of one level's row, and the row's column names it takes in order."""
    table, _ = _TABLES[level]
    names = [c.name for c in COLUMNS if c.level is level]
    names += [f"{n}_alpha" for n in names if n in _PN_COLUMNS]
    all_names = [*names, *extra]
    marks = ", ".join("?" for _ in all_names)
    return f"INSERT INTO {table} ({', '.join(all_names)}) VALUES ({marks})", tuple(names)


# The columns that find a patient, study or series row: never changed by an update.
_ENTITY_KEYS: Final = frozenset({"patient_id", "issuer", "study_uid", "series_uid"})


@functools.cache
def _update_sql(level: Level) -> tuple[str, tuple[str, ...]]:
    """The UPDATE of a patient, study or series row's attributes, and the names it takes."""
    table, _ = _TABLES[level]
    names = [c.name for c in COLUMNS if c.level is level and c.name not in _ENTITY_KEYS]
    names += [f"{n}_alpha" for n in names if n in _PN_COLUMNS]
    assignments = ", ".join(f"{name} = ?" for name in names)
    return f"UPDATE {table} SET {assignments} WHERE pk = ?", tuple(names)


class IndexUnavailable(OSError):
    """The index cannot be opened or written for a reason that is not damage: the file
    system is full or read-only, or an I/O error (an OSError: exit code 3, bad input)."""

    def __init__(self, path: Path, exc: BaseException) -> None:
        super().__init__(
            f"cannot use the index {path}: {exc} (is the file system full, read-only, or not "
            "writable by this user?)"
        )


class IndexUnusable(Exception):
    """The index file cannot be used (damaged, or of another schema version)."""


class IndexOutdated(IndexUnusable):
    """The index was made by a netdicom with another schema: not damaged, only rebuilt."""


@frozen
class InstanceSummary:
    """What the index keeps of one stored instance: its file and decoded column values."""

    path: str  # relative to DIR, with '/' separators
    size: int
    mtime_ns: int
    transfer_syntax: str
    values: Mapping[int, str]  # tag -> decoded text; several values joined with '\\'


@frozen
class Query:
    """A C-FIND query against the index.

    `keys`: matching keys of the query level and the levels above it (universal ones may be
    left in: they match everything). `wanted`: tags whose values the caller will return.
    `combined_datetime`: DA/TM key pairs are matched as one date-time (PS3.4 C.2.2.2.5.1).
    """

    model: Model
    level: Level
    keys: tuple[Key, ...]
    wanted: frozenset[int] = frozenset()
    combined_datetime: bool = False


@frozen
class Match:
    """One matching entity: its attributes by tag, and one instance file below it."""

    record: dict[int, Values | Items]
    path: str = field(default="")


FileReader = Callable[[str, frozenset[int]], Mapping[int, Values | Items]]
"""Reads tags of a stored file (path relative to DIR) for attributes the index has no
column for; see archive.rebuild.read_attributes."""


def index_path(directory: Path) -> Path:
    return directory / INDEX_DIR / INDEX_FILE


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


class Index:
    """The index of one archive directory. Writes are serialised by a lock; each query
    runs on its own connection (WAL lets readers run beside the writer)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = index_path(directory)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pks: dict[tuple[str, str, str], int] = {}
        # Rows added with add_deferred() and not yet committed (see there), and the instances
        # they stand for: queued again should the commit fail (_give_up).
        self._pending = 0
        self._uncommitted: list[tuple[InstanceSummary, bool]] = []
        # Instances queued with add_later(), added at the next flush() or read (see there).
        self._queued: deque[tuple[Callable[[], InstanceSummary], bool]] = deque()
        # The last flush could not write (a full disk): serve refuses stores until one can,
        # rather than answer success for instances no query would find meanwhile.
        self.write_failing = False
        # SOP Instance UID -> path of those queued or added and not yet committed, and the
        # connections of the threads that ask stored_path() (see there).
        self._fresh: dict[str, str] = {}
        self._fresh_lock = threading.Lock()
        self._lookup = threading.local()
        self._lookups: list[sqlite3.Connection] = []

    # --- opening ---------------------------------------------------------------------------

    def open(self) -> str:
        """Open or create the index: "ok", "created", "damaged" (moved aside and created
        again: the caller rebuilds it from the files) or "outdated" (of another schema
        version: deleted, it holds nothing the files do not, and created again)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists() and self.path.stat().st_size > 0
        outdated = False
        if existed:
            try:
                self._conn = _connect(self.path)
                self._check(self._conn)
                return "ok"
            except sqlite3.OperationalError as exc:
                # Cannot open, read or write (a full or read-only file system, I/O): the
                # index is not damaged, and moving it aside would cost a rebuild for nothing.
                if self._conn is not None:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.close()
                    self._conn = None
                raise IndexUnavailable(self.path, exc) from exc
            except (sqlite3.DatabaseError, IndexUnusable) as exc:
                if self._conn is not None:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.close()
                    self._conn = None
                if isinstance(exc, IndexOutdated):
                    # An upgrade: logged as damage, it left a *.damaged file behind (6b).
                    log.info("index %s is %s: rebuilding it", self.path, exc)
                    self._remove_files()
                    outdated = True
                else:
                    log.warning("index %s is not usable (%s): rebuilding it", self.path, exc)
                    self._move_aside()
        try:
            self._conn = _connect(self.path)
            self._conn.executescript(_SCHEMA)
        except sqlite3.OperationalError as exc:
            raise IndexUnavailable(self.path, exc) from exc
        if not existed:
            return "created"
        return "outdated" if outdated else "damaged"

    @staticmethod
    def _check(conn: sqlite3.Connection) -> None:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version != SCHEMA_VERSION:
            raise IndexOutdated(
                f"of schema version {version}, made by another netdicom (this one's is "
                f"{SCHEMA_VERSION})"
            )
        (verdict,) = conn.execute("PRAGMA quick_check").fetchone()
        if verdict != "ok":
            raise IndexUnusable(f"integrity check failed: {verdict}")

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                self.path.with_name(self.path.name + suffix).unlink()

    def _move_aside(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            source = self.path.with_name(self.path.name + suffix)
            if source.exists():
                with contextlib.suppress(OSError):
                    source.replace(source.with_name(source.name + ".damaged"))

    def close(self) -> None:
        for conn in self._lookups:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._lookups.clear()
        with self._lock:
            if self._conn is not None:
                self._add_queued()
            self._commit_pending()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise IndexUnusable("the index is not open")
        return self._conn

    # --- writing ---------------------------------------------------------------------------

    def add(self, summary: InstanceSummary) -> None:
        """Insert (or update) one instance and its patient, study and series, in one
        transaction."""
        self.add_many([summary])

    # A transaction per stored instance costs as much as building its rows. The store hook
    # therefore adds with add_deferred(): rows join one open transaction that flush() commits
    # (serve calls it a few milliseconds later, and before every query, which runs on a
    # connection of its own and so sees committed rows only). Durability is unchanged: commits
    # are not fsynced anyway (see the module doc) and the start-up reconciliation indexes any
    # file whose row was lost.
    MAX_PENDING = 256

    def add_deferred(self, summary: InstanceSummary) -> None:
        """Insert one instance into the open transaction (begun if needed); `flush()` commits.
        A failure undoes this instance only (a savepoint), never the others pending."""
        with self._lock:
            self._add_queued()
            self._add_one(summary)

    def _add_one(self, summary: InstanceSummary, keep_existing: bool = False) -> None:
        db = self._db
        try:
            if self._pending == 0:
                db.execute("BEGIN IMMEDIATE")
            self._pending += 1
            db.execute("SAVEPOINT one")
            try:
                self._insert(db, summary)
            except sqlite3.OperationalError:
                raise
            except BaseException:
                db.execute("ROLLBACK TO one")
                db.execute("RELEASE one")
                self._pks.clear()
                raise
            db.execute("RELEASE one")
        except sqlite3.OperationalError:
            # The database cannot be written (disk full, I/O): SQLite may have ended the
            # whole transaction itself. Everything in it is queued again.
            self._give_up([(summary, keep_existing)])
            raise
        self._uncommitted.append((summary, keep_existing))
        if self._pending >= self.MAX_PENDING:
            self._commit_pending()

    # serve's store path goes further: it queues each instance with add_later(), which costs
    # an append, and answers success without waiting for SQLite; flush() (a second later, on a
    # worker thread) and every read of the index add what is queued first, so no query, no
    # retrieve and no start-up check ever misses an instance that was answered as stored.
    def add_later(
        self,
        make: Callable[[], InstanceSummary],
        *,
        keep_existing: bool = False,
        sop_instance_uid: str | None = None,
        path: str | None = None,
    ) -> None:
        """Queue an instance; `make()` builds its summary when it is added. `keep_existing`:
        leave it out if its SOP instance is indexed already (a second file of it kept by the
        "rename" duplicate policy). A `make()` that fails is logged and skipped (the start-up
        reconciliation indexes the file from disk). `sop_instance_uid` and `path`, when
        given, are what stored_path() answers until the row is committed. Thread-safe."""
        if sop_instance_uid is not None and path is not None and not keep_existing:
            with self._fresh_lock:
                self._fresh[sop_instance_uid] = path
        self._queued.append((make, keep_existing))

    def stored_path(self, sop_instance_uid: str) -> str | None:
        """Where an SOP instance is stored (relative path), None when it is not indexed:
        serve asks it for each instance it stores (duplicates are found by UID), so it is
        cheap: no lock on the writer, no flush of the queue. Instances queued or added and
        not yet committed are answered from memory; the rest by a connection of the asking
        thread (WAL: it reads beside the writer), or the writer's when that one fails. None
        when the index cannot be read at all: the instance is then stored as new."""
        with self._fresh_lock:
            path = self._fresh.get(sop_instance_uid)
        if path is not None:
            return path
        conn: sqlite3.Connection | None = getattr(self._lookup, "conn", None)
        try:
            if conn is None:
                # A connection as the writer's (not mode=ro: a read-only one was seen, on a
                # long-running serve, reading the main file without its WAL, where every row
                # was, and finding no instance at all).
                conn = _connect(self.path)
                self._lookup.conn = conn
                self._lookups.append(conn)
            row = conn.execute(
                "SELECT path FROM instance WHERE sop_uid = ?", (sop_instance_uid,)
            ).fetchone()
        except sqlite3.Error as exc:
            # Never "not stored" on a failed lookup (keep would store a second copy): said,
            # the connection dropped, and the writer's connection asked.
            log.warning("index lookup of %s failed (%s): asking again", sop_instance_uid, exc)
            self._lookup.conn = None
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            try:
                return self.sop_instance_paths([sop_instance_uid]).get(sop_instance_uid)
            except Exception as again:
                log.warning("index lookup of %s failed again (%s)", sop_instance_uid, again)
                return None
        return None if row is None else str(row[0])

    def _add_queued(self) -> None:
        # Called with the lock held. The queue goes in as one batch; should an insert fail,
        # the batch is undone and added again one instance at a time, so that the failure
        # undoes only itself. A batch that starts the transaction is undone by ROLLBACK, not
        # by a savepoint: a savepoint spanning the batch makes SQLite journal every page the
        # batch touches (a statement journal that spills to a temporary file beyond 64 KiB,
        # ~18 page writes per instance here), while each INSERT alone journals a few pages
        # in memory.
        if not self._queued:
            return
        batch: list[tuple[InstanceSummary, bool]] = []
        while self._queued:
            make, keep_existing = self._queued.popleft()
            try:
                batch.append((make(), keep_existing))
            except FileNotFoundError as exc:
                # Gone before it was indexed: an older version removed by --on-duplicate
                # overwrite once the new one was placed (which is queued after it).
                log.debug("not indexed, removed meanwhile: %s", exc.filename)
            except Exception:
                log.exception("indexing a stored instance failed; the start-up check will retry")
        if not batch:
            return
        db = self._db
        fresh = self._pending == 0
        try:
            db.execute("BEGIN IMMEDIATE" if fresh else "SAVEPOINT batch")
            for summary, keep_existing in batch:
                if not (keep_existing and self._indexed(db, summary)):
                    self._insert(db, summary)
        except Exception as exc:
            if isinstance(exc, sqlite3.OperationalError) or not db.in_transaction:
                # The database cannot be written (disk full, I/O), or SQLite ended the
                # transaction itself (a damaged file): the batch and the transaction it
                # joined are queued again, for the next flush.
                self._give_up(batch)
                raise
            if fresh:
                db.execute("ROLLBACK")
            else:
                db.execute("ROLLBACK TO batch")
                db.execute("RELEASE batch")
            self._pks.clear()
            for summary, keep_existing in batch:
                try:
                    if not (keep_existing and self._indexed(db, summary)):
                        self._add_one(summary, keep_existing)
                except sqlite3.OperationalError:
                    raise  # queued again by _add_one, the rest with it
                except Exception:
                    log.exception("indexing %s failed; the start-up check will retry", summary.path)
        else:
            if not fresh:
                db.execute("RELEASE batch")
            self._pending += len(batch)
            self._uncommitted.extend(batch)
        if self._pending >= self.MAX_PENDING:
            self._commit_pending()

    @staticmethod
    def _indexed(db: sqlite3.Connection, summary: InstanceSummary) -> bool:
        uid = summary.values.get(0x00080018, "")
        return db.execute("SELECT 1 FROM instance WHERE sop_uid = ?", (uid,)).fetchone() is not None

    @property
    def pending(self) -> int:
        """Instances added or queued and not yet committed."""
        return self._pending + len(self._queued)

    @property
    def stranded(self) -> int:
        """Instances stored and waiting for an index that cannot be written (a full disk):
        a query or retrieve answered now may lack them."""
        return self.pending if self.write_failing else 0

    def flush(self) -> None:
        """Add what add_later() queued and commit what add_deferred() added. When SQLite
        cannot write (a full disk), the instances stay queued and the next flush tries again:
        queries go on with what is committed, and nothing is lost once it can write."""
        with self._lock:
            try:
                self._add_queued()
                self._commit_pending()
            except sqlite3.OperationalError as exc:
                if not self.write_failing:
                    log.warning(
                        "the index cannot be written now (%s): %d instances wait for the next "
                        "try; stores are refused (A700) until it can",
                        exc,
                        len(self._queued),
                    )
                self.write_failing = True
                return
            if self.write_failing:
                log.warning("the index can be written again: stores are accepted")
            self.write_failing = False

    def _add_queued_for_reading(self) -> None:
        """Before a read on the writer's connection: the queue goes in if SQLite can write;
        if it cannot (a full disk), the read goes on without it (it stays queued)."""
        try:
            self._add_queued()
        except sqlite3.OperationalError as exc:
            log.warning("the index cannot be written now (%s): read without the newest", exc)

    def _commit_pending(self) -> None:
        if self._pending and self._conn is not None:
            try:
                self._conn.execute("COMMIT")
            except sqlite3.OperationalError:
                self._give_up([])
                raise
        self._pending = 0
        if self._fresh:
            # Committed: the lookup connections see them now.
            with self._fresh_lock:
                for summary, _ in self._uncommitted:
                    uid = summary.values.get(0x00080018, "")
                    if self._fresh.get(uid) == summary.path:
                        del self._fresh[uid]
        self._uncommitted.clear()

    def _give_up(self, failed: Sequence[tuple[InstanceSummary, bool]]) -> None:
        """The open transaction failed (SQLITE_FULL, an I/O error: SQLite may have rolled it
        back already) while adding `failed`: end it, forget the primary keys of rows that may
        be gone, and queue its instances and `failed` again, first, so that the next flush
        adds them. Left as it was, every later COMMIT failed ("no transaction is active")
        and every query with it, until a restart (walk-through 4)."""
        self._uncommitted.extend(failed)
        conn = self._conn
        if conn is not None and conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        self._pks.clear()
        self._pending = 0
        again = [(functools.partial(_same, summary), keep) for summary, keep in self._uncommitted]
        self._queued.extendleft(reversed(again))
        self._uncommitted.clear()

    def add_many(self, summaries: Sequence[InstanceSummary]) -> None:
        """Insert several instances in one transaction (rebuild uses batches)."""
        with self._lock:
            self._add_queued()
            self._commit_pending()
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for summary in summaries:
                    self._insert(db, summary)
            except BaseException:
                db.execute("ROLLBACK")
                self._pks.clear()
                raise
            db.execute("COMMIT")

    def _insert(self, db: sqlite3.Connection, summary: InstanceSummary) -> None:
        values = summary.values
        row = {
            name: normalise_date(text.strip(" \x00")) if is_date else text.strip(" \x00")
            for name, tag, is_date in _ROW_COLUMNS
            for text in (values.get(tag, ""),)
        }
        for name in _PN_COLUMNS:
            row[f"{name}_alpha"] = normalise_person_name(row[name]).split("=")[0]
        # The entities of the last stores are remembered (most stores are series after series);
        # the memory is dropped whenever rows are deleted or a transaction rolls back.
        cache = self._pks
        # A study's patient row, for the patient an instance names: the study's owner, which
        # may be another (see _patient_and_study), so the pair is remembered together.
        named = f"{row['patient_id']}\x00{row['issuer']}"
        owner_key, study_key = (
            ("owner", row["study_uid"], named),
            ("study", row["study_uid"], named),
        )
        patient_pk = cache.get(owner_key)
        study_pk = cache.get(study_key)
        if patient_pk is None or study_pk is None:
            patient_pk, study_pk = self._patient_and_study(db, row)
        series_key = ("series", row["series_uid"], str(study_pk))
        series_pk = cache.get(series_key)
        if series_pk is None:
            found = db.execute(
                "SELECT pk FROM series WHERE series_uid = ? AND study_pk = ?",
                (row["series_uid"], study_pk),
            ).fetchone()
            if found:
                series_pk = found[0]
            else:
                series_pk = self._insert_row(db, Level.SERIES, row, {"study_pk": study_pk})
        if len(cache) > 10_000:
            cache.clear()
        cache[owner_key], cache[study_key], cache[series_key] = patient_pk, study_pk, series_pk

        # The same SOP instance stored again (overwrite), or another instance at this path:
        # the old row goes (the triggers keep the counters right), the new one comes.
        replaced = db.execute(
            "DELETE FROM instance WHERE sop_uid = ? OR path = ?", (row["sop_uid"], summary.path)
        ).rowcount
        if replaced:
            # A corrected instance (--on-duplicate overwrite, or a file changed on disk) means
            # its patient name or study description too: the rows above it take its values.
            # (Otherwise the first instance of a study sets them, as most archives do.)
            for level, pk in (
                (Level.PATIENT, patient_pk),
                (Level.STUDY, study_pk),
                (Level.SERIES, series_pk),
            ):
                sql, names = _update_sql(level)
                db.execute(sql, [*(row[name] for name in names), pk])
        file_columns = {
            "series_pk": series_pk,
            "transfer_syntax": summary.transfer_syntax,
            "path": summary.path,
            "size": summary.size,
            "mtime_ns": summary.mtime_ns,
        }
        self._insert_row(db, Level.IMAGE, row, file_columns)
        if replaced:
            self._prune(db)

    def _patient_and_study(self, db: sqlite3.Connection, row: Mapping[str, str]) -> tuple[int, int]:
        """The rows of the instance's patient and study, made when missing. A study belongs
        to the patient it was first stored under: a later instance naming another patient is
        filed there too, unless it replaces a stored instance (a correction, --on-duplicate
        overwrite): the study then moves to the patient it names. (The patient row was made
        before the study was looked at, and left empty when the study had another.)"""
        anonymous = {"anonymous_study": row["study_uid"] if not row["patient_id"] else ""}
        found = db.execute(
            "SELECT pk FROM patient WHERE patient_id = ? AND issuer = ? AND anonymous_study = ?",
            (row["patient_id"], row["issuer"], anonymous["anonymous_study"]),
        ).fetchone()
        patient_pk: int | None = found[0] if found else None
        study = db.execute(
            "SELECT pk, patient_pk, n_series, n_instances FROM study WHERE study_uid = ?",
            (row["study_uid"],),
        ).fetchone()
        if study is None:
            if patient_pk is None:
                patient_pk = self._insert_row(db, Level.PATIENT, row, anonymous)
            return patient_pk, self._insert_row(db, Level.STUDY, row, {"patient_pk": patient_pk})
        study_pk, owner, n_series, n_instances = study
        if patient_pk == owner:
            return owner, study_pk
        correction = db.execute(
            "SELECT 1 FROM instance WHERE sop_uid = ?", (row["sop_uid"],)
        ).fetchone()
        if correction is None:
            return owner, study_pk
        if patient_pk is None:
            patient_pk = self._insert_row(db, Level.PATIENT, row, anonymous)
        # The counters follow the study (the triggers only see inserts and deletes).
        move = "UPDATE patient SET n_studies = n_studies + ?, n_series = n_series + ?, "
        move += "n_instances = n_instances + ? WHERE pk = ?"
        db.execute(move, (-1, -n_series, -n_instances, owner))
        db.execute(move, (1, n_series, n_instances, patient_pk))
        db.execute("UPDATE study SET patient_pk = ? WHERE pk = ?", (patient_pk, study_pk))
        self._pks.clear()
        return patient_pk, study_pk

    @staticmethod
    def _insert_row(
        db: sqlite3.Connection, level: Level, row: Mapping[str, str], extra: Mapping[str, object]
    ) -> int:
        sql, names = _insert_sql(level, tuple(extra))
        cursor = db.execute(sql, [*(row[n] for n in names), *extra.values()])
        pk = cursor.lastrowid
        assert pk is not None
        return pk

    def remove(self, paths: Sequence[str]) -> int:
        """Remove the instances stored at `paths` (relative); returns how many were indexed."""
        with self._lock:
            self._add_queued()
            self._commit_pending()
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                removed = self._delete_paths(db, paths)
            except BaseException:
                db.execute("ROLLBACK")
                self._pks.clear()
                raise
            db.execute("COMMIT")
            return removed

    def _delete_paths(self, db: sqlite3.Connection, paths: Sequence[str]) -> int:
        removed = 0
        for start in range(0, len(paths), 500):
            chunk = list(paths[start : start + 500])
            marks = ", ".join("?" for _ in chunk)
            removed += db.execute(f"DELETE FROM instance WHERE path IN ({marks})", chunk).rowcount
        if removed:
            self._prune(db)
        return removed

    def _prune(self, db: sqlite3.Connection) -> None:
        """Entities left without instances go (the triggers update the counters above them)."""
        self._pks.clear()
        db.execute("DELETE FROM series WHERE n_instances <= 0")
        db.execute("DELETE FROM study WHERE n_instances <= 0")
        db.execute("DELETE FROM patient WHERE n_instances <= 0")

    # --- reading ---------------------------------------------------------------------------

    def files(self) -> dict[str, tuple[int, int]]:
        """Every indexed file: relative path -> (size, mtime_ns)."""
        with self._lock:
            self._add_queued_for_reading()
            rows = self._db.execute("SELECT path, size, mtime_ns FROM instance").fetchall()
        return {path: (size, mtime) for path, size, mtime in rows}

    def sop_instance_paths(self, uids: Sequence[str]) -> dict[str, str]:
        """SOP Instance UID -> relative path, for those of `uids` that are indexed."""
        result: dict[str, str] = {}
        with self._lock:
            self._add_queued_for_reading()
            for start in range(0, len(uids), 500):
                chunk = list(uids[start : start + 500])
                marks = ", ".join("?" for _ in chunk)
                for uid, path in self._db.execute(
                    f"SELECT sop_uid, path FROM instance WHERE sop_uid IN ({marks})", chunk
                ):
                    result[uid] = path
        return result

    def transfer_syntaxes(self, sop_class: str) -> dict[str, int]:
        """How many instances of `sop_class` are held in each transfer syntax (rows still
        queued for the next flush are left out: this guides a choice, it is not a count
        anyone is told)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT transfer_syntax, COUNT(*) FROM instance WHERE sop_class = ? "
                "GROUP BY transfer_syntax",
                (sop_class,),
            ).fetchall()
        return {ts: count for ts, count in rows}

    def counts(self) -> dict[str, int]:
        """Rows per table (patients, studies, series, instances)."""
        with self._lock:
            self._add_queued_for_reading()
            db = self._db
            return {
                table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                for table in ("patient", "study", "series", "instance")
            }

    def find(
        self, query: Query, reader: FileReader | None = None, *, batch: int = 256
    ) -> Iterator[list[Match]]:
        """The matches of `query`, in batches, from a connection of their own (so a caller
        may run each batch in a worker thread while the event loop goes on)."""
        column_tags = {c.tag for c in COLUMNS if c.level <= query.level}
        computed_tags = computed_for(query)
        needed = {k.tag for k in query.keys if not k.is_universal} | set(query.wanted)
        in_files = {tag for tag in needed if tag not in column_tags and tag not in computed_tags}
        # The patient's own attributes (Other Patient IDs, ...) come from the patient's first
        # instance below the patient level too, as the indexed ones do: taken from each
        # study's, a search by an alias ID found one of the patient's studies (walkthrough 7b).
        of_patient = frozenset(
            tag for tag in in_files if query.level > Level.PATIENT and is_patient_attribute(tag)
        )
        from_file = frozenset(in_files - of_patient)
        file_keys = [k for k in query.keys if k.tag in in_files and not k.is_universal]
        read: dict[str, dict[int, Values | Items]] = {}  # patient files, read once a query
        sql, params = _select(query, patient_file=bool(of_patient))
        keys, pairs = _split_pairs(query)
        self.flush()  # rows added with add_deferred() must be visible to this connection
        # mode=rw: never create the file. One removed while serve runs was made again, empty,
        # by each query, and every C-FIND failed with "no such table" and a traceback.
        uri = f"{Path(os.path.abspath(self.path)).as_uri()}?mode=rw"
        try:
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
        except sqlite3.DatabaseError as exc:
            raise IndexUnusable(_gone(self.path, exc)) from exc
        try:
            conn.execute("PRAGMA query_only = ON")
            try:
                cursor = conn.execute(sql, params)
            except sqlite3.DatabaseError as exc:
                raise IndexUnusable(_gone(self.path, exc)) from exc
            names = [d[0] for d in cursor.description]
            while True:
                rows = cursor.fetchmany(batch)
                if not rows:
                    return
                out: list[Match] = []
                for row in rows:
                    record, path, patient_path = _record(names, row)
                    try:
                        if from_file and reader is not None and path:
                            record.update(reader(path, from_file))
                        if of_patient and reader is not None and patient_path:
                            if patient_path not in read:
                                read[patient_path] = dict(reader(patient_path, of_patient))
                            record.update(read[patient_path])
                    except OSError as exc:
                        log.warning("cannot read %s for the query: %s", path, exc)
                        if file_keys:
                            continue
                    if not match_record(keys, record):
                        continue
                    if pairs and not all(_pair_matches(p, record) for p in pairs):
                        continue
                    out.append(Match(record, path))
                if out:
                    yield out
        finally:
            conn.close()


def computed_for(query: Query) -> set[int]:
    """The computed attributes the index answers for this query: those of its level (and, in
    the study root model, the patient's at study level) that are asked for."""
    result = set()
    for tag, computed in COMPUTED_BY_TAG.items():
        level = computed.level
        if query.model is Model.STUDY_ROOT and level is Level.PATIENT:
            level = Level.STUDY
        if level is query.level and (tag in query.wanted or _keyed(query, tag)):
            result.add(tag)
    return result


def _keyed(query: Query, tag: int) -> bool:
    return any(k.tag == tag and not k.is_universal for k in query.keys)


def _split_pairs(query: Query) -> tuple[list[Key], list[tuple[Key, Key]]]:
    keys = list(query.keys)
    if not query.combined_datetime:
        return keys, []
    by_tag = {k.tag: k for k in keys}
    pairs: list[tuple[Key, Key]] = []
    for date_tag, time_tag in DATE_TIME_PAIRS:
        date, time = by_tag.get(date_tag), by_tag.get(time_tag)
        if date is None or time is None or date.is_universal or time.is_universal:
            continue
        pairs.append((date, time))
        keys.remove(date)
        keys.remove(time)
    return keys, pairs


def _pair_matches(pair: tuple[Key, Key], record: Mapping[int, Values | Items]) -> bool:
    date_key, time_key = pair
    date = record.get(date_key.tag, ())
    time = record.get(time_key.tag, ())
    return match_date_time(
        date_key.value,
        time_key.value,
        date if isinstance(date, tuple) else (),
        time if isinstance(time, tuple) else (),
    )


def _gone(path: Path, exc: BaseException) -> str:
    return (
        f"the index {path} was removed or damaged while serve runs ({exc}): "
        "restart serve to rebuild it from the files"
    )


def _same(summary: InstanceSummary) -> InstanceSummary:
    return summary


# --- SQL for a query ---------------------------------------------------------------------------

_REPRESENTATIVE: Final = {
    Level.IMAGE: "i.path",
    Level.SERIES: "(SELECT path FROM instance WHERE series_pk = se.pk LIMIT 1)",
    Level.STUDY: (
        "(SELECT i2.path FROM series s2 JOIN instance i2 ON i2.series_pk = s2.pk "
        "WHERE s2.study_pk = st.pk LIMIT 1)"
    ),
    Level.PATIENT: (
        "(SELECT i2.path FROM study t2 JOIN series s2 ON s2.study_pk = t2.pk "
        "JOIN instance i2 ON i2.series_pk = s2.pk WHERE t2.patient_pk = p.pk LIMIT 1)"
    ),
}
_COMPUTED_SQL: Final = {
    0x00201200: "p.n_studies",
    0x00201202: "p.n_series",
    0x00201204: "p.n_instances",
    0x00201206: "st.n_series",
    0x00201208: "st.n_instances",
    0x00201209: "se.n_instances",
    0x00080061: (
        "(SELECT group_concat(modality, '\\') FROM (SELECT DISTINCT modality FROM series "
        "WHERE study_pk = st.pk AND modality != '' ORDER BY modality))"
    ),
    0x00080062: (
        "(SELECT group_concat(sop_class, '\\') FROM (SELECT sop_class FROM study_sop_class "
        "WHERE study_pk = st.pk ORDER BY sop_class))"
    ),
}


_PATIENT_PATH: Final = "patient_path"


def _select(query: Query, *, patient_file: bool = False) -> tuple[str, list[object]]:
    level = query.level
    joins = ["patient p"]
    if level >= Level.STUDY:
        joins.append("JOIN study st ON st.patient_pk = p.pk")
    if level >= Level.SERIES:
        joins.append("JOIN series se ON se.study_pk = st.pk")
    if level >= Level.IMAGE:
        joins.append("JOIN instance i ON i.series_pk = se.pk")
    selected = [
        f"{_TABLES[c.level][1]}.{c.name} AS c{c.tag:08X}" for c in COLUMNS if c.level <= level
    ]
    for tag in sorted(computed_for(query)):
        selected.append(f"{_COMPUTED_SQL[tag]} AS c{tag:08X}")
    selected.append(f"{_REPRESENTATIVE[level]} AS path")
    if patient_file:
        selected.append(f"{_REPRESENTATIVE[Level.PATIENT]} AS {_PATIENT_PATH}")
    where: list[str] = []
    params: list[object] = []
    for key in query.keys:
        column = COLUMN_BY_TAG.get(key.tag)
        if column is None or column.level > level or key.is_universal:
            continue
        if query.combined_datetime and key.vr in ("DA", "TM"):
            continue  # combined matching: checked as a pair, in Python
        condition = _prefilter(key, column)
        if condition is not None:
            where.append(condition[0])
            params.extend(condition[1])
    pk = f"{_TABLES[level][1]}.pk"
    sql = f"SELECT {', '.join(selected)} FROM {' '.join(joins)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + f" ORDER BY {pk}", params


def _prefilter(key: Key, column: Column) -> tuple[str, list[object]] | None:
    """A SQL condition every match satisfies (a superset; Python decides exactly)."""
    ref = f"{_TABLES[column.level][1]}.{column.name}"
    value = key.value.strip(" \x00")
    if value == '""':
        return f"{ref} = ''", []
    if key.vr == "UI":
        uids = [u.strip(" \x00") for u in value.split("\\")]
        return f"{ref} IN ({', '.join('?' for _ in uids)})", list(uids)
    if "\\" in value:
        return None  # any of several values (matching.match_value): decided in Python
    if key.vr == "DA":
        if "-" in value:
            low, high = parse_range("DA", value)
            parts: list[str] = []
            params: list[object] = []
            if low is not None:
                parts.append(f"{ref} >= ?")
                params.append(low)
            if high is not None:
                parts.append(f"{ref} <= ?")
                params.append(high)
            parts.append(f"{ref} != ''")
            return " AND ".join(parts), params
        return f"{ref} = ?", [normalise_date(value)]
    if key.vr in RANGE_VRS or key.vr in ("IS", "DS"):
        return None
    if key.vr == "PN":
        normalised = normalise_person_name(value)
        if "=" in normalised or not normalised.isascii():
            return None
        if "*" in normalised or "?" in normalised:
            return f"{ref}_alpha GLOB ?", [wildcard_glob(normalised)]
        return f"{ref}_alpha = ?", [normalised]
    if key.vr in WILDCARD_VRS and ("*" in value or "?" in value):
        return f"{ref} GLOB ?", [wildcard_glob(value)]
    return f"{ref} = ?", [value]


def _record(
    names: Sequence[str], row: Sequence[object]
) -> tuple[dict[int, Values | Items], str, str]:
    """A row as (attribute values by tag, representative file, the patient's first file)."""
    record: dict[int, Values | Items] = {}
    path = patient_path = ""
    for name, value in zip(names, row, strict=True):
        if name == "path":
            path = str(value or "")
            continue
        if name == _PATIENT_PATH:
            patient_path = str(value or "")
            continue
        tag = int(name[1:], 16)
        if value is None or value == "":
            record[tag] = ()
        elif isinstance(value, int):
            record[tag] = (str(value),)
        else:
            record[tag] = tuple(str(value).split("\\"))
    return record, path, patient_path
