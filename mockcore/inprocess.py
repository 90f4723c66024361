"""The in-process server for Python tests: a whole fleet on free ports in background threads, as a context manager.

    with MockFleet(instances=("prod", "backup")) as mock:
        prod = mock.session("prod")                   # a requests.Session: base URL and apikey header set
        prod.post("/admin/license/activation", json={"activationKey": mock.key, "quantity": 1})
        mock.clock.advance(days=400)
        mock.reset()

Starting and stopping take milliseconds (cheroot servers in daemon threads, see mockcore.server), so a test may
run its own fleet; the pytest plugin (mockcore.pytest_plugin) shares one per test session and resets it between
tests. `import mockcore` does not import this module (nor requests); `mockcore.MockFleet` does, on first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from mockcore import scenarios
from mockcore.config import KeyArgument, KeySpec, parse_fleet, parse_key
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


class FleetClockControl:
    """The fleet's clock, moved in-process (the same effect as the control plane's `/_mock/clock` calls).
    Every method answers the fleet's now after the change."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def now(self) -> datetime:
        return self._fleet.now()

    @property
    def frozen(self) -> bool:
        return self._fleet.clock().frozen

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
        return self._fleet.advance_clock(step).now

    def set(self, moment: datetime | str) -> datetime:
        """Move the clock to `moment`: a datetime (naive means UTC) or an ISO 8601 text with an offset."""
        if isinstance(moment, str):
            try:
                moment = parse_datetime(moment, "moment")
            except InvalidSnapshot as exc:
                raise ValueError(str(exc)) from exc
        return self._fleet.set_clock(moment).now

    def freeze(self) -> datetime:
        """Stop the clock where it is (`set` and `advance` still move it)."""
        return self._fleet.freeze_clock().now

    def unfreeze(self) -> datetime:
        """Let the clock run again from where it stands."""
        return self._fleet.unfreeze_clock().now


class MockFleet:
    """A fleet of Core instances and its activation server, served on real (by default free) ports.

    `instances`: names, or one comma-separated text. `keys`: KeySpecs, `"KEY[:SLOTS[:DAYS]]"` texts or
    `(key, slots[, days])` tuples (a key of None or "" is derived from the seed). `admin`: `"USER:PASSWORD"` or a
    pair. `control_token`: when set, the control plane under `/_mock/` demands it (sessions from `session` send
    it). `profile`: the line of Core emulated, `"5.6"` (default) or `"4.18"`. `overrides`: a fidelity overrides
    file (docs/guides/test-double.md, "Fidelity overrides"). Arguments are checked by mockcore.config, as
    `mockcore serve` checks its flags, and a bad one raises ValueError (ConfigError); nothing listens until `start`
    (or `with`).
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
        options = ServeOptions(
            host=host, instance_ports=dict(ports or {}), activation_port=activation_port, control_token=control_token
        )
        self._adopt(Fleet.build(setup), options)

    @classmethod
    def serving(cls, fleet: Fleet, *, control_token: str | None = None) -> MockFleet:
        """A MockFleet around a fleet built already (with rules or a catalogue of your own), on free ports."""
        if control_token is not None and not control_token:
            raise ValueError("the control token must not be empty")
        mock = cls.__new__(cls)
        mock._adopt(fleet, ServeOptions(control_token=control_token))
        return mock

    def _adopt(self, fleet: Fleet, options: ServeOptions) -> None:
        self.fleet = fleet
        self.control_token = options.control_token
        self.clock = FleetClockControl(fleet)
        self._options = options
        self._server: FleetServer | None = None
        self._urls: dict[str, str] = {}

    # Life cycle

    def start(self) -> MockFleet:
        """Listen on every port (free ones unless given) and serve in background threads; answers self."""
        if self._server is not None:
            raise RuntimeError("this MockFleet is already running")
        server = FleetServer(self.fleet, self._options)
        server.start()
        self._server, self._urls = server, server.urls()
        return self

    def stop(self) -> None:
        """Stop serving and close every port; idempotent. The fleet's state stays (a later `start` serves it
        again, on new free ports)."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def apps(self) -> dict[str, Any]:
        """Face name -> its Flask app (before the fault and journal middleware), e.g. to list its routes."""
        if self._server is None:
            raise RuntimeError("the MockFleet is not running")
        return self._server.apps()

    @property
    def running(self) -> bool:
        return self._server is not None

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
        if self._server is None:
            raise RuntimeError("the MockFleet is not running: use `with MockFleet(...) as mock:` or call start()")
        return self._urls

    @property
    def instances(self) -> tuple[str, ...]:
        return self.fleet.config.instances

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
        return self.fleet.config.resolved_apikey

    @property
    def keys(self) -> list[str]:
        """The activation keys as configured (seed-derived ones resolved)."""
        return [spec.key or "" for spec in self.fleet.config.resolved_keys()]

    @property
    def key(self) -> str:
        """The first activation key: the one every scenario uses."""
        return self.keys[0]

    @property
    def deployments(self) -> dict[str, str]:
        """Instance name -> deployment id (stable for a name and seed)."""
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
        self.fleet.reset()

    def scenario(self, name: str) -> None:
        """Reset, then set the fleet up as the named scenario (see `scenarios()`); ScenarioError (a ValueError)
        when the name is unknown or the fleet cannot hold it, and then the fleet is unchanged."""
        if name not in scenarios.SCENARIOS:
            raise ScenarioError(f"unknown scenario {name!r}; known scenarios: {', '.join(scenarios.SCENARIOS)}")
        try:
            scenarios.apply(self.fleet, name)
        except ScenarioError as exc:
            raise ScenarioError(f"scenario {name!r}: {exc}") from exc

    @staticmethod
    def scenarios() -> dict[str, str]:
        """Scenario name -> what it sets up."""
        return {name: s.description for name, s in scenarios.SCENARIOS.items()}

    def state(self) -> dict[str, Any]:
        """The whole fleet as a JSON-ready document (what `GET /_mock/state` answers)."""
        return self.fleet.dump()

    def load_state(self, document: object) -> None:
        """Replace the whole fleet with a `state()` document; an invalid one raises InvalidSnapshot (a ValueError)
        and changes nothing."""
        self.fleet.load(document)

    def states(self) -> dict[str, str]:
        """Instance name -> licence state (`unlicensed`, `active`, `backup-online`, `backup-offline`)."""
        return {name: state.value for name, state in self.fleet.states().items()}

    def slot_holders(self) -> dict[str, list[str]]:
        """Activation key -> deployment ids holding one of its slots."""
        return self.fleet.slot_holders()
