"""Every licence rule, decided in one place: one decision per operation, pure (no lock, no clock read, no I/O).

A decision takes the licence as the instance sees it and `Facts` (today, and the activation server's keys as
read-only values), and answers what the operation does (`Decision`: the next licence and the slot changes) or
raises the catalogue's LicenceError (an activation server refusal for its own face). The fleet takes its lock,
gathers the facts, asks, and applies the answer; a refused operation therefore changes nothing.

The order of checks (docs/behaviour.md, "Order of checks"): the transition table first, then whether the
activation server can be reached (online operations only), then keys, slots and files. Faulty servers for the
contract suite's own tests subclass `LicenceRules` and break one decision.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from mockcore.accounts import ADMIN_ID, AREAS, MAX_ROLES, MAX_USERS, RIGHTS, Accounts, User, role_number
from mockcore.catalogue import ErrorCode, LicenceError
from mockcore.identity import ACTIVATION_KEY_RE, DEPLOYMENT_RE, is_valid_apikey
from mockcore.lifecycle import (
    NODE_COUNT,
    ActivationKey,
    Licence,
    LicenceFile,
    LicenceState,
    Operation,
    SlotChange,
    allowed,
    format_expiration,
)

MIN_QUANTITY, MAX_QUANTITY = 1, 1000

# The activation server's refusals are HTTP 200 with one of these reason phrases (docs/activation-server.md).
INVALID_PARAMETER = "Invalid parameter"
ACTIVATION_FAILED = "Activation failed"


class ActivationRefused(Exception):
    """The activation server's refusal: the HTTP reason phrase it answers with and its error text."""

    def __init__(self, reason: str, text: str, *, no_slot: bool = False) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text
        self.no_slot = no_slot


class NotActivated(Exception):
    """`/deactivation` for a deployment that holds no slot on the key."""


def _invalid(what: str, advice: str) -> ActivationRefused:
    return ActivationRefused(
        INVALID_PARAMETER, f"Could not activate your product because the {what} you provided is invalid. {advice}"
    )


_NUMERIC = re.compile(r"[0-9]{1,16}")


def parse_quantity(value: object) -> int | None:
    """An integer or a numeric string from 1 to 1000, else None. A numeric string is ASCII digits only (no sign,
    no spaces, at most 16), as the contract's pattern says. Booleans are not numbers here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _NUMERIC.fullmatch(value):
        number = int(value)
    else:
        return None
    return number if MIN_QUANTITY <= number <= MAX_QUANTITY else None


@dataclass(frozen=True)
class Facts:
    """What a decision may read besides the licence: the fleet's moment and the activation server's keys (a
    read-only view, each key an immutable value; valid for the decision it was gathered for)."""

    now: datetime
    keys: Mapping[str, ActivationKey]

    @property
    def today(self) -> date:
        return self.now.date()

    def holds_slot(self, key: str | None, deployment: str) -> bool:
        found = self.keys.get(key) if key is not None else None
        return found is not None and found.holds(deployment)


BACKUP_PATH = "/admin/license/backup"


@dataclass(frozen=True)
class Profile:
    """What one line of Core offers (docs/behaviour.md, "Version profiles"): its `/version`, the Core paths it does
    not have (they answer 404, as any unknown path), and whether its licence view names the deployment
    `deployment_id` too."""

    name: str
    version: str
    absent: frozenset[str] = frozenset()
    deployment_id_in_view: bool = False

    @property
    def hot_backups(self) -> bool:
        """Whether this line of Core has hot backups at all (4.18 has no backup endpoints, so no backup states)."""
        return BACKUP_PATH not in self.absent


PROFILES: Mapping[str, Profile] = {
    "5.6": Profile("5.6", "5.6.1"),
    "4.18": Profile(
        "4.18",
        "4.18.0",
        frozenset(
            {
                BACKUP_PATH,
                "/admin/license/backup/nomination",
                "/admin/license/deactivation",
                "/readyz",
                "/file/sync",
            }
        ),
        deployment_id_in_view=True,
    ),
}
LATEST_PROFILE = "5.6"


@dataclass(frozen=True)
class Need:
    """What a Core request needs of its caller: an apikey (`required`), and the right in an area, if any."""

    required: bool
    area: str | None = None
    right: str | None = None


# Every Core request and what it needs (docs/behaviour.md, "Users, roles and rights"). A request whose apikey is
# optional still has its right checked when a key is sent.
NEEDS: Mapping[str, Need] = {
    "logout": Need(True),
    "user": Need(True),
    "change-password": Need(True),
    "set-user-apikey": Need(True, "users", "write"),
    "create-user": Need(True, "users", "write"),
    "create-role": Need(True, "users", "write"),
    "licence-read": Need(True, "license", "read"),
    "licence-write": Need(True, "license", "write"),
    "version": Need(False),
    "engines": Need(False),
    "engine-change": Need(True, "engines", "write"),
    "nodes": Need(True, "agents", "read"),
    "scan": Need(False, "scan", "write"),
    "scan-result": Need(False, "scan", "read"),
}


@dataclass(frozen=True)
class Decision:
    """What an allowed operation does: the instance's next licence and the changes of slots."""

    licence: Licence
    slots: tuple[SlotChange, ...] = ()


