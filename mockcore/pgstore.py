"""`mockcore serve --state postgresql://...`: fleets kept in PostgreSQL (psycopg 3), shared by several processes.

The table
    `mockcore_fleets`, one row per fleet, keyed by a fleet id (`default` for `mockcore serve`; a tenant's id for a
    tenant server): `version` (bumped by every write), `fingerprint` (the configuration the fleet was written for,
    mockcore.fingerprint), `saved_at` (wall time of the write) and `document`, the fleet as `Fleet.dump()` answers
    it (JSONB: `select document from mockcore_fleets where id = 'default'` prints it). Created when missing.

The transaction model
    Every operation of a kept fleet, reads included, is one transaction (`Fleet.keep`, `FleetKeeper`):
    `SELECT ... FOR UPDATE` locks the fleet's row, so the operations of every process on that fleet run one after
    the other; the document comes back only when its version moved since this process last read or wrote it (then
    the process takes it: it sees what another process committed before deciding); the operation decides; if it
    changed the fleet, `UPDATE` writes the new document; `COMMIT`; only then does the operation answer. A commit
    that fails (PostgreSQL gone) leaves the fleet in memory as it was before the operation, and the request
    answers a 5xx.

Durability
    PostgreSQL's: an answered change is committed, so it survives a crash of any mockcore process and, with the
    server's default `synchronous_commit = on` and `fsync = on`, a crash of PostgreSQL's machine.

Not kept (as for the SQLite file and `PUT /_mock/state`): fault rules, the request journal and the progression
settings; they stay per process.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from mockcore.fingerprint import fingerprint, fingerprint_differences
from mockcore.fleet import Fleet, Stored, StoreError
from mockcore.snapshot import InvalidSnapshot

TABLE = "mockcore_fleets"
DEFAULT_FLEET = "default"
URL_SCHEMES = ("postgresql://", "postgres://")
CONNECT_TIMEOUT = 5  # seconds: opening a connection, and waiting for one of the pool's
POOL_SIZE = 4
# What psycopg's messages may say of where the server is: kept out of the messages that reach HTTP clients.
_WHERE = (
    (
        re.compile(r'connection to server (?:at "[^"]*"(?: \([^)]*\))?, port \d+|on socket "[^"]*")'),
        "connection to the server",
    ),
    (re.compile(r'database "[^"]*"'), "the database"),
)

log = logging.getLogger("mockcore.pgstore")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    fingerprint JSONB NOT NULL,
    saved_at TIMESTAMPTZ NOT NULL,
    document JSONB NOT NULL
)"""


class PostgresError(StoreError):
    """PostgreSQL refused or cannot be reached; the message is for the user."""


class UnknownFleet(PostgresError):
    """No fleet of that id is stored."""


def is_postgres_url(text: str) -> bool:
    return text.startswith(URL_SCHEMES)


def _short(error: object, limit: int = 300) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _public(error: object) -> str:
    """`_short(error)` without the server's host, port or database name."""
    text = _short(error)
    for pattern, replacement in _WHERE:
        text = pattern.sub(replacement, text)
    return text


def _describe(url: str) -> str:
    """The URL without its password, for messages."""
    with contextlib.suppress(Exception):
        info = psycopg.conninfo.conninfo_to_dict(url)
        return f"PostgreSQL at {info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"
    return "PostgreSQL"


