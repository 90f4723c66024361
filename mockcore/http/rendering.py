"""What every face shares: reading request bodies within caps, rendering errors as `{"err": ...}`, and serving the
API contract (`contracts/openapi.yaml`) as `/openapi.json`.

Error rendering lives here once: a LicenceError, a werkzeug HTTP error (unknown path, wrong method) or an
unexpected exception all leave as vendor-style JSON, never as an HTML page or a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

import yaml
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from mockcore.catalogue import Catalogue, ErrorCode, LicenceError
from mockcore.fleet import StoreError

JSON_LIMIT = 64 * 1024
CONTRACT_PATH = "/openapi.json"

log = logging.getLogger("mockcore.http")


def json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _read(size: int) -> bytes:
    """Read from the body; broken framing (a bad chunk size, a body cut short) is the client's error."""
    try:
        return request.stream.read(size)
    except Exception as exc:  # cheroot raises ValueError, OSError or its MaxSizeExceeded on broken framing
        raise LicenceError(ErrorCode.BAD_REQUEST) from exc


def read_body(limit: int, too_large: ErrorCode | None = ErrorCode.TOO_LARGE) -> bytes:
    """The body, at most `limit` bytes. Past it: raise `too_large`, or with None return `limit + 1` bytes so
    the caller's own size check refuses it in its turn."""
    length = request.content_length
    # What is left unread past a cap is drained by the face's middleware once the answer is made.
    if length is not None and length > limit and too_large is not None:
        raise LicenceError(too_large)
    data = _read(limit + 1)
    if len(data) > limit and too_large is not None:
        raise LicenceError(too_large)
    return data


def json_object(limit: int = JSON_LIMIT) -> dict[str, Any]:
    """The body as a JSON object, else E_BAD_REQUEST (E_TOO_LARGE past the cap)."""
    body = read_body(limit)
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise LicenceError(ErrorCode.BAD_REQUEST) from exc
    if not isinstance(doc, dict):
        raise LicenceError(ErrorCode.BAD_REQUEST)
    return doc


def string_field(doc: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = doc.get(name)
    if value is None and not required and name not in doc:
        return None
    if not isinstance(value, str):
        raise LicenceError(ErrorCode.BAD_REQUEST)
    return value


_HTTP_CODES = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD, 413: ErrorCode.TOO_LARGE}


def install_error_rendering(app: Flask, catalogue: Catalogue) -> None:
    def licence_error(error: LicenceError) -> Response:
        status, text = catalogue.render(error)
        return json_response({"err": text}, status)

    def unexpected(error: Exception) -> Response:
        log.exception("unexpected error", exc_info=error)
        return json_response({"err": "Internal error."}, 500)

    def store_refused(error: StoreError) -> Response:
        """The state store refused the write (disk full, database gone): the fleet is as it was before the
        request (mockcore.fleet), so the answer says the change did not happen, and why, in one line."""
        log.error("the state store refused a write: %s", error)
        reason = " ".join(str(error).split())[:300]
        return json_response({"err": f"The state store refused the change: {reason}"}, 503)

    def http_error(error: HTTPException) -> Response:
        if (error.code or 500) >= 500:  # Flask wraps a failure outside the view (after_request) in a 500
            return unexpected(getattr(error, "original_exception", None) or error)
        code = _HTTP_CODES.get(error.code or 400, ErrorCode.BAD_REQUEST)
        response = licence_error(LicenceError(code))
        valid_methods = getattr(error, "valid_methods", None)
        if valid_methods:
            response.headers["Allow"] = ", ".join(valid_methods)
        return response

    app.register_error_handler(LicenceError, licence_error)
    app.register_error_handler(StoreError, store_refused)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected)


def _without_paths(document: dict[str, Any], absent: frozenset[str]) -> dict[str, Any]:
    """The contract without the paths in `absent`, and without the links that lead to their operations."""
    paths = document.get("paths", {})
    gone = {
        operation.get("operationId")
        for path in absent & paths.keys()
        for operation in paths[path].values()
        if isinstance(operation, dict)
    }
    document["paths"] = {path: item for path, item in paths.items() if path not in absent}
    for item in document["paths"].values():
        for operation in item.values():
            for response in operation.get("responses", {}).values() if isinstance(operation, dict) else ():
                links = response.get("links") if isinstance(response, dict) else None
                if links:
                    response["links"] = {n: link for n, link in links.items() if link.get("operationId") not in gone}
    return document


def contract_view(absent: frozenset[str] = frozenset()) -> Callable[[], Response]:
    """A view answering the API contract, `contracts/openapi.yaml` (package data), converted to JSON, without the
    paths in `absent` (those the emulated line of Core does not have) nor the links to their operations.

    Each call makes a new view with its own cache: the document is read and converted on the view's first request,
    then kept, so an app pays for it once and only when asked (building an app stays fast)."""

    @functools.cache
    def body() -> bytes:
        text = resources.files("contracts").joinpath("openapi.yaml").read_text(encoding="utf-8")
        document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return json.dumps(_without_paths(document, absent)).encode()

    def view() -> Response:
        return Response(body(), status=200, mimetype="application/json")

    return view
