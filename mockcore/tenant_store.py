"""Tenants kept in PostgreSQL (`mockcore serve --tenants --state postgresql://...`, docs/guides/team-service.md):
every replica given the same database serves every tenant.

The tables
    `mockcore_tenants`, one row per tenant: `id`, `request` (its POST /_mock/tenants body, normalised: what any
    replica rebuilds the same fleet from), `instances` (the names, for the listing), `control_token`,
    `journal_cap` (the ceiling of its journal), `created` and `last_used` (PostgreSQL's clock: one clock for every
    replica). The tenant's fleet is a row of `mockcore_fleets` under the tenant's id, kept by
    mockcore.pgstore (`FleetKeeper`): every operation of the tenant is one transaction on that row, serialised
    across replicas, committed before it answers.

What is shared, what is not
    Shared: the tenant's existence, configuration, token and fleet (licences, slots, accounts, scans, the clock's
    setting). A replica that does not hold a tenant yet loads it on its first request (the registry asks the
    database on a miss); a tenant deleted through one replica answers 404 on every replica, since each request
    below a tenant's prefix checks (and stamps) its row; idle expiry and `--max-tenants` count the rows. Per
    replica, as with `mockcore serve --state`: fault rules, the request journal and the scan progression.

Order of writes
    Creating writes the tenant's row (counted against the limit under an advisory lock, so two replicas never
    both take the last place), then its fleet's row; deleting removes the tenant's row, then its fleet's. A fleet
    row without a tenant row (a replica killed between the two) is removed by the next sweep.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from mockcore.fleet import Fleet, StoreError
from mockcore.journal import MAX_CAP as MAX_JOURNAL_CAP
from mockcore.pgstore import CONNECT_TIMEOUT, FleetStore, PostgresError, keep_fleet
from mockcore.tenants import (
    Tenant,
    TenantError,
    TenantLimits,
    TenantRequest,
    check_instances,
    is_tenant_id,
    new_identity,
    parse_tenant_request,
    tenant_summary,
    too_many_tenants,
)

TABLE = "mockcore_tenants"
FLEET_POOL_SIZE = 8  # connections for the tenants' fleet transactions (one held per operation in progress)
TENANT_POOL_SIZE = 4  # connections for the tenants' rows (one statement per request)
TENANT_ID_LENGTH = len(new_identity()[0])  # 24 characters: how a sweep tells a tenant's fleet from `default`

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id TEXT PRIMARY KEY,
    request JSONB NOT NULL,
    instances JSONB NOT NULL,
    control_token TEXT NOT NULL,
    journal_cap INTEGER NOT NULL,
    created TIMESTAMPTZ NOT NULL,
    last_used TIMESTAMPTZ NOT NULL
)"""
_LIVE = "last_used > now() - make_interval(secs => %(idle)s)"
_ROW = "request, control_token, journal_cap, created, last_used"


