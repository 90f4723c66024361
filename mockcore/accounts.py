"""Users, sessions and API keys of one Core instance, as stored: who may do what is decided in mockcore.rules
(docs/behaviour.md, "Authentication and accounts")."""

from __future__ import annotations

import base64
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

ADMIN_ROLE = "1"  # the built-in administrator role
ADMIN_ID = 2  # the vendor's glue sets the admin's key at /admin/user/2 [obs]
MAX_SESSIONS = 1000  # oldest logged-in session dropped past this, so /login floods cannot grow memory


@dataclass
class User:
    id: int
    name: str
    password: str
    roles: list[str]
    api_key: str | None = None

    def public(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "display_name": self.name,
            "email": "",
            "roles": list(self.roles),
            "directory_id": 1,
            "api_key": self.api_key or "",
        }


@dataclass
class Accounts:
    admin_name: str
    admin_password: str
    configured_apikey: str
    users: dict[int, User] = field(default_factory=dict)
    sessions: OrderedDict[str, int] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        if not self.users:
            self.users[ADMIN_ID] = User(ADMIN_ID, self.admin_name, self.admin_password, [ADMIN_ROLE])

    def find(self, name: object, password: object) -> User | None:
        return next((u for u in self.users.values() if u.name == name and u.password == password), None)

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
