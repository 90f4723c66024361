"""The whole fleet as a JSON document, and back: what reset, `/_mock/state` and persistence are built on.

`dump` writes every fact a later request depends on (licences, slots, users, sessions, scans, the clock);
`parse` checks a document completely before anything is changed, so a bad one is refused whole.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from mockcore.accounts import ADMIN_ID, ADMIN_ROLE, AREAS, RIGHTS, Accounts, Role, User, administrator_role, role_number
from mockcore.clock import EARLIEST, LATEST
from mockcore.config import FleetConfig
from mockcore.identity import ACTIVATION_KEY_RE, DEPLOYMENT_RE
from mockcore.lifecycle import NODE_COUNT, ActivationKey, ImpossibleLicence, Licence, LicenceState, LicenceTerms
from mockcore.rules import PROFILES
from mockcore.scanning import SCAN_STAMP, Scan, Scanning

FORMAT = "mockcore-fleet/1"


class InvalidSnapshot(ValueError):
    """The document is not a fleet this mock can load; the message names the field."""


def _terms(terms: LicenceTerms) -> dict[str, Any]:
    doc = asdict(terms)
    doc["expires"] = terms.expires.isoformat()
    return doc


def dump_licence(licence: Licence) -> dict[str, Any]:
    return {
        "state": licence.state.value,
        "terms": _terms(licence.terms) if licence.terms else None,
        "online": licence.online,
        "production": licence.production,
    }


def dump_instance(deployment: str, licence: Licence, accounts: Accounts, scanning: Scanning) -> dict[str, Any]:
    return {
        "deployment": deployment,
        "licence": dump_licence(licence),
        "users": [asdict(user) for user in accounts.users.values()],
        "roles": [asdict(role) for role in accounts.roles.values()],
        "sessions": dict(accounts.sessions),
        "engines_disabled": sorted(scanning.disabled),
        "scans": [asdict(scan) for scan in scanning.scans.values()],
        "scan_counter": scanning.counter,
    }


def dump_key(key: ActivationKey) -> dict[str, Any]:
    return {"terms": _terms(key.terms), "slots": key.slots, "holders": list(key.holders)}


# Parsing: every helper raises InvalidSnapshot naming the path of the bad field.


def _need(doc: Any, kind: type | tuple[type, ...], path: str) -> Any:
    if isinstance(doc, bool) and kind is not bool and (kind is int or (isinstance(kind, tuple) and int in kind)):
        raise InvalidSnapshot(f"{path}: expected {getattr(kind, '__name__', kind)}, got a boolean")
    if not isinstance(doc, kind):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InvalidSnapshot(f"{path}: expected {name}, got {type(doc).__name__}")
    return doc


def _fields(doc: Any, path: str, required: set[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    _need(doc, dict, path)
    missing, extra = required - set(doc), set(doc) - required - optional
    if missing:
        raise InvalidSnapshot(f"{path}: missing {', '.join(sorted(missing))}")
    if extra:
        raise InvalidSnapshot(f"{path}: unknown {', '.join(sorted(map(str, extra)))}")
    return doc


def _date(text: Any, path: str) -> date:
    try:
        return date.fromisoformat(_need(text, str, path))
    except ValueError as exc:
        raise InvalidSnapshot(f"{path}: expected an ISO date (YYYY-MM-DD)") from exc


def parse_datetime(text: Any, path: str) -> datetime:
    try:
        moment = datetime.fromisoformat(_need(text, str, path))
    except ValueError as exc:
        raise InvalidSnapshot(f"{path}: expected an ISO date and time") from exc
    if moment.tzinfo is None:
        raise InvalidSnapshot(f"{path}: the time needs a UTC offset, e.g. 2026-01-01T00:00:00+00:00")
    return moment


def parse_terms(doc: Any, path: str) -> LicenceTerms:
    names = {"activation_key", "expires", "product_id", "product_name", "licensed_to", "max_node_count"}
    names.add("licensed_engines")
    _fields(doc, path, names)
    key = _need(doc["activation_key"], str, f"{path}.activation_key")
    if not ACTIVATION_KEY_RE.fullmatch(key):
        raise InvalidSnapshot(f"{path}.activation_key: not an activation key")
    strings = {n: _need(doc[n], str, f"{path}.{n}") for n in names - {"activation_key", "expires"}}
    if not NODE_COUNT.fullmatch(strings["max_node_count"]):
        raise InvalidSnapshot(f"{path}.max_node_count: a node count, 1 to 9 digits")
    return LicenceTerms(activation_key=key, expires=_date(doc["expires"], f"{path}.expires"), **strings)


def parse_licence(doc: Any, path: str) -> Licence:
    _fields(doc, path, {"state", "terms", "online", "production"})
    try:
        state = LicenceState(doc["state"])
    except ValueError:
        raise InvalidSnapshot(f"{path}.state: one of {', '.join(s.value for s in LicenceState)}") from None
    terms = None if doc["terms"] is None else parse_terms(doc["terms"], f"{path}.terms")
    online = _need(doc["online"], bool, f"{path}.online")
    production = doc["production"]
    try:
        licence = Licence(state, terms, online, production)
    except ImpossibleLicence as impossible:
        raise InvalidSnapshot(f"{path}.{impossible.field}: {impossible.text}") from None
    if production is not None and not DEPLOYMENT_RE.fullmatch(_need(production, str, f"{path}.production")):
        raise InvalidSnapshot(f"{path}.production: not a deployment id")
    return licence


def parse_key(doc: Any, path: str) -> ActivationKey:
    _fields(doc, path, {"terms", "slots", "holders"})
    terms = parse_terms(doc["terms"], f"{path}.terms")
    slots = _need(doc["slots"], int, f"{path}.slots")
    holders = _need(doc["holders"], list, f"{path}.holders")
    for index, holder in enumerate(holders):
        if not isinstance(holder, str) or not DEPLOYMENT_RE.fullmatch(holder):
            raise InvalidSnapshot(f"{path}.holders[{index}]: not a deployment id")
    if len(set(holders)) != len(holders):
        raise InvalidSnapshot(f"{path}.holders: a deployment holds at most one slot")
    if not 0 <= slots <= 100_000 or len(holders) > slots:
        raise InvalidSnapshot(f"{path}.slots: 0-100000 and at least as many as holders")
    return ActivationKey(terms, slots, tuple(holders))


def parse_accounts(doc: dict[str, Any], path: str, admin: tuple[str, str], apikey: str) -> Accounts:
    users: dict[int, User] = {}
    for index, raw in enumerate(_need(doc["users"], list, f"{path}.users")):
        where = f"{path}.users[{index}]"
        _fields(raw, where, {"id", "name", "password", "roles", "api_key"}, frozenset({"display_name"}))
        roles = _need(raw["roles"], list, f"{where}.roles")
        if not all(role_number(r) is not None for r in roles):
            raise InvalidSnapshot(f"{where}.roles: expected role ids, strings of 1 to 9 digits")
        api_key = raw["api_key"]
        if api_key is not None:
            _need(api_key, str, f"{where}.api_key")
        user = User(
            _need(raw["id"], int, f"{where}.id"),
            _need(raw["name"], str, f"{where}.name"),
            _need(raw["password"], str, f"{where}.password"),
            list(roles),
            api_key,
            _need(raw.get("display_name", ""), str, f"{where}.display_name"),
        )
        users[user.id] = user
    if ADMIN_ID not in users:
        raise InvalidSnapshot(f"{path}.users: the admin (id {ADMIN_ID}) is required; the configured API key is theirs")
    if len(users) != len(doc["users"]):
        raise InvalidSnapshot(f"{path}.users: two users share an id")
    if ADMIN_ROLE not in users[ADMIN_ID].roles:
        raise InvalidSnapshot(f"{path}.users: the admin (id {ADMIN_ID}) keeps the administrator role ({ADMIN_ROLE!r})")
    own_keys = [u.api_key for u in users.values() if u.api_key]
    others = [u.api_key for u in users.values() if u.api_key and u.id != ADMIN_ID]
    if len(set(own_keys)) != len(own_keys) or apikey in others:
        raise InvalidSnapshot(f"{path}.users: an API key stands for one user (the configured key is the admin's)")
    sessions = _need(doc["sessions"], dict, f"{path}.sessions")
    for session, user_id in sessions.items():
        if not isinstance(user_id, int) or user_id not in users:
            raise InvalidSnapshot(f"{path}.sessions.{session}: not a user id")
    return Accounts(admin[0], admin[1], apikey, users, OrderedDict(sessions), parse_roles(doc.get("roles"), path))


def parse_roles(doc: Any, path: str) -> dict[int, Role]:
    """The instance's roles; absent (a document of an earlier version) means the built-in administrator only."""
    builtin = administrator_role()
    if doc is None:
        return {builtin.id: builtin}
    roles: dict[int, Role] = {}
    for index, raw in enumerate(_need(doc, list, f"{path}.roles")):
        where = f"{path}.roles[{index}]"
        _fields(raw, where, {"id", "name", "display_name", "rights", "editable"})
        rights = _need(raw["rights"], dict, f"{where}.rights")
        for area, granted in rights.items():
            if area not in AREAS or not isinstance(granted, list) or not all(g in RIGHTS for g in granted):
                raise InvalidSnapshot(f"{where}.rights.{area}: an area of {', '.join(AREAS)} with read and/or write")
        role = Role(
            _need(raw["id"], int, f"{where}.id"),
            _need(raw["name"], str, f"{where}.name"),
            _need(raw["display_name"], str, f"{where}.display_name"),
            {area: list(granted) for area, granted in rights.items()},
            _need(raw["editable"], bool, f"{where}.editable"),
        )
        roles[role.id] = role
    if roles.get(builtin.id) != builtin:
        raise InvalidSnapshot(f"{path}.roles: the built-in administrator role (id {builtin.id}) is required, unaltered")
    if len(roles) != len(doc):
        raise InvalidSnapshot(f"{path}.roles: two roles share an id")
    return roles


