"""WSGI middleware around each face: fault rules fire here, and every exchange is written to the journal.

The control plane (`/_mock/...`) is neither faulted nor journalled, so tests can always reach it.
A dropped connection needs the server's socket: the serving layer puts a `mockcore.drop` callable in the WSGI
environ (see mockcore.server); without one, a drop answers an empty 502 instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from mockcore.fleet import Fleet
from mockcore.journal import BODY_LIMIT, JournalEntry, body_text

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
DROP_KEY = "mockcore.drop"
DRAIN_LIMIT = 256 * 1024 * 1024  # past this, an unread body is left and the connection closes


class _RecordingInput:
    """wsgi.input that keeps the first BODY_LIMIT bytes the application reads."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.kept = bytearray()
        self.size = 0

    def _keep(self, data: bytes) -> bytes:
        self.size += len(data)
        room = BODY_LIMIT - len(self.kept)
        if room > 0:
            self.kept += data[:room]
        return data

    def read(self, *args: Any) -> bytes:
        return self._keep(self._stream.read(*args))

    def readline(self, *args: Any) -> bytes:
        return self._keep(self._stream.readline(*args))

    def readlines(self, *args: Any) -> list[bytes]:
        return [self._keep(line) for line in self._stream.readlines(*args)]

    def drain(self) -> None:
        """Read what the application left unread (bounded), so a keep-alive connection stays in step."""
        try:
            while self.size <= DRAIN_LIMIT and self.read(64 * 1024):
                pass
        except Exception:  # broken framing: the application has answered already; cheroot closes the connection
            return

    def __iter__(self) -> Any:
        return iter(self.readline, b"")


def _request_headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


class FaceMiddleware:
    def __init__(self, app: WSGIApp, fleet: Fleet, face: str, instance: str | None) -> None:
        self.app = app
        self.fleet = fleet
        self.face = face
        self.instance = instance

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_mock/"):
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        journalling = bool(self.fleet.journal_cap)
        started = time.perf_counter()
        arrived = datetime.now(UTC).isoformat() if journalling else ""
        fleet_time = self.fleet.now().isoformat() if journalling else ""
        rule = self.fleet.fire_fault(self.face, self.instance, method, path)
        if rule is not None and rule.delay:
            time.sleep(rule.delay)
        recording = _RecordingInput(environ["wsgi.input"])
        environ["wsgi.input"] = recording
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        if rule is not None and rule.drop:
            drop = environ.get(DROP_KEY)
            if drop is not None:
                drop()
            start_response("502 Bad Gateway", [("Content-Length", "0")])
            body: list[bytes] = []
            status: int | None = None
        elif rule is not None and rule.status is not None:
            payload = json.dumps({"err": rule.err}).encode()
            headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
            capture(f"{rule.status} Injected", headers)
            body = [payload]
            status = rule.status
        else:
            result = self.app(environ, capture)
            try:
                body = list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            status = int(str(captured.get("status", "500")).split(" ", 1)[0])
        if rule is None or not rule.drop:
            recording.drain()
        if journalling:
            joined = b"".join(body)
            self.fleet.record(
                JournalEntry(
                    id=0,  # numbered by the journal
                    time=arrived,
                    fleet_time=fleet_time,
                    face=self.face,
                    instance=self.instance,
                    method=method,
                    path=path,
                    query=environ.get("QUERY_STRING", ""),
                    request_headers=_request_headers(environ),
                    request_body=body_text(bytes(recording.kept)),
                    request_body_size=recording.size,
                    status=status,
                    response_headers={k.lower(): v for k, v in captured.get("headers", [])},
                    response_body=body_text(joined),
                    duration_ms=round((time.perf_counter() - started) * 1000, 3),
                    fault=rule.id if rule is not None else None,
                )
            )
        return body
