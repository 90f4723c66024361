"""Tenants: many isolated fleets in one process (`mockcore serve --tenants`, docs/guides/team-service.md).

A tenant is a `Fleet` of its own (its own clock, fault rules, journal, accounts and keys), an unguessable id and a
control token of its own. What a tenant is made of is what `mockcore serve` takes for one fleet, checked by the one
parser, `mockcore.config.parse_fleet` (`parse_tenant_request`). The registry behind the tenant API is a small
interface, `TenantRegistry` (create, get, touch, delete, summaries, expire_idle, holds): `MemoryTenantRegistry`
keeps tenants in this process; `mockcore.tenant_store.PostgresTenantRegistry` keeps them in PostgreSQL, shared by
every replica given the same database.

Memory stays bounded: at most `max_tenants` tenants, `max_instances` instances and `max_keys` activation keys each, a
journal of at most `journal_cap` requests each (the fleet's journal ceiling: no later PUT /_mock/journal/config
raises it); a tenant left alone for `idle_timeout` seconds is removed. The limits on one request are checked before
its fleet is built, and so is the tenant limit (again, race-free, once the fleet is built).
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from mockcore.config import ConfigError, FleetSetup, parse_fleet
from mockcore.fleet import Fleet
from mockcore.journal import MAX_CAP as MAX_JOURNAL_CAP
from mockcore.overrides import MAX_OVERRIDES_BYTES

DEFAULT_IDLE_TIMEOUT = 3600.0  # seconds without a request before a tenant is removed
DEFAULT_MAX_TENANTS = 100
DEFAULT_MAX_INSTANCES = 10
DEFAULT_MAX_KEYS = 20  # activation keys a tenant may have (a key costs ~1 KiB; the body cap alone allows 50000)
MAX_IDLE_TIMEOUT = 10 * 365 * 86400.0  # about ten years, in seconds: PostgreSQL's intervals hold it
DEFAULT_TENANT_JOURNAL_CAP = 100  # a journal entry may hold 32 KiB of bodies: 100 of them, ~3 MiB at worst
ID_BYTES = 18  # secrets.token_urlsafe(18): 24 characters of A-Z a-z 0-9 - _, 144 random bits
ID_RE = re.compile(r"[A-Za-z0-9_-]{24}")  # the form of every id new_identity gives
TOKEN_BYTES = 24
# What POST /_mock/tenants takes: what `mockcore serve` takes for one fleet.
REQUEST_FIELDS = ("instances", "keys", "seed", "apikey", "admin", "overrides", "profile", "journal_cap")


class TenantError(ValueError):
    """A tenant request that cannot be served: `status` is the HTTP status to answer (400, 404, 429)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@dataclass(frozen=True)
class TenantLimits:
    max_tenants: int = DEFAULT_MAX_TENANTS
    max_instances: int = DEFAULT_MAX_INSTANCES
    journal_cap: int = DEFAULT_TENANT_JOURNAL_CAP
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_keys: int = DEFAULT_MAX_KEYS

    def __post_init__(self) -> None:
        if self.max_tenants < 0 or self.max_instances < 1 or self.max_keys < 1:
            raise ValueError("tenant limits: max_tenants >= 0, max_instances >= 1, max_keys >= 1")
        if not (math.isfinite(self.idle_timeout) and 0 < self.idle_timeout <= MAX_IDLE_TIMEOUT):
            raise ValueError(f"tenant limits: idle_timeout is more than 0 and at most {MAX_IDLE_TIMEOUT:.0f} seconds")
        if not 0 <= self.journal_cap <= MAX_JOURNAL_CAP:
            raise ValueError(f"tenant limits: the journal cap is from 0 to {MAX_JOURNAL_CAP}")


@dataclass
class Tenant:
    id: str
    fleet: Fleet
    control_token: str
    journal_cap: int  # the ceiling of its journal's cap (PUT /_mock/journal/config is refused past it)
    created: datetime
    last_used: datetime
    idle_since: float  # the registry's monotonic clock at the last use

    def summary(self) -> dict[str, Any]:
        return tenant_summary(self.id, self.fleet.names, self.created, self.last_used)


def tenant_summary(tenant_id: str, instances: Iterable[str], created: datetime, last_used: datetime) -> dict[str, Any]:
    """One row of GET /_mock/tenants."""
    return {
        "tenant": tenant_id,
        "instances": list(instances),
        "created": created.isoformat(),
        "last_used": last_used.isoformat(),
    }


def is_tenant_id(text: str) -> bool:
    """Whether `text` has the form of a tenant id (what new_identity gives): anything else is no tenant's."""
    return ID_RE.fullmatch(text) is not None


