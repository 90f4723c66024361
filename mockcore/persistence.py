"""`mockcore serve --state FILE`: the whole fleet kept in an embedded SQLite file, written through on every change.

The file
    An SQLite database that says it is mockcore's: `PRAGMA application_id` is APPLICATION_ID and
    `PRAGMA user_version` is FORMAT_VERSION; table `meta` repeats the format and version and holds the fingerprint
    of the fleet configuration the file was written for; table `state` holds one row: the fleet as the JSON
    document of `Fleet.dump()` (the same document `GET /_mock/state` answers and `PUT /_mock/state` takes), the
    wall time it was saved at and a save counter. `sqlite3 FILE "select document from state"` prints it.

Durability: WAL with `synchronous=FULL`
    `save` commits the whole document in one transaction before the answer to the request leaves (the store is
    told of every committed change by the fleet, see `Fleet.subscribe`), so a request answered 2xx is on disk. In
    WAL mode a commit is one append to `FILE-wal` and one fsync; a rollback journal costs a journal write, its fsync,
    the database write, its fsync and the journal's deletion on every commit, for the same guarantee. A `kill -9`
    cannot undo a commit in either mode (the writes are in the kernel by the time COMMIT returns); FULL
    additionally fsyncs the WAL on each commit, so a commit also survives a power cut or a kernel crash (NORMAL
    would only guarantee that for checkpoints). A kill in the middle of a commit leaves frames without a commit
    record, which SQLite ignores: the file holds the previous state, whole.

The journal files
    While a server runs, `FILE-wal` and `FILE-shm` sit beside FILE. After a `kill -9` they remain, and `FILE-wal`
    may hold the last committed changes: keep the three together (copy, move or delete all of them, never FILE
    alone). The next start reads the WAL back. A clean stop (SIGINT, SIGTERM) checkpoints the WAL into FILE and
    removes both, leaving FILE self-contained. WAL needs shared memory between the processes using the file, so
    FILE must be on a local file system (not NFS).

One server per file
    `open` takes an exclusive, non-blocking `flock` on FILE and holds it until `close`, so a second
    `mockcore serve --state FILE` is refused at once with a clear message instead of two servers overwriting each
    other's fleet. `flock` locks are separate from the POSIX record locks SQLite takes on the same file (on a local
    file system), and the locked descriptor stays open until SQLite's own connection is closed: closing another
    descriptor of the file would drop SQLite's POSIX locks. The lock is released by the kernel when the process
    dies, so a killed server does not leave the file locked. Readers that do not take the lock (the `sqlite3`
    shell) can still look at a running server's file: WAL lets them read while the server writes.

Opening an existing file never changes it before every check has passed: the checks read through a read-only
connection (`immutable` when no `FILE-wal` exists, so not even empty journal files are created), and only then is
the fleet loaded and the read-write connection opened. A file that is not SQLite, an SQLite database of another
program, a damaged file, a newer format, a file written for another fleet configuration or an invalid fleet
document is refused with a StateFileError saying which, and left as it was.

A file that holds nothing — zero bytes (`mktemp`, `touch`), or an SQLite database without any table that is not
marked as another program's (what a server killed during its very first start leaves) — is taken as a new state
file: there is nothing in it to lose.

The clock
    A frozen clock comes back frozen at its moment. A running clock keeps its offset from wall time: the time the
    server was down passes for the fleet too, as it would for a real Core (licences keep expiring while it is off).

Not kept (as for `PUT /_mock/state`): fault rules, the request journal and the progression settings. The fleet
calls `save` after every change it commits (licences, slots, accounts, scans, the clock, reset and load), under its
lock, before the change is answered.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import stat
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mockcore import __version__
from mockcore.config import FleetConfig
from mockcore.fingerprint import fingerprint, fingerprint_differences
from mockcore.fleet import Fleet, StoreError
from mockcore.snapshot import InvalidSnapshot, parse_datetime

APPLICATION_ID = 0x4D4B4352  # "MKCR", in the SQLite header at offset 68
FORMAT_NAME = "mockcore-state"
FORMAT_VERSION = 1
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT = 5.0  # seconds SQLite waits on another connection (a `sqlite3` shell reading the file)

_SCHEMA = (
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE state ("
    " id INTEGER PRIMARY KEY CHECK (id = 1),"
    " generation INTEGER NOT NULL,"  # how many saves the file has seen
    " saved_at TEXT NOT NULL,"  # wall time (UTC) of the save: the running clock's offset is `now` minus this
    " document TEXT NOT NULL"  # Fleet.dump() as JSON
    ")",
)


class StateFileError(StoreError):
    """A state file mockcore refuses or cannot use. The message is for the user and starts with the file's name."""


