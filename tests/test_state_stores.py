"""State stores (issue 13, parts 2 and 5): a write the store refuses changes nothing, and the fleet kept in memory,
in an SQLite file or in PostgreSQL behaves the same.

(a) A store that refuses a write: every kind of change (licences, slots, accounts, scans, the clock, reset, load, a
    scenario, a read that sees a licence lost) answers a 5xx `{"err": ...}` and leaves the fleet's document, its
    revision and the clock's setting as before; the next accepted write stores the right fleet. Once with a
    listener that raises (in-process, over HTTP), and with real SQLite failures: a file size limit (RLIMIT_FSIZE)
    that stops the WAL from growing, and another program holding SQLite's write lock (`mockcore serve --state`).
(b) PostgreSQL (tests/postgres.py starts a throwaway server): the same operation sequence gives the same fleet on
    memory, SQLite and PostgreSQL; two `mockcore serve --state postgresql://...` processes on one database never
    give one slot twice under concurrent activations and each sees what the other committed; PostgreSQL stopped
    mid-run gives 5xx and leaves memory as it was; started again, the servers resume.
"""

from __future__ import annotations

import contextlib
import resource
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from mockcore.clock import FleetClock
from mockcore.fleet import Fleet, FleetConfig, StoreError
from mockcore.persistence import StateFileError, StateStore
from mockcore.pgstore import DEFAULT_FLEET, FleetStore, open_kept_fleet
from tests.conftest import RunningFleet, serve_fleet
from tests.postgres import PostgresServer, postgres, running_postgres
from tests.serving import MockcoreProcess
from tests.test_persistence import (
    APIKEY,
    CONFIG,
    INSTANCES,
    KEY_1,
    KEY_2,
    control,
    core,
    processes,
    serve,
    stored_document,
)

__all__ = ["postgres", "processes"]  # fixtures of tests/postgres.py and tests/test_persistence.py


class RefusingStore:
    """A listener standing for a store whose disk is full while `full` is set; else it keeps every document."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.full = False
        self.kept: dict[str, Any] | None = None

    def __call__(self) -> None:
        if self.full:
            raise OSError(28, "No space left on device")
        self.kept = self.fleet.committed()[1]


def state_of(urls: dict[str, str]) -> dict[str, Any]:
    response = requests.get(urls["a"] + "/_mock/state", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def same_fleet(document: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Equal documents, but for a running clock's reading, which may have moved on by a few seconds."""
    if not expected["clock"]["frozen"] and not document["clock"]["frozen"]:
        moved = datetime.fromisoformat(document["clock"]["now"]) - datetime.fromisoformat(expected["clock"]["now"])
        if abs(moved) > timedelta(seconds=5):
            return False
        document = {**document, "clock": expected["clock"]}
    return document == expected


# Each change as an HTTP request: (name, method, face, path, body)
Request = tuple[str, str, str, str, dict[str, Any] | None]


def _changes(deployment_c: str) -> list[Request]:
    return [
        ("activate", "POST", "a", "/admin/license/activation", {"activationKey": KEY_1}),
        ("login", "POST", "a", "/login", {"user": "admin", "password": "admin"}),
        ("scan", "POST", "a", "/file", None),
        ("engine", "POST", "a", "/admin/engine/clamav_1_linux/disable", None),
        ("advance the clock", "POST", "a", "/_mock/clock/advance", {"days": 3}),
        ("freeze the clock", "PUT", "a", "/_mock/clock", {"frozen": True}),
        (
            "take a slot by hand",
            "GET",
            "activation_server",
            f"/activation?key={KEY_2}&deployment={deployment_c}&quantity=1",
            None,
        ),
        ("reset", "POST", "a", "/_mock/reset", None),
        ("a scenario", "POST", "a", "/_mock/scenarios/production-with-online-backup", None),
    ]


def _send(running: RunningFleet, request: Request) -> requests.Response:
    _, method, face, path, body = request
    headers = {"apikey": APIKEY}
    if request[0] == "scan":
        return requests.post(running.urls[face] + path, data=b"hello", headers=headers, timeout=10)
    return requests.request(method, running.urls[face] + path, json=body, headers=headers, timeout=10)


@pytest.fixture
def refusing() -> Iterator[tuple[RunningFleet, RefusingStore]]:
    fleet = Fleet(CONFIG)
    store = RefusingStore(fleet)
    fleet.subscribe(store)
    running = serve_fleet(fleet)
    try:
        yield running, store
    finally:
        running.server.stop()


