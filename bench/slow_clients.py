"""How long slow clients stall an ordinary request to `mockcore serve`, with and without the read-ahead.

    python bench/slow_clients.py [--slow 50] [--tries 10] [--baseline-tries 3] [--no-baseline] [--json]

Two subprocesses, one after the other: `mockcore serve` as it is (its faces' workers only get requests that have
fully arrived: mockcore.serving), and the baseline, the same `mockcore serve` with the read-ahead switched off
(cheroot's workers read requests themselves, as before). Against each, `--tries` ordinary requests (`GET
/version` on instance a, a new connection each, one after the other) are timed first with no other client, then
with `--slow` connections of each slow kind open, first the two small kinds, then all four: a slow-header one sends
a request line and then its headers one byte every TRICKLE seconds, a slow-body one sends whole headers with
`Content-Length: 4096` and then its body one byte every TRICKLE seconds, a big-body one declares
`Content-Length: 2000000` (more than the 1 MiB the read-ahead held before 2026-12-03) and sends `{` and then a byte
every TRICKLE seconds, an expect one does the same with `Expect: 100-continue`; a connection the server cuts is
opened again at once, so that many are open all along. Prints each stall's median and max, and the ratios (with slow
clients / without; baseline / read-ahead). The baseline is timed with no slow client and with all four kinds.
Then (`--cost-rounds`, default 3) what the read-ahead costs an ordinary request: a trivial WSGI app
served with it and without it, 3,000 sequential keep-alive requests per round, requests/s and server CPU per
request. Exit status 1 if mockcore died or answered an ordinary request with anything but 200, 401 or 403
(the request carries no valid apikey: any answer shows the server is serving).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import (
    Served,
    environment,
    fmt_ratio,
    header,
    median,
    progress,
    ratio,
    served,
    session_cpu_seconds,
    table,
    workdir,
)

TRICKLE = 0.5  # seconds between two bytes of a slow connection
SETTLE = 2.0  # seconds given to the slow connections to be open and sending before timing
REQUEST_TIMEOUT = 20.0  # an ordinary request not answered by then counts as this long (a lower bound)
BASELINE_SWITCH = (
    "import mockcore.serving as s; "
    "s.make_server = lambda *a, **k: s.CherootServer(*a, read_ahead=False, **k); "
    "from mockcore.cli import main; main()"
)
SLOW_HEAD = b"GET /version HTTP/1.1\r\nHost: slow\r\nX-Slow: "
SLOW_BODY = b"POST /version HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
BIG_BODY = b"POST /version HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n{"
EXPECT = BIG_BODY[:-3] + b"\r\nExpect: 100-continue\r\n\r\n{"
KINDS: dict[str, tuple[bytes, ...]] = {
    "none": (),
    "head+body": (SLOW_HEAD, SLOW_BODY),
    "all four": (SLOW_HEAD, SLOW_BODY, BIG_BODY, EXPECT),
}


TRIVIAL_SERVER = """
import sys, threading, time
from mockcore.serving import CherootServer
def app(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]
server = CherootServer("127.0.0.1", 0, app, threads=16, tls=None, name="cost", read_ahead=sys.argv[1] == "on")
server.prepare()
threading.Thread(target=server.serve, daemon=True).start()
print(server.bind_addr[1], flush=True)
time.sleep(3600)
"""
COST_REQUESTS = 3000


def cost_round(read_ahead: bool) -> tuple[float, float | None]:
    """Requests/s and server CPU ms per request of COST_REQUESTS sequential keep-alive requests to a trivial app."""
    argv = [sys.executable, "-c", TRIVIAL_SERVER, "on" if read_ahead else "off"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert process.stdout is not None
        conn = http.client.HTTPConnection("127.0.0.1", int(process.stdout.readline()), timeout=REQUEST_TIMEOUT)
        for _ in range(200):  # warm-up
            conn.request("GET", "/")
            conn.getresponse().read()
        cpu_before, started = session_cpu_seconds(process.pid), time.perf_counter()
        for _ in range(COST_REQUESTS):
            conn.request("GET", "/")
            conn.getresponse().read()
        elapsed, cpu_after = time.perf_counter() - started, session_cpu_seconds(process.pid)
        conn.close()
    finally:
        process.kill()
        process.wait()
    cpu = (cpu_after - cpu_before) / COST_REQUESTS * 1000 if cpu_before is not None and cpu_after else None
    return COST_REQUESTS / elapsed, cpu


def cost(rounds: int) -> dict[str, Any]:
    """What the read-ahead costs an ordinary request: with it and without, alternating, `rounds` rounds."""
    runs: dict[str, list[tuple[float, float | None]]] = {"read-ahead": [], "baseline": []}
    for index in range(rounds):
        progress(f"cost: round {index + 1}/{rounds}...")
        for name in ("read-ahead", "baseline") if index % 2 == 0 else ("baseline", "read-ahead"):
            runs[name].append(cost_round(name == "read-ahead"))
    doc: dict[str, Any] = {}
    for name, values in runs.items():
        cpus = [c for _r, c in values if c is not None]
        doc[name] = {"rps": [round(r) for r, _c in values], "cpu_ms_per_request": median(cpus) if cpus else None}
    rps = ratio(median([r for r, _c in runs["read-ahead"]]), median([r for r, _c in runs["baseline"]]))
    cpu_a, cpu_b = doc["read-ahead"]["cpu_ms_per_request"], doc["baseline"]["cpu_ms_per_request"]
    doc["ratio_rps"] = rps
    doc["ratio_by_cpu"] = ratio(cpu_b, cpu_a) if cpu_a and cpu_b else None
    return doc


def mockcore_argv(ready_file: Path, baseline: bool) -> list[str]:
    code = BASELINE_SWITCH if baseline else "from mockcore.cli import main; main()"
    serve = ["serve", "--port", "0", "--activation-port", "0", "--instance", "a", "--ready-file", str(ready_file)]
    return [sys.executable, "-c", code, *serve]


class SlowClients:
    """`count` connections of each kind (the first bytes each sends), kept open (reopened when cut) by one thread."""

    def __init__(self, host: str, port: int, count: int, kinds: tuple[bytes, ...]) -> None:
        self.host, self.port, self.count, self.kinds = host, port, count, kinds
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)
        self._socks: list[tuple[socket.socket | None, bytes]] = []

    def _open(self, first: bytes) -> socket.socket | None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=2)
            sock.sendall(first)
            sock.setblocking(False)
            return sock
        except OSError:
            return None

    def __enter__(self) -> SlowClients:
        self._socks = [(self._open(first), first) for first in self.kinds for _ in range(self.count)]
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(TRICKLE):
            for index, (sock, first) in enumerate(self._socks):
                try:
                    if sock is None:
                        raise OSError("closed")
                    sock.send(b"a")
                except OSError:
                    if sock is not None:
                        sock.close()
                    self.reopened += 1
                    self._socks[index] = (self._open(first), first)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for sock, _first in self._socks:
            if sock is not None:
                sock.close()


@dataclass
class Series:
    server: str
    kinds: str
    slow: int
    stalls: list[float] = field(default_factory=list)
    unanswered: int = 0  # tries not answered within REQUEST_TIMEOUT: counted as REQUEST_TIMEOUT
    reopened: int = 0

    def row(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "slow_kinds": self.kinds,
            "slow_connections": self.slow,
            "median_s": round(median(self.stalls), 4),
            "max_s": round(max(self.stalls), 4) if self.stalls else None,
            "tries": [round(x, 4) for x in self.stalls],
            "unanswered": self.unanswered,
            "slow_connections_reopened": self.reopened,
        }


def ordinary(host: str, port: int) -> float:
    started = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
    try:
        conn.request("GET", "/version", headers={"apikey": "bench"})
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    if response.status not in (200, 401, 403):
        raise RuntimeError(f"GET /version answered {response.status}")
    return time.perf_counter() - started


def measure(server: Served, name: str, kinds: str, slow: int, tries: int) -> Series:
    url = server.ready["instances"]["a"]
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    firsts = KINDS[kinds]
    series = Series(name, kinds, slow * len(firsts))
    with contextlib.ExitStack() as stack:
        clients = stack.enter_context(SlowClients(host, int(port), slow, firsts)) if firsts else None
        if clients:
            time.sleep(SETTLE)
        for _ in range(tries):
            try:
                series.stalls.append(ordinary(host, int(port)))
            except TimeoutError:
                series.stalls.append(REQUEST_TIMEOUT)
                series.unanswered += 1
            if not server.alive():
                raise RuntimeError(f"{name} died: {server.stderr_text()[-2000:]}")
            time.sleep(0.1)
        series.reopened = clients.reopened if clients else 0
    return series


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: list[Series] = []
    servers = [("read-ahead", False, args.tries, ("none", "head+body", "all four"))]
    if not args.no_baseline:
        servers.append(("baseline", True, args.baseline_tries, ("none", "all four")))
    with workdir("mockcore-slow-") as tmp:
        for name, baseline, tries, series in servers:
            ready = tmp / f"{name}.json"
            with served(name, mockcore_argv(ready, baseline), ready, tmp) as server:
                for kinds in series:
                    count = args.slow * len(KINDS[kinds])
                    progress(f"{name}: {tries} ordinary requests, {count} slow connections ({kinds}) open...")
                    results.append(measure(server, name, kinds, args.slow, tries))
    doc: dict[str, Any] = {"benchmark": "slow_clients", **environment(), "slow_per_kind": args.slow}
    doc["series"] = [s.row() for s in results]
    by = {(s.server, s.kinds): s for s in results}
    ratios: dict[str, float | None] = {}
    for name, _baseline, _tries, series in servers:
        for kinds in series[1:]:
            ratios[f"{name}: with slow clients ({kinds}) / without (median)"] = ratio(
                median(by[(name, kinds)].stalls), median(by[(name, "none")].stalls)
            )
    if not args.no_baseline:
        ratios["with slow clients (all four): baseline / read-ahead (median)"] = ratio(
            median(by[("baseline", "all four")].stalls), median(by[("read-ahead", "all four")].stalls)
        )
        ratios["with slow clients (all four): baseline / read-ahead (max)"] = ratio(
            max(by[("baseline", "all four")].stalls), max(by[("read-ahead", "all four")].stalls)
        )
    doc["ratios"] = ratios
    worst = max(max(s.stalls) for s in results if s.server == "read-ahead" and s.slow)
    doc["target"] = {"goal_s": 1.0, "max_s": round(worst, 4), "met": worst <= 1.0}
    if args.cost_rounds:
        doc["cost"] = cost(args.cost_rounds)
    return doc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slow", type=int, default=50, help="slow connections of each kind")
    parser.add_argument("--tries", type=int, default=10, help="ordinary requests timed per series")
    parser.add_argument("--baseline-tries", type=int, default=3, help="the same for the baseline (each can take 10 s)")
    parser.add_argument("--no-baseline", action="store_true", help="measure only mockcore as it is")
    parser.add_argument(
        "--cost-rounds", type=int, default=3, help="rounds of the read-ahead's cost on ordinary requests (0: skip)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        doc = run(args)
    except RuntimeError as exc:
        print(f"mockcore misbehaved: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(header(doc))
    rows = [
        [
            s["server"],
            s["slow_kinds"],
            str(s["slow_connections"]),
            f"{s['median_s'] * 1000:.1f}",
            f"{s['max_s'] * 1000:.1f}",
            f"{s['unanswered']}/{len(s['tries'])}",
        ]
        for s in doc["series"]
    ]
    columns = [
        "server",
        "slow kinds",
        "slow connections open",
        "stall median ms",
        "stall max ms",
        f"unanswered in {REQUEST_TIMEOUT:.0f} s",
    ]
    print(table(rows, columns))
    print(f"(an unanswered try counts as {REQUEST_TIMEOUT:.0f} s: a ratio involving one is a lower bound)")
    for name, value in doc["ratios"].items():
        print(f"{name}: {fmt_ratio(value)}")
    if "cost" in doc:
        c = doc["cost"]
        print(
            f"cost, {COST_REQUESTS} sequential keep-alive requests to a trivial app per round: req/s read-ahead "
            f"{c['read-ahead']['rps']}, without {c['baseline']['rps']}: ratio {fmt_ratio(c['ratio_rps'])}; by server "
            f"CPU per request (without / read-ahead) {fmt_ratio(c['ratio_by_cpu'])}"
        )
    target = doc["target"]
    verdict = "PASS" if target["met"] else "MISS"
    print(f"goal: an ordinary request answered within 1 s, slow connections open: max {target['max_s']} s, {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