class LicenceRules:
    """The decisions. Stateless: one shared instance (`RULES`) serves every fleet."""

    # The activation server (docs/activation-server.md)

    def obtain(
        self, key: object, deployment: object, quantity: object, facts: Facts
    ) -> tuple[LicenceFile, tuple[SlotChange, ...]]:
        """`/activation`: the licence file a deployment gets, taking a slot unless it holds one already."""
        if not isinstance(key, str) or not ACTIVATION_KEY_RE.fullmatch(key):
            raise _invalid("Activation Key", "Please check the key and try again.")
        if not isinstance(deployment, str) or not DEPLOYMENT_RE.fullmatch(deployment):
            raise _invalid("Deployment ID", "Please check the Deployment ID and try again.")
        if parse_quantity(quantity) is None:
            raise _invalid("quantity", f"The quantity must be a whole number from {MIN_QUANTITY} to {MAX_QUANTITY}.")
        found = facts.keys.get(key)
        if found is None:
            raise ActivationRefused(ACTIVATION_FAILED, "The Activation Key is not known to the activation server.")
        if facts.today > found.terms.expires:
            raise ActivationRefused(ACTIVATION_FAILED, "The Activation Key has expired.")
        # The licence carries the number of nodes asked for (docs/decisions.md, "Nodes").
        terms = replace(found.terms, max_node_count=str(parse_quantity(quantity)))
        changes: tuple[SlotChange, ...] = ()
        if not found.holds(deployment):
            if found.free <= 0:
                raise ActivationRefused(
                    ACTIVATION_FAILED, "The Activation Key has no free activation left.", no_slot=True
                )
            changes = (SlotChange(key, take=deployment),)
        return LicenceFile(terms, deployment, facts.now.replace(microsecond=0).isoformat()), changes

    def release(self, key: str, deployment: str, facts: Facts) -> SlotChange:
        """`/deactivation`: the deployment gives its slot up."""
        if not facts.holds_slot(key, deployment):
            raise NotActivated(f"{deployment} is not activated with this key")
        return SlotChange(key, release=deployment)

    # What every request sees first

    def seen(self, licence: Licence, deployment: str, facts: Facts) -> Licence:
        """An online instance consults the activation server on each request: a slot gone there is a licence
        lost (docs/behaviour.md, "Keys and slots")."""
        return licence.as_seen(facts.holds_slot(licence.key, deployment))

    # Licence operations (docs/behaviour.md, "Transitions")

    def activate(
        self, licence: Licence, deployment: str, key: str, quantity: int, facts: Facts, reachable: bool
    ) -> Decision:
        allowed(Operation.ACTIVATE, licence.state)
        self._reach(reachable)
        try:
            issued, changes = self.obtain(key, deployment, quantity, facts)
        except ActivationRefused as refused:
            code = ErrorCode.NO_SLOT if refused.no_slot else ErrorCode.ACTIVATION_FAILED
            raise LicenceError(code, None if refused.no_slot else refused.text) from refused
        moved = self._moving(licence, deployment, key, facts)
        return Decision(licence.activated(issued.terms, online=True), (*changes, *moved))

    def upload(self, licence: Licence, deployment: str, file: LicenceFile | None, facts: Facts) -> Decision:
        allowed(Operation.UPLOAD, licence.state)
        usable = self._usable(file, facts)
        if usable.deployment != deployment:
            raise LicenceError(ErrorCode.INVALID_LICENSE)
        moved = self._moving(licence, deployment, usable.terms.activation_key, facts)
        return Decision(licence.activated(usable.terms, online=False), moved)

    def register_online(
        self, licence: Licence, deployment: str, key: str, production: str, facts: Facts, reachable: bool
    ) -> Decision:
        allowed(Operation.REGISTER_ONLINE, licence.state)
        self._reach(reachable)
        found = facts.keys.get(key)
        if found is None:
            raise LicenceError(ErrorCode.BACKUP_KEY)
        if production == deployment or not found.holds(production):
            raise LicenceError(ErrorCode.BACKUP_PRODUCTION)
        return Decision(licence.registered_backup(found.terms, production, online=True))

    def register_offline(self, licence: Licence, deployment: str, file: LicenceFile | None, facts: Facts) -> Decision:
        allowed(Operation.REGISTER_OFFLINE, licence.state)
        usable = self._usable(file, facts)
        if usable.deployment == deployment:
            raise LicenceError(ErrorCode.INVALID_LICENSE)  # a backup of itself
        return Decision(licence.registered_backup(usable.terms, usable.deployment, online=False))

    def unregister(self, licence: Licence) -> Decision:
        return Decision(licence.unregistered())

    def nominate(self, licence: Licence, deployment: str, facts: Facts, reachable: bool) -> Decision:
        """The backup gets the production's slot if it still holds one (the production loses it, even when the
        backup holds a stale slot of its own), else a slot it holds already, else a free one."""
        allowed(Operation.NOMINATE, licence.state)
        self._reach(reachable)
        key, production = licence.key, licence.production
        assert key is not None and production is not None  # a backup licence has both
        found = facts.keys.get(key)
        if found is not None and found.holds(production):
            handed = None if found.holds(deployment) else deployment
            return Decision(licence.nominated(), (SlotChange(key, release=production, take=handed),))
        if found is not None and found.holds(deployment):
            return Decision(licence.nominated())
        if found is not None and found.free > 0:
            return Decision(licence.nominated(), (SlotChange(key, take=deployment),))
        raise LicenceError(ErrorCode.NO_SLOT)

    def deactivate(self, licence: Licence, deployment: str, facts: Facts, reachable: bool) -> Decision:
        """Online, the slot is freed at the activation server; offline, it stays held (only the activation
        server's `/deactivation` frees it)."""
        allowed(Operation.DEACTIVATE, licence.state)
        if licence.online:
            self._reach(reachable)
        return Decision(licence.deactivated(), self._online_slot(licence, deployment, facts))

    # Scans, engines, health (docs/behaviour.md, "Scans and engines")

    def scan_body(self, size: int) -> None:
        """An empty file is refused before the instance's licence is looked at (after the caller, the body's
        framing and size, `scan_request`'s length and `callbackurl` checks: docs/behaviour.md, "Order of checks")."""
        if size == 0:
            raise LicenceError(ErrorCode.EMPTY_FILE)

    def scan(self, licence: Licence, size: int, facts: Facts) -> None:
        self.scan_body(size)
        if licence.state.is_backup:
            raise LicenceError(ErrorCode.SCAN_BACKUP)
        if licence.state is LicenceState.UNLICENSED:
            raise LicenceError(ErrorCode.SCAN_UNLICENSED)
        if licence.expired(facts.today):
            raise LicenceError(ErrorCode.EXPIRED_SCAN)

    def change_engine(self, licence: Licence, known: bool) -> None:
        if not licence.licensed:
            raise LicenceError(ErrorCode.ENGINES_UNLICENSED)
        if not known:
            raise LicenceError(ErrorCode.NOT_FOUND)

    def node_count(self, licence: Licence) -> int:
        """`/stat/nodes`' `max_node_count`: the licence's node count as a number (0 when unlicensed)."""
        count = licence.terms.max_node_count if licence.licensed and licence.terms else ""
        return int(count) if NODE_COUNT.fullmatch(count) else 0

    def engines_listed(self, licence: Licence) -> bool:
        """An unlicensed instance lists no engines."""
        return licence.licensed

    def readiness(self, licence: Licence, facts: Facts) -> str:
        """The licence status `/readyz` reports: `ok`, `expired` or `invalid`."""
        if not licence.licensed:
            return "invalid"
        return "expired" if licence.expired(facts.today) else "ok"

    def ready_status(self, readiness: str) -> int:
        """`/readyz` answers 200 only when the licence is `ok`, else 503."""
        return 200 if readiness == "ok" else 503

    # The licence view (docs/responses.md, `GET /admin/license`)

    def licence_view(self, licence: Licence, deployment: str, facts: Facts) -> dict[str, Any]:
        if not licence.licensed or licence.terms is None:
            info: dict[str, Any] = {"deployment": deployment, "deployment_id": deployment}
            if licence.reactivate:
                info["reactivate"] = True
            return info
        terms = licence.terms
        return {
            "days_left": licence.days_left(facts.today),
            "deployment": deployment,
            "expiration": format_expiration(terms.expires),
            "licensed_engines": terms.licensed_engines,
            "licensed_to": terms.licensed_to,
            "max_node_count": terms.max_node_count,
            "online_activated": licence.online,
            "product_id": terms.product_id,
            "product_name": terms.product_name,
        }

    # Authentication and accounts (docs/behaviour.md, "Authentication and accounts")

    def caller(self, apikey: str | None, accounts: Accounts, *, required: bool) -> User | None:
        """The user an `apikey` header stands for. Missing: E_ACCESS_MISSING when required; unknown: E_ACCESS."""
        if apikey is None:
            if required:
                raise LicenceError(ErrorCode.ACCESS_MISSING)
            return None
        # The configured key is the administrator's, then a session, then a key set at /admin/user/{id}.
        if apikey == accounts.configured_apikey:
            return accounts.users[ADMIN_ID]
        if apikey in accounts.sessions:
            return accounts.users[accounts.sessions[apikey]]
        user = accounts.with_apikey(apikey)
        if user is None:
            raise LicenceError(ErrorCode.ACCESS)
        return user

    def authorised(self, action: str, apikey: str | None, accounts: Accounts) -> User | None:
        """The caller of a Core request (`NEEDS[action]`): E_ACCESS_MISSING / E_ACCESS as `caller` says, then
        E_NO_RIGHTS when none of the caller's roles grants the right the request needs."""
        need = NEEDS[action]
        user = self.caller(apikey, accounts, required=need.required)
        if user is not None and need.area is not None and need.right not in accounts.rights_of(user).get(need.area, ()):
            raise LicenceError(ErrorCode.NO_RIGHTS)
        return user

    def new_user(self, doc: Mapping[str, Any], accounts: Accounts) -> tuple[str, str, list[str], str, str | None]:
        """`POST /admin/user`: name, password, roles (ids of roles the instance has), display name, own API key."""
        name, password, display = doc.get("name"), doc.get("password"), doc.get("display_name", "")
        roles, api_key = doc.get("roles", []), doc.get("apikey")
        if not isinstance(name, str) or not name.strip() or not isinstance(password, str) or not password:
            raise LicenceError(ErrorCode.BAD_REQUEST)
        if not isinstance(display, str) or not isinstance(roles, list) or not roles:
            raise LicenceError(ErrorCode.BAD_REQUEST)
        if not all(role_number(r) is not None for r in roles):
            raise LicenceError(ErrorCode.BAD_REQUEST)
        if api_key is not None and not (isinstance(api_key, str) and is_valid_apikey(api_key)):
            raise LicenceError(ErrorCode.APIKEY_FORMAT)
        if len(accounts.users) >= MAX_USERS:
            raise LicenceError(ErrorCode.BAD_REQUEST)  # memory stays bounded
        if any(u.name == name for u in accounts.users.values()):
            raise LicenceError(ErrorCode.NAME_TAKEN)
        if not all(role_number(r) in accounts.roles for r in roles):
            raise LicenceError(ErrorCode.UNKNOWN_ROLE)
        if api_key is not None and accounts.apikey_in_use(api_key):
            raise LicenceError(ErrorCode.APIKEY_TAKEN)
        return name, password, list(roles), display, api_key

    def new_role(self, doc: Mapping[str, Any], accounts: Accounts) -> tuple[str, str, dict[str, list[str]]]:
        """`POST /admin/role`: a unique name, a display name, and rights per known area (read and/or write)."""
        name, display, rights = doc.get("name"), doc.get("display_name", ""), doc.get("rights", {})
        if not isinstance(name, str) or not name.strip() or not isinstance(display, str):
            raise LicenceError(ErrorCode.BAD_REQUEST)
        if not isinstance(rights, dict):
            raise LicenceError(ErrorCode.BAD_REQUEST)
        for area, granted in rights.items():
            if area not in AREAS or not isinstance(granted, list) or not all(g in RIGHTS for g in granted):
                raise LicenceError(ErrorCode.BAD_REQUEST)
        if len(accounts.roles) >= MAX_ROLES:
            raise LicenceError(ErrorCode.BAD_REQUEST)  # memory stays bounded
        if any(role.name == name for role in accounts.roles.values()):
            raise LicenceError(ErrorCode.NAME_TAKEN)
        return name, display, {area: sorted(set(granted), key=RIGHTS.index) for area, granted in rights.items()}

    def login(self, name: object, password: object, accounts: Accounts) -> User:
        user = accounts.find(name, password)
        if user is None:
            raise LicenceError(ErrorCode.LOGIN)
        return user

    def logout(self, apikey: str, accounts: Accounts) -> None:
        """Only a session logs out; the configured key and users' own keys are not sessions."""
        if apikey not in accounts.sessions:
            raise LicenceError(ErrorCode.LOGOUT)

    def new_password(self, user: User, old: object, new: object) -> str:
        if not isinstance(new, str) or not new:
            raise LicenceError(ErrorCode.BAD_REQUEST)
        if old != user.password:
            raise LicenceError(ErrorCode.PASSWORD)
        return new

    def apikey_change(self, user_id: int, api_key: object, accounts: Accounts) -> tuple[User, str]:
        """The user whose key is set at /admin/user/{id} (the caller needs `users: write`), and the key in the
        documented format."""
        user = accounts.users.get(user_id)
        if user is None:
            raise LicenceError(ErrorCode.NOT_FOUND)
        if not isinstance(api_key, str) or not is_valid_apikey(api_key):
            raise LicenceError(ErrorCode.APIKEY_FORMAT)
        if accounts.apikey_in_use(api_key, besides=user):
            raise LicenceError(ErrorCode.APIKEY_TAKEN)
        return user, api_key

    # Request shapes

    def backup_registration(self, key: str | None, production: str | None, body: bytes) -> bool:
        """Online (True: both headers, no body) or offline (False: a body, no header); anything else is
        E_BACKUP_REQUEST, before the state rule (docs/decisions.md, "Backup registration request")."""
        if key is not None and production is not None and not body:
            return True
        if key is None and production is None and body:
            return False
        raise LicenceError(ErrorCode.BACKUP_REQUEST)

    def activation_quantity(self, value: object) -> int:
        """`quantity` of Core's activation request (1 when absent): a whole number from 1 to 1000."""
        quantity = parse_quantity(value)
        if quantity is None:
            raise LicenceError(ErrorCode.BAD_REQUEST)
        return quantity

    # A `callbackurl` of the vendor's format: http or https, a host name, IPv4 or [IPv6] address, an optional port,
    # then an optional path (printable ASCII). The contract's `callbackurl` has the same pattern and length cap.
    CALLBACK_URL = (
        r"^[Hh][Tt][Tt][Pp][Ss]?://"
        r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*)"
        r"(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?"
        r"([/?#][!-~]*)?$"
    )
    CALLBACK_URL_MAX = 2048

    def scan_request(self, length_given: bool, callback: str | None, *, sync: bool) -> None:
        """`POST /file` and `/file/sync`, once the body is read: a body sent without its length (chunked, or no
        Content-Length) is E_LENGTH_REQUIRED; then a `callbackurl` header: a sync scan takes none
        (E_CALLBACK_UNSUPPORTED), `/file` one of the vendor's format (E_CALLBACK_INVALID), which is never called."""
        if not length_given:
            raise LicenceError(ErrorCode.LENGTH_REQUIRED)
        if callback is None:
            return
        if sync:
            raise LicenceError(ErrorCode.CALLBACK_UNSUPPORTED)
        if len(callback) > self.CALLBACK_URL_MAX or not re.fullmatch(self.CALLBACK_URL, callback):
            raise LicenceError(ErrorCode.CALLBACK_INVALID)

    def profile_view(self, view: dict[str, Any], profile: Profile) -> dict[str, Any]:
        """The licence view as the profile's line of Core names it."""
        if profile.deployment_id_in_view and "deployment" in view:
            return {**view, "deployment_id": view["deployment"]}
        return view

    # Shared steps

    @staticmethod
    def _reach(reachable: bool) -> None:
        if not reachable:
            raise LicenceError(ErrorCode.ACTIVATION_UNREACHABLE)

    @staticmethod
    def _usable(file: LicenceFile | None, facts: Facts) -> LicenceFile:
        """A licence file this fleet signed and still valid today (invalid and expired files read the same)."""
        if file is None or facts.today > file.terms.expires:
            raise LicenceError(ErrorCode.INVALID_LICENSE)
        return file

    @staticmethod
    def _online_slot(licence: Licence, deployment: str, facts: Facts) -> tuple[SlotChange, ...]:
        """The slot an online licence holds, given up (an offline licence's slot stays held)."""
        if licence.online and licence.key is not None and facts.holds_slot(licence.key, deployment):
            return (SlotChange(licence.key, release=deployment),)
        return ()

    def _moving(self, licence: Licence, deployment: str, new_key: str, facts: Facts) -> tuple[SlotChange, ...]:
        """A production moving to another key frees its old online slot."""
        if licence.state is LicenceState.ACTIVE and licence.key != new_key:
            return self._online_slot(licence, deployment, facts)
        return ()


RULES = LicenceRules()
