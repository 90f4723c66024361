"""The licence state machine of SPEC §2-§3, as pure code: no Flask, no clock reads, no I/O.

`TRANSITIONS` is the one table of which operation is allowed in which state and where it leads; the fleet
consults it before it looks at keys, slots or files (SPEC §8, order of checks), and the docs and diagrams are
rendered from it. A `Licence` is an instance's licence as a value: every transition returns a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from mockcore.catalogue import ErrorCode, LicenceError


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


# The Core endpoint of each operation (SPEC §3, first column).
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

# SPEC §3: for each operation and state, the state it leads to when the semantic checks pass, or the error
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
    """What a key grants, and what a licence file carries: the licensed shape of SPEC §4."""

    activation_key: str
    expires: date
    product_id: str = "MSCL-4-unlimited"
    product_name: str = "Metadefender Core 5 Linux"
    licensed_to: str = "mockcore"
    max_node_count: str = "10"
    licensed_engines: str = "*"


@dataclass(frozen=True)
class Licence:
    """An instance's licence. `terms` is the key it holds; an unlicensed instance with terms may reactivate."""

    state: LicenceState = LicenceState.UNLICENSED
    terms: LicenceTerms | None = None
    online: bool = False
    production: str | None = None

    @property
    def reactivate(self) -> bool:
        return self.state is LicenceState.UNLICENSED and self.terms is not None

    @property
    def key(self) -> str | None:
        return self.terms.activation_key if self.terms else None

    def expired(self, today: date) -> bool:
        return self.state is not LicenceState.UNLICENSED and self.terms is not None and today > self.terms.expires

    def days_left(self, today: date) -> int:
        if self.terms is None:
            return 0
        return max(0, (self.terms.expires - today).days)

    # Transitions. Each returns the licence after the operation; the fleet has checked `allowed` and the
    # semantic rules (key, slot, file) before calling them.

    def activated(self, terms: LicenceTerms, online: bool) -> Licence:
        return Licence(LicenceState.ACTIVE, terms, online)

    def registered_backup(self, terms: LicenceTerms, production: str, online: bool) -> Licence:
        state = LicenceState.BACKUP_ONLINE if online else LicenceState.BACKUP_OFFLINE
        return Licence(state, terms, online, production)

    def unregistered(self) -> Licence:
        return Licence()

    def nominated(self) -> Licence:
        return Licence(LicenceState.ACTIVE, self.terms, online=True)

    def deactivated(self) -> Licence:
        """Online: the key is still held, so the instance may reactivate. Offline: nothing is kept."""
        return Licence(LicenceState.UNLICENSED, self.terms) if self.online else Licence()

    def lost_slot(self) -> Licence:
        """An online instance whose slot was freed or moved elsewhere at the activation server."""
        return replace(Licence(), terms=self.terms)
