"""The scan endpoints of a Core instance (docs/responses.md, scans): `POST /file`, `POST /file/sync` and
`GET /file/{data_id}`."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.routing import BaseConverter

from mockcore.fleet import Fleet
from mockcore.http.middleware import DROP_KEY
from mockcore.http.rendering import json_response, read_body

SCAN_LIMIT = 64 * 1024 * 1024


def _length_given() -> bool:
    """Whether the client said how long its body is: never when it sent it chunked. A missing Content-Length
    counts only on a request that came over a socket (mockcore.server puts `DROP_KEY` in those environs): an
    in-process WSGI caller frames nothing, and werkzeug's test client leaves the length out of an empty body."""
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        return False
    return request.content_length is not None or DROP_KEY not in request.environ


class ScanIdConverter(BaseConverter):
    """A path segment naming a scan: anything but `sync`, a path of its own that only takes POST (so GET, HEAD and
    OPTIONS there answer 405 and `Allow: POST`, not a lookup of a scan called "sync")."""

    regex = r"(?!sync$)[^/]+"


def register_scan_routes(app: Flask, fleet: Fleet, name: str) -> None:
    app.url_map.converters["scan_id"] = ScanIdConverter

    def submitted(*, sync: bool) -> tuple[bytes, dict[str, str]]:
        """The body and what the scan keeps of its request, once the request's shape is one a scan takes (the
        body is read first, so a broken framing is E_BAD_REQUEST and an oversized one E_TOO_LARGE)."""
        user = fleet.authorise(name, "scan", request.headers.get("apikey"))
        body = read_body(SCAN_LIMIT)
        fleet.rules.scan_request(_length_given(), request.headers.get("callbackurl"), sync=sync)
        return body, {
            "filename": request.headers.get("filename", ""),
            # The vendor's `user_agent` header: in WSGI the same variable as `User-Agent`.
            "user_agent": request.headers.get("user_agent", ""),
            "username": user.name if user is not None else "",
        }

    @app.post("/file")
    def scan() -> Response:
        body, submission = submitted(sync=False)
        return json_response({"data_id": fleet.scan(name, body, **submission)})

    @app.post("/file/sync")
    def scan_sync() -> Response:
        body, submission = submitted(sync=True)
        data_id, result = fleet.scan_sync(name, body, **submission)
        # A scan the progression holds back is answered as the vendor answers a sync scan that timed out.
        return json_response(result) if result is not None else json_response({"data_id": data_id}, 408)

    @app.get("/file/<scan_id:data_id>")
    def scan_result(data_id: str) -> Response:
        fleet.authorise(name, "scan-result", request.headers.get("apikey"))
        return json_response(fleet.scan_result(name, data_id))
