"""What the suite is pointed at: base URLs, credentials, the activation server, and what the target can do.

A target with a control plane (the mock's `/_mock/`) can be reset, seeded and have its clock moved, so the suite
explores freely. A target without one (a real MetaDefender Core) is only read unless the user allows destructive
steps, and then gets one short, fixed sequence that it cleans up after.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from contracts.catalogue import CATALOGUE, CatalogueEntry
from contracts.exchange import Connection
from contracts.model import DEFAULT_PROFILE, KEY_FORMAT, PROFILES

CONTROL_TOKEN_HEADER = "X-Mock-Control-Token"


class TargetError(Exception):
    """The target description is incomplete or the target cannot be reached as described."""


@dataclass(frozen=True)
class KeySpec:
    """An activation key the suite may use, with its slot count and expiry when the target cannot tell them."""

    key: str
    slots: int
    expires: date | None = None

    @classmethod
    def parse(cls, text: str) -> KeySpec:
        """`KEY:SLOTS` or `KEY:SLOTS:YYYY-MM-DD`."""
        parts = text.split(":")
        if len(parts) not in (2, 3) or not KEY_FORMAT.fullmatch(parts[0]) or not parts[1].isdigit():
            raise TargetError(f"a key is KEY:SLOTS[:YYYY-MM-DD] with a seven-group activation key, got {text!r}")
        try:
            expires = date.fromisoformat(parts[2]) if len(parts) == 3 else None
        except ValueError as exc:
            raise TargetError(f"bad expiry date in {text!r}: {exc}") from exc
        return cls(parts[0], int(parts[1]), expires)


@dataclass
class Target:
    core_urls: dict[str, str]  # instance name -> base URL
    activation_url: str | None = None
    apikey: str | None = None
    admin: tuple[str, str] | None = None  # log in for a session when no apikey is given
    keys: list[KeySpec] = field(default_factory=list)
    control: bool | None = None  # None: find out (GET /_mock/health)
    control_token: str | None = None
    verify: bool | str = True  # TLS: False, True, or a CA bundle path
    wsgi_apps: dict[str, Any] = field(default_factory=dict)  # base URL -> WSGI callable, for in-process runs
    allow_destructive: bool = False
    catalogue: dict[str, CatalogueEntry] = field(default_factory=lambda: dict(CATALOGUE))
    profile: str | None = None  # the line of Core ("4.18", "5.6"); None: the control plane's, else 5.6

    @classmethod
    def from_urls(cls, urls: Sequence[str], **kwargs: Any) -> Target:
        """Instances named after their position (core1, core2, ...) until the control plane names them."""
        if not urls:
            raise TargetError("give at least one Core base URL")
        return cls(core_urls={f"core{i + 1}": url.rstrip("/") for i, url in enumerate(urls)}, **kwargs)

    @classmethod
    def load(cls, path: Path) -> Target:
        """A target file (YAML or JSON): core_urls (list or name -> URL), activation_url, apikey, admin
        (USER:PASSWORD), keys (KEY:SLOTS[:DATE]), control, control_token, verify, allow_destructive, profile."""
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise TargetError(f"cannot read the target file {path}: {exc}") from exc
        if not isinstance(doc, dict):
            raise TargetError(f"the target file {path} must hold a mapping")
        known = {
            "core_urls",
            "activation_url",
            "apikey",
            "admin",
            "keys",
            "control",
            "control_token",
            "verify",
            "allow_destructive",
            "profile",
        }
        unknown = set(doc) - known
        if unknown:
            raise TargetError(
                f"unknown fields in {path}: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        urls = doc.get("core_urls")
        if isinstance(urls, list) and all(isinstance(u, str) for u in urls):
            target = cls.from_urls(urls)
        elif isinstance(urls, dict) and all(isinstance(u, str) for u in urls.values()):
            target = cls(core_urls={str(k): v.rstrip("/") for k, v in urls.items()})
        else:
            raise TargetError("core_urls must be a list of base URLs or a mapping of instance name to base URL")
        target.activation_url = _optional_str(doc, "activation_url")
        target.apikey = _optional_str(doc, "apikey")
        admin = _optional_str(doc, "admin")
        target.admin = parse_admin(admin) if admin else None
        target.keys = [KeySpec.parse(str(k)) for k in doc.get("keys") or []]
        target.control = doc.get("control")
        target.control_token = _optional_str(doc, "control_token")
        target.verify = doc.get("verify", True)
        target.allow_destructive = bool(doc.get("allow_destructive", False))
        profile = doc.get("profile")
        target.profile = check_profile(str(profile)) if profile is not None else None
        return target

    def connect(self) -> Connection:
        return Connection(self.wsgi_apps, self.verify)


def load_overrides(path: Path) -> dict[str, CatalogueEntry]:
    """The catalogue with a fidelity overrides file applied (the format `mockcore serve --overrides` reads:
    `errors: {E_CODE: {status: N, text: "..."}}`), so the suite expects the texts the target was told to say."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TargetError(f"cannot read the overrides file {path}: {exc}") from exc
    errors = doc.get("errors", {}) if isinstance(doc, dict) else None
    if not isinstance(errors, dict):
        raise TargetError(f"{path}: expected a mapping with an `errors` mapping")
    catalogue = dict(CATALOGUE)
    for code, entry in errors.items():
        base = catalogue.get(code)
        if base is None or not isinstance(entry, dict) or set(entry) - {"status", "text"}:
            raise TargetError(f"{path}: {code!r} is not a catalogue code with `status` and/or `text`")
        status, text = entry.get("status", base.status), entry.get("text", base.text)
        if not isinstance(status, int) or not 100 <= status <= 599 or not isinstance(text, str):
            raise TargetError(f"{path}: {code}: status is an HTTP status and text a string")
        catalogue[code] = CatalogueEntry(status, text)
    return catalogue


