"""The live dashboard at `/_mock/ui`, served on every face like the rest of the control plane.

- `GET /_mock/ui`: the page; `GET /_mock/ui/assets/NAME`: its script and style sheet, shipped in
  `mockcore/dashboard/` (no CDN, no external font: the page works with no network). The page and its assets are
  static and hold no fleet data, so they need no control token; everything below does, in the
  `X-Mock-Control-Token` header as for `/_mock/` (the page takes it from `#token=...` in its URL, or asks).
- `GET /_mock/ui/view`: the fleet for the page, polled every second: instances (licence state, deployment, key,
  days left, backup flag), the activation server's keys and slot use, the clock, the last journal entries, the
  scenarios and the operations.
- `GET /_mock/ui/diagram.svg`: the lifecycle diagram (mockcore.diagram), each instance's state highlighted.
- `POST /_mock/ui/call` `{"operation", "instance", "key", "production", "deployment"}`: a button. The calls of the
  operation (mockcore.operations) go through the target face's WSGI app in-process: the same code as a real
  request (fault rules, journal, persistence), with the fleet's configured API key, and no cross-origin request
  from the page (the emulated Core API has no CORS, as a real Core). Answers every call made with its answer.
"""

from __future__ import annotations

import hmac
import html
import json
from collections.abc import Callable
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request
from werkzeug.test import Client

from mockcore import __version__, calls, diagram, scenarios
from mockcore.calls import Answer, Call, Exchange
from mockcore.fleet import Fleet
from mockcore.http.control_api import TOKEN_HEADER
from mockcore.http.rendering import json_response, read_body
from mockcore.operations import OPERATIONS, OperationRefused, params_from

JOURNAL_SHOWN = 15
JOURNAL_BODY = 300
CALL_LIMIT = 64 * 1024
ASSET_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
# The page may load nothing but its own origin's files; the SVG diagram carries its own <style>.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class DashboardError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _asset(name: str) -> bytes | None:
    """A file of mockcore/dashboard/, or None: only plain names of the known types, never a path."""
    if "/" in name or "\\" in name or name.startswith(".") or not any(name.endswith(t) for t in ASSET_TYPES):
        return None
    entry = resources.files("mockcore").joinpath("dashboard", name)
    return entry.read_bytes() if entry.is_file() else None


def _static(name: str) -> Response:
    data = _asset(name)
    if data is None:
        raise DashboardError(404, "Not found.")
    mimetype = next(kind for suffix, kind in ASSET_TYPES.items() if name.endswith(suffix))
    response = Response(data, mimetype=mimetype)
    response.headers.update(SECURITY_HEADERS)
    return response


def _journal_entry(entry: dict[str, Any]) -> dict[str, Any]:
    body = entry["response_body"]
    return {
        "id": entry["id"],
        "fleet_time": entry["fleet_time"],
        "face": entry["face"],
        "instance": entry["instance"],
        "method": entry["method"],
        "path": entry["path"],
        "query": entry["query"],
        "status": entry["status"],
        "fault": entry["fault"],
        "response_body": body if len(body) <= JOURNAL_BODY else body[:JOURNAL_BODY] + "...",
    }


def fleet_view(fleet: Fleet, urls: dict[str, str]) -> dict[str, Any]:
    """What the page shows: the fleet's view (one consistent read) and the last journal entries."""
    summary = fleet.view()
    return {
        "mockcore": __version__,
        "emulated_version": fleet.config.version,
        "clock": {"now": summary["clock"]["now"], "date": summary["today"], "frozen": summary["clock"]["frozen"]},
        "instances": [{"name": name, "url": urls.get(name), **inst} for name, inst in summary["instances"].items()],
        "activation_server": {"url": urls.get(calls.ACTIVATION_SERVER), "keys": summary["keys"]},
        "journal": {
            "cap": fleet.journal_cap,
            "entries": [_journal_entry(e) for e in fleet.journal(limit=JOURNAL_SHOWN)],
        },
        "scenarios": {name: s.description for name, s in scenarios.SCENARIOS.items()},
        "operations": [spec.public() for spec in OPERATIONS.values()],
        "states": list(diagram.derive().states),
    }


