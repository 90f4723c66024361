"""Three `mockcore serve --tenants --state postgresql://...` replicas behind HAProxy, for real (issue 13, part 3).

A throwaway PostgreSQL (tests/postgres.py), three replica subprocesses on free ports, and HAProxy (Debian's package)
configured from deploy/haproxy.cfg (tests/haproxy.py), with one change: `balance roundrobin` instead of the
template's tenant affinity, so consecutive requests of one tenant land on different replicas, the hardest case
for serialising a tenant's operations across processes.

Concurrent clients work several tenants through the proxy: per tenant, one thread runs the failover cycle
(activate a, register b as a's online backup, nominate b, deactivate b) and two threads obtain and release slots
of a two-slot key at the activation server, each for deployments of its own. Every answered change is logged;
one that got no answer (the replica died under it) leaves that deployment or stage unknown until the client
reads the state again, which must then show the change either made or not made, nothing else. Mid-load one
replica is killed with SIGKILL. Then every tenant's state, read through the proxy, must hold every acknowledged
change, no key may have more holders than slots or a holder twice, no tenant may hold another's deployments, and
every client must have gone on being served after the kill.

Then, through the same proxy, 100 connections that send their headers slowly and 100 that send a body slowly
are held open while another client's request must still be answered (10 s is the failure bound; no speed is
asserted). Skipped when HAProxy or PostgreSQL is missing, except under CI, where it fails: `apt-get install -y
haproxy postgresql`.
"""

from __future__ import annotations

import contextlib
import random
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from mockcore.fleet import Fleet
from mockcore.http.control_api import TOKEN_HEADER
from mockcore.tenant_server import TenantServer
from mockcore.tenant_store import PostgresTenantRegistry
from mockcore.tenants import TenantLimits
from tests import haproxy
from tests.postgres import PostgresServer, running_postgres
from tests.serving import MockcoreProcess, free_port, host_port, start_all
from tests.test_state_stores import assert_names_no_server

SERVER_TOKEN = "replica-test-token"
TENANTS = 4
LOAD_BEFORE_KILL = 3.0  # seconds of load before the SIGKILL
LOAD_AFTER_KILL = 4.0  # and after it
SLOW_EACH = 100  # slow-header connections, and as many slow-body ones
ANSWER_BOUND = 10.0  # the failure bound for a request while slow clients hang on


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    haproxy.require("postgres")
    with running_postgres() as server:
        yield server


@dataclass
class Team:
    replicas: list[MockcoreProcess]
    proxy: haproxy.Haproxy

    def api(self) -> requests.Session:
        session = requests.Session()
        session.headers[TOKEN_HEADER] = SERVER_TOKEN
        return session