def _short(error: object, limit: int = 300) -> str:
    """An error's text on one line and not too long (SQLite's may quote a whole column)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class _Stored:
    document: Any
    saved_at: datetime


def _read_only_uri(path: Path, immutable: bool) -> str:
    return path.resolve().as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")


class StateStore:
    """The fleet's state file, open and locked. `StateStore.open(path, fleet)` opens it (or creates it),
    `save(fleet)` writes the fleet through, `close()` writes a last time and lets go of the file.

    Thread-safe: `save` may be called from any thread. The document is read (under the fleet's lock) before the
    store's own lock is taken, and a save never replaces a later revision with an earlier one."""

    def __init__(self, path: Path, fleet: Fleet, lock_fd: int, connection: sqlite3.Connection) -> None:
        self.path = path
        self._fleet = fleet
        self._lock_fd: int | None = lock_fd
        self._connection: sqlite3.Connection | None = connection
        self._mutex = threading.Lock()
        self._saved = -1  # the fleet revision the file holds, to skip saves that change nothing

    # Opening

    @classmethod
    def open(cls, path: Path | str, fleet: Fleet) -> StateStore:
        """Open FILE for `fleet`: load the fleet from it, or create it holding the fleet as it is now.

        Raises StateFileError (and leaves both the file and the fleet as they were) when the file is not
        mockcore's, is damaged, is of a newer format, was written for another fleet configuration, holds an
        invalid fleet, or is in use by another process."""
        path = Path(path)
        lock_fd, created = cls._lock(path)
        try:
            stored = cls._inspect(path, lock_fd, fleet.config)
            return cls._open_locked(path, fleet, lock_fd, stored)
        except BaseException:
            os.close(lock_fd)
            if created:
                for leftover in (path, *_sidecars(path)):
                    with contextlib.suppress(OSError):
                        leftover.unlink()
            raise

    @staticmethod
    def _lock(path: Path) -> tuple[int, bool]:
        """An open descriptor of FILE (created empty when missing) with an exclusive flock on it."""
        created = False
        try:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
                created = True
            except FileExistsError:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)  # a FIFO must not block the start
        except OSError as exc:
            raise StateFileError(
                f"{path}: cannot open it for reading and writing: {_short(exc.strerror or exc)}"
            ) from exc
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise StateFileError(f"{path}: not a regular file")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            raise StateFileError(
                f"{path}: in use by another process (is another `mockcore serve --state {path}` running?)"
            ) from exc
        return fd, created

    @classmethod
    def _inspect(cls, path: Path, lock_fd: int, config: FleetConfig) -> _Stored | None:
        """Every check, read-only: the stored fleet, or None when the file holds nothing yet."""
        size = os.fstat(lock_fd).st_size
        if size > 0:
            header = os.pread(lock_fd, 100, 0)
            if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
                raise StateFileError(
                    f"{path}: not a mockcore state file (not an SQLite database). mockcore does not overwrite it: "
                    "name another file, or remove this one to start afresh."
                )
        wal = Path(f"{path}-wal")
        try:
            reader = sqlite3.connect(_read_only_uri(path, immutable=not wal.exists()), uri=True, timeout=BUSY_TIMEOUT)
        except sqlite3.Error as exc:
            raise StateFileError(f"{path}: cannot be read as an SQLite database: {_short(exc)}") from exc
        try:
            return cls._inspect_database(path, reader, config)
        except sqlite3.Error as exc:
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_READONLY_ROLLBACK":
                raise StateFileError(
                    f"{path}: an SQLite database with an unfinished transaction in {path}-journal, left by a "
                    "program that stopped while writing it; not a mockcore state file (mockcore writes through "
                    "a write-ahead log). mockcore does not touch it: name another file."
                ) from exc
            raise StateFileError(f"{path}: damaged, or not an SQLite database: {_short(exc)}") from exc
        finally:
            reader.close()

    @staticmethod
    def _inspect_database(path: Path, db: sqlite3.Connection, config: FleetConfig) -> _Stored | None:
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        user_version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        if application_id == 0 and user_version == 0 and not tables:
            return None  # an empty database: nothing to lose
        if application_id != APPLICATION_ID:
            raise StateFileError(
                f"{path}: an SQLite database, but not a mockcore state file (application_id {application_id:#x}, "
                f"mockcore's is {APPLICATION_ID:#x}). mockcore does not overwrite it: name another file."
            )
        problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise StateFileError(
                f"{path}: the mockcore state file is damaged; SQLite's integrity check says: "
                + _short("; ".join(map(str, problems[:5])))
            )
        if not {"meta", "state"} <= tables:
            raise StateFileError(f"{path}: the mockcore state file is damaged: its tables are missing")
        meta = dict(db.execute("SELECT name, value FROM meta").fetchall())
        version = str(meta.get("version", ""))
        if meta.get("format") != FORMAT_NAME or not version.isdigit():
            raise StateFileError(f"{path}: the mockcore state file is damaged: its format is not recorded")
        if int(version) != FORMAT_VERSION or user_version != FORMAT_VERSION:
            newer = int(version) > FORMAT_VERSION
            raise StateFileError(
                f"{path}: a mockcore state file of format {version}, written by "
                f"{'a newer' if newer else 'an older'} mockcore ({meta.get('mockcore', 'unknown version')}); "
                f"this mockcore ({__version__}) reads format {FORMAT_VERSION}."
            )
        try:
            stored_fingerprint = json.loads(meta.get("fingerprint", ""))
        except (TypeError, ValueError, RecursionError):
            stored_fingerprint = None
        if not isinstance(stored_fingerprint, dict):
            raise StateFileError(f"{path}: the mockcore state file is damaged: its configuration is not recorded")
        differences = fingerprint_differences(stored_fingerprint, fingerprint(config))
        if differences:
            raise StateFileError(
                f"{path}: written for another fleet configuration: "
                + "; ".join(differences)
                + ". Start mockcore with the options the file was written with, or name another --state file."
            )
        rows = db.execute("SELECT saved_at, CAST(document AS BLOB) FROM state").fetchall()
        if len(rows) != 1:
            raise StateFileError(f"{path}: the mockcore state file is damaged: it holds {len(rows)} fleet states")
        saved_at, raw = rows[0]
        try:
            document = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        except (TypeError, ValueError, RecursionError) as exc:
            raise StateFileError(
                f"{path}: holds an invalid fleet state: the document is not UTF-8 JSON ({_short(exc)})"
            ) from exc
        try:
            moment = parse_datetime(saved_at, "saved_at")
        except InvalidSnapshot as exc:
            raise StateFileError(f"{path}: the mockcore state file is damaged: {exc}") from exc
        return _Stored(document, moment)

    @classmethod
    def _open_locked(cls, path: Path, fleet: Fleet, lock_fd: int, stored: _Stored | None) -> StateStore:
        before = None
        if stored is not None:
            before = fleet.dump()
            try:
                fleet.load(stored.document)
            except InvalidSnapshot as exc:
                raise StateFileError(f"{path}: holds an invalid fleet state: {_short(exc)}") from exc
            if not fleet.clock().frozen:
                # Keep the running clock's offset from wall time: the downtime passes for the fleet too
                # (unless that would take it past the end of the calendar: then it resumes where it was).
                with contextlib.suppress(ValueError, OverflowError):
                    fleet.advance_clock(datetime.now(UTC) - stored.saved_at)
        try:
            connection = cls._connect(path)
        except BaseException:
            if before is not None:
                fleet.load(before)
            raise
        store = cls(path, fleet, lock_fd, connection)
        try:
            if stored is None:
                store._create(fleet)
            else:
                store._saved = fleet.revision
        except BaseException:
            connection.close()
            raise
        fleet.subscribe(store.save)
        return store

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT)
        except sqlite3.Error as exc:
            raise StateFileError(f"{path}: cannot open it for writing: {_short(exc)}") from exc
        try:
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StateFileError(f"{path}: SQLite cannot use a write-ahead log here (journal mode {mode})")
            connection.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            connection.close()
            raise StateFileError(f"{path}: cannot set it up for writing: {_short(exc)}") from exc
        except BaseException:
            connection.close()
            raise
        return connection

    def _create(self, fleet: Fleet) -> None:
        """Identify the file and save the fleet in one transaction: a kill leaves all of it, or a database
        without tables (switching to WAL writes the header page first), which the next start takes as new."""
        assert self._connection is not None
        meta = {
            "format": FORMAT_NAME,
            "version": str(FORMAT_VERSION),
            "mockcore": __version__,
            "created": datetime.now(UTC).isoformat(),
            "fingerprint": json.dumps(fingerprint(fleet.config)),
        }
        revision, document, wall = self._document(fleet)
        with self._mutex:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
                self._connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
                self._connection.execute(f"PRAGMA user_version={FORMAT_VERSION}")
                for statement in _SCHEMA:
                    self._connection.execute(statement)
                self._connection.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", meta.items())
                self._connection.execute(
                    "INSERT INTO state (id, generation, saved_at, document) VALUES (1, 1, ?, ?)",
                    (wall.isoformat(), document),
                )
                self._connection.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StateFileError(f"{self.path}: cannot write it: {_short(exc)}") from exc
            self._saved = revision
        _fsync_directory(self.path)  # a new file's name is durable too, not only its contents

    # Saving

    @staticmethod
    def _document(fleet: Fleet) -> tuple[int, str, datetime]:
        """The fleet's revision and document as JSON, read together, and the wall time of the reading."""
        wall = datetime.now(UTC)
        revision, document = fleet.committed()
        return revision, json.dumps(document, separators=(",", ":")), wall

    def save(self, fleet: Fleet | None = None) -> None:
        """Write the fleet in one transaction, unless the file holds its latest revision already. The fleet calls
        it under its lock after every change it commits, before the change is answered (`Fleet.subscribe`)."""
        revision, document, wall = self._document(fleet or self._fleet)
        with self._mutex:
            self._write(revision, document, wall)

    def _write(self, revision: int, document: str, wall: datetime) -> None:
        if self._connection is None:
            raise StateFileError(f"{self.path}: the state file is closed")
        if revision <= self._saved:
            return
        try:
            self._connection.execute("BEGIN IMMEDIATE")
            self._connection.execute(
                "UPDATE state SET generation = generation + 1, saved_at = ?, document = ? WHERE id = 1",
                (wall.isoformat(), document),
            )
            self._connection.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StateFileError(f"{self.path}: cannot save the fleet: {_short(exc)}") from exc
        self._saved = revision

    def _rollback(self) -> None:
        if self._connection is not None and self._connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._connection.execute("ROLLBACK")

    # Closing

    def close(self) -> None:
        """Save a last time, checkpoint the WAL into FILE (removing FILE-wal and FILE-shm), let go of the lock.
        Idempotent. Raises StateFileError if the last save fails; the file is closed and unlocked anyway."""
        revision, document = self._fleet.unsubscribe(self.save)
        last = (revision, json.dumps(document, separators=(",", ":")), datetime.now(UTC))
        with self._mutex:
            if self._connection is None:
                return
            try:
                self._write(*last)
            finally:
                connection, self._connection = self._connection, None
                lock_fd, self._lock_fd = self._lock_fd, None
                connection.close()  # SQLite's last connection: checkpoint and remove the WAL files
                if lock_fd is not None:
                    os.close(lock_fd)  # only now: closing it earlier would drop SQLite's own POSIX locks

    @property
    def closed(self) -> bool:
        return self._connection is None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fsync_directory(path: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems cannot open or sync a directory
        fd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sidecars(path: Path) -> tuple[Path, ...]:
    return tuple(Path(f"{path}{suffix}") for suffix in ("-wal", "-shm", "-journal"))
