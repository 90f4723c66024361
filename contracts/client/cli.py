"""`mockcore-contracts client`: validate a client (a Python adapter or any command) against a live mock fleet.

Exit status 0 when every property held, 1 when one broke (the report shows the smallest failing sequence with
each client call and its HTTP exchanges), 2 when the client or the mock could not be used as given.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from contracts.client.adapter import AdapterError, ClientDriver, PythonClient, load_adapter
from contracts.client.command import command_client
from contracts.client.harness import HarnessSettings
from contracts.client.run import check_client
from contracts.client.serve import DEFAULT_INSTANCES
from contracts.target import TargetError


@click.command()
@click.option("--adapter", metavar="MODULE:CLASS", help="A Python adapter class (FILE.py:CLASS works too).")
@click.option("--command", metavar="COMMAND", help="A command run once per operation (JSON on stdin and stdout).")
@click.option(
    "--persistent",
    is_flag=True,
    help="With --command: run it once for the whole run and speak JSON lines (one request per line in, one outcome "
    "per line out).",
)
@click.option("--url", help="A running mock (any face's base URL); default: start `mockcore serve` on free ports.")
@click.option("--apikey", help="The apikey to give the client (default: the mock's; with --url, log in as admin).")
@click.option("--control-token", envvar="MOCKCORE_CONTROL_TOKEN", help="The mock's X-Mock-Control-Token.")
@click.option(
    "--tls",
    is_flag=True,
    help="Serve the mock the harness starts over HTTPS with a throwaway CA (the client gets its path as ca_path).",
)
@click.option(
    "--ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With an https --url: the CA file its certificate is signed with (`ca_cert` of mockcore serve --tls).",
)
@click.option(
    "--overrides",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="With --url: the fidelity overrides file the mock runs with (its error texts are expected).",
)
@click.option(
    "--instance",
    "instances",
    multiple=True,
    metavar="NAME",
    help=f"An instance of the mock the harness starts; repeatable (default: {', '.join(DEFAULT_INSTANCES)}).",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY:SLOTS:DAYS",
    help="An activation key of the mock the harness starts; repeatable (default: two keys drawn for the run, 2 slots "
    "and 1 slot).",
)
@click.option(
    "--examples",
    default=HarnessSettings.examples,
    show_default=True,
    type=click.IntRange(0, 100_000),
    help="Generated sequences (Hypothesis examples); 0 runs the drills only.",
)
@click.option(
    "--steps",
    default=HarnessSettings.steps,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Steps per generated sequence at most.",
)
@click.option("--no-drills", is_flag=True, help="Skip the fixed drills (every operation under every fault).")
@click.option("--derandomize", is_flag=True, help="The same generated sequences on every run.")
@click.option(
    "--call-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(0.1, 3600),
    help="Seconds a client call may take before it counts as hung.",
)
@click.option("--show-harness-exchanges", is_flag=True, help="Also show the HTTP exchanges of the harness's steps.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def client(
    adapter: str | None,
    command: str | None,
    persistent: bool,
    url: str | None,
    apikey: str | None,
    control_token: str | None,
    tls: bool,
    ca: Path | None,
    overrides: Path | None,
    instances: tuple[str, ...],
    keys: tuple[str, ...],
    examples: int,
    steps: int,
    no_drills: bool,
    derandomize: bool,
    call_timeout: float,
    show_harness_exchanges: bool,
    as_json: bool,
) -> None:
    """Check that a client handles the licence lifecycle correctly, failures included.

    The harness drives the client (--adapter or --command) through licence operations on a live mock fleet,
    injects faults, and checks every call: its outcome against the server's answers and the model, its requests
    against contracts/openapi.yaml, and the fleet against the model.
    """
    console = Console(highlight=False, soft_wrap=True)
    if (adapter is None) == (command is None):
        console.print("[bold red]error:[/] give exactly one of --adapter MODULE:CLASS and --command COMMAND")
        sys.exit(2)
    if persistent and command is None:
        console.print("[bold red]error:[/] --persistent goes with --command (a Python adapter is one process anyway)")
        sys.exit(2)
    if overrides is not None and url is None:
        console.print("[bold red]error:[/] --overrides goes with --url (the mock the harness starts has none)")
        sys.exit(2)
    if url is not None and tls:
        console.print("[bold red]error:[/] --tls serves the mock the harness starts; with an https --url give --ca")
        sys.exit(2)
    if url is None and ca is not None:
        console.print("[bold red]error:[/] --ca goes with --url (the CA of a running HTTPS mock)")
        sys.exit(2)
    if url is not None and (instances or keys):
        console.print("[bold red]error:[/] --instance and --key describe the mock the harness starts; not with --url")
        sys.exit(2)
    try:
        driver: ClientDriver
        if adapter is not None:
            driver = PythonClient(load_adapter(adapter), timeout=call_timeout, name=adapter)
        else:
            assert command is not None
            driver = command_client(command, timeout=call_timeout, persistent=persistent, cwd=Path.cwd())
        report = check_client(
            driver,
            url=url,
            apikey=apikey,
            control_token=control_token,
            settings=HarnessSettings(examples=examples, steps=steps, drills=not no_drills, derandomize=derandomize),
            instances=instances or DEFAULT_INSTANCES,
            keys=keys or None,
            call_timeout=call_timeout,
            overrides=overrides,
            tls=tls,
            ca=ca,
        )
    except (AdapterError, TargetError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True)
        sys.exit(2)
    except OSError as exc:  # the mock stopped answering the harness (requests' errors are OSErrors)
        console.print(f"[bold red]error:[/] the mock stopped answering: {escape(str(exc))}", markup=True)
        sys.exit(2)
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        console.print(report.render(harness_exchanges=show_harness_exchanges), markup=False)
        if report.coverage:
            seen = ", ".join(f"{outcome} x{count}" for outcome, count in report.coverage.items())
            console.print(f"outcomes seen: {seen}", style="dim", markup=False)
    sys.exit(0 if report.passed else 1)