@pytest.fixture(scope="module")
def team(pg: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    haproxy.require("haproxy")
    url = pg.database()
    root = tmp_path_factory.mktemp("replicas")
    args = ["--tenants", "--port", "0", "--state", url, "--control-token", SERVER_TOKEN]
    replicas = [MockcoreProcess(root / f"replica-{n}", args, free_ports=False) for n in (1, 2, 3)]
    proxy: haproxy.Haproxy | None = None
    try:
        start_all(replicas)
        servers = [host_port(replica.ready["url"]) for replica in replicas]
        port = free_port()
        proxy = haproxy.Haproxy(haproxy.config(port, servers, balance="roundrobin"), port, root).start()
        yield Team(replicas, proxy)
    finally:
        if proxy is not None:
            proxy.stop()
        for replica in replicas:
            replica.kill()


# The clients


class Unanswered(Exception):
    """No answer, or the proxy's or a store's 5xx: the change may or may not have been made."""


def call(session: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
    try:
        response = session.request(method, url, timeout=30, **kwargs)
    except requests.RequestException as exc:
        raise Unanswered(str(exc)) from exc
    if response.status_code >= 500:
        raise Unanswered(f"{response.status_code} {response.text[:200]}")
    return response


def until_answered(read: Callable[[], Any], seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return read()
        except Unanswered:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@dataclass
class Tenant:
    doc: dict[str, Any]
    deployments: set[str] = field(default_factory=set)  # every deployment its clients use

    @property
    def control(self) -> str:
        return str(self.doc["control"])

    def read(self, session: requests.Session) -> tuple[dict[str, Any], dict[str, str]]:
        """The tenant's state document and its instances' states, through the proxy."""
        headers = {TOKEN_HEADER: self.doc["control_token"]}
        state = call(session, "GET", self.control + "/_mock/state", headers=headers)
        view = call(session, "GET", self.control + "/_mock/view", headers=headers)
        assert state.status_code == 200 and view.status_code == 200, (state.text, view.text)
        return state.json(), {name: inst["state"] for name, inst in view.json()["instances"].items()}

    def holders(self, state: dict[str, Any], key: str) -> list[str]:
        return next(list(k["holders"]) for k in state["keys"] if k["terms"]["activation_key"] == key)


@dataclass
class Log:
    """What the clients saw: acknowledged changes, problems found, per-thread counts before and after the kill."""

    problems: list[str] = field(default_factory=list)
    acknowledged: dict[str, list[int]] = field(default_factory=dict)  # thread -> [before kill, after kill]
    unanswered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)

    def ack(self, thread: str, after_kill: bool) -> None:
        with self.lock:
            self.acknowledged.setdefault(thread, [0, 0])[after_kill] += 1

    def lost(self) -> None:
        with self.lock:
            self.unanswered += 1


def check_keys(tenant: Tenant, state: dict[str, Any], log: Log, when: str) -> None:
    """No key has more holders than slots or a holder twice; no holder is another tenant's."""
    for key in state["keys"]:
        holders = key["holders"]
        if len(holders) > key["slots"] or len(set(holders)) != len(holders):
            log.problem(f"{when}: tenant {tenant.doc['tenant']} key {key['terms']['activation_key']}: {holders}")
        strangers = set(holders) - tenant.deployments
        if strangers:
            log.problem(f"{when}: tenant {tenant.doc['tenant']} holds deployments it never used: {strangers}")


class CycleClient:
    """The failover cycle on instances a and b with a one-slot key; `stage` is how many of its four steps are
    done (None: unknown, until a read tells). Each stage has one observable state."""

    def __init__(self, tenant: Tenant, session: requests.Session, deployments: dict[str, str]) -> None:
        self.tenant = tenant
        self.session = session
        self.apikey = tenant.doc["apikey"]
        self.key = tenant.doc["keys"][0]["key"]
        self.a, self.b = tenant.doc["instances"]["a"], tenant.doc["instances"]["b"]
        self.dep = deployments
        self.stage: int | None = 0

    def expected(self, stage: int) -> tuple[list[str], dict[str, str]]:
        a, b = self.dep["a"], self.dep["b"]
        return [
            ([], {"a": "unlicensed", "b": "unlicensed"}),
            ([a], {"a": "active", "b": "unlicensed"}),
            ([a], {"a": "active", "b": "backup-online"}),
            ([b], {"a": "unlicensed", "b": "active"}),
        ][stage]

    def observed(self, state: dict[str, Any], states: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        return self.tenant.holders(state, self.key), states

    def step(self, stage: int) -> requests.Response:
        auth = {"apikey": self.apikey}
        if stage == 0:
            body = {"activationKey": self.key, "quantity": 1, "comment": "replicas"}
            return call(self.session, "POST", self.a + "/admin/license/activation", headers=auth, json=body)
        if stage == 1:
            headers = {**auth, "activation-key": self.key, "active-deployment-id": self.dep["a"]}
            return call(self.session, "POST", self.b + "/admin/license/backup", headers=headers)
        if stage == 2:
            return call(self.session, "POST", self.b + "/admin/license/backup/nomination", headers=auth)
        return call(self.session, "POST", self.b + "/admin/license/deactivation", headers=auth)

    def run(self, log: Log, stop: threading.Event, killed: threading.Event) -> None:
        name = f"cycle {self.tenant.doc['tenant']}"
        while not stop.is_set():
            if self.stage is None:
                self.stage = self.resync(log)
                continue
            try:
                response = self.step(self.stage)
            except Unanswered:
                log.lost()
                before, self.stage = self.stage, None
                self.stage = self.resync(log, allowed=(before, (before + 1) % 4))
                continue
            if response.status_code != 200:
                log.problem(
                    f"{name}: step {self.stage} refused although every earlier change was acknowledged: "
                    f"{response.status_code} {response.text[:200]}"
                )
                self.stage = self.resync(log)
                continue
            log.ack(name, killed.is_set())
            self.stage = (self.stage + 1) % 4

    def resync(self, log: Log, allowed: tuple[int, ...] = (0, 1, 2, 3)) -> int:
        state, states = until_answered(lambda: self.tenant.read(self.session))
        seen = self.observed(state, states)
        for stage in allowed:
            if seen == self.expected(stage):
                return stage
        log.problem(
            f"cycle {self.tenant.doc['tenant']}: after an unanswered step the state is {seen}, none of "
            f"the stages {allowed} (an acknowledged change lost?)"
        )
        return next((s for s in range(4) if seen == self.expected(s)), 0)

    def verify(self, state: dict[str, Any], states: dict[str, str], log: Log) -> None:
        if self.stage is not None and self.observed(state, states) != self.expected(self.stage):
            log.problem(
                f"cycle {self.tenant.doc['tenant']}: final state {self.observed(state, states)}, expected "
                f"stage {self.stage}: {self.expected(self.stage)}"
            )


class SlotClient:
    """Obtains and releases slots of the tenant's two-slot key for deployments of its own; `held[d]` is what the
    last answered change says (None: unknown until a read)."""

    def __init__(self, tenant: Tenant, session: requests.Session, name: str, seed: int) -> None:
        self.tenant = tenant
        self.session = session
        self.name = name
        self.random = random.Random(seed)
        self.key = tenant.doc["keys"][1]["key"]
        self.url = tenant.doc["activation_server"]
        self.held: dict[str, bool | None] = {f"MSCL{uuid.uuid4().hex}": False for _ in range(2)}
        tenant.deployments.update(self.held)

    def run(self, log: Log, stop: threading.Event, killed: threading.Event) -> None:
        operations = 0
        while not stop.is_set():
            deployment = self.random.choice(sorted(self.held))
            obtain = self.random.random() < 0.6
            params = {"key": self.key, "deployment": deployment}
            try:
                if obtain:
                    response = call(self.session, "GET", self.url + "/activation", params={**params, "quantity": 1})
                else:
                    response = call(self.session, "GET", self.url + "/deactivation", params=params)
            except Unanswered:
                log.lost()
                self.held[deployment] = None
                self.resync(log)
                continue
            self.answered(deployment, obtain, response, log)
            log.ack(self.name, killed.is_set())
            operations += 1
            if operations % 5 == 0:
                self.resync(log)

    def answered(self, deployment: str, obtain: bool, response: requests.Response, log: Log) -> None:
        was = self.held[deployment]
        if obtain and response.status_code == 200 and "error" not in response.text:
            self.held[deployment] = True
        elif obtain and response.status_code == 200:  # refused: no free slot
            if was:
                log.problem(f"{self.name}: {deployment} held (acknowledged) but obtaining it again is refused")
        elif not obtain and response.status_code == 200:
            if was is False:
                log.problem(f"{self.name}: released {deployment}, which was not held")
            self.held[deployment] = False
        elif not obtain and response.status_code == 404:
            if was:
                log.problem(f"{self.name}: {deployment} held (acknowledged) but released as not activated")
            self.held[deployment] = False
        else:
            log.problem(f"{self.name}: unexpected answer {response.status_code} {response.text[:200]}")

    def resync(self, log: Log) -> None:
        state, _ = until_answered(lambda: self.tenant.read(self.session))
        check_keys(self.tenant, state, log, self.name)
        self.verify(state, log)
        holders = self.tenant.holders(state, self.key)
        for deployment in self.held:
            self.held[deployment] = deployment in holders

    def verify(self, state: dict[str, Any], log: Log) -> None:
        holders = self.tenant.holders(state, self.key)
        for deployment, held in self.held.items():
            if held is not None and held != (deployment in holders):
                log.problem(
                    f"{self.name}: {deployment} acknowledged {'held' if held else 'free'}, the state says {holders}"
                )


def wait_for_load(log: Log, clients: int, at_least: float, *, after_kill: bool, at_most: float = 40.0) -> None:
    """`at_least` seconds, and then until every client has had a change acknowledged in this phase (a busy
    machine may be slower; `at_most` seconds in all, after which the test's assertions tell what is missing)."""
    began = time.monotonic()
    time.sleep(at_least)
    while time.monotonic() - began < at_most:
        with log.lock:
            counts = [c[after_kill] for c in log.acknowledged.values()]
        if len(counts) == clients and all(counts):
            return
        time.sleep(0.2)


def make_tenant(api: requests.Session, url: str, n: int) -> Tenant:
    body = {
        "instances": ["a", "b"],
        "keys": [f"AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-{n:04d}:1:365", f"AAAA-BBBB-CCCC-DDDD-EEEE-GGGG-{n:04d}:2:365"],
        "seed": f"replicas-{n}",
    }
    response = until_answered(lambda: call(api, "POST", url + "/_mock/tenants", json=body))
    assert response.status_code == 201, response.text
    return Tenant(response.json())


def test_replicas_keep_every_acknowledged_change_through_a_sigkill(team: Team) -> None:
    api = team.api()
    tenants = [make_tenant(api, team.proxy.url, n) for n in range(TENANTS)]
    log = Log()
    clients: list[CycleClient | SlotClient] = []
    for n, tenant in enumerate(tenants):
        session = requests.Session()
        a = call(
            session, "GET", tenant.doc["instances"]["a"] + "/admin/license", headers={"apikey": tenant.doc["apikey"]}
        )
        b = call(
            session, "GET", tenant.doc["instances"]["b"] + "/admin/license", headers={"apikey": tenant.doc["apikey"]}
        )
        deployments = {"a": a.json()["deployment"], "b": b.json()["deployment"]}
        tenant.deployments.update(deployments.values())
        clients.append(CycleClient(tenant, session, deployments))
        clients.extend(SlotClient(tenant, requests.Session(), f"slots {n}.{m}", seed=10 * n + m) for m in range(2))
    assert len({d for t in tenants for d in t.deployments}) == sum(len(t.deployments) for t in tenants)

    stop, killed = threading.Event(), threading.Event()
    threads = [threading.Thread(target=c.run, args=(log, stop, killed), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    wait_for_load(log, len(clients), LOAD_BEFORE_KILL, after_kill=False)
    victim = team.replicas[1]
    assert victim.process is not None
    victim.process.send_signal(signal.SIGKILL)
    killed.set()
    wait_for_load(log, len(clients), LOAD_AFTER_KILL, after_kill=True)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert victim.process.wait(10) == -signal.SIGKILL

    for tenant in tenants:  # every acknowledged change is there, read through the proxy after the kill
        state, states = until_answered(lambda t=tenant: t.read(api))  # type: ignore[misc]
        check_keys(tenant, state, log, "final")
        for client in clients:
            if client.tenant is tenant:
                client.verify(state, states, log) if isinstance(client, CycleClient) else client.verify(state, log)
    assert not log.problems, "\n".join(log.problems)
    counts = log.acknowledged
    assert len(counts) == len(clients), counts
    assert all(before > 0 and after > 0 for before, after in counts.values()), counts  # served before and after
    for replica in (team.replicas[0], team.replicas[2]):
        assert replica.process is not None and replica.process.poll() is None  # the others carry on


def test_a_tenant_deleted_through_one_replica_is_gone_on_every_replica(team: Team) -> None:
    api = team.api()
    live = [r for r in team.replicas if r.process is not None and r.process.poll() is None]
    created = call(api, "POST", live[0].ready["url"] + "/_mock/tenants", json={"instances": ["a"]})
    assert created.status_code == 201, created.text
    tenant = created.json()
    path = tenant["instances"]["a"].removeprefix(live[0].ready["url"]) + "/admin/license"
    for replica in live:  # found by every replica (each loads it on a miss)
        assert call(api, "GET", replica.ready["url"] + path, headers={"apikey": tenant["apikey"]}).status_code == 200
    assert call(api, "DELETE", f"{live[-1].ready['url']}/_mock/tenants/{tenant['tenant']}").status_code == 200
    for replica in live:
        gone = call(api, "GET", replica.ready["url"] + path, headers={"apikey": tenant["apikey"]})
        assert (gone.status_code, gone.json()) == (404, {"err": "Unknown tenant."})
    listed = {t["tenant"] for t in call(api, "GET", live[0].ready["url"] + "/_mock/tenants").json()["tenants"]}
    assert tenant["tenant"] not in listed


@contextlib.contextmanager
def slow_connections(port: int) -> Iterator[list[socket.socket]]:
    """SLOW_EACH connections that sent part of their headers, and SLOW_EACH that sent headers and part of a body."""
    sockets: list[socket.socket] = []
    try:
        for n in range(2 * SLOW_EACH):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sockets.append(sock)
            if n % 2:
                sock.sendall(b"GET /_mock/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            else:
                sock.sendall(
                    b"POST /_mock/tenants HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b'Content-Length: 1000\r\n\r\n{"instances": '
                )
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def test_slow_clients_through_haproxy_do_not_stall_another_client(team: Team) -> None:
    with slow_connections(team.proxy.port) as sockets:
        time.sleep(0.5)  # every slow connection is in: the proxy holds them
        response = requests.get(
            team.proxy.url + "/_mock/tenants", headers={TOKEN_HEADER: SERVER_TOKEN}, timeout=ANSWER_BOUND
        )
        assert response.status_code == 200, response.text
        for sock in sockets[:3]:  # still open, waiting for the rest of their requests (cut later with 408)
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)


def test_the_deploy_configuration_keeps_each_tenant_on_one_replica(team: Team, tmp_path: Path) -> None:
    """deploy/haproxy.cfg as it is (`balance uri depth 2`): every request of a tenant reaches the same replica, so
    its journal (kept per replica) holds them all; the tenants spread over the live replicas."""
    live = [r for r in team.replicas if r.process is not None and r.process.poll() is None]
    port = free_port()
    servers = [host_port(replica.ready["url"]) for replica in team.replicas]
    proxy = haproxy.Haproxy(haproxy.config(port, servers), port, tmp_path).start()
    try:
        api, served_by = team.api(), set()
        for n in range(6):
            tenant = make_tenant(api, proxy.url, 100 + n).doc
            urls = [*tenant["instances"].values(), tenant["activation_server"]]
            for url in urls * 2:
                response = until_answered(lambda u=url: call(api, "GET", u + "/version"))  # type: ignore[misc]
                assert response.status_code < 500, response.text
            headers = {TOKEN_HEADER: tenant["control_token"]}
            counts = [
                len(
                    call(api, "GET", f"{r.ready['url']}/t/{tenant['tenant']}/_mock/journal", headers=headers).json()[
                        "entries"
                    ]
                )
                for r in live
            ]
            assert sorted(counts) == [0] * (len(live) - 1) + [2 * len(urls)], counts
            served_by.add(counts.index(2 * len(urls)))
        assert len(served_by) > 1  # six tenants do not all hash to one replica
    finally:
        proxy.stop()


# The registry kept in PostgreSQL, in this process: two tenant servers on one database stand for two replicas.


@contextlib.contextmanager
def two_replicas(url: str, limits: TenantLimits) -> Iterator[tuple[TenantServer, TenantServer]]:
    with contextlib.ExitStack() as stack:
        servers = []
        for _ in range(2):
            registry = stack.enter_context(PostgresTenantRegistry.open(url, limits))
            servers.append(stack.enter_context(TenantServer(registry)))
        yield servers[0], servers[1]


def test_the_tenant_limit_counts_the_tenants_of_every_replica(pg: PostgresServer) -> None:
    with two_replicas(pg.database(), TenantLimits(max_tenants=2)) as (one, two):
        assert requests.post(one.url + "/_mock/tenants", json={}, timeout=30).status_code == 201
        assert requests.post(two.url + "/_mock/tenants", json={}, timeout=30).status_code == 201
        for server in (one, two):
            refused = requests.post(server.url + "/_mock/tenants", json={}, timeout=30)
            assert refused.status_code == 429 and "most tenants (2)" in refused.json()["err"]
        assert len(requests.get(two.url + "/_mock/tenants", timeout=30).json()["tenants"]) == 2


def test_an_idle_tenant_expires_on_every_replica_with_its_fleet(pg: PostgresServer) -> None:
    with two_replicas(pg.database(), TenantLimits(idle_timeout=1.0)) as (one, two):
        kept = one.registry
        assert isinstance(kept, PostgresTenantRegistry)
        tenant = requests.post(one.url + "/_mock/tenants", json={"instances": ["a"]}, timeout=30).json()
        path = tenant["instances"]["a"].removeprefix(one.url) + "/admin/license"
        assert requests.get(two.url + path, headers={"apikey": tenant["apikey"]}, timeout=30).status_code == 200
        kept.store.create("x" * 24, {}, {})  # a fleet left without its tenant (a replica killed mid-create)
        time.sleep(1.5)  # idle past the timeout (PostgreSQL's clock decides)
        for server in (one, two):
            gone = requests.get(server.url + path, headers={"apikey": tenant["apikey"]}, timeout=30)
            assert (gone.status_code, gone.json()) == (404, {"err": "Unknown tenant."})
        kept.expire_idle()
        assert kept.store.fleet_ids() == [] and kept.count() == 0


def test_an_odd_tenant_id_answers_404_without_a_query(pg: PostgresServer) -> None:
    """A NUL in an id once reached PostgreSQL (503, and the database's address in the answer)."""
    with two_replicas(pg.database(), TenantLimits()) as (one, _two):
        for path in ("/t/%00/prod", "/t/%00/_mock/state", "/_mock/tenants/%00", "/t/%C3%A9/prod"):
            response = requests.get(one.url + path, timeout=30)
            assert (response.status_code, response.json()) == (404, {"err": "Unknown tenant."}), path


def test_a_create_past_the_limits_is_refused_before_a_fleet_is_built(
    pg: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with two_replicas(pg.database(), TenantLimits(max_tenants=1, max_keys=2)) as (one, two):
        assert requests.post(one.url + "/_mock/tenants", json={}, timeout=30).status_code == 201
        built: list[object] = []
        build = Fleet.build
        monkeypatch.setattr(Fleet, "build", lambda *args, **kwargs: built.append(args) or build(*args, **kwargs))
        full = requests.post(two.url + "/_mock/tenants", json={}, timeout=30)
        assert full.status_code == 429 and "most tenants (1)" in full.json()["err"]
        keys = requests.post(two.url + "/_mock/tenants", json={"keys": [":1"] * 3}, timeout=30)
        assert keys.status_code == 400 and "at most 2 activation keys" in keys.json()["err"]
        assert built == []


def test_postgresql_out_of_reach_answers_503_and_the_tenants_come_back() -> None:
    with running_postgres() as server, two_replicas(server.database(), TenantLimits()) as (one, _two):
        tenant = requests.post(one.url + "/_mock/tenants", json={"instances": ["a"]}, timeout=30).json()
        licence = tenant["instances"]["a"] + "/admin/license"
        headers = {"apikey": tenant["apikey"]}
        assert requests.get(licence, headers=headers, timeout=30).status_code == 200
        server.stop("immediate")
        down = requests.get(licence, headers=headers, timeout=30)
        assert down.status_code == 503 and down.json()["err"].startswith("The state store cannot be used."), down.text
        refused = requests.post(one.url + "/_mock/tenants", json={}, timeout=30)
        assert refused.status_code == 503 and "err" in refused.json(), refused.text
        for answer in (down, refused):
            assert_names_no_server(answer.text, one.registry.store.url)  # type: ignore[attr-defined]
        server.start()
        assert until_answered(lambda: call(requests.Session(), "GET", licence, headers=headers)).status_code == 200


def test_a_replica_stops_cleanly_on_sigterm(team: Team) -> None:
    replica = team.replicas[2]
    exited = replica.stop(signal.SIGTERM)
    assert exited.returncode == 0, exited.stderr
    assert "mockcore: stopped" in exited.stderr