class PostgresTenantRegistry:
    """`TenantRegistry` over PostgreSQL. `PostgresTenantRegistry.open(url, limits)`; `close()`. Thread-safe."""

    def __init__(self, store: FleetStore, pool: ConnectionPool[Any], limits: TenantLimits) -> None:
        self.store = store
        self.limits = limits
        self._pool = pool
        self._lock = threading.Lock()
        self._held: dict[str, Tenant] = {}  # the tenants this process has loaded, by id
        # Rebuilding a stored tenant does not apply this replica's limits again: it was checked when created.
        self._rebuild_limits = replace(limits, max_instances=1_000_000, journal_cap=MAX_JOURNAL_CAP, max_keys=1_000_000)

    @classmethod
    def open(cls, url: str, limits: TenantLimits) -> PostgresTenantRegistry:
        """Connect, create the tables if missing; PostgresError when PostgreSQL cannot be used."""
        store = FleetStore.open(url, pool_size=FLEET_POOL_SIZE)
        try:
            pool: ConnectionPool[Any] = ConnectionPool(
                url,
                min_size=1,
                max_size=TENANT_POOL_SIZE,
                timeout=CONNECT_TIMEOUT,
                check=ConnectionPool.check_connection,
                kwargs={"connect_timeout": CONNECT_TIMEOUT},
                open=False,
            )
            pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except (psycopg.Error, PoolTimeout) as exc:
            store.close()
            raise store.error("cannot use it for tenants", exc, address=True) from exc
        registry = cls(store, pool, limits)
        try:
            with registry._transaction("create the tenants' table") as connection:
                connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (TABLE,))
                connection.execute(_SCHEMA)  # type: ignore[arg-type]
        except BaseException:
            registry.close()
            raise
        return registry

    def close(self) -> None:
        self._pool.close()
        self.store.close()

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a pooled connection (committed at the end); PostgresError if PostgreSQL fails."""
        try:
            with self._pool.connection() as connection:
                yield connection
        except (psycopg.Error, PoolTimeout) as exc:
            raise self.store.error(what, exc) from exc

    def _params(self, tenant_id: str | None = None) -> dict[str, Any]:
        return {"id": tenant_id, "idle": self.limits.idle_timeout}

    # Creating and deleting

    def create(self, request: TenantRequest) -> Tenant:
        check_instances(self.limits, len(request.setup.config.instances))
        if self.count() >= self.limits.max_tenants:  # before building; checked again under the advisory lock
            raise too_many_tenants(self.limits)
        fleet = Fleet.build(request.setup, journal_ceiling=self.limits.journal_cap)  # outside any transaction: slow
        tenant_id, token = new_identity()
        names = list(fleet.names)
        with self._transaction("cannot create a tenant") as connection:
            connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (TABLE,))  # one creator at a time
            expired = self._expire(connection)
            row = connection.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
            full = row is not None and row[0] >= self.limits.max_tenants
            if not full:
                row = connection.execute(
                    f"INSERT INTO {TABLE} (id, request, instances, control_token, journal_cap, created, last_used)"
                    " VALUES (%s, %s, %s, %s, %s, now(), now()) RETURNING created",
                    (tenant_id, Jsonb(request.document), Jsonb(names), token, self.limits.journal_cap),
                ).fetchone()
        self._remove_fleets(expired)
        if full or row is None:
            raise too_many_tenants(self.limits)
        try:
            keep_fleet(self.store, fleet, tenant_id)
        except BaseException:
            with contextlib.suppress(StoreError):
                self.delete(tenant_id)
            raise
        tenant = Tenant(tenant_id, fleet, token, self.limits.journal_cap, row[0], row[0], time.monotonic())
        with self._lock:
            self._held[tenant_id] = tenant
        return tenant

    def delete(self, tenant_id: str) -> bool:
        with self._transaction(f"tenant {tenant_id!r}: cannot delete it") as connection:
            deleted = connection.execute(f"DELETE FROM {TABLE} WHERE id = %s", (tenant_id,)).rowcount == 1
        self._let_go(tenant_id)
        self._remove_fleets([tenant_id])
        return deleted

    def _expire(self, connection: psycopg.Connection[Any]) -> list[str]:
        rows = connection.execute(f"DELETE FROM {TABLE} WHERE NOT ({_LIVE}) RETURNING id", self._params())
        return [row[0] for row in rows]

    def _remove_fleets(self, tenant_ids: list[str]) -> None:
        for tenant_id in tenant_ids:
            self._let_go(tenant_id)
            self.store.delete(tenant_id)

    def _let_go(self, tenant_id: str) -> None:
        with self._lock:
            self._held.pop(tenant_id, None)

    def expire_idle(self) -> list[str]:
        """Remove the idle tenants (and their fleets), let go of the tenants another replica removed, and remove
        fleets left without a tenant; answers the ids this process let go of."""
        fleet_ids = self.store.fleet_ids()  # before the tenants: a fleet's tenant row is always written first
        with self._transaction("cannot expire idle tenants") as connection:
            expired = self._expire(connection)
            live = {row[0] for row in connection.execute(f"SELECT id FROM {TABLE}")}
        self._remove_fleets(expired)
        orphans = [f for f in fleet_ids if len(f) == TENANT_ID_LENGTH and f not in live and f not in expired]
        self._remove_fleets(orphans)
        with self._lock:
            gone = [tenant_id for tenant_id in self._held if tenant_id not in live]
            for tenant_id in gone:
                del self._held[tenant_id]
        return sorted({*expired, *gone})

    # Finding

    def get(self, tenant_id: str) -> Tenant | None:
        if not is_tenant_id(tenant_id):  # no tenant's: not a question for the database
            return None
        with self._transaction(f"tenant {tenant_id!r}: cannot read it") as connection:
            row = connection.execute(
                f"SELECT {_ROW} FROM {TABLE} WHERE id = %(id)s AND {_LIVE}", self._params(tenant_id)
            ).fetchone()
        return self._found(tenant_id, row)

    def touch(self, tenant_id: str) -> Tenant | None:
        if not is_tenant_id(tenant_id):
            return None
        with self._transaction(f"tenant {tenant_id!r}: cannot read it") as connection:
            row = connection.execute(
                f"UPDATE {TABLE} SET last_used = now() WHERE id = %(id)s AND {_LIVE} RETURNING {_ROW}",
                self._params(tenant_id),
            ).fetchone()
        return self._found(tenant_id, row)

    def _found(self, tenant_id: str, row: tuple[Any, ...] | None) -> Tenant | None:
        if row is None:
            self._let_go(tenant_id)
            return None
        request, token, journal_cap, created, last_used = row
        with self._lock:
            tenant = self._held.get(tenant_id)
            if tenant is not None:
                tenant.last_used, tenant.idle_since = last_used, time.monotonic()
                return tenant
        fleet = self._load(tenant_id, request, journal_cap)
        tenant = Tenant(tenant_id, fleet, token, journal_cap, created, last_used, time.monotonic())
        with self._lock:
            return self._held.setdefault(tenant_id, tenant)  # another thread may have loaded it meanwhile

    def _load(self, tenant_id: str, request: object, journal_ceiling: int) -> Fleet:
        """The tenant's fleet, rebuilt from its stored request and kept in its stored row; its journal's ceiling is
        the one stored with the tenant."""
        try:
            setup = parse_tenant_request(request, self._rebuild_limits).setup
        except TenantError as exc:
            raise PostgresError(f"tenant {tenant_id!r}: its stored request is refused: {exc.text}") from exc
        fleet = Fleet.build(setup, journal_ceiling=journal_ceiling)
        keep_fleet(self.store, fleet, tenant_id)
        return fleet

    def summaries(self) -> list[dict[str, Any]]:
        with self._transaction("cannot list the tenants") as connection:
            rows = connection.execute(
                f"SELECT id, instances, created, last_used FROM {TABLE} WHERE {_LIVE} ORDER BY created, id",
                self._params(),
            ).fetchall()
        return [tenant_summary(tenant_id, names, created, used) for tenant_id, names, created, used in rows]

    def holds(self, tenant_id: str) -> bool:
        with self._lock:
            return tenant_id in self._held

    def held(self) -> int:
        """How many tenants this process holds (has loaded)."""
        with self._lock:
            return len(self._held)

    def count(self) -> int:
        """How many live tenants the database holds."""
        with self._transaction("cannot count the tenants") as connection:
            row = connection.execute(f"SELECT count(*) FROM {TABLE} WHERE {_LIVE}", self._params()).fetchone()
        return int(row[0]) if row is not None else 0

    def __enter__(self) -> PostgresTenantRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