def test_a_refused_write_answers_5xx_and_changes_nothing(refusing: tuple[RunningFleet, RefusingStore]) -> None:
    running, store = refusing
    fleet = running.fleet
    deployment_c = fleet.deployments()["c"]
    for request in _changes(deployment_c):
        before, revision = state_of(running.urls), fleet.revision
        store.full = True
        refused = _send(running, request)
        assert refused.status_code >= 500, (request[0], refused.status_code, refused.text)
        assert set(refused.json()) == {"err"}, request[0]
        assert same_fleet(state_of(running.urls), before), request[0]
        assert fleet.revision == revision, request[0]
        store.full = False
        accepted = _send(running, request)
        assert accepted.status_code < 300, (request[0], accepted.text)
        assert fleet.revision > revision, request[0]
        assert store.kept is not None and same_fleet(store.kept, fleet.dump()), request[0]  # stores the right fleet


def test_put_state_refused_by_the_store_changes_nothing(refusing: tuple[RunningFleet, RefusingStore]) -> None:
    running, store = refusing
    other = Fleet(CONFIG)
    other.freeze_clock()
    other.activate("b", KEY_2, 1)
    before = state_of(running.urls)
    store.full = True
    refused = requests.put(running.urls["a"] + "/_mock/state", json=other.dump(), timeout=10)
    assert refused.status_code >= 500 and "err" in refused.json()
    assert same_fleet(state_of(running.urls), before)
    store.full = False
    assert requests.put(running.urls["a"] + "/_mock/state", json=other.dump(), timeout=10).status_code == 200
    assert store.kept == other.dump()


def test_a_read_that_sees_a_licence_lost_is_saved_or_undone() -> None:
    """A read that sees an online licence whose slot is gone commits the loss (so a store shared by several
    servers keeps it lost); if the store refuses that, the read answers 5xx and the licence is as it was."""
    fleet = Fleet(CONFIG)
    fleet.freeze_clock()
    store = RefusingStore(fleet)
    fleet.subscribe(store)
    fleet.activate("a", KEY_2, 1)
    fleet.release_slot(KEY_2, fleet.deployments()["a"])  # behind the instance's back
    revision = fleet.revision
    store.full = True
    with pytest.raises(OSError, match="No space left"):
        fleet.licence_info("a")
    assert fleet.revision == revision
    store.full = False
    assert store.kept is not None and store.kept["instances"]["a"]["licence"]["state"] == "active"
    assert "online_activated" not in fleet.licence_info("a")  # unlicensed now
    assert fleet.revision == revision + 1
    assert store.kept["instances"]["a"]["licence"]["state"] == "unlicensed"


def test_a_failed_batch_leaves_revision_and_listeners_alone() -> None:
    fleet = Fleet(CONFIG)
    store = RefusingStore(fleet)
    fleet.subscribe(store)
    revision = fleet.revision
    with pytest.raises(ValueError), fleet.batch():
        fleet.activate("a", KEY_1, 1)
        raise ValueError("the batch fails")
    assert fleet.revision == revision and store.kept is None
    assert fleet.slot_holders() == {KEY_1: [], KEY_2: []}


# (a) A real SQLite failure: the state file may not grow


def _file_sizes(state: Path) -> int:
    return max(p.stat().st_size for p in (state, Path(f"{state}-wal")) if p.exists())


def test_a_state_file_that_cannot_grow_refuses_the_change_and_the_fleet_stays_as_the_file(tmp_path: Path) -> None:
    """Disk full, for real: this process's file size limit (RLIMIT_FSIZE, soft, restored after) is lowered to
    the size of the state file and its WAL, so SQLite cannot append (EFBIG; Python ignores SIGXFSZ):
    "disk I/O error". The fleet stays as the file; once the limit is lifted the next change is saved."""
    state = tmp_path / "fleet.db"
    fleet = Fleet(CONFIG)
    fleet.freeze_clock()
    with StateStore.open(state, fleet):
        fleet.activate("a", KEY_1, 1)
        before, revision = fleet.dump(), fleet.revision
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        limit = max(state.stat().st_size, Path(f"{state}-wal").stat().st_size)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        try:
            refusals: list[Callable[[], object]] = [
                lambda: fleet.activate("b", KEY_2, 1),
                lambda: fleet.login("b", "admin", "admin"),
                lambda: fleet.advance_clock(timedelta(days=1)),
                fleet.reset,
                lambda: fleet.scan("a", b"hello", "hello.txt"),
            ]
            for refused in refusals:
                with pytest.raises(StateFileError, match="cannot save the fleet: disk I/O error"):
                    refused()
                assert fleet.dump() == before and fleet.revision == revision
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        assert stored_document(state) == before
        fleet.activate("b", KEY_2, 1)
        after = fleet.dump()
        assert after["instances"]["b"]["licence"]["state"] == "active"
        assert stored_document(state) == after


