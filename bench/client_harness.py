"""How fast the client harness runs: sequences per second with the Python adapter (the example client) and with the
command adapter (the example curl + jq client, one process per operation), each against a baseline measured in the
same run: the same sequences driven directly, without a client (the harness sends each operation's request itself,
no adapter, no thread, no process), so the ratio says what the client and its adapter cost on top of the harness.

    python3 bench/client_harness.py                     # about four minutes on a two-core machine
    python3 bench/client_harness.py --rounds 1 --examples 5 --no-default-budget   # a quick look
    python3 bench/client_harness.py --json

Each round runs, in an order rotating from round to round, the three drivers on the same derandomized generated
sequences (`--examples`, at most 10 steps each, no drills, no shrinking) and then on the fixed drills; medians over
the rounds are printed with the ratios to the baseline. Then, unless `--no-default-budget`, one run of the CLI's
default budget (the drills and 25 generated sequences, shrinking on) per adapter, timed: it must stay under two
minutes. Everything talks to one `mockcore serve` the script starts on free ports (as `mockcore-contracts client`
does) and stops. Not a test: pytest never collects bench/. Exit status 1 if a client fails the harness.

The persistent command adapter: the same command (`examples/workflows/lines_adapter.py`, which loops over the
lines of stdin and so serves both modes) run once per call and once for the whole run (`--persistent`), on the
one-call drills (protocol version 1) and on the workflow drills (version 2), each round in both orders; the
speed-up is the ratio of the medians, measured in the same run. `--persistent-only` runs just that part.
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

import requests
from benchlib import environment, fmt_ratio, header, progress, ratio, table
from hypothesis import Phase

from contracts.client.adapter import (
    BACKUP_FLAG,
    LICENCE_INFO,
    OPERATIONS,
    Call,
    CallResult,
    Failure,
    PythonClient,
    Success,
)
from contracts.client.command import CommandClient, PersistentCommandClient
from contracts.client.harness import HarnessSettings, run_harness
from contracts.client.report import ClientReport
from contracts.client.serve import ServedMock, connect
from contracts.client.workflow_harness import WorkflowSettings, run_workflows
from examples.clients.python_client.adapter import Adapter

ROOT = Path(__file__).resolve().parents[1]
SHELL_CLIENT = str(ROOT / "examples" / "clients" / "shell_client" / "client.sh")
LINES_CLIENT = f"{sys.executable} {ROOT / 'examples' / 'workflows' / 'lines_adapter.py'}"
DEFAULT_BUDGET_LIMIT = 120.0


class DirectDriver:
    """The baseline: the harness's own session sends each operation's request; no client, adapter or process."""

    kind = "direct"

    def __init__(self) -> None:
        self.session = requests.Session()
        self.session.trust_env = False

    def describe(self) -> str:
        return "no client (the harness sends each request itself)"

    def call(self, call: Call) -> CallResult:
        spec = OPERATIONS[call.operation]
        headers = {"apikey": call.instance.apikey}
        kwargs: dict[str, Any] = {}
        arguments = call.arguments
        if call.operation == "activate":
            kwargs["json"] = {"activationKey": arguments["key"], "quantity": arguments["quantity"]}
        elif "licence" in arguments:
            kwargs["data"] = arguments["licence"]
            headers["Content-Type"] = "application/octet-stream"
        elif call.operation == "register_online":
            headers.update(
                {"activation-key": arguments["key"], "active-deployment-id": arguments["production_deployment"]}
            )
        try:
            answer = self.session.request(
                spec.method, call.instance.url + spec.path, headers=headers, timeout=10, **kwargs
            )
        except requests.RequestException as exc:
            return CallResult(Failure(None, type(exc).__name__))
        body = answer.json()
        if not answer.ok:
            return CallResult(Failure(answer.status_code, body.get("err", "")))
        if call.operation == BACKUP_FLAG:
            return CallResult(Success({"is_backup": body["is_backup"]}))
        if call.operation == LICENCE_INFO:
            licensed = "days_left" in body
            view = {"licensed": licensed, "deployment": body["deployment"], "reactivate": bool(body.get("reactivate"))}
            if licensed:
                view.update(days_left=body["days_left"], online_activated=body["online_activated"])
            return CallResult(Success(view))
        return CallResult(Success({}))

    def close(self) -> None:
        self.session.close()


def drivers() -> dict[str, Any]:
    return {
        "baseline": DirectDriver,
        "python": lambda: PythonClient(Adapter(), name="examples.clients.python_client.adapter:Adapter"),
        "command": lambda: CommandClient(SHELL_CLIENT),
    }


def run_once(kind: str, url: str, apikey: str, settings: HarnessSettings) -> ClientReport:
    driver = drivers()[kind]()
    fleet = connect(url, apikey=apikey)
    try:
        report = run_harness(driver, fleet, settings)
    finally:
        driver.close()
        fleet.connection.close()
    if not report.passed:
        raise SystemExit(f"{kind}: the harness failed the example client:\n{report.render()}")
    return report


def measure(url: str, apikey: str, rounds: int, examples: int) -> dict[str, Any]:
    generated = HarnessSettings(
        examples=examples, steps=10, drills=False, derandomize=True, phases=(Phase.explicit, Phase.generate)
    )
    drills_only = HarnessSettings(examples=0)
    kinds = list(drivers())
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for number in range(rounds):
        order = kinds[number % len(kinds) :] + kinds[: number % len(kinds)]
        for kind in order:
            progress(f"round {number + 1}/{rounds}: {kind}")
            explored = run_once(kind, url, apikey, generated)
            drilled = run_once(kind, url, apikey, drills_only)
            runs[kind].append(
                {
                    "generated_per_s": explored.examples / explored.seconds,
                    "drills_per_s": drilled.drills / drilled.seconds,
                    "calls_per_s": (explored.calls + drilled.calls) / (explored.seconds + drilled.seconds),
                    "generated": explored.examples,
                    "calls": explored.calls + drilled.calls,
                }
            )
    results = {}
    for kind in kinds:
        results[kind] = {
            name: statistics.median(run[name] for run in runs[kind])
            for name in ("generated_per_s", "drills_per_s", "calls_per_s")
        }
        results[kind]["runs"] = runs[kind]
    return results


def default_budget(url: str, apikey: str) -> dict[str, float]:
    timed = {}
    for kind in ("python", "command"):
        progress(f"default budget: {kind}")
        started = time.monotonic()
        report = run_once(kind, url, apikey, HarnessSettings())
        timed[kind] = {"seconds": time.monotonic() - started, "sequences": report.sequences, "calls": report.calls}
    return timed


def persistent_run(url: str, apikey: str, protocol: int, persistent: bool) -> float:
    """Seconds for the drills of one protocol version, the lines client run per call or persistent."""
    driver = (PersistentCommandClient if persistent else CommandClient)(LINES_CLIENT, timeout=60)
    fleet = connect(url, apikey=apikey)
    try:
        if protocol == 1:
            report = run_harness(driver, fleet, HarnessSettings(examples=0))
        else:
            report = run_workflows(driver, fleet, WorkflowSettings(examples=0))
    finally:
        driver.close()
        fleet.connection.close()
    if not report.passed:
        raise SystemExit(f"the lines client failed (protocol {protocol}):\n{report.render()}")
    return report.seconds


def persistent_speedup(url: str, apikey: str, rounds: int) -> dict[str, Any]:
    """Per protocol version: the median seconds of the drills per call and persistent, and their ratio."""
    found: dict[str, Any] = {}
    for protocol in (1, 2):
        times: dict[bool, list[float]] = {False: [], True: []}
        for number in range(rounds):
            for persistent in (number % 2 == 0, number % 2 != 0):
                progress(f"persistent, protocol {protocol}, round {number + 1}/{rounds}: persistent={persistent}")
                times[persistent].append(persistent_run(url, apikey, protocol, persistent))
        per_call, kept = statistics.median(times[False]), statistics.median(times[True])
        found[f"protocol {protocol}"] = {"per_call_s": per_call, "persistent_s": kept, "speedup": per_call / kept}
    return found


def print_persistent(found: dict[str, Any]) -> None:
    rows = [
        [name, f"{row['per_call_s']:.1f}", f"{row['persistent_s']:.1f}", f"{row['speedup']:.1f}x"]
        for name, row in found.items()
    ]
    print("the drills with examples/workflows/lines_adapter.py, one process per call against one for the run:")
    print(table(rows, ["drills", "per call (s)", "persistent (s)", "speed-up"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--examples", type=int, default=10, help="generated sequences per measured run")
    parser.add_argument("--no-default-budget", action="store_true")
    parser.add_argument("--persistent-only", action="store_true", help="only the persistent adapter's speed-up")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    document: dict[str, Any] = {"benchmark": "client harness", **environment()}
    with ServedMock.start() as mock:
        if not args.persistent_only:
            document["results"] = measure(mock.url, mock.apikey, args.rounds, args.examples)
            if not args.no_default_budget:
                document["default_budget"] = default_budget(mock.url, mock.apikey)
        document["persistent"] = persistent_speedup(mock.url, mock.apikey, args.rounds)
    if args.json:
        print(json.dumps(document, indent=2))
        return
    if args.persistent_only:
        print(header(document))
        print_persistent(document["persistent"])
        return
    results = document["results"]
    base = results["baseline"]
    rows = []
    for kind, label in (("baseline", "no client (baseline)"), ("python", "Python adapter"), ("command", "command")):
        row = results[kind]
        rows.append(
            [
                label,
                f"{row['generated_per_s']:.2f}",
                f"{row['drills_per_s']:.2f}",
                f"{row['calls_per_s']:.1f}",
                fmt_ratio(ratio(row["generated_per_s"], base["generated_per_s"])),
                fmt_ratio(ratio(row["drills_per_s"], base["drills_per_s"])),
            ]
        )
    print(header(document))
    print(f"medians of {args.rounds} round(s); generated: {args.examples} derandomized sequences of at most 10 steps")
    print(
        table(
            rows,
            ["driver", "generated seq/s", "drills/s", "client calls/s", "generated vs baseline", "drills vs baseline"],
        )
    )
    for kind, timed in document.get("default_budget", {}).items():
        verdict = "ok" if timed["seconds"] < DEFAULT_BUDGET_LIMIT else "OVER"
        print(
            f"default budget, {kind}: {timed['sequences']} sequences, {timed['calls']} calls in "
            f"{timed['seconds']:.1f} s ({verdict}: limit {DEFAULT_BUDGET_LIMIT:.0f} s)"
        )
    print_persistent(document["persistent"])


if __name__ == "__main__":
    main()
