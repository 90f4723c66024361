"""The HTTP calls of a failover, as values: which face, method, path, query, headers and body. The demos send them
over real HTTP (mockcore.demo.runner), the dashboard through each face's WSGI app in-process
(mockcore.http.dashboard); either way the request goes through the emulator's real HTTP code.

Lifecycle paths come from `mockcore.lifecycle.ENDPOINTS`, the table the state machine is defined by.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from mockcore.config import ACTIVATION_FACE
from mockcore.lifecycle import ENDPOINTS, Operation

ACTIVATION_SERVER = ACTIVATION_FACE  # the activation server's face name (one constant: mockcore.config)
SHOWN_BODY = 4000  # characters of a body kept for showing


@dataclass(frozen=True)
class Call:
    face: str  # an instance name, or ACTIVATION_SERVER
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    auth: bool = True  # send the caller's apikey (never to the activation server)

    @property
    def target(self) -> str:
        """Path and query, as on the request line."""
        return self.path + (f"?{urlencode(self.query)}" if self.query else "")


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def err(self) -> str | None:
        doc = self.json()
        value = doc.get("err") if isinstance(doc, dict) else None
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Exchange:
    """A call as sent (with the apikey it carried) and its answer."""

    call: Call
    url: str
    apikey: str | None
    answer: Answer

    def public(self) -> dict[str, Any]:
        headers = dict(self.call.headers)
        if self.apikey is not None:
            headers = {"apikey": self.apikey, **headers}
        return {
            "request": {
                "face": self.call.face,
                "method": self.call.method,
                "url": self.url,
                "headers": headers,
                "body": shown_body(self.call.body, dict(self.call.headers).get("Content-Type", "")),
            },
            "response": {
                "status": self.answer.status,
                "reason": self.answer.reason,
                "content_type": self.answer.content_type,
                "body": shown_body(self.answer.body, self.answer.content_type),
            },
        }


def shown_body(data: bytes, content_type: str = "") -> Any:
    """A body for people and for JSON output: parsed JSON when it is JSON, else text (cut at SHOWN_BODY)."""
    if not data:
        return None
    text = data.decode("utf-8", errors="replace")
    if "json" in content_type or text[:1] in "{[":
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text if len(text) <= SHOWN_BODY else text[:SHOWN_BODY] + f"... ({len(text)} characters)"


def _json(doc: object) -> bytes:
    return json.dumps(doc).encode()


def _operation(face: str, operation: Operation, **kwargs: Any) -> Call:
    method, path = ENDPOINTS[operation]
    return Call(face, method, path, **kwargs)


# Core instance calls (docs/responses.md)


def login(face: str, user: str, password: str) -> Call:
    return Call(
        face,
        "POST",
        "/login",
        headers=(("Content-Type", "application/json"),),
        body=_json({"user": user, "password": password}),
        auth=False,
    )


def licence(face: str) -> Call:
    return Call(face, "GET", "/admin/license")


def is_backup(face: str) -> Call:
    return Call(face, "GET", "/admin/license/backup")


def activate(face: str, key: str, comment: str) -> Call:
    body = _json({"activationKey": key, "quantity": 1, "comment": comment})
    return _operation(face, Operation.ACTIVATE, headers=(("Content-Type", "application/json"),), body=body)


def upload(face: str, licence_file: bytes) -> Call:
    headers = (("Content-Type", "application/octet-stream"),)
    return _operation(face, Operation.UPLOAD, headers=headers, body=licence_file)


def register_online(face: str, key: str, production_deployment: str) -> Call:
    headers = (("activation-key", key), ("active-deployment-id", production_deployment))
    return _operation(face, Operation.REGISTER_ONLINE, headers=headers)


def register_offline(face: str, licence_file: bytes) -> Call:
    headers = (("Content-Type", "application/octet-stream"),)
    return _operation(face, Operation.REGISTER_OFFLINE, headers=headers, body=licence_file)


def unregister(face: str) -> Call:
    return _operation(face, Operation.UNREGISTER)


def nominate(face: str) -> Call:
    return _operation(face, Operation.NOMINATE)


def deactivate(face: str) -> Call:
    return _operation(face, Operation.DEACTIVATE)


def scan(face: str, content: bytes, filename: str) -> Call:
    headers = (("Content-Type", "application/octet-stream"), ("filename", filename))
    return Call(face, "POST", "/file", headers=headers, body=content)


def scan_result(face: str, data_id: str) -> Call:
    return Call(face, "GET", f"/file/{data_id}")


# Activation server calls (docs/activation-server.md)


def obtain_licence_file(key: str, deployment: str) -> Call:
    query = (("key", key), ("deployment", deployment), ("quantity", "1"))
    return Call(ACTIVATION_SERVER, "GET", "/activation", query=query, auth=False)


def free_slot(key: str, deployment: str) -> Call:
    return Call(ACTIVATION_SERVER, "GET", "/deactivation", query=(("key", key), ("deployment", deployment)), auth=False)


def is_licence_file(answer: Answer) -> bool:
    """The activation server answered a licence file: HTTP 200 with the reason `OK` (its failures are HTTP 200 too,
    with another reason phrase and an `error:` body)."""
    return answer.status == 200 and answer.reason.upper() == "OK" and not answer.text.lstrip().startswith("error:")