def _optional_str(doc: Mapping[str, Any], name: str) -> str | None:
    value = doc.get(name)
    if value is not None and not isinstance(value, str):
        raise TargetError(f"{name} must be a string")
    return value


def check_profile(name: str) -> str:
    """A profile name the suite knows (`contracts.model.PROFILES`)."""
    if name not in PROFILES:
        raise TargetError(f"unknown profile {name!r}; known: {', '.join(sorted(PROFILES))}")
    return name


def parse_admin(text: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise TargetError(f"admin is USER:PASSWORD, got {text!r}")
    return user, password


@dataclass
class Fleet:
    """The target as the suite found it: instance URLs and deployments, keys, credentials, control plane."""

    target: Target
    connection: Connection
    apikeys: dict[str, str]  # instance name -> the apikey header to send
    instances: dict[str, str]  # name -> base URL
    activation_url: str | None
    control: bool
    deployments: dict[str, str] = field(default_factory=dict)
    slots_endpoint: bool = True  # the control plane has `/_mock/slots` (until it answers otherwise)
    profile: str = DEFAULT_PROFILE  # the line of Core the suite expects (`contracts.model.PROFILES`)

    def control_headers(self) -> dict[str, str]:
        token = self.target.control_token
        return {CONTROL_TOKEN_HEADER: token} if token else {}

    def control_request(self, method: str, path: str, body: object = None) -> Any:
        """A call to the control plane of the first instance; raises TargetError on anything but 2xx."""
        url = next(iter(self.instances.values())) + "/_mock/" + path
        exchange = self.connection.request(method, url, headers=self.control_headers(), json_body=body, record=False)
        if not 200 <= exchange.status < 300:
            raise TargetError(
                f"control plane {method} /_mock/{path} answered {exchange.status}: {exchange.response_body[:300]!r}"
            )
        return exchange.json()

    def log_in_again(self) -> None:
        """A reset ends every session: a suite that logged in (no apikey given) logs in again after one."""
        if self.target.apikey is None:
            self.apikeys = _log_in(self.connection, self.target, self.instances)

    def state_document(self) -> dict[str, Any]:
        return self.control_request("GET", "state")

    def keys(self, document: dict[str, Any] | None = None) -> list[KeySpec]:
        """With a control plane, the keys the target has (slots and expiry); else the ones the user named."""
        if not self.control:
            return list(self.target.keys)
        found = []
        for entry in (document or self.state_document()).get("keys", []):
            terms = entry["terms"]
            found.append(KeySpec(terms["activation_key"], int(entry["slots"]), date.fromisoformat(terms["expires"])))
        return found

    def key_terms(self, document: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """With a control plane, what each key licenses (product, licensee, node count, engines); else nothing."""
        if not self.control:
            return {}
        return {e["terms"]["activation_key"]: e["terms"] for e in (document or self.state_document()).get("keys", [])}

    def holders(self, document: dict[str, Any] | None = None) -> dict[str, list[str]]:
        """Deployments holding a slot, per key, as the target's control plane reports them (`/_mock/slots`, or
        the state document of a control plane without it)."""
        if document is None and self.slots_endpoint:
            try:
                return {key: sorted(held) for key, held in self.control_request("GET", "slots")["holders"].items()}
            except TargetError:
                self.slots_endpoint = False
        keys = (document or self.state_document()).get("keys", [])
        return {e["terms"]["activation_key"]: sorted(e["holders"]) for e in keys}

    def today(self, document: dict[str, Any] | None = None) -> date | None:
        if not self.control:
            return None
        now = document["clock"]["now"] if document is not None else self.control_request("GET", "clock")["now"]
        return datetime.fromisoformat(now).date()


def discover(target: Target) -> Fleet:
    """Reach the target: find out whether it has a control plane, name its instances, get an apikey."""
    connection = target.connect()
    first = next(iter(target.core_urls.values()))
    control = target.control
    if control is None:
        try:
            probe = connection.request("GET", first + "/_mock/health", record=False)
        except OSError as exc:
            raise TargetError(f"cannot reach {first}: {exc}") from exc
        control = probe.status == 200 and probe.response_body.startswith(b"{")
    instances = dict(target.core_urls)
    activation_url = target.activation_url
    profile = target.profile
    if control:
        headers = {CONTROL_TOKEN_HEADER: target.control_token} if target.control_token else {}
        info = connection.request("GET", first + "/_mock/info", headers=headers, record=False)
        if info.status != 200:
            raise TargetError(f"{first}/_mock/info answered {info.status}: is the control token right?")
        described = info.json()
        if len(target.core_urls) == 1:
            instances = {name: url.rstrip("/") for name, url in described["instances"].items()}
        activation_url = activation_url or described.get("activation_server")
        if profile is None and described.get("profile") is not None:
            profile = str(described["profile"])
    apikeys = {name: target.apikey for name in instances} if target.apikey else _log_in(connection, target, instances)
    fleet = Fleet(target, connection, apikeys, instances, activation_url, bool(control))
    fleet.profile = check_profile(profile or DEFAULT_PROFILE)
    return fleet


def _log_in(connection: Connection, target: Target, instances: Mapping[str, str]) -> dict[str, str]:
    """A session on every instance (sessions are per instance), from the admin credentials."""
    if target.admin is None:
        raise TargetError("give an apikey, or admin credentials (USER:PASSWORD) to log in with")
    user, password = target.admin
    apikeys = {}
    for name, url in instances.items():
        login = connection.request("POST", url + "/login", json_body={"user": user, "password": password}, record=False)
        if login.status != 200:
            raise TargetError(f"login as {user} on {url} failed: {login.status} {login.response_body[:200]!r}")
        apikeys[name] = str(login.json()["session_id"])
    return apikeys


def dumps(doc: object) -> str:
    return json.dumps(doc, indent=2, sort_keys=True)
