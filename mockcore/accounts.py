"""Users, sessions and API keys of one Core instance (docs/behaviour.md, "Authentication and accounts")."""

from __future__ import annotations

import base64
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field

from mockcore.catalogue import ErrorCode, LicenceError
from mockcore.identity import is_valid_apikey

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
            self.users[ADMIN_ID] = User(ADMIN_ID, self.admin_name, self.admin_password, ["1"])

    def login(self, name: object, password: object) -> dict[str, str]:
        user = next((u for u in self.users.values() if u.name == name and u.password == password), None)
        if user is None:
            raise LicenceError(ErrorCode.LOGIN)
        session_id = secrets.token_hex(16)
        self.sessions[session_id] = user.id
        while len(self.sessions) > MAX_SESSIONS:
            self.sessions.popitem(last=False)
        return {"oms-csrf-token": base64.b64encode(secrets.token_hex(16).encode()).decode(), "session_id": session_id}

    def user_for(self, apikey: str | None, *, required: bool) -> User | None:
        """The user an `apikey` header stands for. Missing: 400 when required; unknown: always 403."""
        if apikey is None:
            if required:
                raise LicenceError(ErrorCode.ACCESS_MISSING)
            return None
        if apikey == self.configured_apikey:
            return self.users[ADMIN_ID]
        if apikey in self.sessions:
            return self.users[self.sessions[apikey]]
        user = next((u for u in self.users.values() if u.api_key and u.api_key == apikey), None)
        if user is None:
            raise LicenceError(ErrorCode.ACCESS)
        return user

    def logout(self, apikey: str) -> None:
        if self.sessions.pop(apikey, None) is None:
            raise LicenceError(ErrorCode.LOGOUT)

    def change_password(self, user: User, old: object, new: object) -> None:
        if not isinstance(new, str) or not new:
            raise LicenceError(ErrorCode.BAD_REQUEST)
        if old != user.password:
            raise LicenceError(ErrorCode.PASSWORD)
        user.password = new

    def set_apikey(self, caller: User, user_id: int, api_key: object) -> User:
        if "1" not in caller.roles:
            raise LicenceError(ErrorCode.ACCESS)
        user = self.users.get(user_id)
        if user is None:
            raise LicenceError(ErrorCode.NOT_FOUND)
        if not isinstance(api_key, str) or not is_valid_apikey(api_key):
            raise LicenceError(ErrorCode.APIKEY_FORMAT)
        user.api_key = api_key
        return user
