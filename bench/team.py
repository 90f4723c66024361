"""mockcore for a team, in one run: the state stores, the replicas behind HAProxy, slow clients through HAProxy.

    python3 bench/team.py                  # ~2 min on 2 cores
    python3 bench/team.py --duration 3 --json

Needs PostgreSQL's and HAProxy's Debian packages (`apt-get install -y postgresql haproxy`): a throwaway PostgreSQL
is started as tests/postgres.py starts it, HAProxy with deploy/haproxy.cfg's settings (tests/haproxy.py).

1. State stores. `mockcore serve --instance a --instance b` on memory, on an SQLite file and on PostgreSQL
   (`--state`), each in turn: requests/s of a licence read (GET /admin/license, 4 keep-alive connections) and of
   the full failover cycle (activate a, register b as a's online backup, nominate b, deactivate b: one keep-alive
   client, in order; every answer must be 200), and the ratios of SQLite and PostgreSQL to memory.
2. Replicas. `mockcore serve --tenants --state postgresql://...` replicas behind HAProxy (the deploy
   configuration: tenant affinity by the /t/<ID> prefix): one replica, then three, each with the same tenants;
   licence reads of every tenant at once (one connection per tenant): requests/s, and three against one.
3. Slow clients through HAProxy. An ordinary licence read of a tenant, timed alone and then while 100 slow-header
   and 100 slow-body connections (bench/slow_clients.py's) hang on through the proxy: the medians and their ratio.
4. Idle tenants. bench/tenants.py in a process of its own (so its memory figures are its own): the memory 1,000
   idle two-instance tenants hold, against the same process with none.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchlib import (
    Load,
    Served,
    connect,
    environment,
    fmt_ratio,
    header,
    median,
    progress,
    ratio,
    run_python,
    served,
    table,
    workdir,
)
from slow_clients import SETTLE, SlowClients

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/postgres.py and tests/haproxy.py: the tests' PostgreSQL and HAProxy

from tests import haproxy  # noqa: E402
from tests.postgres import PostgresServer, binaries  # noqa: E402
from tests.serving import free_port  # noqa: E402

MOCKCORE = [sys.executable, "-m", "mockcore", "serve"]
TENANTS = 6
STALL_TRIES = 10


# 1. State stores


def cycle_steps(a: str, b: str, apikey: str, key: str, deployment: str) -> list[tuple[str, str, bytes | None, dict]]:
    auth = {"apikey": apikey}
    activation = json.dumps({"activationKey": key, "quantity": 1, "comment": "bench"}).encode()
    return [
        (a, "/admin/license/activation", activation, {**auth, "Content-Type": "application/json"}),
        (b, "/admin/license/backup", None, {**auth, "activation-key": key, "active-deployment-id": deployment}),
        (b, "/admin/license/backup/nomination", None, auth),
        (b, "/admin/license/deactivation", None, auth),
    ]


def run_cycles(server: Served, duration: float) -> Load:
    """The failover cycle over and over, one keep-alive connection per instance, for `duration` seconds."""
    a, b = server.ready["instances"]["a"], server.ready["instances"]["b"]
    apikey, key = server.ready["apikey"], server.ready["keys"][0]["key"]
    conns = {a: connect(a), b: connect(b)}

    def send(base: str, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> bytes:
        conns[base].request(method, path, body=body, headers=headers)
        response = conns[base].getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {path} answered {response.status}: {data[:300]!r}")
        return data

    deployment = json.loads(send(a, "GET", "/admin/license", None, {"apikey": apikey}))["deployment"]
    steps = cycle_steps(a, b, apikey, key, deployment)
    done, began = 0, time.perf_counter()
    deadline = began + duration
    try:
        while time.perf_counter() < deadline:
            for base, path, body, headers in steps:
                send(base, "POST", path, body, headers)
            done += len(steps)
    finally:
        for conn in conns.values():
            conn.close()
    return Load("python", 1, done, time.perf_counter() - began, 0)


def stores(pg: PostgresServer, work: Path, duration: float) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, state in (("memory", None), ("sqlite", str(work / "state.db")), ("postgresql", pg.database())):
        progress(f"state store: {name}")
        ready = work / f"{name}.json"
        argv = [*MOCKCORE, "--port", "0", "--activation-port", "0", "--instance", "a", "--instance", "b"]
        argv += ["--ready-file", str(ready), *(["--state", state] if state else [])]
        with served(name, argv, ready, work) as server:
            a, apikey = server.ready["instances"]["a"], server.ready["apikey"]
            read = run_python(a, "/admin/license", {"apikey": apikey}, 4, duration)
            if read.errors:
                raise RuntimeError(f"{name}: licence reads failed: {read.statuses}")
            cycle = run_cycles(server, duration)
        results[name] = {"licence_read_rps": read.rps, "cycle_rps": cycle.rps}
    for name in ("sqlite", "postgresql"):
        for figure in ("licence_read_rps", "cycle_rps"):
            results[name][figure.replace("_rps", "_to_memory")] = ratio(
                results[name][figure], results["memory"][figure]
            )
    return results


# 2 and 3. Replicas and slow clients behind HAProxy


@contextlib.contextmanager
def replicas(url: str, work: Path, count: int) -> Iterator[list[Served]]:
    with contextlib.ExitStack() as stack:
        started = []
        for n in range(count):
            ready = work / f"replica-{n}.json"
            argv = [*MOCKCORE, "--tenants", "--port", "0", "--state", url, "--ready-file", str(ready)]
            started.append(stack.enter_context(served(f"replica-{n}", argv, ready, work)))
        yield started


@contextlib.contextmanager
def proxy(servers: list[Served], work: Path, name: str) -> Iterator[haproxy.Haproxy]:
    addresses = []
    for server in servers:
        host, port = server.ready["url"].split("//", 1)[1].rsplit(":", 1)
        addresses.append((host, int(port)))
    port = free_port()
    folder = work / name
    folder.mkdir()
    running = haproxy.Haproxy(haproxy.config(port, addresses), port, folder).start()
    try:
        time.sleep(1.5)  # the first health checks pass
        yield running
    finally:
        running.stop()


def tenant_reads(url: str, tenants: list[dict[str, Any]], duration: float) -> Load:
    """Licence reads of every tenant at once through `url`, one keep-alive connection per tenant."""
    loads: list[Load] = []

    def one(tenant: dict[str, Any]) -> None:
        path = tenant["instances"]["core"].split("//", 1)[1].split("/", 1)[1]
        loads.append(run_python(url, f"/{path}/admin/license", {"apikey": tenant["apikey"]}, 1, duration))

    threads = [threading.Thread(target=one, args=(tenant,)) for tenant in tenants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = sum(load.errors for load in loads)
    if errors:
        raise RuntimeError(f"tenant reads through HAProxy failed: {[load.statuses for load in loads]}")
    return Load("python", len(loads), sum(x.requests for x in loads), max(x.seconds for x in loads), 0)


def timed_read(url: str, path: str, apikey: str) -> float:
    started = time.perf_counter()
    conn = connect(url)
    try:
        conn.request("GET", path, headers={"apikey": apikey})
        response = conn.getresponse()
        response.read()
    except (TimeoutError, http.client.HTTPException, OSError):
        return float("inf")
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"GET {path} answered {response.status}")
    return time.perf_counter() - started


def team(pg: PostgresServer, work: Path, duration: float) -> dict[str, Any]:
    url = pg.database()
    with replicas(url, work, 3) as three:
        with proxy(three[:1], work, "one") as lb:
            tenants = []
            for _ in range(TENANTS):
                conn = connect(lb.url)
                conn.request("POST", "/_mock/tenants", body=b"{}", headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                tenants.append(json.loads(response.read()))
                conn.close()
            progress("replicas: one behind HAProxy")
            one = tenant_reads(lb.url, tenants, duration)
        with proxy(three, work, "three") as lb:
            progress("replicas: three behind HAProxy")
            many = tenant_reads(lb.url, tenants, duration)
            progress("slow clients through HAProxy")
            tenant = tenants[0]
            path = "/" + tenant["instances"]["core"].split("//", 1)[1].split("/", 1)[1] + "/admin/license"
            alone = [timed_read(lb.url, path, tenant["apikey"]) for _ in range(STALL_TRIES)]
            with SlowClients("127.0.0.1", lb.port, 100) as slow:
                time.sleep(SETTLE)
                stalled = []
                for _ in range(STALL_TRIES):
                    stalled.append(timed_read(lb.url, path, tenant["apikey"]))
                    time.sleep(0.2)
                reopened = slow.reopened
    return {
        "replicas": {
            "tenants": TENANTS,
            "one_replica_rps": one.rps,
            "three_replicas_rps": many.rps,
            "three_to_one": ratio(many.rps, one.rps),
        },
        "slow_clients": {
            "slow_connections": 200,
            "alone_median_s": median(alone),
            "with_slow_median_s": median(stalled),
            "with_slow_max_s": max(stalled),
            "with_slow_to_alone": ratio(median(stalled), median(alone)),
            "slow_connections_reopened": reopened,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of each measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    bin_dir = binaries()
    if bin_dir is None or shutil.which("haproxy") is None:
        print(f"needs PostgreSQL and HAProxy: `{haproxy.INSTALL}`", file=sys.stderr)
        return 2
    doc: dict[str, Any] = {"benchmark": "team service", **environment()}
    pg = PostgresServer(bin_dir)
    try:
        pg.start()
        with workdir("mockcore-team-") as work:
            doc["stores"] = stores(pg, work, args.duration)
            doc.update(team(pg, work, args.duration))
            doc["idle_tenants"] = idle_tenants()
    finally:
        pg.remove()
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(header(doc))
    rows = [
        [
            name,
            f"{figures['licence_read_rps']:.0f}",
            fmt_ratio(figures.get("licence_read_to_memory", 1.0)),
            f"{figures['cycle_rps']:.0f}",
            fmt_ratio(figures.get("cycle_to_memory", 1.0)),
        ]
        for name, figures in doc["stores"].items()
    ]
    print(table(rows, ["store", "licence read req/s", "/ memory", "failover cycle req/s", "/ memory"]))
    rep, slow = doc["replicas"], doc["slow_clients"]
    print(
        f"replicas behind HAProxy ({rep['tenants']} tenants, licence reads): one {rep['one_replica_rps']:.0f} req/s, "
        f"three {rep['three_replicas_rps']:.0f} req/s, three / one = {fmt_ratio(rep['three_to_one'])}"
    )
    print(
        f"an ordinary request through HAProxy: alone {slow['alone_median_s'] * 1000:.1f} ms (median), with 100 "
        f"slow-header + 100 slow-body connections {slow['with_slow_median_s'] * 1000:.1f} ms (median, max "
        f"{slow['with_slow_max_s'] * 1000:.1f} ms), ratio {fmt_ratio(slow['with_slow_to_alone'])}"
    )
    idle = doc["idle_tenants"]
    print(
        f"{idle['tenants']} idle tenants: Python heap +{idle['idle']['heap_mib']:.1f} MiB "
        f"({idle['idle']['heap_kib_per_tenant']:.1f} KiB each), RSS +{idle['idle']['rss_mib']:.1f} MiB; process RSS "
        f"with them / without = {fmt_ratio(idle['ratios']['process_rss_with_tenants_to_without'])}"
    )
    return 0


def idle_tenants() -> dict[str, Any]:
    """bench/tenants.py's figures for 1,000 idle tenants, measured in a process of its own."""
    script = Path(__file__).with_name("tenants.py")
    done = subprocess.run(
        [sys.executable, str(script), "--tenants", "1000", "--json"], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench/tenants.py failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


if __name__ == "__main__":
    sys.exit(main())
