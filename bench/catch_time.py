"""How long the contract suite's default run takes to report each deliberately faulty server, over real HTTP
against three instances, under several runs (each seeded anew), against the time a whole passing default run takes
on the correct emulator, measured in the same session (the baseline).

    python3 bench/catch_time.py                  # every variant, 3 runs each (a few minutes on two cores)
    python3 bench/catch_time.py --runs 5 --json

Each variant's faces (the WSGI apps of `tests/faulty_servers.py`, wrapped as the variant says) are served by
cheroot on 127.0.0.1, port 0. Exit status 1 when any run missed a variant or named a rule the variant does not
list; the figures are printed either way. Not a test: pytest never collects bench/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cheroot import wsgi

from contracts.server_suite import SuiteSettings, run_server_suite
from contracts.target import Target, discover
from mockcore.server import ACTIVATION, FleetServer, ServeOptions
from tests.faulty_servers import VARIANTS, Variant, build_fleet


@contextmanager
def served(variant: Variant | None) -> Iterator[Target]:
    """The variant (None: the correct emulator) on real ports, as a target with a control plane."""
    fleet = build_fleet(variant.fleet_class) if variant else build_fleet()
    apps = FleetServer(fleet, ServeOptions()).wsgi_apps()
    servers = []
    urls: dict[str, str] = {}
    for name, app in apps.items():
        wrap = variant and (variant.wrap_activation if name == ACTIVATION else variant.wrap_core)
        server = wsgi.Server(("127.0.0.1", 0), wrap(app, fleet) if wrap else app, numthreads=8)
        server.prepare()
        threading.Thread(target=server.serve, daemon=True).start()
        servers.append(server)
        urls[name] = f"http://127.0.0.1:{server.bind_addr[1]}"
    try:
        yield Target(
            core_urls={name: url for name, url in urls.items() if name != ACTIVATION},
            activation_url=urls[ACTIVATION],
            apikey=fleet.config.resolved_apikey,
            control=True,
        )
    finally:
        for server in servers:
            server.stop()


def one_run(variant: Variant | None) -> dict[str, Any]:
    with served(variant) as target:
        started = time.perf_counter()
        run = run_server_suite(discover(target), SuiteSettings())
        seconds = time.perf_counter() - started
    failed = next((r for r in run.reports if not r.passed), None)
    return {
        "seconds": seconds,
        "caught": failed is not None,
        "rule": failed.rule if failed else None,
        "by": failed.mode if failed else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    baseline_runs = [one_run(None) for _ in range(args.runs)]
    if any(r["caught"] for r in baseline_runs):
        raise SystemExit("the default run failed on the correct emulator")
    baseline = statistics.median(r["seconds"] for r in baseline_runs)
    rows = []
    for variant in VARIANTS:
        runs = [one_run(variant) for _ in range(args.runs)]
        named = all(r["caught"] and r["rule"] in variant.rules for r in runs)
        worst = max(r["seconds"] for r in runs)
        rows.append({"variant": variant.name, "runs": runs, "all_caught_naming_its_rule": named, "worst": worst})
    missed = [row["variant"] for row in rows if not row["all_caught_naming_its_rule"]]
    if args.json:
        print(json.dumps({"baseline_seconds": baseline, "variants": rows, "missed": missed}, indent=2))
    else:
        print(f"a passing default run on the correct emulator (baseline): {baseline:.1f} s (median of {args.runs})")
        print(f"{'variant':<40} {'caught':>8} {'worst s':>8} {'of baseline':>12}  rule")
        for row in rows:
            caught = sum(r["caught"] for r in row["runs"])
            rules = sorted({str(r["rule"]) for r in row["runs"]})
            print(
                f"{row['variant']:<40} {caught:>5}/{args.runs} {row['worst']:>8.2f} {row['worst'] / baseline:>12.2f}"
                f"  {', '.join(rules)}"
            )
        worst = max(row["worst"] for row in rows)
        print(f"slowest report: {worst:.1f} s ({worst / baseline:.2f} of a passing run); missed: {missed or 'none'}")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