def test_a_state_file_locked_by_another_writer_answers_5xx_then_recovers(
    processes: list[MockcoreProcess], tmp_path: Path
) -> None:
    """Another program holding SQLite's write lock past the busy timeout: the save fails ("database is locked"),
    the fleet stays as the file; once the lock is let go the next change is saved, in the same server."""
    state = tmp_path / "fleet.db"
    server = serve(processes, tmp_path / "run0", "--state", str(state))
    assert control(server, "PUT", "/clock", json={"frozen": True}).status_code == 200
    before = control(server, "GET", "/state").json()
    with contextlib.closing(sqlite3.connect(state, isolation_level=None)) as other:
        other.execute("BEGIN IMMEDIATE")
        refused = core(server, "a", "POST", "/admin/license/activation", json={"activationKey": KEY_1})
        assert refused.status_code >= 500 and set(refused.json()) == {"err"}, refused.text
        assert control(server, "GET", "/state").json() == before
        other.execute("ROLLBACK")
    assert "database is locked" in server.stderr_path.read_text()
    assert stored_document(state) == before
    accepted = core(server, "a", "POST", "/admin/license/activation", json={"activationKey": KEY_1})
    assert accepted.status_code == 200, accepted.text
    after = control(server, "GET", "/state").json()
    assert after["instances"]["a"]["licence"]["state"] == "active"
    assert stored_document(state) == after


# (b) PostgreSQL


def _sequence(fleet: Fleet) -> None:
    """Every kind of change, in one order: licences, a backup and its nomination, accounts, scans, engines, the
    clock, the activation server's slots by hand, and a read that sees a licence lost."""
    deployments = fleet.deployments()
    fleet.set_clock(datetime(2027, 5, 1, 9, 30, tzinfo=UTC), frozen=True)
    fleet.activate("a", KEY_1, 1)
    fleet.register_backup_online("b", KEY_1, deployments["a"])
    fleet.change_password("b", APIKEY, "admin", "s3cret-Passw0rd")  # (a login's session id is random)
    fleet.scan("a", b"hello", "hello.txt")
    fleet.set_engine("a", "clamav_1_linux", False)
    fleet.advance_clock(timedelta(days=3))
    fleet.nominate("b")
    fleet.licences()  # a: its slot went to b, seen lost now
    fleet.obtain_licence_file(KEY_2, deployments["c"], 1)
    fleet.release_slot(KEY_2, deployments["c"])


