"""The control plane under `/_mock/`, served on every port of the fleet (every instance and the activation server):
whichever port is asked, it acts on the whole fleet. Described in `mockcore/control-openapi.yaml`."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import fields as dataclass_fields
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, request

from mockcore import __version__, scenarios
from mockcore.clock import EARLIEST, LATEST, ClockOutOfRange
from mockcore.config import ACTIVATION_FACE
from mockcore.faults import InvalidFault
from mockcore.fleet import ClockReading, Fleet
from mockcore.http.rendering import json_response, read_body
from mockcore.journal import MAX_CAP
from mockcore.scanning import Progression
from mockcore.snapshot import InvalidSnapshot, parse_datetime

STATE_LIMIT = 64 * 1024 * 1024
CONTROL_JSON_LIMIT = 1024 * 1024
TOKEN_HEADER = "X-Mock-Control-Token"


class ControlError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _json_body(limit: int = CONTROL_JSON_LIMIT) -> Any:
    body = read_body(limit)
    if not body.strip():
        return {}
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ControlError(400, f"The body is not JSON: {exc}") from exc


def _object(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ControlError(400, "Expected a JSON object.")
    return doc


def _number(doc: dict[str, Any], name: str) -> float:
    value = doc.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ControlError(400, f"`{name}` must be a number.")
    return float(value)


def _journal_ceiling_text(ceiling: int) -> str:
    """Why a journal cap past the fleet's ceiling is refused: a tenant's ceiling is its server's
    --tenant-journal-cap (mockcore.tenants); a fleet of `mockcore serve` has MAX_CAP."""
    if ceiling < MAX_CAP:
        return f"This tenant's journal keeps at most {ceiling} requests (the server's --tenant-journal-cap)."
    return f'Expected {{"cap": 0-{MAX_CAP}}} (0 turns the journal off).'


def clock_view(reading: ClockReading) -> dict[str, Any]:
    return {"now": reading.now.isoformat(), "date": reading.now.date().isoformat(), "frozen": reading.frozen}


def create_control_blueprint(
    fleet: Fleet, urls: Callable[[], dict[str, str]], control_token: str | None = None
) -> Blueprint:
    control = Blueprint("mock_control", __name__, url_prefix="/_mock")

    @control.errorhandler(ControlError)
    def control_error(error: ControlError) -> Response:
        return json_response({"err": error.text}, error.status)

    @control.before_request
    def check_token() -> None:
        if control_token is None or request.path == "/_mock/health":
            return
        given = request.headers.get(TOKEN_HEADER)
        if given is None:
            raise ControlError(401, f"The control plane needs the {TOKEN_HEADER} header.")
        if not hmac.compare_digest(given.encode(), control_token.encode()):
            raise ControlError(403, f"Wrong {TOKEN_HEADER}.")

    @control.get("/health")
    def health() -> Response:
        return json_response({"status": "ok"})

    @control.get("/info")
    def info() -> Response:
        served = urls()
        return json_response(
            {
                "mockcore": __version__,
                "emulated_version": fleet.config.version,
                "profile": fleet.profile.name,
                "instances": {name: served.get(name) for name in fleet.names},
                "activation_server": served.get(ACTIVATION_FACE),
            }
        )

    @control.post("/reset")
    def reset() -> Response:
        fleet.reset()
        return json_response({"reset": True})

    @control.get("/state")
    def get_state() -> Response:
        return json_response(fleet.dump())

    @control.get("/view")
    def get_view() -> Response:
        return json_response(fleet.view())

    @control.get("/slots")
    def get_slots() -> Response:
        return json_response({"holders": fleet.slot_holders()})

    @control.put("/state")
    def put_state() -> Response:
        try:
            fleet.load(_json_body(STATE_LIMIT))
        except InvalidSnapshot as exc:
            raise ControlError(400, f"Invalid fleet state: {exc}") from exc
        return json_response({"loaded": True})

    @control.get("/scenarios")
    def list_scenarios() -> Response:
        return json_response({name: s.description for name, s in scenarios.SCENARIOS.items()})

    @control.post("/scenarios/<name>")
    def apply_scenario(name: str) -> Response:
        if name not in scenarios.SCENARIOS:
            raise ControlError(404, f"Unknown scenario {name!r}; known: {', '.join(scenarios.SCENARIOS)}.")
        try:
            scenarios.apply(fleet, name)
        except scenarios.ScenarioError as exc:
            raise ControlError(409, str(exc)) from exc
        return json_response({"scenario": name, "states": {n: s.value for n, s in fleet.states().items()}})

    @control.get("/clock")
    def get_clock() -> Response:
        return json_response(clock_view(fleet.clock()))

    @control.put("/clock")
    def set_clock() -> Response:
        doc = _object(_json_body())
        unknown = set(doc) - {"now", "frozen"}
        if unknown or not doc:
            raise ControlError(400, 'Expected {"now": ISO time with offset, "frozen": bool}, either or both.')
        frozen = doc.get("frozen")
        if "frozen" in doc and not isinstance(frozen, bool):
            raise ControlError(400, "`frozen` must be a boolean.")
        try:
            moment = parse_datetime(doc["now"], "now") if "now" in doc else None
        except InvalidSnapshot as exc:
            raise ControlError(400, str(exc)) from exc
        try:
            return json_response(clock_view(fleet.set_clock(moment, frozen)))
        except ClockOutOfRange as exc:
            raise ControlError(400, f"`now` must lie between {EARLIEST.isoformat()} and {LATEST.isoformat()}.") from exc

    @control.post("/clock/advance")
    def advance_clock() -> Response:
        doc = _object(_json_body())
        if not doc or set(doc) - {"days", "hours", "minutes", "seconds"}:
            raise ControlError(400, "Expected any of `days`, `hours`, `minutes`, `seconds` (numbers).")
        try:
            delta = timedelta(**{name: _number(doc, name) for name in doc})
            return json_response(clock_view(fleet.advance_clock(delta)))
        except (OverflowError, ClockOutOfRange) as exc:
            raise ControlError(400, "That moves the clock out of range.") from exc

    @control.post("/clock/freeze")
    def freeze_clock() -> Response:
        return json_response(clock_view(fleet.freeze_clock()))

    @control.post("/clock/unfreeze")
    def unfreeze_clock() -> Response:
        return json_response(clock_view(fleet.unfreeze_clock()))

    @control.get("/faults")
    def list_faults() -> Response:
        return json_response([rule.public() for rule in fleet.fault_rules()])

    @control.post("/faults")
    def add_fault() -> Response:
        try:
            rule = fleet.add_fault(_json_body())
        except InvalidFault as exc:
            raise ControlError(400, f"Invalid fault rule: {exc}") from exc
        return json_response(rule.public(), 201)

    @control.delete("/faults")
    def clear_faults() -> Response:
        fleet.clear_faults()
        return json_response({"cleared": True})

    @control.delete("/faults/<rule_id>")
    def remove_fault(rule_id: str) -> Response:
        if not fleet.remove_fault(rule_id):
            raise ControlError(404, f"No fault rule {rule_id!r}.")
        return json_response({"removed": rule_id})

    @control.get("/journal")
    def journal() -> Response:
        args = request.args
        limit = args.get("limit")
        if limit is not None and not limit.isdigit():
            raise ControlError(400, "`limit` is a whole number.")
        entries = fleet.journal(
            instance=args.get("instance"),
            method=args.get("method"),
            path=args.get("path"),
            face=args.get("face"),
            limit=int(limit) if limit is not None else None,
        )
        return json_response({"cap": fleet.journal_cap, "entries": entries})

    @control.delete("/journal")
    def clear_journal() -> Response:
        fleet.clear_journal()
        return json_response({"cleared": True})

    @control.put("/journal/config")
    def configure_journal() -> Response:
        doc = _object(_json_body())
        cap, ceiling = doc.get("cap"), fleet.journal_ceiling
        if set(doc) != {"cap"} or isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ControlError(400, f'Expected {{"cap": 0-{ceiling}}} (0 turns the journal off).')
        if cap > ceiling:
            raise ControlError(400, _journal_ceiling_text(ceiling))
        fleet.set_journal_cap(cap)
        return json_response({"cap": fleet.journal_cap})

    @control.get("/progression")
    def get_progression() -> Response:
        return json_response(asdict(fleet.progression))

    @control.put("/progression")
    def set_progression() -> Response:
        doc = _object(_json_body())
        fields = {f.name for f in dataclass_fields(Progression)}
        if not doc or set(doc) - fields:
            raise ControlError(400, f"Expected any of {', '.join(sorted(fields))}.")
        values = asdict(fleet.progression)
        for name, value in doc.items():
            limit = 1000 if name.endswith("polls") else 86400.0
            number = _number(doc, name)
            if not 0 <= number <= limit or (name.endswith("polls") and not isinstance(value, int)):
                raise ControlError(
                    400, f"`{name}` is a {'whole ' if name.endswith('polls') else ''}number from 0 to {limit:g}."
                )
            values[name] = value
        fleet.set_progression(Progression(**values))
        return json_response(asdict(fleet.progression))

    return control