@dataclass
class Transaction:
    """One open transaction on one fleet's row, locked. `document` is None when the caller knew this version
    already. `write` a new document, then `commit` (raises PostgresError, and then nothing is stored) or
    `rollback`."""

    fleet_id: str
    version: int
    saved_at: datetime
    fingerprint: dict[str, Any]
    document: dict[str, Any] | None
    _store: FleetStore
    _connection: psycopg.Connection[Any] | None
    _new: dict[str, Any] | None = field(default=None, repr=False)

    def write(self, document: dict[str, Any]) -> None:
        self._new = document

    def commit(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            raise PostgresError(f"fleet {self.fleet_id!r}: the transaction is over")
        try:
            if self._new is not None:
                now = datetime.now(UTC)
                row = connection.execute(
                    f"UPDATE {TABLE} SET version = version + 1, saved_at = %s, document = %s WHERE id = %s"
                    " RETURNING version",
                    (now, Jsonb(self._new), self.fleet_id),
                ).fetchone()
                assert row is not None  # the row is locked: nobody deleted it meanwhile
                self.version, self.saved_at, self.document, self._new = int(row[0]), now, self._new, None
            connection.commit()
        except psycopg.Error as exc:
            with contextlib.suppress(psycopg.Error):
                connection.rollback()
            raise self._store.error(f"fleet {self.fleet_id!r}: cannot save the fleet", exc) from exc
        finally:
            self._store.release(connection)

    def rollback(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                connection.rollback()
            self._store.release(connection)


class FleetStore:
    """Fleets in PostgreSQL, by id. `FleetStore.open(url)`; `create(fleet_id, document, fingerprint)`;
    `transaction(fleet_id, known=None)` (a context manager: the row locked, committed at the end, rolled back on an
    exception); `delete(fleet_id)`; `fleet_ids()`; `close()`. Thread-safe: a pool of connections."""

    def __init__(self, url: str, pool: ConnectionPool[Any]) -> None:
        self.url = url
        self._pool = pool

    @classmethod
    def open(cls, url: str, *, pool_size: int = POOL_SIZE, timeout: float = CONNECT_TIMEOUT) -> FleetStore:
        """Connect and create the table if it is missing; PostgresError when the server cannot be used."""
        try:
            pool: ConnectionPool[Any] = ConnectionPool(
                url,
                min_size=1,
                max_size=pool_size,
                timeout=timeout,
                check=ConnectionPool.check_connection,  # a connection broken by a restart is replaced, not used
                kwargs={"connect_timeout": int(timeout)},
                open=False,
            )
        except psycopg.Error as exc:  # a malformed URL (start-up: the message may name the server)
            raise PostgresError(f"--state {_describe(url)}: {_short(exc)}") from exc
        store = cls(url, pool)
        try:  # one plain connection first: its error says why the server cannot be used
            with psycopg.connect(url, connect_timeout=int(timeout)) as connection:
                connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (TABLE,))  # one creator at a time
                connection.execute(_SCHEMA)  # type: ignore[arg-type]
            pool.open(wait=True, timeout=timeout)
        except (psycopg.Error, PoolTimeout) as exc:
            pool.close()
            raise store.error("cannot use it", exc, address=True) from exc
        return store

    def error(self, what: str, exc: BaseException, *, address: bool = False) -> PostgresError:
        """The error to raise for `exc`. Its message may reach an HTTP client (a 503), so it names no host, port
        or database (the log says them); `address=True` for start-up errors, which only the operator sees."""
        if address:
            return PostgresError(f"{_describe(self.url)}: {what}: {_short(exc)}")
        log.warning("%s: %s: %s", _describe(self.url), what, _short(exc))
        return PostgresError(f"PostgreSQL: {what}: {_public(exc)}")

    def release(self, connection: psycopg.Connection[Any]) -> None:
        self._pool.putconn(connection)

    def create(self, fleet_id: str, document: dict[str, Any], fleet_fingerprint: dict[str, Any]) -> bool:
        """Store a new fleet; False (and nothing written) when one of that id is stored already."""
        try:
            with self._pool.connection() as connection:
                created = connection.execute(
                    f"INSERT INTO {TABLE} (id, version, fingerprint, saved_at, document) VALUES (%s, 1, %s, %s, %s)"
                    " ON CONFLICT (id) DO NOTHING",
                    (fleet_id, Jsonb(fleet_fingerprint), datetime.now(UTC), Jsonb(document)),
                ).rowcount
        except (psycopg.Error, PoolTimeout) as exc:
            raise self.error(f"fleet {fleet_id!r}: cannot create it", exc) from exc
        return created == 1

    def begin(self, fleet_id: str, known: int | None = None) -> Transaction:
        """Open a transaction on a fleet's row, locked until `commit` or `rollback`; UnknownFleet if none."""
        try:
            connection = self._pool.getconn()
        except PoolTimeout as exc:
            raise self.error(f"fleet {fleet_id!r}: no connection", exc) from exc
        try:
            row = connection.execute(
                f"SELECT version, saved_at, fingerprint, CASE WHEN version = %s THEN NULL ELSE document END"
                f" FROM {TABLE} WHERE id = %s FOR UPDATE",
                (known, fleet_id),
            ).fetchone()
        except psycopg.Error as exc:
            with contextlib.suppress(psycopg.Error):
                connection.rollback()
            self.release(connection)
            raise self.error(f"fleet {fleet_id!r}: cannot read it", exc) from exc
        if row is None:
            connection.rollback()
            self.release(connection)
            raise UnknownFleet(f"PostgreSQL: no fleet {fleet_id!r} is stored")
        version, saved_at, stored_fingerprint, document = row
        return Transaction(fleet_id, int(version), saved_at, stored_fingerprint, document, self, connection)

    @contextlib.contextmanager
    def transaction(self, fleet_id: str, known: int | None = None) -> Iterator[Transaction]:
        transaction = self.begin(fleet_id, known)
        try:
            yield transaction
        except BaseException:
            transaction.rollback()
            raise
        transaction.commit()

    def delete(self, fleet_id: str) -> bool:
        try:
            with self._pool.connection() as connection:
                return connection.execute(f"DELETE FROM {TABLE} WHERE id = %s", (fleet_id,)).rowcount == 1
        except (psycopg.Error, PoolTimeout) as exc:
            raise self.error(f"fleet {fleet_id!r}: cannot delete it", exc) from exc

    def fleet_ids(self) -> list[str]:
        try:
            with self._pool.connection() as connection:
                return [row[0] for row in connection.execute(f"SELECT id FROM {TABLE} ORDER BY id")]
        except (psycopg.Error, PoolTimeout) as exc:
            raise self.error("cannot list the fleets", exc) from exc

    def close(self) -> None:
        self._pool.close()

    def __enter__(self) -> FleetStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FleetKeeper:
    """One fleet kept in a FleetStore under an id: what `Fleet.keep` takes (mockcore.fleet.Keeper). The fleet
    calls it under its own lock, one transaction at a time."""

    def __init__(self, store: FleetStore, fleet_id: str) -> None:
        self.store = store
        self.fleet_id = fleet_id
        self._known: int | None = None  # the version the fleet in memory holds
        self._open: Transaction | None = None

    def begin(self) -> Stored | None:
        self.abandon()
        self._open = self.store.begin(self.fleet_id, self._known)
        if self._open.document is None:
            return None
        self._known = None  # until the fleet has taken it: a document it refuses is offered again
        return Stored(self._open.document, self._open.saved_at)

    def write(self, document: dict[str, Any]) -> None:
        assert self._open is not None
        self._open.write(document)

    def finish(self) -> None:
        transaction, self._open = self._open, None
        assert transaction is not None
        transaction.commit()
        self._known = transaction.version

    def abandon(self) -> None:
        transaction, self._open = self._open, None
        if transaction is not None:
            transaction.rollback()


@dataclass
class KeptFleet:
    """A fleet kept in PostgreSQL for `mockcore serve`: `close()` lets go of the store (every answered change is
    committed already)."""

    fleet: Fleet
    store: FleetStore
    keeper: FleetKeeper

    def close(self) -> None:
        self.fleet.keep(None)
        self.store.close()

    def __enter__(self) -> KeptFleet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def keep_fleet(store: FleetStore, fleet: Fleet, fleet_id: str = DEFAULT_FLEET) -> FleetKeeper:
    """Keep `fleet` in `store` under `fleet_id`: the stored fleet is loaded (checked against the fleet's
    configuration), or the fleet as it is now is stored. PostgresError (and the fleet as it was) when the stored
    fleet was written for another configuration or is invalid."""
    current = fingerprint(fleet.config)
    if not store.create(fleet_id, fleet.dump(), current):
        with store.transaction(fleet_id) as stored:
            differences = fingerprint_differences(stored.fingerprint, current)
        if differences:
            raise PostgresError(
                f"PostgreSQL: fleet {fleet_id!r} was written for another fleet configuration: "
                + "; ".join(differences)
                + ". Start mockcore with the options it was written with, or use another database."
            )
    keeper = FleetKeeper(store, fleet_id)
    before = fleet.dump()
    fleet.keep(keeper)
    try:
        fleet.dump()  # the first transaction takes the stored document: an invalid one is refused now
    except InvalidSnapshot as exc:
        fleet.keep(None)
        fleet.load(before)
        raise PostgresError(f"PostgreSQL: fleet {fleet_id!r} is invalid: {_public(exc)}") from exc
    except BaseException:
        fleet.keep(None)
        raise
    return keeper


def open_kept_fleet(url: str, fleet: Fleet, fleet_id: str = DEFAULT_FLEET) -> KeptFleet:
    """`mockcore serve --state postgresql://...`: open the store and keep the fleet in it."""
    store = FleetStore.open(url)
    try:
        return KeptFleet(fleet, store, keep_fleet(store, fleet, fleet_id))
    except BaseException:
        store.close()
        raise
