"""The licence state machine (docs/behaviour.md, "Licence states" and "Transitions"), as pure code: no Flask, no
clock reads, no I/O.

`TRANSITIONS` is the one table of which operation is allowed in which state and where it leads; the decisions of
`mockcore.rules` consult it before they look at keys, slots or files (docs/behaviour.md, "Order of checks"), and
the docs and diagrams are rendered from it. A `Licence` is an instance's licence as a value: every transition
returns a new one, each transition consults the table itself, and a licence that cannot exist (a backup without
its production, an offline backup marked online, a licensed state without terms) cannot be built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from mockcore.catalogue import ErrorCode, LicenceError

# A licence's node count (`max_node_count`, a string in the vendor's view): ASCII digits, bounded.
NODE_COUNT = re.compile(r"[0-9]{1,9}")


class LicenceState(StrEnum):
    UNLICENSED = "unlicensed"
    ACTIVE = "active"
    BACKUP_ONLINE = "backup-online"
    BACKUP_OFFLINE = "backup-offline"

    @property
    def is_backup(self) -> bool:
        return self in (LicenceState.BACKUP_ONLINE, LicenceState.BACKUP_OFFLINE)


class Operation(StrEnum):
    ACTIVATE = "activate"
    UPLOAD = "upload"
    REGISTER_ONLINE = "register-online"
    REGISTER_OFFLINE = "register-offline"
    UNREGISTER = "unregister"
    NOMINATE = "nominate"
    DEACTIVATE = "deactivate"


# The Core endpoint of each operation.
ENDPOINTS: Mapping[Operation, tuple[str, str]] = {
    Operation.ACTIVATE: ("POST", "/admin/license/activation"),
    Operation.UPLOAD: ("POST", "/admin/license"),
    Operation.REGISTER_ONLINE: ("POST", "/admin/license/backup"),
    Operation.REGISTER_OFFLINE: ("POST", "/admin/license/backup"),
    Operation.UNREGISTER: ("DELETE", "/admin/license/backup"),
    Operation.NOMINATE: ("POST", "/admin/license/backup/nomination"),
    Operation.DEACTIVATE: ("POST", "/admin/license/deactivation"),
}

_U, _A = LicenceState.UNLICENSED, LicenceState.ACTIVE
_BON, _BOFF = LicenceState.BACKUP_ONLINE, LicenceState.BACKUP_OFFLINE

# For each operation and state, the state it leads to when the semantic checks pass, or the error
# that refuses it whatever the request says.
TRANSITIONS: Mapping[Operation, Mapping[LicenceState, LicenceState | ErrorCode]] = {
    Operation.ACTIVATE: {_U: _A, _A: _A, _BON: ErrorCode.ACTIVATE_BACKUP, _BOFF: ErrorCode.ACTIVATE_BACKUP},
    Operation.UPLOAD: {_U: _A, _A: _A, _BON: ErrorCode.ACTIVATE_BACKUP, _BOFF: ErrorCode.ACTIVATE_BACKUP},
    Operation.REGISTER_ONLINE: {
        _U: _BON,
        _A: ErrorCode.REGISTER_ACTIVE,
        _BON: ErrorCode.ALREADY_BACKUP,
        _BOFF: ErrorCode.ALREADY_BACKUP,
    },
    Operation.REGISTER_OFFLINE: {
        _U: _BOFF,
        _A: ErrorCode.REGISTER_ACTIVE,
        _BON: ErrorCode.ALREADY_BACKUP,
        _BOFF: ErrorCode.ALREADY_BACKUP,
    },
    Operation.UNREGISTER: {
        _U: ErrorCode.NOT_BACKUP_REMOVE,
        _A: ErrorCode.NOT_BACKUP_REMOVE,
        _BON: _U,
        _BOFF: _U,
    },
    Operation.NOMINATE: {
        _U: ErrorCode.NOT_BACKUP,
        _A: ErrorCode.NOT_BACKUP,
        _BON: _A,
        _BOFF: ErrorCode.NOMINATE_OFFLINE,
    },
    Operation.DEACTIVATE: {
        _U: ErrorCode.NOT_ACTIVE,
        _A: _U,
        _BON: ErrorCode.DEACTIVATE_BACKUP,
        _BOFF: ErrorCode.DEACTIVATE_BACKUP,
    },
}


def allowed(operation: Operation, state: LicenceState) -> LicenceState:
    """The state `operation` leads to from `state`, or the LicenceError the table gives."""
    outcome = TRANSITIONS[operation][state]
    if isinstance(outcome, ErrorCode):
        raise LicenceError(outcome)
    return outcome


@dataclass(frozen=True)
class LicenceTerms:
    """What a key grants, and what a licence file carries (docs/responses.md, the licence view)."""

    activation_key: str
    expires: date
    product_id: str = "MSCL-4-unlimited"
    product_name: str = "Metadefender Core 5 Linux"
    licensed_to: str = "mockcore"
    max_node_count: str = "1"  # a key's own terms: one node; an activation's licence carries its quantity
    licensed_engines: str = "*"


@dataclass(frozen=True)
class LicenceFile:
    """A licence file as the activation server issues it: a key's terms for one deployment."""

    terms: LicenceTerms
    deployment: str
    issued: str


