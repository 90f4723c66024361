"""HTTP throughput of `mockcore serve` against a bare Flask app on the same WSGI server, measured in one run.

    python bench/http_throughput.py [--duration 5] [--connections 16] [--rounds 3] [--loadgen auto] [--json]

Two subprocesses: `mockcore serve` with two instances (a, b) and the default key (one slot), and bench/bare_app.py
(one trivial JSON route, served by cheroot with mockcore's settings and thread count). Each round measures, in
alternating order:

    (a) GET /admin/license with the apikey header, instance a active          wrk (or python), N connections
    (b) GET /ping on the bare app                                              same generator, N connections
    (c) the licence cycle, sequentially over keep-alive connections to a and b python client, 1 connection
    (d) GET /ping on the bare app                                              python client, 1 connection

The cycle is: activate a; register b as a's online backup; nominate b (a loses its slot); deactivate b (the
slot is free again). It leaves a and b unlicensed with `reactivate`, the state it starts from, so it can run
back to back; this is checked before timing, and every response of every cycle must be 200.

Printed: medians of the rounds and the ratios (a)/(b) (target >= 0.7) and (c)/(d) (the cycle's requests/s
against the bare route, both one sequential client), each also by the servers' CPU time per request, which
moves less with other work on the machine. The cycle cannot use wrk: it spans two ports in order.
Exit status 1 if mockcore misbehaved (an error, a status >= 400, a non-200 in the cycle, a crash), else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import (
    Load,
    LoadGenerator,
    Served,
    bare_app_argv,
    connect,
    environment,
    fmt_ratio,
    header,
    median,
    progress,
    ratio,
    request_once,
    run_python,
    served,
    table,
    timed_on,
    wait_until_serving,
    workdir,
)

from mockcore.server import ServeOptions

TARGET = 0.7
WARMUP_SECONDS = 1
THREADS = ServeOptions().threads


class Misbehaviour(Exception):
    """mockcore answered something it should not have (or died): reported with a reproduction."""


def mockcore_argv(ready_file: Path) -> list[str]:
    """`mockcore serve ...`, run by this interpreter (so it is the mockcore this script imports)."""
    return [
        sys.executable,
        "-c",
        "from mockcore.cli import main; main()",
        "serve",
        "--port",
        "0",
        "--activation-port",
        "0",
        "--instance",
        "a",
        "--instance",
        "b",
        "--ready-file",
        str(ready_file),
    ]


@dataclass
class Fleet:
    """The served fleet, as the benchmark talks to it."""

    a: str
    b: str
    apikey: str
    key: str
    a_deployment: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"apikey": self.apikey}

    def steps(self) -> list[tuple[str, str, str, bytes | None, dict[str, str]]]:
        """The cycle: (label, base URL, method path, body, headers) for each of its four requests."""
        activation = json.dumps({"activationKey": self.key, "quantity": 1, "comment": "bench"}).encode()
        return [
            (
                "activate a",
                self.a,
                "POST /admin/license/activation",
                activation,
                {**self.auth, "Content-Type": "application/json"},
            ),
            (
                "register b as a's online backup",
                self.b,
                "POST /admin/license/backup",
                None,
                {**self.auth, "activation-key": self.key, "active-deployment-id": self.a_deployment},
            ),
            ("nominate b", self.b, "POST /admin/license/backup/nomination", None, self.auth),
            ("deactivate b", self.b, "POST /admin/license/deactivation", None, self.auth),
        ]

    def call(self, base: str, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        status, data = request_once(base, method, path, body, self.auth)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, data.decode(errors="replace")


def expect(fleet: Fleet, base: str, method: str, path: str, body: bytes | None = None) -> Any:
    try:
        status, doc = fleet.call(base, method, path, body)
    except (OSError, http.client.HTTPException) as exc:
        raise Misbehaviour(f"{method} {base}{path} failed: {exc!r}") from exc
    if status != 200:
        raise Misbehaviour(f"{method} {base}{path} answered {status}: {doc}")
    return doc


def check_start_state(fleet: Fleet) -> None:
    """a and b unlicensed with `reactivate`, b not a backup (the key's one slot is free: the next activation of a
    proves it, as a held slot would refuse it with E_NO_SLOT)."""
    for name, base in (("a", fleet.a), ("b", fleet.b)):
        doc = expect(fleet, base, "GET", "/admin/license")
        if doc.get("reactivate") is not True or "days_left" in doc:
            raise Misbehaviour(f"{name} is not back to unlicensed with reactivate after a cycle: {doc}")
    if expect(fleet, fleet.b, "GET", "/admin/license/backup") != {"is_backup": False}:
        raise Misbehaviour("b is still a backup after a cycle")


@dataclass
class CycleLoad(Load):
    """A run of whole licence cycles: four requests each, every one 200 (else `failure` says which was not)."""

    cycles: int = 0
    failure: str | None = None

    @property
    def cps(self) -> float:
        return self.cycles / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "cycles_per_s": round(self.cps, 1)}


def run_cycles(fleet: Fleet, duration: float, max_cycles: int = 1_000_000) -> CycleLoad:
    """Whole cycles until `duration` is over, one request at a time over one keep-alive connection per instance.
    Stops at the first non-200 (reported as a failure with the request that got it)."""
    steps = fleet.steps()
    conns: dict[str, http.client.HTTPConnection] = {fleet.a: connect(fleet.a), fleet.b: connect(fleet.b)}
    tally = CycleLoad("python", 1, 0, 0.0, 0)
    began = time.perf_counter()
    deadline = began + duration
    try:
        while time.perf_counter() < deadline and tally.cycles < max_cycles:
            for label, base, line, body, headers in steps:
                method, path = line.split(" ", 1)
                conn = conns[base]
                try:
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    tally.errors += 1
                    tally.failure = f"cycle {tally.cycles + 1}, step '{label}': {line} on {base} failed: {exc!r}"
                    return tally
                tally.requests += 1
                if response.status != 200:
                    tally.errors += 1
                    tally.failure = (
                        f"cycle {tally.cycles + 1}, step '{label}': {line} on {base} answered "
                        f"{response.status} {data.decode(errors='replace')}"
                    )
                    return tally
            tally.cycles += 1
    finally:
        tally.seconds = time.perf_counter() - began
        for conn in conns.values():
            conn.close()
    return tally


def verify_cycle(fleet: Fleet) -> None:
    """Two cycles from a fresh fleet: the first leaves the start state, the second shows it repeats."""
    for attempt in (1, 2):
        result = run_cycles(fleet, duration=60, max_cycles=1)
        if result.failure or result.cycles != 1:
            raise Misbehaviour(f"verification cycle {attempt}: {result.failure}")
        check_start_state(fleet)


@dataclass
class Results:
    licence: list[Load] = field(default_factory=list)
    bare: list[Load] = field(default_factory=list)
    cycle: list[CycleLoad] = field(default_factory=list)
    bare_single: list[Load] = field(default_factory=list)


def measure_licence(fleet: Fleet, mock: Served, gen: LoadGenerator, connections: int, duration: int) -> Load:
    """(a): with a active (the full licence document), then back to the start state."""
    expect(
        fleet,
        fleet.a,
        "POST",
        "/admin/license/activation",
        json.dumps({"activationKey": fleet.key, "quantity": 1}).encode(),
    )
    try:
        return gen.run(mock, fleet.a, "/admin/license", fleet.auth, connections, duration)
    finally:
        expect(fleet, fleet.a, "POST", "/admin/license/deactivation")
        check_start_state(fleet)


def check_alive(*servers: Served) -> None:
    for server in servers:
        if not server.alive():
            raise Misbehaviour(f"{server.name} died (exit {server.process.returncode}): {server.stderr_text()}")


@contextlib.contextmanager
def _reproduction(mock: Served) -> Iterator[None]:
    """A Misbehaviour leaves with how to reproduce it: the command that served the fleet, and its stderr."""
    try:
        yield
    except Misbehaviour as exc:
        command = "mockcore serve --port 0 --activation-port 0 --instance a --instance b"
        died = "" if mock.alive() else f"\nmockcore is no longer running (exit status {mock.process.returncode})"
        raise Misbehaviour(
            f"{exc}{died}\nreproduce: {command}, then the request above (apikey {mock.ready['apikey']}, "
            f"key {mock.ready['keys'][0]['key']})\nmockcore stderr (tail): {mock.stderr_text()[-2000:] or '(empty)'}"
        ) from exc


def run(args: argparse.Namespace) -> tuple[dict[str, Any], Results]:
    with workdir("mockcore-bench-") as tmp:
        gen = LoadGenerator(args.loadgen, tmp)
        mc_ready, bare_ready = tmp / "mockcore.json", tmp / "bare.json"
        with (
            served("mockcore", mockcore_argv(mc_ready), mc_ready, tmp) as mock,
            served("bare", bare_app_argv("cheroot", THREADS, bare_ready), bare_ready, tmp) as bare,
            _reproduction(mock),
        ):
            instances = mock.ready["instances"]
            fleet = Fleet(instances["a"], instances["b"], mock.ready["apikey"], mock.ready["keys"][0]["key"])
            bare_url = bare.ready["url"]
            wait_until_serving(bare_url, "/ping")
            fleet.a_deployment = expect(fleet, fleet.a, "GET", "/admin/license")["deployment"]
            progress("verifying the licence cycle returns to its start state...")
            verify_cycle(fleet)

            def licence(duration: int) -> Load:
                return measure_licence(fleet, mock, gen, args.connections, duration)

            def bare_many(duration: int) -> Load:
                return gen.run(bare, bare_url, "/ping", {}, args.connections, duration)

            def cycle(duration: int) -> CycleLoad:
                result = timed_on(mock, lambda: run_cycles(fleet, duration))
                if result.failure:
                    raise Misbehaviour(result.failure)
                check_start_state(fleet)
                return result

            def bare_single(duration: int) -> Load:
                return timed_on(bare, lambda: run_python(bare_url, "/ping", {}, 1, duration))

            progress(f"warm-up ({WARMUP_SECONDS} s each)...")
            for warm_up in (licence, bare_many, cycle, bare_single):
                warm_up(WARMUP_SECONDS)

            results = Results()
            for index in range(args.rounds):
                progress(f"round {index + 1}/{args.rounds} ({4 * args.duration} s)...")
                pairs: list[Callable[[], None]] = [
                    lambda: results.licence.append(licence(args.duration)),
                    lambda: results.bare.append(bare_many(args.duration)),
                ]
                singles: list[Callable[[], None]] = [
                    lambda: results.cycle.append(cycle(args.duration)),
                    lambda: results.bare_single.append(bare_single(args.duration)),
                ]
                if index % 2:
                    pairs.reverse()
                    singles.reverse()
                for step in pairs + singles:
                    step()
                    check_alive(mock, bare)
            errors = sum(x.errors for x in results.licence)
            if errors:
                raise Misbehaviour(
                    f"GET /admin/license under load ({args.connections} connections): {errors} errors "
                    f"({[x.statuses for x in results.licence]})"
                )
            mock_log = mock.stderr_text()
    return report(args, gen.describe(), results, mock_log), results


def _cpu(loads: Sequence[Load]) -> float | None:
    values = [x.cpu_ms_per_request for x in loads]
    known = [x for x in values if x is not None]
    return median(known) if known else None


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def report(args: argparse.Namespace, generator: str, results: Results, mock_log: str) -> dict[str, Any]:
    lic, bare = median([x.rps for x in results.licence]), median([x.rps for x in results.bare])
    cyc, single = median([x.rps for x in results.cycle]), median([x.rps for x in results.bare_single])
    cpu = {name: _cpu(loads) for name, loads in vars(results).items()}

    def cpu_ratio(numerator: str, denominator: str) -> float | None:
        """Throughput ratio implied by CPU per request: the baseline's cost over the measured one's."""
        a, b = cpu[numerator], cpu[denominator]
        return _round(ratio(b, a)) if a is not None and b is not None else None

    return {
        "benchmark": "http_throughput",
        **environment(),
        "load_generator": generator,
        "cycle_generator": "python http.client, 1 keep-alive connection per instance, sequential",
        "server": f"cheroot {importlib.metadata.version('cheroot')}, {THREADS} threads (ServeOptions.threads); "
        f"Flask {importlib.metadata.version('flask')}",
        "duration_s": args.duration,
        "connections": args.connections,
        "rounds": args.rounds,
        "licence_rps": round(lic, 1),
        "bare_rps": round(bare, 1),
        "ratio_licence_to_bare": _round(ratio(lic, bare)),
        "target": TARGET,
        "meets_target": (ratio(lic, bare) or 0) >= TARGET,
        "round_ratios_licence_to_bare": [
            _round(ratio(a.rps, b.rps)) for a, b in zip(results.licence, results.bare, strict=True)
        ],
        "cycle_rps": round(cyc, 1),
        "cycles_per_s": round(median([x.cps for x in results.cycle]), 1),
        "bare_single_rps": round(single, 1),
        "ratio_cycle_to_bare_single": _round(ratio(cyc, single)),
        "server_cpu_ms_per_request": {name: _round(value, 4) for name, value in cpu.items()},
        "cpu_ratio_licence_to_bare": cpu_ratio("licence", "bare"),
        "cpu_ratio_cycle_to_bare_single": cpu_ratio("cycle", "bare_single"),
        "runs": {name: [x.as_dict() for x in loads] for name, loads in vars(results).items()},
        "mockcore_stderr_tracebacks": mock_log.count("Traceback"),
    }


def _row(label: str, loads: Sequence[Load], rps: str) -> list[str]:
    cpu = _cpu(loads)
    return [
        label,
        str(loads[0].connections),
        loads[0].generator,
        rps,
        " ".join(f"{x.rps:,.0f}" for x in loads),
        "n/a" if cpu is None else f"{cpu:.2f}",
        str(sum(x.errors for x in loads)),
    ]


def print_table(doc: dict[str, Any], results: Results) -> None:
    print(
        f"{header(doc)}\n"
        f"server: {doc['server']}\n"
        f"load generator: {doc['load_generator']}; {doc['rounds']} rounds x {doc['duration_s']} s, alternating\n"
    )

    def rps(loads: Sequence[Load]) -> str:
        return f"{median([x.rps for x in loads]):,.0f}"

    rows = [
        _row("(a) GET /admin/license, apikey", results.licence, rps(results.licence)),
        _row("(b) bare Flask GET /ping", results.bare, rps(results.bare)),
        _row(
            "(c) licence cycle, 4 requests",
            results.cycle,
            f"{rps(results.cycle)} = {doc['cycles_per_s']:,.0f} cycles/s",
        ),
        _row("(d) bare Flask GET /ping", results.bare_single, rps(results.bare_single)),
    ]
    columns = ["measurement", "conns", "client", "req/s median", "req/s per round", "CPU ms/req", "errors"]
    print(table(rows, columns))
    verdict = "meets" if doc["meets_target"] else "BELOW"
    per_round = " ".join(fmt_ratio(x) for x in doc["round_ratios_licence_to_bare"])
    print(
        f"\n(a)/(b) = {fmt_ratio(doc['ratio_licence_to_bare'])}  requests/s, {verdict} target >= {TARGET} "
        f"(per round: {per_round}); by server CPU per request: {fmt_ratio(doc['cpu_ratio_licence_to_bare'])}\n"
        f"(c)/(d) = {fmt_ratio(doc['ratio_cycle_to_bare_single'])}  requests/s of the licence cycle against the "
        f"bare route, both one sequential python client; by server CPU per request: "
        f"{fmt_ratio(doc['cpu_ratio_cycle_to_bare_single'])}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Requests/s of mockcore serve against a bare Flask app on cheroot, as ratios."
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="connections for (a) and (b) (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, medians reported (default 3)")
    parser.add_argument(
        "--loadgen", choices=["auto", "wrk", "python"], default="auto", help="auto: wrk if installed, else python"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = parser.parse_args()
    if not 1 <= args.duration <= 300 or not 1 <= args.connections <= 256 or not 1 <= args.rounds <= 20:
        parser.error("--duration 1-300, --connections 1-256, --rounds 1-20")
    try:
        doc, results = run(args)
    except Misbehaviour as exc:
        print(f"mockcore misbehaved: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_table(doc, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
