"""In-process start, stop and reset of a mockcore fleet against moto's `ThreadedMotoServer`, measured in one run.

    python bench/inprocess_lifecycle.py [--rounds 20] [--resets 10] [--json] [--prototype-fast-stop [wake|flag|both]]

moto is the baseline only: install it for the benchmark (`python3 -m pip install 'moto[server]'`), it is no
dependency of mockcore. Everything runs in this process, on 127.0.0.1, on ports the OS picks.

Lifecycle, `--rounds` rounds, the systems' order alternating (rotating) from round to round:

    mockcore  Fleet(2 instances) + FleetServer(ServeOptions()) on port 0; start(); GET /_mock/health on instance
              a until it answers 200 (then every other face too, timed separately); stop()
    moto      ThreadedMotoServer(127.0.0.1, port 0); start(); GET /moto-api/config until 2xx (201); stop()

    start = from constructing the server(s) until the first request answered 2xx
    stop  = the stop() call, until it returns (then every port must refuse connections)

Reset, on one long-lived server of each kind, `--resets` samples of each kind per round, each on fresh state
(untimed: activate instance a over HTTP, or create an S3 bucket over HTTP) and checked afterwards (untimed:
every instance unlicensed and no slot held; no bucket left):

    mockcore  fleet.reset() (in-process)         POST /_mock/reset (HTTP, keep-alive connection)
    moto      moto_api_backend.reset() (in-process: what /moto-api/reset runs; moto documents no in-process
              reset, only the HTTP one)          POST /moto-api/reset (HTTP, keep-alive connection)

and, as the HTTP floor, the probe request (above) on the same keep-alive connection: what any request costs.

Printed: median, p90, min and max of every measurement, the ratios moto/mockcore of the medians, and the targets:
stop at least 20x faster than moto's, and reset at most 1 ms median (each of mockcore's two resets is marked).
`--prototype-fast-stop` adds mockcore lifecycles stopped by a prototype of a faster FleetServer.stop() (see
`stop_wake` and `stop_flag` below; mockcore itself is not changed). Exit status: 0 (even if a target is missed:
the line says MISS), 1 if a server misbehaved (an unexpected status, state left after a reset, a port still open after
stop), 2 if moto is not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import http.client
import importlib.metadata
import json
import logging
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchlib import LOOPBACK, REQUEST_TIMEOUT, environment, fmt_ratio, header, progress, ratio, table

from mockcore.fleet import Fleet, FleetConfig
from mockcore.lifecycle import LicenceState
from mockcore.server import FleetServer, ServeOptions

STOP_RATIO_TARGET = 20.0
RESET_TARGET_MS = 1.0
INSTANCES = ("a", "b")
FIRST_REQUEST_TIMEOUT = 10.0
WARMUP_RESETS = 2
MOTO_INSTALL = "python3 -m pip install 'moto[server]'"
MOCKCORE_PROBE = "/_mock/health"
MOTO_PROBE = "/moto-api/config"
RESET_KINDS = ("direct", "http", "floor")


class Misbehaviour(Exception):
    """A server answered something it should not have, kept state after a reset, or kept listening."""


# moto, imported only when installed


@dataclass
class Moto:
    version: str
    server_class: Any  # moto.server.ThreadedMotoServer
    reset_in_process: Callable[[], None]  # moto.moto_api._internal.models.moto_api_backend.reset


def load_moto() -> Moto | None:
    try:
        from moto.moto_api._internal.models import moto_api_backend
        from moto.server import ThreadedMotoServer
    except ImportError:
        return None
    # werkzeug logs every request of moto's server at INFO on stderr
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return Moto(importlib.metadata.version("moto"), ThreadedMotoServer, moto_api_backend.reset)


# HTTP


class Client:
    """One keep-alive connection to 127.0.0.1:port, reopened once if the server closed it meanwhile."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT)

    def call(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def expect(
        self,
        what: str,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        status_ok: int = 200,
    ) -> bytes:
        status, data = self.call(method, path, body, headers)
        if status != status_ok:
            raise Misbehaviour(f"{what}: {method} {path} answered {status}: {data[:300]!r}")
        return data

    def close(self) -> None:
        self.conn.close()


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def first_request(port: int, path: str) -> int:
    """GET `path` on a fresh connection until it answers 2xx (1 ms apart); the number of attempts."""
    deadline = time.perf_counter() + FIRST_REQUEST_TIMEOUT
    last: object = None
    for attempt in range(1, 100_000):
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if 200 <= response.status < 300:  # moto's /moto-api/config answers 201
                return attempt
            last = response.status
        except (OSError, http.client.HTTPException) as exc:
            last = exc
        finally:
            conn.close()
        if time.perf_counter() > deadline:
            break
        time.sleep(0.001)
    raise Misbehaviour(f"GET {path} on port {port} not 2xx after {FIRST_REQUEST_TIMEOUT:.0f} s: {last}")


def refuses(port: int) -> bool:
    """Whether 127.0.0.1:port refuses a connection (nothing listens any more)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            return False
    except OSError:
        return True


def touch(port: int) -> None:
    """Connect to the port and hang up: the listening socket becomes readable, which wakes its selector."""
    with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=1):
        pass


# Prototypes of a faster FleetServer.stop() (`--prototype-fast-stop`); mockcore/server.py is not changed.
#
# Why the current stop takes tens of ms: cheroot's Server.stop() asks its ConnectionManager to stop, which sets a
# flag and then polls `_serving` every 10 ms; the selector loop only sees the flag when select() returns, i.e. at
# its next wake-up, every `expiration_interval` (0.05 s in mockcore) when idle. Each face waits 0-50 ms plus up to
# 10 ms of polling, then shuts its 16 workers down (~2 ms); three faces stopped in parallel wait for the slowest.
#
# Both prototypes wake a selector by connecting to its listening socket and hanging up. On a TLS face that
# connection would fail its handshake and cheroot would log "peer dropped the TLS connection suddenly, during
# handshake", so TLS faces are stopped as today.


def _faces(server: FleetServer) -> list[Any]:
    return [face for face in server._faces if face.server is not None]


def _wake_until_left(face: Any, deadline: float) -> None:
    """Until the face's serve thread (cheroot's selector loop) has returned, touch its port every 5 ms: a wake-up
    that came before the stop flag was set only makes the loop select again."""
    while face.thread is not None and face.thread.is_alive() and time.perf_counter() < deadline:
        face.thread.join(0.005)
        if face.thread.is_alive():
            touch(face.port)


def _finish(server: FleetServer, faces: list[Any]) -> None:
    for face in faces:
        if face.thread is not None:
            face.thread.join(timeout=5)
        face.server, face.thread = None, None


def stop_wake(server: FleetServer) -> None:
    """Prototype 'wake', public cheroot attributes only: stop every face in parallel as today, and as soon as a
    face's Server.stop() has cleared `ready` (its first step; the ConnectionManager's flag follows at once),
    touch the face's port so its selector returns now rather than at its next 50 ms tick. Left: the
    ConnectionManager's 10 ms poll of `_serving` and the workers' shutdown."""
    faces = _faces(server)
    stoppers = [threading.Thread(target=face.server.stop, daemon=True) for face in faces]
    for stopper in stoppers:
        stopper.start()
    deadline = time.perf_counter() + 5
    for face, stopper in zip(faces, stoppers, strict=True):
        if face.tls is not None:
            continue
        while face.server.ready and stopper.is_alive() and time.perf_counter() < deadline:
            time.sleep(0)  # let the stopper run
        touch(face.port)
        _wake_until_left(face, deadline)
    for stopper in stoppers:
        stopper.join(timeout=10)
    _finish(server, faces)


def stop_flag(server: FleetServer) -> None:
    """Prototype 'flag', one private cheroot attribute: for every plain face first clear `ready` and set the
    ConnectionManager's stop flag (`_connections._stop_requested`), touch every port, wait for every serve thread
    to return (a join: no polling), then let cheroot's own Server.stop() do the rest, one face after the other
    (`ready` is set back so that stop() runs; the loop is over, so ConnectionManager.stop() does not sleep; in
    sequence because three threads shutting worker pools down contend for the GIL: ~8 ms against ~12 ms)."""
    faces = _faces(server)
    plain = [face for face in faces if face.tls is None]
    stoppers = [threading.Thread(target=face.server.stop, daemon=True) for face in faces if face.tls is not None]
    for stopper in stoppers:
        stopper.start()
    for face in plain:
        face.server.ready = False  # serve() leaves its loop as soon as run() returns...
        face.server._connections._stop_requested = True  # ...which it does when select() returns
    for face in plain:
        touch(face.port)
    deadline = time.perf_counter() + 5
    for face in plain:
        _wake_until_left(face, deadline)
    for face in plain:
        face.server.ready = True  # Server.stop() returns at once unless ready
        face.server.stop()
    for stopper in stoppers:
        stopper.join(timeout=10)
    _finish(server, faces)


PROTOTYPES: dict[str, Callable[[FleetServer], None]] = {"wake": stop_wake, "flag": stop_flag}


# Lifecycles: start -> first successful request -> stop


Sample = dict[str, float]


def mockcore_lifecycle(stop: Callable[[FleetServer], None]) -> Sample:
    gc.collect()  # the previous rounds' garbage is not this round's cost
    began = time.perf_counter()
    fleet = Fleet(FleetConfig(instances=INSTANCES))
    server = FleetServer(fleet, ServeOptions())
    built = time.perf_counter()
    urls: dict[str, str] = {}
    try:
        server.start()
        listening = time.perf_counter()
        urls = server.urls()
        attempts = first_request(port_of(urls[INSTANCES[0]]), MOCKCORE_PROBE)
        first = time.perf_counter()
        for name, url in urls.items():
            if name != INSTANCES[0]:
                first_request(port_of(url), MOCKCORE_PROBE)
        every = time.perf_counter()
    finally:
        stopping = time.perf_counter()
        stop(server)
        stopped = time.perf_counter()
    for name, url in urls.items():
        if not refuses(port_of(url)):
            raise Misbehaviour(f"mockcore face {name} ({url}) still accepts connections after stop()")
    return {
        "start_ms": (first - began) * 1000,
        "start_every_face_ms": (every - began) * 1000,
        "build_ms": (built - began) * 1000,
        "listen_ms": (listening - built) * 1000,
        "first_request_ms": (first - listening) * 1000,
        "first_request_attempts": attempts,
        "stop_ms": (stopped - stopping) * 1000,
    }


def moto_lifecycle(moto: Moto) -> Sample:
    gc.collect()
    began = time.perf_counter()
    server = moto.server_class(ip_address=LOOPBACK, port=0, verbose=False)
    started = False
    port = 0
    try:
        server.start()  # returns once the server is bound
        started = True
        listening = time.perf_counter()
        port = server.get_host_and_port()[1]
        attempts = first_request(port, MOTO_PROBE)
        first = time.perf_counter()
    finally:
        stopping = time.perf_counter()
        if started:
            server.stop()
        stopped = time.perf_counter()
    if not refuses(port):
        raise Misbehaviour(f"moto's server on port {port} still accepts connections after stop()")
    return {
        "start_ms": (first - began) * 1000,
        "build_ms": 0.0,
        "listen_ms": (listening - began) * 1000,
        "first_request_ms": (first - listening) * 1000,
        "first_request_attempts": attempts,
        "stop_ms": (stopped - stopping) * 1000,
    }


# Resets on long-lived servers, each after a state change


class MockcoreRig:
    """A long-lived 2-instance fleet on real ports, and a keep-alive connection to instance a."""

    def __init__(self, fleet: Fleet, server: FleetServer) -> None:
        self.fleet = fleet
        self.client = Client(port_of(server.urls()[INSTANCES[0]]))
        self.key = fleet.config.resolved_keys()[0].key or ""
        self.auth = {"apikey": fleet.config.resolved_apikey}

    def dirty(self) -> None:
        body = json.dumps({"activationKey": self.key, "quantity": 1, "comment": "bench"}).encode()
        headers = {**self.auth, "Content-Type": "application/json"}
        self.client.expect("activate a", "POST", "/admin/license/activation", body, headers)
        if self.fleet.states()[INSTANCES[0]] is not LicenceState.ACTIVE:
            raise Misbehaviour("instance a is not active after its activation")

    def check_clean(self, how: str) -> None:
        states = self.fleet.states()
        held = {key: holders for key, holders in self.fleet.slot_holders().items() if holders}
        if any(state is not LicenceState.UNLICENSED for state in states.values()) or held:
            raise Misbehaviour(f"after {how}: states {states}, slots held {held}")

    def reset_direct(self) -> None:
        self.fleet.reset()

    def reset_http(self) -> None:
        self.client.expect("reset", "POST", "/_mock/reset")

    def probe(self) -> None:
        self.client.expect("probe", "GET", MOCKCORE_PROBE)


@contextlib.contextmanager
def mockcore_rig() -> Iterator[MockcoreRig]:
    fleet = Fleet(FleetConfig(instances=INSTANCES))
    server = FleetServer(fleet, ServeOptions())
    server.start()  # stops what it started if it fails
    rig: MockcoreRig | None = None
    try:
        rig = MockcoreRig(fleet, server)
        yield rig
    finally:
        if rig is not None:
            rig.client.close()
        server.stop()


class MotoRig:
    """A long-lived ThreadedMotoServer and a keep-alive connection to it; state is an S3 bucket."""

    def __init__(self, moto: Moto, port: int) -> None:
        self.moto = moto
        self.client = Client(port)
        self.count = 0

    def dirty(self) -> None:
        self.count += 1
        self.client.expect("create a bucket", "PUT", f"/mockcore-bench-{self.count}")

    def check_clean(self, how: str) -> None:
        listing = self.client.expect("list buckets", "GET", "/")
        if b"mockcore-bench-" in listing:
            raise Misbehaviour(f"after {how}: a bucket is left: {listing[:300]!r}")

    def reset_direct(self) -> None:
        self.moto.reset_in_process()

    def reset_http(self) -> None:
        self.client.expect("reset", "POST", "/moto-api/reset")

    def probe(self) -> None:
        self.client.expect("probe", "GET", MOTO_PROBE, status_ok=201)


@contextlib.contextmanager
def moto_rig(moto: Moto) -> Iterator[MotoRig]:
    server = moto.server_class(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    rig: MotoRig | None = None
    try:
        rig = MotoRig(moto, server.get_host_and_port()[1])
        yield rig
    finally:
        if rig is not None:
            rig.client.close()
        server.stop()


Rig = MockcoreRig | MotoRig


def timed_reset(rig: Rig, how: str) -> float:
    """Milliseconds of one reset (`direct` or `http`) of fresh state, made before and checked after, untimed; or
    (`floor`) of the probe request on the same keep-alive connection: what any request costs over HTTP."""
    if how == "floor":
        began = time.perf_counter()
        rig.probe()
        return (time.perf_counter() - began) * 1000
    rig.dirty()
    reset = rig.reset_direct if how == "direct" else rig.reset_http
    began = time.perf_counter()
    reset()
    elapsed = (time.perf_counter() - began) * 1000
    rig.check_clean(f"{type(rig).__name__} reset {how}")
    return elapsed


# Measurement


@dataclass
class Results:
    lifecycles: dict[str, list[Sample]] = field(default_factory=dict)  # system -> one sample per round
    cold: dict[str, Sample] = field(default_factory=dict)  # the first lifecycle in this process, not counted
    resets: dict[str, list[float]] = field(default_factory=dict)  # "<system> <how>" -> ms


def rotated(items: Sequence[str], shift: int) -> list[str]:
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def measure(args: argparse.Namespace, moto: Moto) -> Results:
    lifecycles: dict[str, Callable[[], Sample]] = {
        "mockcore": lambda: mockcore_lifecycle(FleetServer.stop),
        "moto": lambda: moto_lifecycle(moto),
    }
    for name in args.prototypes:
        lifecycles[f"mockcore+{name}"] = functools.partial(mockcore_lifecycle, PROTOTYPES[name])
    results = Results({name: [] for name in lifecycles})
    for name, run in lifecycles.items():
        results.cold[name] = run()
    with mockcore_rig() as mock, moto_rig(moto) as motorig:
        rigs: dict[str, Rig] = {"mockcore": mock, "moto": motorig}
        kinds = [f"{system} {how}" for system in rigs for how in RESET_KINDS]
        results.resets = {kind: [] for kind in kinds}
        for kind in kinds:  # warm-up, not counted
            system, how = kind.split()
            for _ in range(WARMUP_RESETS):
                timed_reset(rigs[system], how)
        for number in range(args.rounds):
            progress(f"round {number + 1}/{args.rounds}")
            for name in rotated(list(lifecycles), number):
                results.lifecycles[name].append(lifecycles[name]())
            for system in rotated(list(rigs), number):
                for _ in range(args.resets):
                    for how in rotated(RESET_KINDS, number):
                        results.resets[f"{system} {how}"].append(timed_reset(rigs[system], how))
    return results


# Report


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil
    return ordered[int(rank) - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "p90": round(percentile(values, 90), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "n": len(values),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def at_least(value: float | None, target: float) -> dict[str, Any]:
    return {"target": f">= {target:g}", "value": value, "pass": value is not None and value >= target}


def at_most(value: float, target: float) -> dict[str, Any]:
    return {"target": f"<= {target:g}", "value": value, "pass": value <= target}


def report(args: argparse.Namespace, env: dict[str, Any], moto: Moto, results: Results) -> dict[str, Any]:
    def series(system: str, key: str) -> list[float]:
        return [sample[key] for sample in results.lifecycles[system]]

    lifecycle = {
        system: {
            key: summary(series(system, key))
            for key in results.lifecycles[system][0]
            if key != "first_request_attempts" and not (system == "moto" and key == "build_ms")
        }
        for system in results.lifecycles
    }
    resets = {kind: summary(values) for kind, values in results.resets.items()}

    def med(system: str, key: str) -> float:
        return lifecycle[system][key]["median"]

    stop_ratio = ratio(med("moto", "stop_ms"), med("mockcore", "stop_ms"))
    ratios = {
        "start": _r(ratio(med("moto", "start_ms"), med("mockcore", "start_ms"))),
        "stop": _r(stop_ratio),
        "reset_http": _r(ratio(resets["moto http"]["median"], resets["mockcore http"]["median"])),
        "reset_in_process": _r(ratio(resets["moto direct"]["median"], resets["mockcore direct"]["median"])),
        "stop_per_round_median": _r(
            statistics.median(
                [m / c for m, c in zip(series("moto", "stop_ms"), series("mockcore", "stop_ms"), strict=True) if c > 0]
            )
        ),
    }
    for name in args.prototypes:
        ratios[f"stop_{name}"] = _r(ratio(med("moto", "stop_ms"), med(f"mockcore+{name}", "stop_ms")))
    over_floor = {
        system: round(resets[f"{system} http"]["median"] - resets[f"{system} floor"]["median"], 3)
        for system in ("mockcore", "moto")
    }
    targets = {
        "stop_ratio": at_least(_r(stop_ratio), STOP_RATIO_TARGET),
        "reset_direct_ms": at_most(resets["mockcore direct"]["median"], RESET_TARGET_MS),
        "reset_http_ms": at_most(resets["mockcore http"]["median"], RESET_TARGET_MS),
    }
    for name in args.prototypes:
        targets[f"stop_ratio_{name}"] = at_least(ratios[f"stop_{name}"], STOP_RATIO_TARGET)
    return {
        "benchmark": "inprocess_lifecycle",
        **env,
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        "versions": {name: importlib.metadata.version(name) for name in ("mockcore", "cheroot", "flask", "werkzeug")}
        | {"moto": moto.version},
        "mockcore_setup": f"Fleet({len(INSTANCES)} instances) + FleetServer(ServeOptions()): "
        f"{len(INSTANCES) + 1} cheroot faces, {ServeOptions().threads} threads each; probe GET {MOCKCORE_PROBE}",
        "moto_setup": f"ThreadedMotoServer(127.0.0.1, port 0) (werkzeug, threaded); probe GET {MOTO_PROBE}",
        "rounds": args.rounds,
        "resets_per_round": args.resets,
        "prototypes": args.prototypes,
        "lifecycle_ms": lifecycle,
        "reset_ms": resets,
        "ratios_moto_over_mockcore": ratios,
        "http_reset_over_floor_ms": over_floor,
        "targets": targets,
        "cold_first_lifecycle_ms": {
            system: {k: round(v, 3) for k, v in sample.items()} for system, sample in results.cold.items()
        },
        "samples": {
            "lifecycle_ms": {
                system: {key: [round(s[key], 3) for s in samples] for key in samples[0]}
                for system, samples in results.lifecycles.items()
            },
            "reset_ms": {kind: [round(x, 4) for x in values] for kind, values in results.resets.items()},
        },
    }


LABELS = {
    "start_ms": "start: construct, start(), first GET 2xx",
    "start_every_face_ms": "start: ... until every face answered",
    "build_ms": "  of which Fleet + FleetServer(...)",
    "listen_ms": "  of which start()",
    "first_request_ms": "  of which the first request",
    "stop_ms": "stop(): until it returns",
}
RESET_LABELS = {
    "mockcore direct": "mockcore fleet.reset()",
    "mockcore http": "mockcore POST /_mock/reset",
    "moto direct": "moto moto_api_backend.reset() (in-process)",
    "moto http": "moto POST /moto-api/reset",
    "mockcore floor": f"mockcore GET {MOCKCORE_PROBE} (HTTP floor)",
    "moto floor": f"moto GET {MOTO_PROBE} (HTTP floor)",
}


def _cells(stats: dict[str, float], digits: int) -> list[str]:
    return [f"{stats[k]:.{digits}f}" for k in ("median", "p90", "min", "max")]


def _mark(target: dict[str, Any]) -> str:
    return "PASS" if target["pass"] else "MISS"


def print_report(doc: dict[str, Any]) -> None:
    versions = doc["versions"]
    print(
        f"{header(doc)}\n"
        f"mockcore {versions['mockcore']}: {doc['mockcore_setup']}\n"
        f"moto {versions['moto']}: {doc['moto_setup']}\n"
        f"cheroot {versions['cheroot']}, Flask {versions['flask']}, werkzeug {versions['werkzeug']}; "
        f"{doc['rounds']} rounds, order rotating; resets: {doc['resets_per_round']} of each kind per round on a "
        f"long-lived server, each on fresh state\n"
    )
    rows: list[list[str]] = []
    for system, stats in doc["lifecycle_ms"].items():
        for key, label in LABELS.items():
            if key in stats and (key == "stop_ms" or "+" not in system):  # a prototype only changes stop()
                rows.append([system, label, *_cells(stats[key], 1)])
    print(table(rows, ["lifecycle", "ms", "median", "p90", "min", "max"]))
    print()
    reset_rows = [[RESET_LABELS[kind], *_cells(stats, 3)] for kind, stats in doc["reset_ms"].items()]
    print(table(reset_rows, ["reset (fresh state each time); HTTP floor, ms", "median", "p90", "min", "max"]))
    ratios, targets = doc["ratios_moto_over_mockcore"], doc["targets"]
    print(
        f"\nratios moto/mockcore of the medians (> 1: mockcore is faster): start {fmt_ratio(ratios['start'])}, "
        f"stop {fmt_ratio(ratios['stop'])} (median of per-round ratios {fmt_ratio(ratios['stop_per_round_median'])}), "
        f"reset over HTTP {fmt_ratio(ratios['reset_http'])}, reset in-process {fmt_ratio(ratios['reset_in_process'])}"
    )
    floor = doc["http_reset_over_floor_ms"]
    print(
        f"reset over HTTP, median minus the HTTP floor's: mockcore {floor['mockcore']:.3f} ms, "
        f"moto {floor['moto']:.3f} ms"
    )
    print(
        f"target stop: moto/mockcore = {fmt_ratio(targets['stop_ratio']['value'])}x, "
        f"{targets['stop_ratio']['target']}x  {_mark(targets['stop_ratio'])}"
    )
    for name, label in (("reset_direct_ms", "fleet.reset()"), ("reset_http_ms", "POST /_mock/reset")):
        target = targets[name]
        print(f"target reset, {label}: median {target['value']:.3f} ms, {target['target']} ms  {_mark(target)}")
    for name in doc["prototypes"]:
        target = targets[f"stop_ratio_{name}"]
        print(
            f"prototype stop '{name}': median {doc['lifecycle_ms'][f'mockcore+{name}']['stop_ms']['median']:.1f} "
            f"ms, moto/prototype = {fmt_ratio(target['value'])}x, {target['target']}x  {_mark(target)}"
        )
    cold = doc["cold_first_lifecycle_ms"]
    print(
        "first lifecycle in the process (not counted): "
        + ", ".join(f"{s} start {c['start_ms']:.0f} ms stop {c['stop_ms']:.0f} ms" for s, c in cold.items())
    )
    print(f"1-min load at end {doc['loadavg_1m_at_end']}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description="In-process start, stop and reset of a mockcore fleet against moto's ThreadedMotoServer."
    )
    parser.add_argument("--rounds", type=int, default=20, help="lifecycle rounds, order rotating (default 20)")
    parser.add_argument("--resets", type=int, default=10, help="resets of each kind per round (default 10)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the tables")
    parser.add_argument(
        "--prototype-fast-stop",
        nargs="?",
        const="both",
        choices=["wake", "flag", "both"],
        help="also measure mockcore stopped by a prototype of a faster FleetServer.stop() (default: both)",
    )
    args = parser.parse_args()
    if not 1 <= args.rounds <= 200 or not 1 <= args.resets <= 1000:
        parser.error("--rounds 1-200, --resets 1-1000")
    choice = args.prototype_fast_stop
    args.prototypes = [] if choice is None else (["wake", "flag"] if choice == "both" else [choice])
    moto = load_moto()
    if moto is None:
        print(
            f"moto is not installed; it is the baseline of this benchmark only (no dependency of mockcore):\n"
            f"    {MOTO_INSTALL}",
            file=sys.stderr,
        )
        return 2
    env = environment()  # the load average at start
    try:
        results = measure(args, moto)
    except Misbehaviour as exc:
        print(f"misbehaviour: {exc}", file=sys.stderr)
        return 1
    doc = report(args, env, moto, results)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_report(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
