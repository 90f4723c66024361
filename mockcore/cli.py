"""`mockcore` command line: `mockcore serve` runs a fleet until SIGINT or SIGTERM; `mockcore demo` runs a narrated
failover against one; `mockcore diagram` draws the licence lifecycle; `mockcore screenshot` photographs the
dashboard."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import click
from click.core import ParameterSource

from mockcore import __version__
from mockcore.config import ConfigError, parse_fleet
from mockcore.fleet import Fleet, StoreError
from mockcore.journal import DEFAULT_CAP as DEFAULT_JOURNAL_CAP
from mockcore.journal import MAX_CAP as MAX_JOURNAL_CAP
from mockcore.lifecycle import format_expiration
from mockcore.persistence import StateStore
from mockcore.server import ACTIVATION, FleetServer, ServeOptions
from mockcore.tenant_server import TenantServer
from mockcore.tenants import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_INSTANCES,
    DEFAULT_MAX_KEYS,
    DEFAULT_MAX_TENANTS,
    DEFAULT_TENANT_JOURNAL_CAP,
    MAX_IDLE_TIMEOUT,
    MemoryTenantRegistry,
    TenantLimits,
    TenantRegistry,
)
from mockcore.tls import TlsFiles, make_throwaway_ca

_INSTANCE_RE = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]{0,62})(?:=(\d{1,5}))?")


@dataclass(frozen=True)
class InstanceSpec:
    name: str
    port: int | None


def parse_instance(text: str) -> InstanceSpec:
    match = _INSTANCE_RE.fullmatch(text)
    if not match:
        raise click.BadParameter(
            f"{text!r}: expected NAME or NAME=PORT (letters, digits, '_', '.', '-')", param_hint="--instance"
        )
    port = int(match[2]) if match[2] is not None else None
    if port is not None and port > 65535:
        raise click.BadParameter(f"{text!r}: port must be 0-65535", param_hint="--instance")
    return InstanceSpec(match[1], port)


# The flag of each configuration option (mockcore.config.ConfigError.option).
FLAGS = {"instances": "--instance", "keys": "--key", "apikey": "--apikey", "admin": "--admin"}


def assign_ports(specs: list[InstanceSpec], first_port: int, activation_port: int) -> dict[str, int]:
    """Explicit ports win; the first instance takes --port; the rest follow it, skipping ports already taken.
    With --port 0, every instance without an explicit port gets a free port."""
    taken = {s.port for s in specs if s.port} | {activation_port}
    ports: dict[str, int] = {}
    candidate = first_port
    for index, spec in enumerate(specs):
        if spec.port is not None:
            ports[spec.name] = spec.port
            continue
        if first_port == 0:
            ports[spec.name] = 0
            continue
        if index > 0:
            candidate += 1
        while candidate in taken:
            candidate += 1
        ports[spec.name] = candidate
        taken.add(candidate)
    return ports


def _tls_files(mode: str | None, cert: Path | None, key: Path | None, host: str) -> TlsFiles | None:
    if (cert is None) != (key is None):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if cert is not None and key is not None:
        return TlsFiles(cert, key, None)
    if mode is None:
        return None
    hosts = [h for h in (host, "localhost", "127.0.0.1", "::1") if h not in ("0.0.0.0", "::", "")]
    return make_throwaway_ca(Path(tempfile.mkdtemp(prefix="mockcore-tls-")), hosts)


def _remove_throwaway_ca(tls: TlsFiles | None) -> None:
    """The throwaway CA and its server key live only as long as the process (the user's own files stay)."""
    if tls is not None and tls.ca_cert is not None:
        shutil.rmtree(tls.ca_cert.parent, ignore_errors=True)


def ready_document(server: FleetServer, fleet: Fleet, tls: TlsFiles | None) -> dict[str, Any]:
    urls = server.urls()
    doc: dict[str, Any] = {
        "instances": {name: urls[name] for name in fleet.names},
        "activation_server": urls[ACTIVATION],
        "apikey": fleet.config.resolved_apikey,
        "keys": [
            {"key": k.key, "slots": k.slots, "expires": format_expiration(k.terms.expires)}
            for k in fleet.activation_keys()
        ],
    }
    if tls is not None and tls.ca_cert is not None:
        doc["ca_cert"] = str(tls.ca_cert)
    return doc


class _Store(Protocol):
    def close(self) -> None: ...


def _open_state(state: str | None, fleet: Fleet) -> _Store | None:
    """--state: an SQLite file, a PostgreSQL URL (psycopg imported only then), or None (in memory)."""
    if state is None:
        return None
    if state.startswith(("postgresql://", "postgres://")):
        from mockcore.pgstore import open_kept_fleet

        return open_kept_fleet(state, fleet)
    if not state:
        raise click.BadParameter("names no file", param_hint="--state")
    return StateStore.open(Path(state), fleet)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@click.group()
@click.version_option(__version__, prog_name="mockcore")
def main() -> None:
    """mockcore: emulate MetaDefender Core instances and the activation server, licences and hot backups."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address every face listens on.")
@click.option(
    "--port",
    default=8008,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the first instance; the others follow it. 0: any free port.",
)
@click.option(
    "--instance",
    "instances",
    multiple=True,
    metavar="NAME[=PORT]",
    help="A Core instance; repeat for a fleet. Default: one instance named `core`.",
)
@click.option(
    "--activation-port",
    default=8009,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port of the activation server. 0: any free port.",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY[:SLOTS[:DAYS]]",
    help="An activation key; repeatable. Default: one key made from the seed, 1 slot, 365 days.",
)
@click.option("--apikey", default=None, help="The configured API key (documented format). Default: made from the seed.")
@click.option("--admin", default="admin:admin", show_default=True, metavar="USER:PASSWORD", help="The admin account.")
@click.option("--seed", default="0", show_default=True, help="Seed of deployment ids, default key and API key.")
@click.option(
    "--overrides",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML file replacing catalogue statuses and texts and the emulated version.",
)
@click.option(
    "--profile",
    type=click.Choice(["5.6", "4.18"]),
    default="5.6",
    show_default=True,
    help="The line of Core emulated: 4.18 has no backup, nomination, deactivation, /readyz or /file/sync.",
)
@click.option(
    "--tls",
    type=click.Choice(["all", "activation"]),
    is_flag=False,
    flag_value="all",
    default=None,
    help="Serve HTTPS: every face (`--tls`), or only the activation server (`--tls activation`).",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Your own certificate (PEM) instead of a throwaway CA's; implies --tls.",
)
@click.option(
    "--tls-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The private key (PEM) of --tls-cert.",
)
@click.option(
    "--journal-cap",
    default=DEFAULT_JOURNAL_CAP,
    show_default=True,
    type=click.IntRange(0, MAX_JOURNAL_CAP),
    help="Requests the journal keeps (oldest dropped); 0 turns it off. Changeable at PUT /_mock/journal/config.",
)
@click.option(
    "--control-token",
    default=None,
    envvar="MOCKCORE_CONTROL_TOKEN",
    help="Demand this token in the X-Mock-Control-Token header on /_mock/ (not on /_mock/health).",
)
@click.option(
    "--state",
    default=None,
    metavar="FILE|URL",
    help="Keep the fleet in this SQLite file (created if missing, loaded at start, written on every change), or "
    "in PostgreSQL (postgresql://USER@HOST:PORT/DB: shared by every server given the same URL, one transaction "
    "per operation). With --tenants: a PostgreSQL URL only (every tenant kept there, shared by the replicas). "
    "Default: in memory only.",
)
@click.option(
    "--tenants",
    is_flag=True,
    help="Serve the tenant API on --port instead of one fleet: each POST /_mock/tenants makes an isolated fleet "
    "below /t/<ID>/ (docs/guides/team-service.md). The fleet's options then come in the POST body. With "
    "--state postgresql://..., the tenants are kept in PostgreSQL: every replica given the same URL serves every "
    "tenant.",
)
@click.option(
    "--tenant-idle-timeout",
    default=DEFAULT_IDLE_TIMEOUT,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True, max=MAX_IDLE_TIMEOUT),
    callback=lambda _ctx, _param, value: _a_number(value),
    metavar="SECONDS",
    help="With --tenants: a tenant without a request for this long is removed (at most about ten years).",
)
@click.option(
    "--max-tenants",
    default=DEFAULT_MAX_TENANTS,
    show_default=True,
    type=click.IntRange(1, 1_000_000),
    help="With --tenants: the most tenants at once; past it, POST /_mock/tenants answers 429.",
)
@click.option(
    "--max-tenant-instances",
    default=DEFAULT_MAX_INSTANCES,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="With --tenants: the most Core instances a tenant may have; past it, 400.",
)
@click.option(
    "--max-tenant-keys",
    default=DEFAULT_MAX_KEYS,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="With --tenants: the most activation keys a tenant may have; past it, 400.",
)
@click.option(
    "--tenant-journal-cap",
    default=DEFAULT_TENANT_JOURNAL_CAP,
    show_default=True,
    type=click.IntRange(0, MAX_JOURNAL_CAP),
    help="With --tenants: the most requests a tenant's journal keeps (its default, and its ceiling).",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Once every port listens, write where everything is to this JSON file.",
)
def serve(
    host: str,
    port: int,
    instances: tuple[str, ...],
    activation_port: int,
    keys: tuple[str, ...],
    apikey: str | None,
    admin: str,
    seed: str,
    overrides: Path | None,
    profile: str,
    tls: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    journal_cap: int,
    control_token: str | None,
    state: str | None,
    tenants: bool,
    tenant_idle_timeout: float,
    max_tenants: int,
    max_tenant_instances: int,
    max_tenant_keys: int,
    tenant_journal_cap: int,
    ready_file: Path | None,
) -> None:
    """Run a fleet until SIGINT or SIGTERM."""
    limits = TenantLimits(
        max_tenants=max_tenants,
        max_instances=max_tenant_instances,
        max_keys=max_tenant_keys,
        journal_cap=tenant_journal_cap,
        idle_timeout=tenant_idle_timeout,
    )
    if _tenant_mode(click.get_current_context(), tenants):
        _serve_tenants(limits, state, host, port, tls, tls_cert, tls_key, control_token, ready_file)
        return
    specs = [parse_instance(text) for text in instances] or [InstanceSpec("core", None)]
    try:
        setup = parse_fleet(
            [s.name for s in specs],
            keys or None,
            seed=seed,
            apikey=apikey,
            admin=admin,
            overrides=overrides,
            journal_cap=journal_cap,
            profile=profile,
        )
    except ConfigError as exc:
        if exc.option == "overrides":
            raise click.UsageError(f"--overrides: {exc}") from exc
        raise click.BadParameter(str(exc), param_hint=FLAGS.get(exc.option)) from exc
    fleet = Fleet.build(setup)
    if tls_cert is not None and tls is None:
        tls = "all"
    tls_files = _tls_files(tls, tls_cert, tls_key, host)
    try:
        store = _open_state(state, fleet)
    except StoreError as exc:
        _remove_throwaway_ca(tls_files)
        raise click.ClickException(str(exc)) from exc
    options = ServeOptions(
        host=host,
        instance_ports=assign_ports(specs, port, activation_port),
        activation_port=activation_port,
        core_tls=tls_files if tls == "all" else None,
        activation_tls=tls_files,
        control_token=control_token or None,
    )
    server = FleetServer(fleet, options)
    try:
        server.start()
    except OSError as exc:
        _remove_throwaway_ca(tls_files)
        if store is not None:
            store.close()
        raise click.ClickException(str(exc)) from exc

    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    document = json.dumps(ready_document(server, fleet, tls_files))
    if ready_file is not None:
        _write_atomically(ready_file, document + "\n")
    click.echo(document)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        # A second signal during shutdown (a double Ctrl-C, a supervisor that insists) must not turn a clean
        # stop into a killed process.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
        server.stop()
        _remove_throwaway_ca(tls_files)
        if store is not None:
            try:
                store.close()
            except StoreError as exc:
                raise click.ClickException(str(exc)) from exc
        click.echo("mockcore: stopped", err=True)


# `mockcore serve --tenants`: the tenant API on one port (mockcore.tenant_server). A fleet's own options come in
# each POST /_mock/tenants; given on the command line with --tenants they are refused, as the tenant options are
# without it.
PER_FLEET_OPTIONS = (
    "instances",
    "activation_port",
    "keys",
    "apikey",
    "admin",
    "seed",
    "overrides",
    "profile",
    "journal_cap",
)
TENANT_OPTIONS = ("tenant_idle_timeout", "max_tenants", "max_tenant_instances", "max_tenant_keys", "tenant_journal_cap")


def _a_number(value: float) -> float:
    """click.FloatRange lets NaN through (every comparison with it is false)."""
    if math.isnan(value):
        raise click.BadParameter("nan is not a number of seconds")
    return value


def _flag(name: str) -> str:
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def _tenant_mode(ctx: click.Context, tenants: bool) -> bool:
    """Whether to serve tenants; refuses the options that do not go with the mode chosen."""
    given = [
        name
        for name in (PER_FLEET_OPTIONS if tenants else TENANT_OPTIONS)
        if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
    ]
    if given and tenants:
        raise click.UsageError(
            f"{', '.join(map(_flag, given))}: with --tenants, a fleet's options come in POST /_mock/tenants"
        )
    if given:
        raise click.UsageError(f"{', '.join(map(_flag, given))} go with --tenants")
    return tenants


def _tenant_registry(limits: TenantLimits, state: str | None) -> TenantRegistry:
    """--state with --tenants: a PostgreSQL URL (every replica given it serves every tenant), or None (memory)."""
    if state is None:
        return MemoryTenantRegistry(limits)
    if not state.startswith(("postgresql://", "postgres://")):
        raise click.BadParameter(
            "with --tenants, a postgresql://USER@HOST:PORT/DB URL (tenants shared by every replica given it)",
            param_hint="--state",
        )
    from mockcore.tenant_store import PostgresTenantRegistry  # psycopg imported only then

    try:
        return PostgresTenantRegistry.open(state, limits)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


def _serve_tenants(
    limits: TenantLimits,
    state: str | None,
    host: str,
    port: int,
    tls: str | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    control_token: str | None,
    ready_file: Path | None,
) -> None:
    if tls == "activation":
        raise click.UsageError("--tls activation: with --tenants there is one port; use --tls")
    if tls_cert is not None and tls is None:
        tls = "all"
    registry = _tenant_registry(limits, state)
    tls_files = _tls_files(tls, tls_cert, tls_key, host)
    server = TenantServer(registry, host=host, port=port, control_token=control_token or None, tls=tls_files)
    try:
        server.start()
    except OSError as exc:
        _remove_throwaway_ca(tls_files)
        _close_registry(registry)
        raise click.ClickException(str(exc)) from exc
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.set())
    document: dict[str, Any] = {"url": server.url, "tenants": server.url + "/_mock/tenants"}
    if tls_files is not None and tls_files.ca_cert is not None:
        document["ca_cert"] = str(tls_files.ca_cert)
    if ready_file is not None:
        _write_atomically(ready_file, json.dumps(document) + "\n")
    click.echo(json.dumps(document))
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second signal must not turn a stop into a kill
            signal.signal(signum, signal.SIG_IGN)
        server.stop()
        _remove_throwaway_ca(tls_files)
        _close_registry(registry)
        click.echo("mockcore: stopped", err=True)


def _close_registry(registry: TenantRegistry) -> None:
    close = getattr(registry, "close", None)  # a registry kept in a database lets go of its connections
    if close is not None:
        close()


# `mockcore demo`, `mockcore diagram`, `mockcore screenshot`: showing the fleet to people. Their modules (rich,
# Playwright) are imported when the command runs, so `mockcore serve` starts without them.


def _demo_names() -> list[str]:
    from mockcore.demo.scripts import DEMOS

    return list(DEMOS)


@main.command()
@click.argument("name", required=False, metavar="[DEMO]")
@click.option("--list", "list_demos", is_flag=True, help="List the demos and exit.")
@click.option(
    "--url",
    default=None,
    help="A running fleet (any face of `mockcore serve`). Default: start a fleet of its own (prod, backup).",
)
@click.option(
    "--admin",
    default="admin:admin",
    show_default=True,
    metavar="USER:PASSWORD",
    help="Log in with this account (POST /login) to get a session id.",
)
@click.option("--apikey", default=None, help="Send this API key instead of logging in.")
@click.option(
    "--control-token",
    default=None,
    envvar="MOCKCORE_CONTROL_TOKEN",
    help="The fleet's control token (X-Mock-Control-Token), for /_mock/info, /_mock/view and --reset.",
)
@click.option(
    "--reset",
    is_flag=True,
    help="Reset the fleet first (POST /_mock/reset: discards its state). Without it, a fleet that is not at the "
    "demo's start (two unlicensed instances, a key with a free slot) is refused.",
)
@click.option("--prod", default=None, help="The production instance. Default: the fleet's first.")
@click.option("--backup", default=None, help="The backup instance. Default: the fleet's second.")
@click.option("--key", default=None, help="The activation key. Default: the first unexpired one with a free slot.")
@click.option(
    "--ca-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="CA certificate to trust for an HTTPS fleet (`ca_cert` in the ready file of `mockcore serve --tls`).",
)
@click.option("--pause", is_flag=True, help="Wait for Enter before each step (the prompt goes to stderr).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="JSON lines on stdout: a `start` object, one `step` object per step, then `outcome` (or `problem`).",
)
def demo(
    name: str | None,
    list_demos: bool,
    url: str | None,
    admin: str,
    apikey: str | None,
    control_token: str | None,
    reset: bool,
    prod: str | None,
    backup: str | None,
    key: str | None,
    ca_cert: Path | None,
    pause: bool,
    as_json: bool,
) -> None:
    """Run a narrated failover demo with real HTTP calls: online-failover or offline-failover.

    Exit code 0 when every answer was the expected one, 1 when a step's answer was not, 3 when the fleet cannot
    run the demo (unreachable, fewer than two instances, not at the demo's start, no free slot)."""
    from mockcore.demo.command import list_document, run_demo
    from mockcore.demo.runner import Credentials, Options

    if list_demos:
        if name is not None:
            raise click.UsageError("--list takes no DEMO")
        document = list_document()
        if as_json:
            click.echo(json.dumps(document))
        else:
            for demo_name, description in document.items():
                click.echo(f"{demo_name:18} {description}")
        return
    if name is None:
        raise click.UsageError(f"name a demo ({', '.join(_demo_names())}), or --list")
    if name not in _demo_names():
        raise click.BadParameter(f"{name!r}: known demos are {', '.join(_demo_names())}", param_hint="DEMO")
    user, sep, password = admin.partition(":")
    if not sep or not user or not password:
        raise click.BadParameter("expected USER:PASSWORD", param_hint="--admin")
    if apikey is not None and not apikey:
        raise click.BadParameter("must not be empty", param_hint="--apikey")
    options = Options(prod=prod, backup=backup, key=key, reset=reset, credentials=Credentials(user, password, apikey))

    def wait_for_enter() -> None:
        click.echo("Press Enter for the next step (Ctrl-C stops) ", err=True, nl=False)
        click.get_text_stream("stdin").readline()

    code = run_demo(
        name,
        options,
        url=url,
        control_token=control_token or None,
        verify=str(ca_cert) if ca_cert is not None else True,
        as_json=as_json,
        pause=wait_for_enter if pause else None,
    )
    raise SystemExit(code)


@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["mermaid", "svg"]),
    default="mermaid",
    show_default=True,
    help="Mermaid stateDiagram-v2 text, or an SVG drawn here (no graphviz).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of stdout.",
)
def diagram(fmt: str, output: Path | None) -> None:
    """The licence lifecycle's state diagram, drawn from the state machine's own transition table."""
    from mockcore import diagram as diagrams

    drawn = diagrams.derive()
    text = diagrams.mermaid(drawn) if fmt == "mermaid" else diagrams.svg(drawn)
    if output is None:
        click.echo(text, nl=False)
    else:
        _write_atomically(output, text)


@main.command()
@click.argument("output", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--chromium",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=Path("/usr/bin/chromium"),
    show_default=True,
    help="The Chromium to drive (Debian's `chromium` package); Playwright must be installed (the test extra).",
)
def screenshot(output: Path, chromium: Path) -> None:
    """Save a PNG of the dashboard in the middle of an online failover (the README's picture): starts a fleet of
    its own, clicks through the failover in headless Chromium and photographs the page."""
    from mockcore.demo.screenshot import ScreenshotError, take

    try:
        take(output, chromium)
    except ScreenshotError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(str(output))


if __name__ == "__main__":
    main()