def check_instances(limits: TenantLimits, count: int) -> None:
    if count > limits.max_instances:
        raise TenantError(400, f"A tenant has at most {limits.max_instances} instances.")


def too_many_tenants(limits: TenantLimits) -> TenantError:
    return TenantError(
        429,
        f"The server holds its most tenants ({limits.max_tenants}): delete one, or wait for an idle one to expire.",
    )


def new_identity() -> tuple[str, str]:
    """A new tenant's id and control token (144 and 192 random bits: an id is never given twice in practice)."""
    return secrets.token_urlsafe(ID_BYTES), secrets.token_urlsafe(TOKEN_BYTES)


@dataclass(frozen=True)
class TenantRequest:
    """A checked POST /_mock/tenants body: the fleet it describes, and the body normalised (the known fields that
    were given, `journal_cap` filled in): what another process rebuilds the same fleet from."""

    setup: FleetSetup
    document: dict[str, Any]


class TenantRegistry(Protocol):
    """Where tenants live. Every method is safe to call from several threads at once."""

    limits: TenantLimits

    def create(self, request: TenantRequest) -> Tenant:
        """A new tenant with a fleet built from `request`; TenantError(429) past `limits.max_tenants`."""
        ...

    def get(self, tenant_id: str) -> Tenant | None:
        """The tenant, or None (unknown, deleted or expired); does not count as a use."""
        ...

    def touch(self, tenant_id: str) -> Tenant | None:
        """`get`, counted as a use: the tenant's idle time starts again."""
        ...

    def delete(self, tenant_id: str) -> bool:
        """Remove the tenant; False when there was none."""
        ...

    def summaries(self) -> list[dict[str, Any]]:
        """`Tenant.summary()` of every live tenant, oldest first."""
        ...

    def expire_idle(self) -> list[str]:
        """Remove every tenant idle for `limits.idle_timeout` seconds or more; answers their ids (and those this
        process let go of because another process removed them)."""
        ...

    def holds(self, tenant_id: str) -> bool:
        """Whether this process holds the tenant now, without asking a shared store (for caches of its faces)."""
        ...


class MemoryTenantRegistry:
    """Tenants in this process's memory. `monotonic` measures idle time (inject one to test expiry without
    waiting); `wall` stamps `created` and `last_used`."""

    def __init__(
        self,
        limits: TenantLimits | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.limits = limits or TenantLimits()
        self._monotonic = monotonic
        self._wall = wall
        self._lock = threading.Lock()
        self._tenants: dict[str, Tenant] = {}

    def _expired(self, tenant: Tenant, now: float) -> bool:
        return now - tenant.idle_since >= self.limits.idle_timeout

    def _expire_locked(self, now: float) -> list[str]:
        gone = [tid for tid, tenant in self._tenants.items() if self._expired(tenant, now)]
        for tid in gone:
            del self._tenants[tid]
        return gone

    def create(self, request: TenantRequest) -> Tenant:
        check_instances(self.limits, len(request.setup.config.instances))
        self._check_room()  # before building: a server that is full answers 429 at once
        fleet = Fleet.build(request.setup, journal_ceiling=self.limits.journal_cap)  # outside the lock: slow
        now, stamp = self._monotonic(), self._wall()
        with self._lock:
            self._expire_locked(now)
            if len(self._tenants) >= self.limits.max_tenants:  # again: others may have taken the room meanwhile
                raise too_many_tenants(self.limits)
            tenant_id, token = new_identity()
            while tenant_id in self._tenants:  # 144 random bits: never in practice
                tenant_id, token = new_identity()
            tenant = Tenant(tenant_id, fleet, token, self.limits.journal_cap, stamp, stamp, now)
            self._tenants[tenant_id] = tenant
            return tenant

    def _check_room(self) -> None:
        now = self._monotonic()
        with self._lock:
            self._expire_locked(now)
            if len(self._tenants) >= self.limits.max_tenants:
                raise too_many_tenants(self.limits)

    def get(self, tenant_id: str) -> Tenant | None:
        now = self._monotonic()
        with self._lock:
            tenant = self._tenants.get(tenant_id)
            if tenant is not None and self._expired(tenant, now):
                del self._tenants[tenant_id]
                return None
            return tenant

    def touch(self, tenant_id: str) -> Tenant | None:
        now, stamp = self._monotonic(), self._wall()
        with self._lock:
            tenant = self._tenants.get(tenant_id)
            if tenant is None:
                return None
            if self._expired(tenant, now):
                del self._tenants[tenant_id]
                return None
            tenant.idle_since, tenant.last_used = now, stamp
            return tenant

    def delete(self, tenant_id: str) -> bool:
        with self._lock:
            return self._tenants.pop(tenant_id, None) is not None

    def list(self) -> list[Tenant]:
        now = self._monotonic()
        with self._lock:
            self._expire_locked(now)
            return sorted(self._tenants.values(), key=lambda t: (t.created, t.id))

    def summaries(self) -> list[dict[str, Any]]:
        return [tenant.summary() for tenant in self.list()]

    def holds(self, tenant_id: str) -> bool:
        now = self._monotonic()
        with self._lock:
            tenant = self._tenants.get(tenant_id)
            return tenant is not None and not self._expired(tenant, now)

    def expire_idle(self) -> list[str]:
        now = self._monotonic()
        with self._lock:
            return self._expire_locked(now)

    def __len__(self) -> int:
        with self._lock:
            return len(self._tenants)


@contextmanager
def _overrides_file(overrides: object) -> Iterator[str | None]:
    """Inline overrides as the file `parse_fleet` reads: a YAML text, or a JSON object (JSON is YAML)."""
    if overrides is None:
        yield None
        return
    if isinstance(overrides, dict):
        overrides = json.dumps(overrides)
    if not isinstance(overrides, str):
        raise TenantError(400, "overrides: a YAML document as a string, or a JSON object")
    data = overrides.encode("utf-8", errors="replace")
    if len(data) > MAX_OVERRIDES_BYTES:
        raise TenantError(400, f"overrides: document is larger than {MAX_OVERRIDES_BYTES} bytes")
    fd, path = tempfile.mkstemp(prefix="mockcore-overrides-", suffix=".yaml")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        yield path
    finally:
        os.unlink(path)


def _typed(doc: dict[str, Any], name: str, kinds: tuple[type, ...], what: str) -> Any:
    value = doc.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, kinds)):
        raise TenantError(400, f"{name}: expected {what}, not {type(value).__name__}")
    return value


