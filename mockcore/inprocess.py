"""The in-process server for Python tests: a whole fleet on free ports in background threads, as a context manager.

    with MockFleet(instances=("prod", "backup")) as mock:
        prod = mock.session("prod")                   # a requests.Session: base URL and apikey header set
        prod.post("/admin/license/activation", json={"activationKey": mock.key, "quantity": 1})
        mock.clock.advance(days=400)
        mock.reset()

Starting and stopping take milliseconds (cheroot servers in daemon threads, see mockcore.server), so a test may
run its own fleet; the pytest plugin (mockcore.pytest_plugin) shares one per test session and resets it between
tests. `import mockcore` does not import this module (nor requests); `mockcore.MockFleet` does, on first use.

A MockFleet may instead be a tenant of a running `mockcore serve --tenants` (docs/guides/team-service.md):

    with MockFleet.remote("http://mock.ci:8008", token=TOKEN, instances=("prod", "backup")) as mock:
        ...                                           # the same API: sessions, clock, reset, scenarios, state

`start` creates the tenant (POST /_mock/tenants), `stop` deletes it, and what the in-process fleet does directly
(the clock, reset, scenarios, state) goes over the tenant's control plane; `fleet` and `apps` are in-process only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from mockcore import scenarios
from mockcore.config import FleetConfig, KeyArgument, KeySpec, parse_fleet, parse_key
from mockcore.fleet import Fleet
from mockcore.http.control_api import TOKEN_HEADER
from mockcore.scenarios import ScenarioError
from mockcore.server import ACTIVATION, FleetServer, ServeOptions
from mockcore.snapshot import InvalidSnapshot, parse_datetime

__all__ = [
    "ACTIVATION",
    "DEFAULT_INSTANCES",
    "DEFAULT_KEYS",
    "BaseUrlSession",
    "ClockControl",
    "FleetClockControl",
    "InvalidSnapshot",
    "KeySpec",
    "MockFleet",
    "ScenarioError",
    "parse_key",
]

DEFAULT_INSTANCES: tuple[str, ...] = ("prod", "backup")
# One key derived from the seed, with two slots: enough for a production and one more activation.
DEFAULT_KEYS: tuple[KeySpec, ...] = (KeySpec(slots=2),)
DEFAULT_TIMEOUT = 30.0
# requests.Session.request(method, url, params, data, headers, cookies, files, auth, timeout, ...): the index of
# `timeout` among the arguments after `url`.
_TIMEOUT_INDEX = 6


def _join(base_url: str, url: str | bytes) -> str:
    text = url.decode() if isinstance(url, bytes) else url
    if text.startswith(("http://", "https://")):
        return text
    return base_url.rstrip("/") + "/" + text.lstrip("/")


class BaseUrlSession(requests.Session):
    """A requests.Session bound to one face: relative URLs (`/admin/license`) are joined to `base_url`, absolute
    ones are used as given, and every request gets `timeout` unless it names its own."""

    def __init__(self, base_url: str, headers: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT):
        super().__init__()
        self.base_url = base_url
        self.timeout = timeout
        self.headers.update(headers or {})

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if len(args) <= _TIMEOUT_INDEX:  # a positional timeout wins, as does a keyword one
            kwargs.setdefault("timeout", self.timeout)
        return super().request(method, _join(self.base_url, url), *args, **kwargs)


class ClockControl:
    """A fleet's clock as `MockFleet.clock` moves it; every method answers the fleet's now after the change.
    `FleetClockControl` moves an in-process fleet's, `RemoteClockControl` a tenant's over its control plane."""

    def now(self) -> datetime:
        raise NotImplementedError

    @property
    def frozen(self) -> bool:
        raise NotImplementedError

    def _advance(self, step: timedelta) -> datetime:
        raise NotImplementedError

    def _set(self, moment: datetime) -> datetime:
        raise NotImplementedError

    def freeze(self) -> datetime:
        """Stop the clock where it is (`set` and `advance` still move it)."""
        raise NotImplementedError

    def unfreeze(self) -> datetime:
        """Let the clock run again from where it stands."""
        raise NotImplementedError

    def advance(
        self,
        delta: timedelta | None = None,
        *,
        days: float = 0,
        hours: float = 0,
        minutes: float = 0,
        seconds: float = 0,
    ) -> datetime:
        """Move the clock by `delta` and/or the named amounts (negative moves back)."""
        step = (delta or timedelta(0)) + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        return self._advance(step)

    def set(self, moment: datetime | str) -> datetime:
        """Move the clock to `moment`: a datetime (naive means UTC) or an ISO 8601 text with an offset."""
        if isinstance(moment, str):
            try:
                moment = parse_datetime(moment, "moment")
            except InvalidSnapshot as exc:
                raise ValueError(str(exc)) from exc
        return self._set(moment)


class FleetClockControl(ClockControl):
    """The fleet's clock, moved in-process (the same effect as the control plane's `/_mock/clock` calls)."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def now(self) -> datetime:
        return self._fleet.now()

    @property
    def frozen(self) -> bool:
        return self._fleet.clock().frozen

    def _advance(self, step: timedelta) -> datetime:
        return self._fleet.advance_clock(step).now

    def _set(self, moment: datetime) -> datetime:
        return self._fleet.set_clock(moment).now

    def freeze(self) -> datetime:
        return self._fleet.freeze_clock().now

    def unfreeze(self) -> datetime:
        return self._fleet.unfreeze_clock().now