class ImpossibleLicence(ValueError):
    """A licence no sequence of operations can reach; `field` names the part that disagrees."""

    def __init__(self, field: str, text: str) -> None:
        super().__init__(f"{field}: {text}")
        self.field = field
        self.text = text


@dataclass(frozen=True)
class Licence:
    """An instance's licence. `terms` is the key it holds; an unlicensed instance with terms may reactivate."""

    state: LicenceState = LicenceState.UNLICENSED
    terms: LicenceTerms | None = None
    online: bool = False
    production: str | None = None

    def __post_init__(self) -> None:
        if self.state is not LicenceState.UNLICENSED and self.terms is None:
            raise ImpossibleLicence("terms", f"a {self.state.value} licence needs terms")
        if self.state.is_backup != (self.production is not None):
            raise ImpossibleLicence("production", "set exactly when the state is a backup state")
        if (self.state is LicenceState.BACKUP_ONLINE) != (self.state.is_backup and self.online):
            raise ImpossibleLicence("online", "disagrees with the backup state")
        if self.state is LicenceState.UNLICENSED and self.online:
            raise ImpossibleLicence("online", "an unlicensed instance is not online")

    @property
    def reactivate(self) -> bool:
        return self.state is LicenceState.UNLICENSED and self.terms is not None

    @property
    def key(self) -> str | None:
        return self.terms.activation_key if self.terms else None

    @property
    def licensed(self) -> bool:
        return self.state is not LicenceState.UNLICENSED

    def expired(self, today: date) -> bool:
        return self.licensed and self.terms is not None and today > self.terms.expires

    def days_left(self, today: date) -> int:
        if self.terms is None:
            return 0
        return max(0, (self.terms.expires - today).days)

    def as_seen(self, holds_slot: bool) -> Licence:
        """The licence as the instance's next request sees it: an online production whose slot is gone at the
        activation server (freed, or moved to a nominated backup) has lost its licence but keeps its key."""
        if self.state is LicenceState.ACTIVE and self.online and not holds_slot:
            return Licence(terms=self.terms)
        return self

    # Transitions. Each consults the transition table (a LicenceError when the state forbids the operation);
    # the key, slot and file rules are decided before, in mockcore.rules.

    def activated(self, terms: LicenceTerms, online: bool) -> Licence:
        allowed(Operation.UPLOAD if not online else Operation.ACTIVATE, self.state)
        return Licence(LicenceState.ACTIVE, terms, online)

    def registered_backup(self, terms: LicenceTerms, production: str, online: bool) -> Licence:
        state = allowed(Operation.REGISTER_ONLINE if online else Operation.REGISTER_OFFLINE, self.state)
        return Licence(state, terms, online, production)

    def unregistered(self) -> Licence:
        return Licence(allowed(Operation.UNREGISTER, self.state))

    def nominated(self) -> Licence:
        return Licence(allowed(Operation.NOMINATE, self.state), self.terms, online=True)

    def deactivated(self) -> Licence:
        """Online: the key is still held, so the instance may reactivate. Offline: nothing is kept."""
        allowed(Operation.DEACTIVATE, self.state)
        return Licence(terms=self.terms) if self.online else Licence()


@dataclass(frozen=True)
class SlotChange:
    """One change of a key's slots: `release` gives a deployment's slot up, `take` gives one to a deployment, both
    hand the released slot over in place (a nomination). Holders keep the order they took their slots in."""

    key: str
    release: str | None = None
    take: str | None = None


@dataclass(frozen=True)
class ActivationKey:
    """A key at the activation server: its terms, how many slots it has, and who holds them, oldest first."""

    terms: LicenceTerms
    slots: int
    holders: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.terms.activation_key

    @property
    def free(self) -> int:
        return self.slots - len(self.holders)

    def holds(self, deployment: str) -> bool:
        return deployment in self.holders

    def changed(self, change: SlotChange) -> ActivationKey:
        holders = list(self.holders)
        if change.release is not None and change.take is not None:
            holders[holders.index(change.release)] = change.take
        elif change.release is not None:
            holders.remove(change.release)
        elif change.take is not None:
            holders.append(change.take)
        return replace(self, holders=tuple(holders))


EXPIRATION_FORMAT = "%m/%d/%Y"  # how the licence view and licence files write a date


def format_expiration(day: date) -> str:
    return day.strftime(EXPIRATION_FORMAT)