def assert_names_no_server(text: str, url: str) -> None:
    """What a client is answered names neither the database's host and port nor its name."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    for part in (info["host"], f":{info['port']}", info["dbname"]):
        assert str(part) not in text, text


def test_a_postgresql_error_a_client_may_see_names_no_server() -> None:
    url = "postgresql://mock@10.1.2.3:40841/secretdb"
    store = FleetStore(url, None)  # type: ignore[arg-type]  # no pool: only its messages are asked
    failure = psycopg.OperationalError(
        'connection failed: connection to server at "10.1.2.3", port 40841 failed: FATAL:  database "secretdb" '
        "does not exist"
    )
    error = store.error("fleet 'default': cannot read it", failure)
    assert str(error).startswith("PostgreSQL: fleet 'default': cannot read it: connection failed: ")
    assert_names_no_server(str(error), url)
    assert "10.1.2.3:40841/secretdb" in str(store.error("cannot use it", failure, address=True))  # start-up


def _fleet_at_noon() -> Fleet:
    """A fleet whose wall clock stands still: fleets made at different moments are equal."""
    return Fleet(CONFIG, FleetClock(lambda: datetime(2027, 1, 1, 12, 0, tzinfo=UTC)))


def test_the_same_operations_give_the_same_fleet_in_memory_sqlite_and_postgresql(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    in_memory = _fleet_at_noon()
    _sequence(in_memory)
    in_sqlite = _fleet_at_noon()
    with StateStore.open(tmp_path / "fleet.db", in_sqlite):
        _sequence(in_sqlite)
    url = postgres.database()
    in_postgres = _fleet_at_noon()
    with open_kept_fleet(url, in_postgres):
        _sequence(in_postgres)
        assert in_postgres.dump() == in_memory.dump()
    assert in_sqlite.dump() == in_memory.dump()
    assert stored_document(tmp_path / "fleet.db") == in_memory.dump()
    with FleetStore.open(url) as store, store.transaction(DEFAULT_FLEET) as stored:
        assert stored.document == in_memory.dump()
    reopened = _fleet_at_noon()  # a new server on the same database takes the stored fleet
    with open_kept_fleet(url, reopened):
        assert reopened.dump() == in_memory.dump()


def test_a_fleet_written_for_another_configuration_is_refused(postgres: PostgresServer) -> None:
    url = postgres.database()
    with open_kept_fleet(url, Fleet(CONFIG)):
        pass
    other = Fleet(FleetConfig(instances=("x",)))
    other.freeze_clock()
    before = other.dump()
    with pytest.raises(StoreError, match="written for another fleet configuration: --instance"):
        open_kept_fleet(url, other)
    assert other.dump() == before


def _serve_postgres(processes: list[MockcoreProcess], workdir: Path, url: str) -> MockcoreProcess:
    return serve(processes, workdir, "--state", url)


def test_two_servers_on_one_database_never_give_a_slot_twice(
    postgres: PostgresServer, processes: list[MockcoreProcess], tmp_path: Path
) -> None:
    url = postgres.database()
    servers = [_serve_postgres(processes, tmp_path / f"replica{i}", url) for i in range(2)]
    for round_ in range(4):
        assert control(servers[round_ % 2], "POST", "/reset").status_code == 200
        attempts = [(server, name) for server in servers for name in INSTANCES]  # 6 activations, 2 slots
        barrier = threading.Barrier(len(attempts))

        def activate(server: MockcoreProcess, name: str, barrier: threading.Barrier = barrier) -> int:
            barrier.wait()
            response = core(server, name, "POST", "/admin/license/activation", json={"activationKey": KEY_1})
            return response.status_code

        with ThreadPoolExecutor(len(attempts)) as pool:
            statuses = list(pool.map(lambda attempt: activate(*attempt), attempts))
        states = [control(server, "GET", "/state").json() for server in servers]
        assert same_fleet(states[0], states[1])  # each sees what the other committed
        holders = states[0]["keys"][0]["holders"]
        assert len(holders) == 2 and len(set(holders)) == 2, holders
        active = [n for n, inst in states[0]["instances"].items() if inst["licence"]["state"] == "active"]
        assert len(active) == 2, active
        for (_, name), status in zip(attempts, statuses, strict=True):  # 200 only for who holds a slot
            assert status == (200 if name in active else 400), (name, statuses, active)
        for name in INSTANCES:  # a licence read on either server agrees with the slots
            licensed = [core(s, name, "GET", "/admin/license").json().get("online_activated") is True for s in servers]
            assert licensed[0] == licensed[1] == (name in active), (name, licensed)


def test_postgresql_stopped_mid_run_answers_5xx_and_memory_stays_then_resumes(
    processes: list[MockcoreProcess], tmp_path: Path
) -> None:
    with running_postgres() as postgres:
        url = postgres.database()
        server = _serve_postgres(processes, tmp_path / "run0", url)
        assert control(server, "PUT", "/clock", json={"frozen": True}).status_code == 200
        assert core(server, "a", "POST", "/admin/license/activation", json={"activationKey": KEY_1}).status_code == 200
        before = control(server, "GET", "/state").json()

        in_process = Fleet(CONFIG)  # the same, in-process, to look at memory while the store is gone
        kept = open_kept_fleet(url, in_process)
        assert in_process.dump() == before

        postgres.stop("immediate")  # a crash
        refused = core(server, "b", "POST", "/admin/license/activation", json={"activationKey": KEY_1})
        assert refused.status_code >= 500 and set(refused.json()) == {"err"}, refused.text
        assert_names_no_server(refused.text, url)
        with pytest.raises(StoreError):
            in_process.activate("b", KEY_1, 1)
        in_process.keep(None)
        assert in_process.dump() == before  # memory as it was
        in_process.keep(kept.keeper)

        postgres.start()
        # The server's connection pool reconnects in the background, with a back-off: until it has, requests still
        # answer 5xx (the store cannot be used). Once it has, the fleet is the one stored, with no restart.
        deadline = time.monotonic() + 60
        read = control(server, "GET", "/state")
        while read.status_code >= 500 and time.monotonic() < deadline:
            time.sleep(0.5)
            read = control(server, "GET", "/state")
        assert read.json() == before
        accepted = core(server, "b", "POST", "/admin/license/activation", json={"activationKey": KEY_1})
        assert accepted.status_code == 200, accepted.text
        after = control(server, "GET", "/state").json()
        assert after["instances"]["b"]["licence"]["state"] == "active"
        assert in_process.dump() == after  # the other process sees the commit
        kept.close()
        assert server.stop().returncode == 0
        restarted = _serve_postgres(processes, tmp_path / "run1", url)
        assert control(restarted, "GET", "/state").json() == after
