"""How fast the contract server suite runs: state-machine steps per second in-process (the WSGI apps called
directly) and over HTTP (a MockFleet on real ports), each against a baseline measured in the same run (plain
`GET /admin/license` reads over the same transport, so the ratio says how many plain reads one checked step costs:
the operation and the reads that check what it changed), and how long a whole default run (the drills, then 20
examples of at most 20 steps) takes over HTTP against three instances. Target: at most 6 reads per step.

    python3 bench/contract_suite.py                 # about a minute on a two-core machine
    python3 bench/contract_suite.py --json

Not a test: pytest never collects bench/. It only talks to servers it starts itself on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contracts.server_suite import SuiteSettings, run_server_suite, run_state_machine
from contracts.target import Fleet, Target, discover
from mockcore import MockFleet
from tests.faulty_servers import KEYS, build_fleet, inprocess_target

BASELINE_READS = 300


def reads_per_second(fleet: Fleet) -> float:
    """The baseline: plain licence reads over the same transport, nothing compared."""
    name = next(iter(fleet.instances))
    url = fleet.instances[name] + "/admin/license"
    headers = {"apikey": fleet.apikeys[name]}
    started = time.perf_counter()
    for _ in range(BASELINE_READS):
        fleet.connection.request("GET", url, headers=headers, record=False)
    return BASELINE_READS / (time.perf_counter() - started)


def measure(label: str, fleet: Fleet, settings: SuiteSettings, rounds: int) -> dict[str, Any]:
    runs = []
    for _ in range(rounds):
        baseline = reads_per_second(fleet)
        report = run_state_machine(fleet, settings)
        if not report.passed:
            raise SystemExit(f"{label}: the suite failed on the emulator:\n{report.render()}")
        steps = report.total_steps / report.seconds
        runs.append(
            {"steps_per_s": steps, "reads_per_s": baseline, "seconds": report.seconds, "steps": report.total_steps}
        )
    steps = statistics.median(r["steps_per_s"] for r in runs)
    reads = statistics.median(r["reads_per_s"] for r in runs)
    return {"label": label, "runs": runs, "steps_per_s": steps, "reads_per_s": reads, "reads_per_step": reads / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    measured = SuiteSettings(examples=20, steps=20, derandomize=True)
    results = [measure("in-process", discover(inprocess_target(build_fleet())), measured, args.rounds)]
    with MockFleet(["a", "b", "c"], keys=list(KEYS)) as served:
        over_http = discover(Target.from_urls([served.urls["a"]], apikey=served.apikey))
        results.append(measure("over HTTP", over_http, measured, args.rounds))
        started = time.perf_counter()
        default = run_server_suite(over_http, SuiteSettings())  # the CLI's default run, randomised as it runs
        seconds = time.perf_counter() - started
        if not default.passed:
            raise SystemExit("the default run failed on the emulator")
    drills, explore = default.reports
    document = {
        "results": results,
        "default_run": {
            "seconds": seconds,
            "drills": {"drills": drills.examples, "steps": drills.total_steps, "seconds": drills.seconds},
            "exploration": {"examples": explore.examples, "steps": explore.total_steps, "seconds": explore.seconds},
        },
    }
    if args.json:
        print(json.dumps(document, indent=2))
        return
    print(f"{'transport':<12} {'steps/s':>9} {'plain reads/s':>14} {'reads per checked step':>24}")
    for row in results:
        print(
            f"{row['label']:<12} {row['steps_per_s']:>9.0f} {row['reads_per_s']:>14.0f} {row['reads_per_step']:>24.1f}"
        )
    print(
        f"default run (mockcore-contracts server, over HTTP, three instances): {seconds:.1f} s: "
        f"{drills.examples} drills ({drills.total_steps} steps, {drills.seconds:.1f} s), then "
        f"{explore.examples} examples ({explore.total_steps} steps, {explore.seconds:.1f} s)"
    )


if __name__ == "__main__":
    main()
