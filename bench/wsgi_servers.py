"""The measurement behind mockcore's WSGI server: one minimal Flask app on cheroot, waitress, gunicorn and
werkzeug's development server, each in its own subprocess, measured in the same run with the same load.

    python bench/wsgi_servers.py [--duration 5] [--connections 16] [--rounds 3] [--loadgen auto] [--json]

Each server gets mockcore's thread count (ServeOptions.threads): cheroot numthreads, waitress threads, gunicorn
one gthread worker with that many threads; werkzeug's threaded dev server (a thread per connection) is the
reference. waitress and gunicorn are benchmark-only (`pip install waitress gunicorn`); a missing one is skipped
with a note. Rounds visit the servers in rotating order; medians are reported as ratios to cheroot, next to
what the choice also depends on: TLS, and whether the server runs embedded in a thread of the caller's process.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from benchlib import (
    Load,
    LoadGenerator,
    Served,
    bare_app_argv,
    environment,
    fmt_ratio,
    header,
    median,
    progress,
    ratio,
    served,
    table,
    wait_until_serving,
    workdir,
)

from mockcore.server import ServeOptions

THREADS = ServeOptions().threads
BASELINE = "cheroot"
WARMUP_SECONDS = 1


@dataclass(frozen=True)
class Candidate:
    name: str
    package: str
    tls: str
    embeddable: str
    how: str


CANDIDATES = (
    Candidate("cheroot", "cheroot", "yes (ssl_adapter)", "yes (serve() in a thread, stop())", f"numthreads={THREADS}"),
    Candidate(
        "waitress",
        "waitress",
        "no (needs a TLS proxy)",
        "yes (create_server().run() in a thread)",
        f"threads={THREADS}",
    ),
    Candidate(
        "gunicorn",
        "gunicorn",
        "yes (certfile/keyfile)",
        "no (pre-fork arbiter: its own process, signals)",
        f"1 gthread worker, threads={THREADS}",
    ),
    Candidate(
        "werkzeug",
        "werkzeug",
        "yes (ssl_context)",
        "yes (make_server() in a thread); development only",
        "threaded: a thread per connection",
    ),
)


def version(package: str) -> str | None:
    if importlib.util.find_spec(package) is None:
        return None
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class Outcome:
    candidate: Candidate
    version: str | None
    loads: list[Load] = field(default_factory=list)
    skipped: str | None = None

    @property
    def rps(self) -> float:
        return median([x.rps for x in self.loads])

    @property
    def cpu_ms_per_request(self) -> float | None:
        known = [x.cpu_ms_per_request for x in self.loads if x.cpu_ms_per_request is not None]
        return median(known) if known else None


def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[Outcome]]:
    outcomes = [Outcome(c, version(c.package)) for c in CANDIDATES]
    for outcome in outcomes:
        if outcome.version is None:
            outcome.skipped = f"not installed (pip install {outcome.candidate.package})"
    active = [o for o in outcomes if o.skipped is None]
    with workdir("mockcore-wsgi-") as tmp, contextlib.ExitStack() as stack:
        gen = LoadGenerator(args.loadgen, tmp)
        servers: dict[str, Served] = {}
        for outcome in active:
            name = outcome.candidate.name
            ready = tmp / f"{name}.json"
            try:
                servers[name] = stack.enter_context(served(name, bare_app_argv(name, THREADS, ready), ready, tmp))
                wait_until_serving(servers[name].ready["url"], "/ping")
            except RuntimeError as exc:
                outcome.skipped = f"did not start: {str(exc)[:300]}"
        active = [o for o in active if o.skipped is None]

        def measure(outcome: Outcome, duration: int) -> Load:
            server = servers[outcome.candidate.name]
            load = gen.run(server, server.ready["url"], "/ping", {}, args.connections, duration)
            if not server.alive():
                raise RuntimeError(f"{server.name} died: {server.stderr_text()[-2000:]}")
            return load

        progress(f"warm-up ({WARMUP_SECONDS} s each)...")
        for outcome in active:
            measure(outcome, WARMUP_SECONDS)
        for index in range(args.rounds):
            progress(f"round {index + 1}/{args.rounds} ({len(active) * args.duration} s)...")
            shift = index % len(active) if active else 0
            for outcome in active[shift:] + active[:shift]:
                outcome.loads.append(measure(outcome, args.duration))
        generator = gen.describe()
    return report(args, generator, outcomes), outcomes


def report(args: argparse.Namespace, generator: str, outcomes: list[Outcome]) -> dict[str, Any]:
    baseline = next((o for o in outcomes if o.candidate.name == BASELINE and o.loads), None)
    base = baseline.rps if baseline else 0.0
    base_cpu = baseline.cpu_ms_per_request if baseline else None

    def cpu_ratio(outcome: Outcome) -> float | None:
        cpu = outcome.cpu_ms_per_request
        return _round(ratio(base_cpu, cpu)) if cpu is not None and base_cpu is not None else None

    return {
        "benchmark": "wsgi_servers",
        **environment(),
        "load_generator": generator,
        "app": "Flask " + (version("flask") or "?") + ", one JSON route GET /ping",
        "threads": THREADS,
        "duration_s": args.duration,
        "connections": args.connections,
        "rounds": args.rounds,
        "servers": [
            {
                "server": o.candidate.name,
                "version": o.version,
                "config": o.candidate.how,
                "rps": round(o.rps, 1) if o.loads else None,
                "ratio_to_cheroot": _round(ratio(o.rps, base)) if o.loads else None,
                "cpu_ms_per_request": _round(o.cpu_ms_per_request, 4),
                "cpu_ratio_to_cheroot": cpu_ratio(o) if o.loads else None,
                "errors": sum(x.errors for x in o.loads),
                "tls": o.candidate.tls,
                "embeddable_in_thread": o.candidate.embeddable,
                "skipped": o.skipped,
                "runs": [x.as_dict() for x in o.loads],
            }
            for o in outcomes
        ],
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def print_table(doc: dict[str, Any], outcomes: list[Outcome]) -> None:
    print(
        f"{header(doc)}\n"
        f"app: {doc['app']}; {doc['threads']} threads each\n"
        f"load generator: {doc['load_generator']}; {doc['connections']} connections; "
        f"{doc['rounds']} rounds x {doc['duration_s']} s, rotating order\n"
    )
    rows = []
    for entry, outcome in zip(doc["servers"], outcomes, strict=True):
        if entry["skipped"]:
            rows.append([entry["server"], entry["version"] or "-", "skipped", "", "", "", "", "", entry["skipped"]])
            continue
        rows.append(
            [
                entry["server"],
                entry["version"],
                f"{entry['rps']:,.0f}",
                " ".join(f"{x.rps:,.0f}" for x in outcome.loads),
                fmt_ratio(entry["ratio_to_cheroot"]),
                "n/a" if entry["cpu_ms_per_request"] is None else f"{entry['cpu_ms_per_request']:.2f}",
                fmt_ratio(entry["cpu_ratio_to_cheroot"]),
                str(entry["errors"]),
                entry["config"],
            ]
        )
    columns = ["server", "version", "req/s median", "per round", "vs cheroot", "CPU ms/req", "by CPU", "errors"]
    print(table(rows, [*columns, "config"]))
    print(
        "(vs cheroot: ratio of requests/s; by CPU: cheroot's server CPU time per request over this one's,"
        " which moves less with other work on the machine)"
    )
    print()
    print(
        table(
            [[o.candidate.name, o.candidate.tls, o.candidate.embeddable] for o in outcomes],
            ["server", "TLS", "embedded in a thread"],
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Requests/s of one Flask app on four WSGI servers, as ratios.")
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (default 16)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, medians reported (default 3)")
    parser.add_argument(
        "--loadgen", choices=["auto", "wrk", "python"], default="auto", help="auto: wrk if installed, else python"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of the table")
    args = parser.parse_args()
    if not 1 <= args.duration <= 300 or not 1 <= args.connections <= 256 or not 1 <= args.rounds <= 20:
        parser.error("--duration 1-300, --connections 1-256, --rounds 1-20")
    doc, outcomes = run(args)
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_table(doc, outcomes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
