"""Users, sessions and API keys of one Core instance, as stored: who may do what is decided in mockcore.rules
(docs/behaviour.md, "Authentication and accounts")."""

from __future__ import annotations

import base64
import re
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

ADMIN_ROLE = "1"  # the built-in administrator role's id, as users' `roles` list it
# The areas a role grants rights in, and the rights (docs/behaviour.md, "Users, roles and rights").
AREAS = (
    "agents",
    "cert",
    "configlog",
    "engines",
    "external",
    "license",
    "quarantine",
    "retention",
    "rule",
    "scan",
    "scanlog",
    "skip",
    "update",
    "updatelog",
    "users",
    "workflow",
    "zone",
)
RIGHTS = ("read", "write")
MAX_ROLES = 100
MAX_USERS = 1000
ADMIN_ID = 2  # the vendor's glue sets the admin's key at /admin/user/2 [obs]
MAX_SESSIONS = 1000  # oldest logged-in session dropped past this, so /login floods cannot grow memory
ROLE_ID = re.compile(r"0|[1-9][0-9]{0,8}")  # a role id as users' `roles` list it: ASCII digits, bounded, canonical


def role_number(role_id: object) -> int | None:
    """The role a users' `roles` entry names (`"3"` -> 3), or None when it is not an id (`"01"`, `"²"`)."""
    if not isinstance(role_id, str) or not ROLE_ID.fullmatch(role_id):
        return None
    return int(role_id)


@dataclass
class User:
    id: int
    name: str
    password: str
    roles: list[str]
    api_key: str | None = None
    display_name: str = ""

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "display_name": self.display_name or self.name,
            "email": "",
            "roles": list(self.roles),
            "directory_id": 1,
            "api_key": self.api_key or "",
        }


@dataclass
class Role:
    id: int
    name: str
    display_name: str
    rights: dict[str, list[str]]
    editable: bool = True

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "display_name": self.display_name,
            "rights": {area: list(rights) for area, rights in self.rights.items()},
            "editable": self.editable,
        }


def administrator_role() -> Role:
    """The built-in role every right of every area, which cannot be altered."""
    return Role(int(ADMIN_ROLE), "admin", "Administrators", {area: list(RIGHTS) for area in AREAS}, editable=False)


@dataclass
class Accounts:
    admin_name: str
    admin_password: str
    configured_apikey: str
    users: dict[int, User] = field(default_factory=dict)
    sessions: OrderedDict[str, int] = field(default_factory=OrderedDict)
    roles: dict[int, Role] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.users:
            self.users[ADMIN_ID] = User(ADMIN_ID, self.admin_name, self.admin_password, [ADMIN_ROLE])
        if not self.roles:
            admin = administrator_role()
            self.roles[admin.id] = admin

    def rights_of(self, user: User) -> dict[str, set[str]]:
        """Area -> rights, the union over the user's roles (a role id the instance does not know grants nothing)."""
        granted: dict[str, set[str]] = {}
        for role_id in user.roles:
            number = role_number(role_id)
            role = self.roles.get(number) if number is not None else None
            for area, rights in role.rights.items() if role else ():
                granted.setdefault(area, set()).update(rights)
        return granted

    def add_user(self, name: str, password: str, roles: list[str], display_name: str, api_key: str | None) -> User:
        user = User(max(self.users) + 1, name, password, roles, api_key, display_name or name)
        self.users[user.id] = user
        return user

    def add_role(self, name: str, display_name: str, rights: dict[str, list[str]]) -> Role:
        role = Role(max(self.roles) + 1, name, display_name or name, rights)
        self.roles[role.id] = role
        return role

    def find(self, name: object, password: object) -> User | None:
        return next((u for u in self.users.values() if u.name == name and u.password == password), None)

    def apikey_in_use(self, apikey: str, *, besides: User | None = None) -> bool:
        """Whether `apikey` already stands for someone other than `besides`: the configured key (the
        administrator's), a session, or another user's own key."""
        if apikey in self.sessions:
            return True
        if apikey == self.configured_apikey:
            return besides is None or besides.id != ADMIN_ID
        holder = self.with_apikey(apikey)
        return holder is not None and holder is not besides

    def with_apikey(self, apikey: str) -> User | None:
        """The user whose own key (set at /admin/user/{id}) is `apikey`."""
        return next((u for u in self.users.values() if u.api_key and u.api_key == apikey), None)

    def open_session(self, user: User) -> dict[str, str]:
        """A new session for `user` (the oldest dropped past MAX_SESSIONS): what `/login` answers."""
        session_id = secrets.token_hex(16)
        self.sessions[session_id] = user.id
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        return {"oms-csrf-token": base64.b64encode(secrets.token_hex(16).encode()).decode(), "session_id": session_id}

    def close_session(self, session: str) -> None:
        self.sessions.pop(session, None)
