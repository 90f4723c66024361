"""`mockcore-contracts`: run the contract suites from a shell.

`server` checks a server (the mock, a container, a real Core) against the licence rules; exit status 0 when every
rule held, 1 when one broke (the report shows the smallest failing sequence with its HTTP exchanges), 2 when the
target could not be used as described.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from contracts import coverage, parity
from contracts.model import PROFILES
from contracts.server_suite import ServerRun, SuiteSettings, run_server_suite
from contracts.target import KeySpec, Target, TargetError, check_profile, discover, load_overrides, parse_admin


@click.group()
@click.version_option(package_name="mockcore", prog_name="mockcore-contracts")
def main() -> None:
    """Check a server, or a client, against the licence contract of MetaDefender Core."""


def _target(
    core_urls: tuple[str, ...],
    target_file: Path | None,
    activation_url: str | None,
    apikey: str | None,
    admin: str | None,
    keys: tuple[str, ...],
    control_token: str | None,
    cacert: Path | None,
    insecure: bool,
    allow_destructive: bool,
    overrides: Path | None,
    profile: str | None = None,
) -> Target:
    if target_file is not None:
        target = Target.load(target_file)
    elif core_urls:
        target = Target.from_urls(list(core_urls))
    else:
        raise TargetError("give --core-url (repeat it for each instance) or --target FILE")
    if core_urls and target_file is not None:
        target.core_urls = Target.from_urls(list(core_urls)).core_urls
    target.activation_url = activation_url or target.activation_url
    target.apikey = apikey or target.apikey
    if admin:
        target.admin = parse_admin(admin)
    if target.apikey is None and target.admin is None:
        target.admin = ("admin", "admin")
    target.keys = [KeySpec.parse(k) for k in keys] or target.keys
    target.control_token = control_token or target.control_token
    if insecure:
        target.verify = False
    elif cacert is not None:
        target.verify = str(cacert)
    target.allow_destructive = allow_destructive or target.allow_destructive
    if overrides is not None:
        target.catalogue = load_overrides(overrides)
    if profile is not None:
        target.profile = check_profile(profile)
    return target


_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_NEW_FILE = click.Path(dir_okay=False, path_type=Path)


@main.command()
@click.option("--core-url", "core_urls", multiple=True, metavar="URL", help="A Core instance's base URL; repeatable.")
@click.option("--target", "target_file", type=_FILE, help="A target file (YAML), instead of the options.")
@click.option("--activation-url", help="The activation server (the control plane tells it, where there is one).")
@click.option("--apikey", help="The apikey header to send (default: log in with --admin).")
@click.option("--admin", metavar="USER:PASSWORD", help="Log in on each instance for a session (default admin:admin).")
@click.option("--key", "keys", multiple=True, metavar="KEY:SLOTS[:DATE]", help="A key to use (no control plane).")
@click.option("--control-token", help="The mock's X-Mock-Control-Token, when it demands one.")
@click.option("--cacert", type=_FILE, help="CA bundle for https targets.")
@click.option("--insecure", is_flag=True, help="Do not verify TLS certificates.")
@click.option("--allow-destructive", is_flag=True, help="No control plane: also run the failover sequence.")
@click.option("--examples", default=20, show_default=True, type=click.IntRange(1, 100_000), help="Hypothesis examples.")
@click.option("--steps", default=20, show_default=True, type=click.IntRange(1, 1000), help="Steps per example at most.")
@click.option("--derandomize", is_flag=True, help="The same sequences on every run.")
@click.option("--record", type=_NEW_FILE, help="Write a parity snapshot of the failover sequence.")
@click.option("--compare", type=_FILE, help="Compare the failover sequence with a parity snapshot.")
@click.option("--overrides", type=_FILE, help="The fidelity overrides the target runs with (expected texts).")
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    help="The line of Core the target is (default: the control plane's `profile`, else 5.6).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def server(
    core_urls: tuple[str, ...],
    target_file: Path | None,
    activation_url: str | None,
    apikey: str | None,
    admin: str | None,
    keys: tuple[str, ...],
    control_token: str | None,
    cacert: Path | None,
    insecure: bool,
    allow_destructive: bool,
    examples: int,
    steps: int,
    derandomize: bool,
    record: Path | None,
    compare: Path | None,
    overrides: Path | None,
    profile: str | None,
    as_json: bool,
) -> None:
    """Check a server against the licence rules.

    With a control plane (mockcore) the suite resets the fleet and explores it with a Hypothesis state machine.
    Without one (a real Core) it only reads, unless --allow-destructive is given.
    """
    console = Console(stderr=False, highlight=False, soft_wrap=True)
    try:
        target = _target(
            core_urls,
            target_file,
            activation_url,
            apikey,
            admin,
            keys,
            control_token,
            cacert,
            insecure,
            allow_destructive,
            overrides,
            profile,
        )
        recorded = parity.read(compare) if compare is not None else None
        fleet = discover(target)
        if (record or compare) and not fleet.control and not target.allow_destructive:
            raise TargetError("--record and --compare run the failover sequence: this target needs --allow-destructive")
        run = run_server_suite(
            fleet,
            SuiteSettings(examples=examples, steps=steps, derandomize=derandomize),
            recording=record is not None,
            recorded=recorded,
        )
    except (TargetError, parity.SnapshotError) as exc:
        console.print(f"[bold red]error:[/] {exc}", markup=True)
        sys.exit(2)
    if record is not None and run.snapshot is not None and run.passed:
        parity.write(record, run.snapshot)  # a failed run's answers are no reference
    counts: dict[str, int] = {}
    for report in run.reports:
        for rule_id, seen in report.coverage.items():
            counts[rule_id] = counts.get(rule_id, 0) + seen
    coverage.write_last_run(coverage.last_run_path(), counts, ", ".join(fleet.instances.values()))
    if as_json:
        print(json.dumps(_as_json(run, record), indent=2))
    else:
        _print(console, run, record)
    sys.exit(0 if run.passed else 1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the inventory as JSON.")
@click.option("--markdown", is_flag=True, help="Print the inventory as the behaviour documentation (docs/rules.md).")
@click.option(
    "--last-run",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The counts file `server` wrote (default: $MOCKCORE_CONTRACTS_LAST_RUN, else ~/.cache/mockcore-contracts).",
)
def rules(as_json: bool, markdown: bool, last_run: Path | None) -> None:
    """List every rule the server suite checks: its id, section and statement, the checks that cover it, and how
    often the last `server` run exercised it."""
    if markdown:
        click.echo(coverage.render_markdown(), nl=False)
        return
    doc = coverage.read_last_run(last_run or coverage.last_run_path())
    counts = doc["exercised"] if doc is not None else None
    rows = coverage.inventory(counts)  # type: ignore[arg-type]
    if as_json:
        print(json.dumps({"last_run": doc and doc.get("target"), "rules": rows}, indent=2))
        return
    console = Console(highlight=False, soft_wrap=True)
    for row in rows:
        seen = "not run" if row["exercised"] is None else f"x{row['exercised']}"
        console.print(f"{row['id']}  [{row['section']}]  ({seen})", markup=False, style="bold")
        console.print(f"    {row['statement']}", markup=False)
        console.print(f"    checked by: {', '.join(row['checks']) or 'NOTHING'}", markup=False, style="dim")  # type: ignore[arg-type]
    unexercised = [r["id"] for r in rows if r["exercised"] == 0]
    summary = f"{len(rows)} rules"
    if counts is not None:
        summary += f"; the last run ({doc['target']}) exercised {len(rows) - len(unexercised)}"  # type: ignore[index]
    console.print(summary, markup=False)


def _as_json(run: ServerRun, record: Path | None) -> dict[str, object]:
    return {
        "passed": run.passed,
        "reports": [r.as_dict() for r in run.reports],
        "parity_differences": run.parity,
        "recorded": str(record) if record is not None and run.snapshot is not None and run.passed else None,
        "skipped": run.skipped,
    }


def _print(console: Console, run: ServerRun, record: Path | None) -> None:
    for report in run.reports:
        style = "green" if report.passed else "red"
        console.print(report.render(), style=style if report.passed else None, markup=False)
        if report.coverage:
            seen = ", ".join(f"{rule} x{count}" for rule, count in report.coverage.items())
            console.print(f"rules exercised: {seen}", style="dim", markup=False)
        console.print()
        del style
    for skipped in run.skipped:
        console.print(f"skipped: {skipped}", style="yellow", markup=False)
    if record is not None and run.snapshot is not None:
        written = f"parity snapshot written to {record}" if run.passed else "no parity snapshot written: the run failed"
        console.print(written, markup=False)
    if run.parity:
        console.print(
            f"PARITY: {len(run.parity)} difference(s) from the recorded snapshot:", style="bold red", markup=False
        )
        for difference in run.parity:
            console.print(f"  {difference}", markup=False)
    elif run.passed and any(r.mode == "failover sequence" for r in run.reports) and record is None:
        console.print("parity: no difference from the recorded snapshot", style="green", markup=False)
    console.print("PASSED" if run.passed else "FAILED", style="bold green" if run.passed else "bold red", markup=False)


from contracts.client.cli import client  # noqa: E402  (the `client` command lives in its own package)
from contracts.client.workflow_cli import workflows  # noqa: E402

main.add_command(client)
main.add_command(workflows)


if __name__ == "__main__":
    main()
