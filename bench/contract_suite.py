"""How fast the contract server suite runs: state-machine steps per second in-process (the WSGI apps called
directly) and over HTTP (a MockFleet on real ports), each against a baseline measured in the same run (plain
`GET /admin/license` reads over the same transport, so the ratio says how many plain reads one checked step costs),
and how long the default CI budget (`mockcore-contracts server` defaults: 20 examples of at most 20 steps) takes.

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

from contracts.server_suite import SuiteSettings, run_state_machine
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
        budget = run_state_machine(over_http, SuiteSettings())  # the CLI's default budget, randomised as it runs
    document = {
        "results": results,
        "default_budget": {"examples": budget.examples, "steps": budget.total_steps, "seconds": budget.seconds},
    }
    if args.json:
        print(json.dumps(document, indent=2))
        return
    print(f"{'transport':<12} {'steps/s':>9} {'plain reads/s':>14} {'reads per checked step':>24}")
    for row in results:
        print(
            f"{row['label']:<12} {row['steps_per_s']:>9.0f} {row['reads_per_s']:>14.0f} {row['reads_per_step']:>24.1f}"
        )
    default = document["default_budget"]
    print(
        f"default budget (mockcore-contracts server, 20 examples x <=20 steps, over HTTP): "
        f"{default['seconds']:.1f} s for {default['examples']} examples, {default['steps']} steps"
    )


if __name__ == "__main__":
    main()