def _send_in_process(app: Any, call: Call, apikey: str | None) -> Answer:
    headers = list(call.headers)
    if apikey is not None:
        headers.append(("apikey", apikey))
    response = Client(app).open(
        call.path, method=call.method, query_string=urlencode(call.query), headers=headers, data=call.body
    )
    try:
        reason = response.status.split(" ", 1)[1] if " " in response.status else ""
        return Answer(
            response.status_code,
            reason,
            response.headers.get("Content-Type", ""),
            response.get_data(),
            dict(response.headers),
        )
    finally:
        response.close()


def _succeeded(exchange: Exchange) -> bool:
    """The activation server's refusals are HTTP 200 with another reason phrase: judged by the file."""
    if exchange.call.face == calls.ACTIVATION_SERVER and exchange.call.path == "/activation":
        return calls.is_licence_file(exchange.answer)
    return exchange.answer.status < 400


def create_dashboard_blueprint(
    fleet: Fleet,
    urls: Callable[[], dict[str, str]],
    apps: Callable[[], dict[str, Any]],
    control_token: str | None = None,
) -> Blueprint:
    """`urls`: face name -> base URL; `apps`: face name -> its WSGI app (fault and journal middleware included)."""
    ui = Blueprint("mock_dashboard", __name__, url_prefix="/_mock/ui")

    @ui.errorhandler(DashboardError)
    def dashboard_error(error: DashboardError) -> Response:
        return json_response({"err": error.text}, error.status)

    @ui.before_request
    def check_token() -> None:
        if control_token is None or request.endpoint in ("mock_dashboard.page", "mock_dashboard.asset"):
            return
        given = request.headers.get(TOKEN_HEADER)
        if given is None:
            raise DashboardError(401, f"The control plane needs the {TOKEN_HEADER} header.")
        if not hmac.compare_digest(given.encode(), control_token.encode()):
            raise DashboardError(403, f"Wrong {TOKEN_HEADER}.")

    @ui.get("", strict_slashes=False)
    def page() -> Response:
        """The page, its asset links and its requests below the prefix the face is served at (a tenant's
        `/t/<ID>/<face>`, from the WSGI SCRIPT_NAME; empty on `mockcore serve`)."""
        response = _static("index.html")
        root = html.escape(request.script_root, quote=True)
        text = response.get_data(as_text=True).replace('"/_mock/ui/assets/', f'"{root}/_mock/ui/assets/')
        base = '<meta name="mockcore-base" content="">'
        response.set_data(text.replace(base, base.replace('content=""', f'content="{root}"')))
        return response

    @ui.get("/assets/<name>")
    def asset(name: str) -> Response:
        return _static(name)

    @ui.get("/view")
    def view() -> Response:
        response = json_response(fleet_view(fleet, urls()))
        response.headers["Cache-Control"] = "no-store"
        return response

    @ui.get("/diagram.svg")
    def diagram_svg() -> Response:
        current: dict[str, list[str]] = {}
        for inst in fleet_view(fleet, urls())["instances"]:
            current.setdefault(inst["state"], []).append(inst["name"])
        response = Response(diagram.svg(diagram.derive(), current), mimetype="image/svg+xml")
        response.headers.update(SECURITY_HEADERS)
        return response

    @ui.post("/call")
    def call() -> Response:
        if request.mimetype != "application/json":
            # Also what keeps another site's plain form from pressing the buttons.
            raise DashboardError(415, "Send the operation as application/json.")
        try:
            doc = json.loads(read_body(CALL_LIMIT).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise DashboardError(400, f"The body is not JSON: {exc}") from exc
        keys = [key.key for key in fleet.activation_keys()]
        try:
            spec, params = params_from(doc, fleet.deployments(), keys)
        except OperationRefused as exc:
            raise DashboardError(400, str(exc)) from exc
        faces, served = apps(), urls()
        apikey = fleet.config.resolved_apikey
        exchanges: list[Exchange] = []

        def send(one: Call) -> Answer:
            key = apikey if one.auth and one.face != calls.ACTIVATION_SERVER else None
            answer = _send_in_process(faces[one.face], one, key)
            exchanges.append(Exchange(one, served[one.face] + one.target, key, answer))
            return answer

        spec.run(send, params)
        return json_response(
            {
                "operation": spec.name,
                "label": spec.label,
                "instance": params.instance,
                "exchanges": [exchange.public() for exchange in exchanges],
                "ok": bool(exchanges) and all(_succeeded(e) for e in exchanges),
            }
        )

    return ui