def parse_scanning(doc: dict[str, Any], path: str) -> Scanning:
    disabled = _need(doc["engines_disabled"], list, f"{path}.engines_disabled")
    if not all(isinstance(e, str) and Scanning.known_engine(e) for e in disabled):
        raise InvalidSnapshot(f"{path}.engines_disabled: unknown engine")
    scans: OrderedDict[str, Scan] = OrderedDict()
    names = {"data_id", "filename", "size", "sha256", "infected", "started"}
    for index, raw in enumerate(_need(doc["scans"], list, f"{path}.scans")):
        where = f"{path}.scans[{index}]"
        _fields(raw, where, names)
        for name in ("data_id", "filename", "sha256", "started"):
            _need(raw[name], str, f"{where}.{name}")
        try:
            datetime.strptime(raw["started"], SCAN_STAMP)
        except ValueError:
            raise InvalidSnapshot(f"{where}.started: expected {SCAN_STAMP}") from None
        _need(raw["size"], int, f"{where}.size")
        _need(raw["infected"], bool, f"{where}.infected")
        scans[raw["data_id"]] = Scan(**raw)
    counter = _need(doc["scan_counter"], int, f"{path}.scan_counter")
    return Scanning(set(disabled), scans, counter)


@dataclass
class LoadedInstance:
    deployment: str
    licence: Licence
    accounts: Accounts
    scanning: Scanning


