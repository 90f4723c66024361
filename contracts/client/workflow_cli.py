"""`mockcore-contracts workflows`: validate a workflow client (protocol version 2) against a live mock fleet.

Exit status 0 when every property held, 1 when one broke (the report shows the failing case: the starting fleet,
the fault, the client's report and every HTTP exchange it had), 2 when the client or the mock could not be used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from contracts.client.adapter import AdapterError, instantiate
from contracts.client.command import CommandClient, command_client
from contracts.client.report import ClientReport
from contracts.client.serve import DEFAULT_INSTANCES, ServedMock, connect
from contracts.client.workflow import WORKFLOWS, PythonWorkflows, WorkflowDriver
from contracts.client.workflow_harness import WorkflowSettings, run_workflows
from contracts.target import TargetError


def workflow_driver(client: Any, *, timeout: float = 60.0, persistent: bool = False) -> WorkflowDriver:
    """A driver from what the user has: a driver, a command line (str) or a Python workflow adapter object."""
    if isinstance(client, PythonWorkflows | CommandClient):
        return client
    if isinstance(client, str):
        return command_client(client, timeout=timeout, persistent=persistent)
    return PythonWorkflows(client, timeout=timeout)


def check_workflows(
    client: Any,
    *,
    url: str | None = None,
    apikey: str | None = None,
    control_token: str | None = None,
    settings: WorkflowSettings | None = None,
    timeout: float = 60.0,
    persistent: bool = False,
) -> ClientReport:
    """Validate a workflow client against the mock at `url`, or against a `mockcore serve` started (and stopped)
    for the run. Raises TargetError when the mock cannot be used."""
    driver = workflow_driver(client, timeout=timeout, persistent=persistent)
    served: ServedMock | None = None
    try:
        if url is None:
            served = ServedMock.start(DEFAULT_INSTANCES)
            url, apikey = served.url, None  # log in on each instance: an apikey each
        fleet = connect(url, apikey=apikey, control_token=control_token)
        try:
            return run_workflows(driver, fleet, settings)
        finally:
            fleet.connection.close()
    finally:
        driver.close()
        if served is not None:
            served.stop()


@click.command()
@click.option("--adapter", metavar="MODULE:CLASS", help="A Python workflow adapter class (FILE.py:CLASS works too).")
@click.option("--command", metavar="COMMAND", help="A command speaking JSON (protocol mockcore-contracts-client/2).")
@click.option("--persistent", is_flag=True, help="Start the command once and speak JSON lines with it.")
@click.option("--url", help="A running mock (any face's base URL); default: start `mockcore serve` on free ports.")
@click.option("--apikey", help="The apikey to give the client (default: the mock's; with --url, log in as admin).")
@click.option("--control-token", envvar="MOCKCORE_CONTROL_TOKEN", help="The mock's X-Mock-Control-Token.")
@click.option(
    "--workflow",
    "workflows",
    multiple=True,
    type=click.Choice(list(WORKFLOWS)),
    help="Check only this workflow; repeatable (default: every workflow the client has).",
)
@click.option(
    "--examples",
    default=WorkflowSettings.examples,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="Generated cases (Hypothesis examples) after the drills; 0 runs the drills only.",
)
@click.option("--no-drills", is_flag=True, help="Skip the drills (every start, every fault at every step).")
@click.option("--derandomize", is_flag=True, help="The same generated cases on every run.")
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds a workflow may take before it counts as hung.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def workflows(
    adapter: str | None,
    command: str | None,
    persistent: bool,
    url: str | None,
    apikey: str | None,
    control_token: str | None,
    workflows: tuple[str, ...],
    examples: int,
    no_drills: bool,
    derandomize: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Check that a client's runbooks (failovers, provisioning, decommissioning, renewal) reach their goals, or
    report truthfully that they did not, without leaking or double-using a slot, under faults.

    Each workflow runs from generated starting fleets with faults (the activation server down mid-way, answers
    lost, 503s); every request is judged against the model replaying the journal, and the fleet against the goal.
    """
    console = Console(highlight=False, soft_wrap=True)
    if (adapter is None) == (command is None):
        console.print("[bold red]error:[/] give exactly one of --adapter MODULE:CLASS and --command COMMAND")
        sys.exit(2)
    if persistent and command is None:
        console.print("[bold red]error:[/] --persistent goes with --command")
        sys.exit(2)
    settings = WorkflowSettings(
        examples=examples, drills=not no_drills, derandomize=derandomize, workflows=workflows or tuple(WORKFLOWS)
    )
    try:
        driver: WorkflowDriver
        if adapter is not None:
            driver = PythonWorkflows(instantiate(adapter), timeout=timeout, name=adapter)
        else:
            assert command is not None
            driver = command_client(command, timeout=timeout, persistent=persistent, cwd=Path.cwd())
        report = check_workflows(
            driver, url=url, apikey=apikey, control_token=control_token, settings=settings, timeout=timeout
        )
    except (AdapterError, TargetError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
        sys.exit(2)
    except OSError as exc:
        console.print(f"[bold red]error:[/] the mock stopped answering: {escape(str(exc))}", markup=True)
        sys.exit(2)
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        console.print(report.render(), markup=False)
        if report.coverage:
            seen = ", ".join(f"{outcome} x{count}" for outcome, count in report.coverage.items())
            console.print(f"outcomes seen: {seen}", style="dim", markup=False)
    sys.exit(0 if report.passed else 1)