def parse_tenant_request(doc: object, limits: TenantLimits) -> TenantRequest:
    """The body of POST /_mock/tenants, checked: the JSON types here, every value by `parse_fleet` (the CLI's and
    MockFleet's parser, with its messages). Raises TenantError(400) naming the field."""
    if not isinstance(doc, dict):
        raise TenantError(400, "Expected a JSON object.")
    unknown = sorted(set(doc) - set(REQUEST_FIELDS))
    if unknown:
        raise TenantError(400, f"Unknown fields: {', '.join(map(str, unknown))}; known: {', '.join(REQUEST_FIELDS)}.")
    given: dict[str, Any] = {
        "instances": _typed(doc, "instances", (list,), "a list of instance names"),
        "keys": _typed(doc, "keys", (list,), 'a list of "KEY[:SLOTS[:DAYS]]" texts'),
        "seed": _typed(doc, "seed", (str, int), "a string or a whole number"),
        "apikey": _typed(doc, "apikey", (str,), "a string"),
        "admin": _typed(doc, "admin", (str,), '"USER:PASSWORD"'),
        "profile": _typed(doc, "profile", (str,), "a string"),
        "journal_cap": _typed(doc, "journal_cap", (int,), "a whole number"),
    }
    if given["instances"] is not None and len(given["instances"]) > limits.max_instances:
        raise TenantError(400, f"instances: a tenant has at most {limits.max_instances} instances")
    if given["keys"] is not None and len(given["keys"]) > limits.max_keys:
        raise TenantError(
            400, f"keys: a tenant has at most {limits.max_keys} activation keys (the server's --max-tenant-keys)"
        )
    if given["journal_cap"] is None:
        given["journal_cap"] = limits.journal_cap
    elif not 0 <= given["journal_cap"] <= limits.journal_cap:
        raise TenantError(400, f"journal_cap: from 0 to {limits.journal_cap} (the server's --tenant-journal-cap)")
    arguments = {name: value for name, value in given.items() if value is not None}  # the rest: parse_fleet's defaults
    document = {**arguments, **({"overrides": doc["overrides"]} if doc.get("overrides") is not None else {})}
    with _overrides_file(doc.get("overrides")) as path:
        try:
            return TenantRequest(parse_fleet(**arguments, overrides=path), document)
        except ConfigError as exc:
            # parse_fleet reads overrides from a file and names it; the file here is ours, not the client's.
            text = str(exc).replace(f"{path}: ", "") if path is not None else str(exc)
            raise TenantError(400, f"{exc.option}: {text}") from exc
