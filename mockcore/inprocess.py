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

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from mockcore import scenarios
from mockcore.catalogue import Catalogue
from mockcore.fleet import DEFAULT_VERSION, Fleet, FleetConfig, KeySpec
from mockcore.http.control_api import TOKEN_HEADER
from mockcore.identity import ACTIVATION_KEY_RE, is_valid_apikey
from mockcore.overrides import load_overrides
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

_INSTANCE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_MAX_SLOTS = 100_000
_MAX_DAYS = 36_500

KeyArgument = KeySpec | str | tuple[str | None] | tuple[str | None, int] | tuple[str | None, int, int]


def parse_key(text: str) -> KeySpec:
    """`KEY[:SLOTS[:DAYS]]`, as `mockcore serve --key` takes it; an empty KEY is the one derived from the seed."""
    key, *rest = text.split(":")
    if len(rest) > 2 or not all(part.isdigit() for part in rest):
        raise ValueError(f"{text!r}: expected KEY[:SLOTS[:DAYS]] with whole numbers")
    slots = int(rest[0]) if rest else 1
    days = int(rest[1]) if len(rest) > 1 else 365
    return _key_spec(key or None, slots, days)


def _key_spec(key: str | None, slots: int, days: int) -> KeySpec:
    if key is not None and not ACTIVATION_KEY_RE.fullmatch(key):
        raise ValueError(f"{key!r}: an activation key is seven groups of four letters or digits joined by '-'")
    for name, value, top in (("slots", slots, _MAX_SLOTS), ("days", days, _MAX_DAYS)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise ValueError(f"{key or 'the seed key'}: {name} must be a whole number from 0 to {top}, not {value!r}")
    return KeySpec(key, slots, days)


def _keys(keys: Iterable[KeyArgument] | None) -> tuple[KeySpec, ...]:
    if keys is None:
        return DEFAULT_KEYS
    if isinstance(keys, str | KeySpec):
        keys = [keys]
    specs: list[KeySpec] = []
    for item in keys:
        if isinstance(item, KeySpec):
            specs.append(_key_spec(item.key, item.slots, item.days))
        elif isinstance(item, str):
            specs.append(parse_key(item))
        elif isinstance(item, tuple) and 1 <= len(item) <= 3:
            slots = item[1] if len(item) > 1 else 1
            days = item[2] if len(item) > 2 else 365
            specs.append(_key_spec(item[0] or None, slots, days))
        else:
            raise ValueError(f"{item!r}: a key is a KeySpec, 'KEY[:SLOTS[:DAYS]]' or (key, slots[, days])")
    if not specs:
        raise ValueError("a fleet needs at least one activation key")
    return tuple(specs)


def _instances(instances: Sequence[str] | str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in instances.split(",")) if isinstance(instances, str) else tuple(instances)
    if not names:
        raise ValueError("a fleet needs at least one instance")
    for name in names:
        if not isinstance(name, str) or not _INSTANCE_RE.fullmatch(name):
            raise ValueError(f"{name!r}: an instance name is 1-63 letters, digits, '_', '.' or '-'")
        if name == ACTIVATION:
            raise ValueError(f"{name!r} is the activation server's name; choose another instance name")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"instance names must be unique: {', '.join(duplicates)}")
    return names


def _admin(admin: str | tuple[str, str]) -> tuple[str, str]:
    if isinstance(admin, str):
        user, sep, password = admin.partition(":")
    else:
        pair = tuple(admin)
        user, sep, password = (pair[0], ":", pair[1]) if len(pair) == 2 else ("", "", "")
    if not sep or not user or not password or not isinstance(user, str) or not isinstance(password, str):
        raise ValueError(f"{admin!r}: the admin account is 'USER:PASSWORD' or (user, password)")
    return user, password


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
        return self._fleet.clock.now()

    @property
    def frozen(self) -> bool:
        return self._fleet.clock.frozen

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
        with self._fleet.lock:
            self._fleet.clock.advance(step)
            return self._fleet.clock.now()

    def set(self, moment: datetime | str) -> datetime:
        """Move the clock to `moment`: a datetime (naive means UTC) or an ISO 8601 text with an offset."""
        if isinstance(moment, str):
            try:
                moment = parse_datetime(moment, "moment")
            except InvalidSnapshot as exc:
                raise ValueError(str(exc)) from exc
        with self._fleet.lock:
            self._fleet.clock.set(moment)
            return self._fleet.clock.now()

    def freeze(self) -> datetime:
        """Stop the clock where it is (`set` and `advance` still move it)."""
        with self._fleet.lock:
            self._fleet.clock.freeze()
            return self._fleet.clock.now()

    def unfreeze(self) -> datetime:
        """Let the clock run again from where it stands."""
        with self._fleet.lock:
            self._fleet.clock.unfreeze()
            return self._fleet.clock.now()


class MockFleet:
    """A fleet of Core instances and its activation server, served on real (by default free) ports.

    `instances`: names, or one comma-separated text. `keys`: KeySpecs, `"KEY[:SLOTS[:DAYS]]"` texts or
    `(key, slots[, days])` tuples (a key of None or "" is derived from the seed). `admin`: `"USER:PASSWORD"` or a
    pair. `control_token`: when set, the control plane under `/_mock/` demands it (sessions from `session` send
    it). `overrides`: a fidelity overrides file (README, "Fidelity overrides"). Arguments are checked here and a
    bad one raises ValueError; nothing listens until `start` (or `with`).
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
    ) -> None:
        names = _instances(instances)
        if apikey is not None and not is_valid_apikey(apikey):
            raise ValueError(
                f"{apikey!r}: an API key is 36 chars of 0-9a-f with at least 10 letters and 10 digits and no more "
                "than 3 letters or 3 digits in a row"
            )
        unknown_ports = set(ports or {}) - set(names)
        if unknown_ports:
            raise ValueError(f"ports for unknown instances: {', '.join(sorted(unknown_ports))}")
        if control_token is not None and not control_token:
            raise ValueError("the control token must not be empty")
        user, password = _admin(admin)
        catalogue, version = Catalogue(), DEFAULT_VERSION
        if overrides is not None:
            loaded = load_overrides(Path(overrides))  # OverridesError is a ValueError
            catalogue, version = loaded.catalogue(), loaded.version or DEFAULT_VERSION
        config = FleetConfig(
            instances=names,
            keys=_keys(keys),
            seed=str(seed),
            apikey=apikey,
            admin_user=user,
            admin_password=password,
            version=version,
        )
        self.fleet = Fleet(config, catalogue=catalogue)
        self.control_token = control_token
        self.clock = FleetClockControl(self.fleet)
        self._options = ServeOptions(
            host=host,
            instance_ports=dict(ports or {}),
            activation_port=activation_port,
            control_token=control_token,
        )
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
        with self.fleet.lock:
            return {name: inst.deployment for name, inst in self.fleet.instances.items()}

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