class TenantControl:
    """A tenant's control plane over HTTP (`control` and `control_token` of POST /_mock/tenants): what a remote
    MockFleet does where an in-process one calls its Fleet. A refusal raises `error` (ValueError by default) with
    the control plane's `err` text."""

    def __init__(self, base_url: str, token: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.http = BaseUrlSession(base_url, {TOKEN_HEADER: token}, timeout)

    def call(self, method: str, path: str, body: object = None, error: type[Exception] = ValueError) -> Any:
        response = self.http.request(method, path, json=body)
        try:
            document = response.json()
        except ValueError:
            document = None
        if not response.ok:
            text = document.get("err") if isinstance(document, dict) else None
            raise error(text or f"{method} {path}: HTTP {response.status_code}")
        return document

    def close(self) -> None:
        self.http.close()


def _moment(document: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(document["now"])


class RemoteClockControl(ClockControl):
    """The clock of a remote tenant, moved over its control plane (`/_mock/clock`)."""

    def __init__(self, control: Callable[[], TenantControl]) -> None:
        self._control = control

    def _call(self, method: str, path: str, body: object = None) -> datetime:
        return _moment(self._control().call(method, path, body))

    def now(self) -> datetime:
        return self._call("GET", "/_mock/clock")

    @property
    def frozen(self) -> bool:
        return bool(self._control().call("GET", "/_mock/clock")["frozen"])

    def _advance(self, step: timedelta) -> datetime:
        return self._call("POST", "/_mock/clock/advance", {"seconds": step.total_seconds()})

    def _set(self, moment: datetime) -> datetime:
        moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # naive means UTC
        return self._call("PUT", "/_mock/clock", {"now": moment.isoformat()})

    def freeze(self) -> datetime:
        return self._call("POST", "/_mock/clock/freeze")

    def unfreeze(self) -> datetime:
        return self._call("POST", "/_mock/clock/unfreeze")


def tenant_request(config: FleetConfig, overrides: str | Path | None) -> dict[str, Any]:
    """The body of POST /_mock/tenants for a configuration parsed already (seed-derived keys stay derived)."""
    body: dict[str, Any] = {
        "instances": list(config.instances),
        "keys": [f"{spec.key or ''}:{spec.slots}:{spec.days}" for spec in config.keys],
        "seed": config.seed,
        "admin": f"{config.admin_user}:{config.admin_password}",
        "profile": config.profile,
    }
    if config.apikey is not None:
        body["apikey"] = config.apikey
    if overrides is not None:
        body["overrides"] = Path(overrides).read_text(encoding="utf-8")
    return body


class MockFleet:
    """A fleet of Core instances and its activation server, served on real (by default free) ports.

    `instances`: names, or one comma-separated text. `keys`: KeySpecs, `"KEY[:SLOTS[:DAYS]]"` texts or
    `(key, slots[, days])` tuples (a key of None or "" is derived from the seed). `admin`: `"USER:PASSWORD"` or a
    pair. `control_token`: when set, the control plane under `/_mock/` demands it (sessions from `session` send
    it). `profile`: the line of Core emulated, `"5.6"` (default) or `"4.18"`. `overrides`: a fidelity overrides
    file (docs/guides/test-double.md, "Fidelity overrides"). Arguments are checked by mockcore.config, as
    `mockcore serve` checks its flags, and a bad one raises ValueError (ConfigError); nothing listens until `start`
    (or `with`).

    `tenant_server`: the base URL of a running `mockcore serve --tenants` (`tenant_server_token`: its control
    token): `start` then creates a tenant there instead of serving here (see `remote`); the tenant's own control
    token is `control_token`, and `host`, `ports` and `activation_port` do not apply.
    """

    def __init__(
        self,
        instances: Sequence[str] | str = DEFAULT_INSTANCES,
        keys: Iterable[KeyArgument] | None = None,
        *,
        seed: str | int = "0",
        apikey: str | None = None,
        admin: str | tuple[str, str] = ("admin", "admin"),
        control_token: str | None = None,
        overrides: str | Path | None = None,
        host: str = "127.0.0.1",
        ports: Mapping[str, int] | None = None,
        activation_port: int = 0,
        profile: str = "5.6",
        tenant_server: str | None = None,
        tenant_server_token: str | None = None,
    ) -> None:
        setup = parse_fleet(
            instances,
            keys,
            default_keys=DEFAULT_KEYS,
            seed=seed,
            apikey=apikey,
            admin=admin,
            overrides=overrides,
            profile=profile,
        )
        unknown_ports = set(ports or {}) - set(setup.config.instances)
        if unknown_ports:
            raise ValueError(f"ports for unknown instances: {', '.join(sorted(unknown_ports))}")
        if control_token is not None and not control_token:
            raise ValueError("the control token must not be empty")
        if tenant_server is not None:
            if control_token is not None or ports or activation_port or host != "127.0.0.1":
                raise ValueError(
                    "with tenant_server, the tenant server chooses the URLs and the tenant's control token: "
                    "give no control_token, host, ports or activation_port"
                )
            if not tenant_server.startswith(("http://", "https://")):
                raise ValueError(f"tenant_server: {tenant_server!r} is not an http(s) URL")
            self._adopt(None, ServeOptions(), setup.config)
            self._remote = (
                tenant_server.rstrip("/"),
                tenant_server_token or None,
                tenant_request(setup.config, overrides),
            )
            return
        options = ServeOptions(
            host=host, instance_ports=dict(ports or {}), activation_port=activation_port, control_token=control_token
        )
        self._adopt(Fleet.build(setup), options, setup.config)

    @classmethod
    def serving(cls, fleet: Fleet, *, control_token: str | None = None) -> MockFleet:
        """A MockFleet around a fleet built already (with rules or a catalogue of your own), on free ports."""
        if control_token is not None and not control_token:
            raise ValueError("the control token must not be empty")
        mock = cls.__new__(cls)
        mock._adopt(fleet, ServeOptions(control_token=control_token), fleet.config)
        return mock

    @classmethod
    def remote(cls, tenant_server: str, *, token: str | None = None, **arguments: Any) -> MockFleet:
        """A fleet that is a tenant of the running `mockcore serve --tenants` at `tenant_server` (`token`: its
        --control-token). `arguments` are MockFleet's (instances, keys, seed, apikey, admin, overrides, profile).
        `start` creates the tenant, `stop` deletes it."""
        return cls(tenant_server=tenant_server, tenant_server_token=token, **arguments)

    def _adopt(self, fleet: Fleet | None, options: ServeOptions, config: FleetConfig) -> None:
        self._fleet = fleet
        self._config = config
        self.control_token = options.control_token
        self.clock: ClockControl = FleetClockControl(fleet) if fleet is not None else RemoteClockControl(self._control)
        self._options = options
        self._server: FleetServer | None = None
        self._urls: dict[str, str] = {}
        self._remote: tuple[str, str | None, dict[str, Any]] | None = None
        self._tenant: tuple[str, TenantControl] | None = None  # a remote fleet's tenant id and control plane

    @property
    def fleet(self) -> Fleet:
        """The in-process Fleet (not for a tenant of a tenant server: its fleet lives in that server)."""
        if self._fleet is None:
            raise RuntimeError("this MockFleet is a tenant of a tenant server: it has no in-process Fleet")
        return self._fleet

    @property
    def tenant(self) -> str | None:
        """The tenant id on the tenant server while a remote fleet runs, else None."""
        return self._tenant[0] if self._tenant is not None else None

    def _control(self) -> TenantControl:
        if self._tenant is None:
            raise RuntimeError("the MockFleet is not running: use `with MockFleet(...) as mock:` or call start()")
        return self._tenant[1]

    # Life cycle

    def start(self) -> MockFleet:
        """Listen on every port (free ones unless given) and serve in background threads; answers self. A remote
        fleet creates its tenant instead (RuntimeError with the server's reason when it refuses)."""
        if self._server is not None or self._tenant is not None:
            raise RuntimeError("this MockFleet is already running")
        if self._remote is not None:
            return self._start_tenant(*self._remote)
        server = FleetServer(self.fleet, self._options)
        server.start()
        self._server, self._urls = server, server.urls()
        return self

    def _start_tenant(self, url: str, token: str | None, body: dict[str, Any]) -> MockFleet:
        headers = {TOKEN_HEADER: token} if token is not None else {}
        with BaseUrlSession(url, headers) as http:
            response = http.post("/_mock/tenants", json=body)
        try:
            document = response.json()
        except ValueError:
            document = {}
        if response.status_code != 201:
            raise RuntimeError(f"the tenant server at {url} refused a tenant: {document.get('err', response.reason)}")
        self.control_token = document["control_token"]
        self._urls = {**document["instances"], ACTIVATION: document["activation_server"]}
        control = TenantControl(document["control"], self.control_token)
        self._tenant = (document["tenant"], control)
        return self

    def stop(self) -> None:
        """Stop serving and close every port; idempotent. The fleet's state stays (a later `start` serves it
        again, on new free ports). A remote fleet deletes its tenant, and its state with it."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()
        tenant, self._tenant = self._tenant, None
        if tenant is not None and self._remote is not None:
            tenant_id, control = tenant
            headers = {TOKEN_HEADER: self.control_token or ""}
            try:
                with BaseUrlSession(self._remote[0], headers) as http:
                    http.delete(f"/_mock/tenants/{tenant_id}")  # 404: expired already; either way it is gone
            finally:
                control.close()

    def apps(self) -> dict[str, Any]:
        """Face name -> its Flask app (before the fault and journal middleware), e.g. to list its routes."""
        if self._server is None:
            raise RuntimeError("the MockFleet is not running" + (" here" if self._remote is not None else ""))
        return self._server.apps()

    @property
    def running(self) -> bool:
        return self._server is not None or self._tenant is not None

    def __enter__(self) -> MockFleet:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"activation server at {self._urls[ACTIVATION]}" if self.running else "not running"
        return f"<MockFleet {', '.join(self.instances)}: {where}>"

    # Where things are

    def _served(self) -> dict[str, str]:
        if not self.running:
            raise RuntimeError("the MockFleet is not running: use `with MockFleet(...) as mock:` or call start()")
        return self._urls

    @property
    def instances(self) -> tuple[str, ...]:
        return self._config.instances

    @property
    def urls(self) -> dict[str, str]:
        """Instance name -> base URL (the activation server is `activation_url`)."""
        served = self._served()
        return {name: served[name] for name in self.instances}

    @property
    def activation_url(self) -> str:
        return self._served()[ACTIVATION]

    @property
    def apikey(self) -> str:
        """The configured API key every instance accepts in the `apikey` header."""
        return self._config.resolved_apikey

    @property
    def keys(self) -> list[str]:
        """The activation keys as configured (seed-derived ones resolved)."""
        return [spec.key or "" for spec in self._config.resolved_keys()]

    @property
    def key(self) -> str:
        """The first activation key: the one every scenario uses."""
        return self.keys[0]

    @property
    def deployments(self) -> dict[str, str]:
        """Instance name -> deployment id (stable for a name and seed)."""
        if self._remote is not None:
            instances = self._control().call("GET", "/_mock/state")["instances"]
            return {name: instance["deployment"] for name, instance in instances.items()}
        return self.fleet.deployments()

    def session(self, name: str, *, apikey: str | None = "", timeout: float = DEFAULT_TIMEOUT) -> BaseUrlSession:
        """A session bound to instance `name` (or `activation_server`) that sends the `apikey` header (the fleet's
        unless given; None sends none) and, when the fleet has a control token, the control-plane token. Close it
        when done (it is a context manager)."""
        served = self._served()
        if name not in served:
            raise KeyError(f"no face named {name!r}; this fleet serves {', '.join(served)}")
        headers: dict[str, str] = {}
        key = self.apikey if apikey == "" else apikey
        if key is not None and name != ACTIVATION:
            headers["apikey"] = key
        if self.control_token is not None:
            headers[TOKEN_HEADER] = self.control_token
        return BaseUrlSession(served[name], headers, timeout)

    # State

    def reset(self) -> None:
        """Back to the start state: licences, slots, users, sessions, scans, fault rules and the clock."""
        if self._remote is not None:
            self._control().call("POST", "/_mock/reset")
            return
        self.fleet.reset()

    def scenario(self, name: str) -> None:
        """Reset, then set the fleet up as the named scenario (see `scenarios()`); ScenarioError (a ValueError)
        when the name is unknown or the fleet cannot hold it, and then the fleet is unchanged."""
        if name not in scenarios.SCENARIOS:
            raise ScenarioError(f"unknown scenario {name!r}; known scenarios: {', '.join(scenarios.SCENARIOS)}")
        try:
            if self._remote is not None:
                self._control().call("POST", f"/_mock/scenarios/{name}", error=ScenarioError)
            else:
                scenarios.apply(self.fleet, name)
        except ScenarioError as exc:
            raise ScenarioError(f"scenario {name!r}: {exc}") from exc

    @staticmethod
    def scenarios() -> dict[str, str]:
        """Scenario name -> what it sets up."""
        return {name: s.description for name, s in scenarios.SCENARIOS.items()}

    def state(self) -> dict[str, Any]:
        """The whole fleet as a JSON-ready document (what `GET /_mock/state` answers)."""
        if self._remote is not None:
            return dict(self._control().call("GET", "/_mock/state"))
        return self.fleet.dump()

    def load_state(self, document: object) -> None:
        """Replace the whole fleet with a `state()` document; an invalid one raises InvalidSnapshot (a ValueError)
        and changes nothing."""
        if self._remote is not None:
            self._control().call("PUT", "/_mock/state", document, error=InvalidSnapshot)
            return
        self.fleet.load(document)

    def states(self) -> dict[str, str]:
        """Instance name -> licence state (`unlicensed`, `active`, `backup-online`, `backup-offline`)."""
        if self._remote is not None:
            instances = self._control().call("GET", "/_mock/view")["instances"]
            return {name: str(instance["state"]) for name, instance in instances.items()}
        return {name: state.value for name, state in self.fleet.states().items()}

    def slot_holders(self) -> dict[str, list[str]]:
        """Activation key -> deployment ids holding one of its slots."""
        if self._remote is not None:
            return dict(self._control().call("GET", "/_mock/slots")["holders"])
        return self.fleet.slot_holders()