@dataclass
class LoadedFleet:
    now: datetime
    frozen: bool
    started: datetime
    keys: list[ActivationKey]
    instances: dict[str, LoadedInstance]


def dump_fleet(
    now: datetime,
    frozen: bool,
    started: datetime,
    keys: Iterable[ActivationKey],
    instances: Mapping[str, dict[str, Any]],
) -> dict[str, Any]:
    """The document of a fleet: its clock, its keys and its instances (each from `dump_instance`)."""
    return {
        "format": FORMAT,
        "clock": {"now": now.isoformat(), "frozen": frozen},
        "started": started.isoformat(),
        "keys": [dump_key(key) for key in keys],
        "instances": dict(instances),
    }


_INSTANCE_FIELDS = {"deployment", "licence", "users", "sessions", "engines_disabled", "scans", "scan_counter"}


def parse_fleet(doc: Any, config: FleetConfig) -> LoadedFleet:
    """Check a whole document against the fleet's configuration; nothing is built from a bad one."""
    _fields(doc, "$", {"format", "clock", "started", "keys", "instances"})
    if doc["format"] != FORMAT:
        raise InvalidSnapshot(f"$.format: expected {FORMAT!r}")
    clock = _fields(doc["clock"], "$.clock", {"now", "frozen"})
    now = parse_datetime(clock["now"], "$.clock.now")
    if not EARLIEST <= now <= LATEST:
        raise InvalidSnapshot(f"$.clock.now: between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
    frozen = _need(clock["frozen"], bool, "$.clock.frozen")
    started = parse_datetime(doc["started"], "$.started")
    keys = [parse_key(raw, f"$.keys[{i}]") for i, raw in enumerate(_need(doc["keys"], list, "$.keys"))]
    if len({k.key for k in keys}) != len(keys):
        raise InvalidSnapshot("$.keys: an activation key appears twice")
    raw_instances = _need(doc["instances"], dict, "$.instances")
    if set(raw_instances) != set(config.instances):
        raise InvalidSnapshot(
            f"$.instances: this fleet serves exactly {', '.join(config.instances)} (each name has its port)"
        )
    instances: dict[str, LoadedInstance] = {}
    for name in config.instances:
        path = f"$.instances.{name}"
        raw = _fields(raw_instances[name], path, _INSTANCE_FIELDS, frozenset({"roles"}))
        deployment = _need(raw["deployment"], str, f"{path}.deployment")
        if not DEPLOYMENT_RE.fullmatch(deployment):
            raise InvalidSnapshot(f"{path}.deployment: not a deployment id")
        instances[name] = LoadedInstance(
            deployment,
            parse_licence(raw["licence"], f"{path}.licence"),
            parse_accounts(raw, path, (config.admin_user, config.admin_password), config.resolved_apikey),
            parse_scanning(raw, path),
        )
    if len({i.deployment for i in instances.values()}) != len(instances):
        raise InvalidSnapshot("$.instances: two instances share a deployment id")
    profile = PROFILES[config.profile]
    for name, loaded in instances.items():
        if loaded.licence.state.is_backup and not profile.hot_backups:
            raise InvalidSnapshot(f"$.instances.{name}.licence: Core {profile.name} has no hot backups")
    return LoadedFleet(now, frozen, started, keys, instances)
