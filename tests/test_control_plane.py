"""The control plane under `/_mock/`, over real HTTP: every endpoint, its failure paths, and its description in
`mockcore/control-openapi.yaml` (every JSON answer of the control plane in this file is validated against it)."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from jsonschema import Draft202012Validator

from mockcore.fleet import Fleet, FleetConfig, KeySpec
from mockcore.inprocess import MockFleet
from mockcore.journal import DEFAULT_CAP
from mockcore.lifecycle import LicenceState
from mockcore.scanning import EICAR
from mockcore.server import ACTIVATION
from tests.conftest import FleetFactory, RunningFleet, serve_fleet

SPEC_TEXT = resources.files("mockcore").joinpath("control-openapi.yaml").read_text(encoding="utf-8")
SPEC: dict[str, Any] = yaml.safe_load(SPEC_TEXT)
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
TOKEN_HEADER = "X-Mock-Control-Token"
UNREACHABLE = "Failed to connect to the activation server."
TIMEOUT = 30


# The OpenAPI document as JSON Schema, to validate answers


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects to JSON Schema: `nullable: true` becomes a `null` alternative."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


COMPONENTS = _json_schema(SPEC["components"])


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = SPEC
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    root = {"components": COMPONENTS, **_json_schema(schema)}
    return Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(schema: dict[str, Any], document: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in _validator(schema).iter_errors(document)]


def component(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def template_of(path: str) -> str:
    for template in SPEC["paths"]:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path):
            return str(template)
    raise AssertionError(f"{path} is not described in control-openapi.yaml")


def check_against_spec(method: str, path: str, response: requests.Response, sent: Any = None) -> None:
    """The answer's status is documented for this operation and its JSON body fits the documented schema; a
    request body the server accepted fits the documented request schema."""
    operation = SPEC["paths"][template_of(path)].get(method.lower())
    assert operation is not None, f"{method} {path} is not described in control-openapi.yaml"
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method} {path} answered {response.status_code}, not documented"
    schema = _resolve(documented)["content"]["application/json"]["schema"]
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    errors = schema_errors(schema, response.json())
    assert not errors, f"{method} {path} -> {response.status_code} {response.text[:300]}: {errors}"
    if sent is not None and response.status_code < 300:
        request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
        errors = schema_errors(request_schema, sent)
        assert not errors, f"accepted request body {sent!r} does not fit the spec: {errors}"


_UNSET: Any = object()


@dataclass
class Control:
    """A client of the control plane on one port; every answer is checked against the OpenAPI document."""

    base_url: str
    token: str | None = None
    session: requests.Session = field(default_factory=requests.Session)

    def call(
        self,
        method: str,
        path: str,
        expect: int | None = 200,
        *,
        body: Any = _UNSET,
        raw: str | bytes | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        headers = dict(headers or {})
        if self.token is not None:
            headers.setdefault(TOKEN_HEADER, self.token)
        data = raw if body is _UNSET else json.dumps(body)
        response = self.session.request(
            method, self.base_url + path, data=data, params=params, headers=headers, timeout=TIMEOUT
        )
        check_against_spec(method, path, response, None if body is _UNSET else body)
        if expect is not None:
            assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text[:500]}"
        return response

    def get(self, path: str, expect: int | None = 200, **kwargs: Any) -> Any:
        return self.call("GET", path, expect, **kwargs).json()

    def put(self, path: str, body: Any = _UNSET, expect: int | None = 200, **kwargs: Any) -> Any:
        return self.call("PUT", path, expect, body=body, **kwargs).json()

    def post(self, path: str, body: Any = _UNSET, expect: int | None = 200, **kwargs: Any) -> Any:
        return self.call("POST", path, expect, body=body, **kwargs).json()

    def delete(self, path: str, expect: int | None = 200, **kwargs: Any) -> Any:
        return self.call("DELETE", path, expect, **kwargs).json()

    def error(self, method: str, path: str, status: int, **kwargs: Any) -> str:
        """The `err` text of a refused call (the body is checked to be exactly `{"err": string}`)."""
        answer = self.call(method, path, status, **kwargs).json()
        assert set(answer) == {"err"} and isinstance(answer["err"], str) and answer["err"], answer
        return str(answer["err"])

    # Shortcuts

    def scenario(self, name: str) -> Any:
        return self.post(f"/_mock/scenarios/{name}")

    def fault(self, **rule: Any) -> dict[str, Any]:
        return dict(self.post("/_mock/faults", rule, 201))

    def faults(self) -> list[dict[str, Any]]:
        return list(self.get("/_mock/faults"))

    def journal(self, **params: Any) -> list[dict[str, Any]]:
        return list(self.get("/_mock/journal", params=params)["entries"])

    def state(self) -> dict[str, Any]:
        return dict(self.get("/_mock/state"))

    def clock(self) -> dict[str, Any]:
        return dict(self.get("/_mock/clock"))

    def freeze(self) -> dict[str, Any]:
        return dict(self.post("/_mock/clock/freeze"))

    def set_clock(self, moment: str, frozen: bool | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"now": moment}
        if frozen is not None:
            body["frozen"] = frozen
        return dict(self.put("/_mock/clock", body))


def control(running: RunningFleet, name: str = "a") -> Control:
    return Control(running.urls[name])


def frozen_view(running: RunningFleet, ctl: Control) -> tuple[object, ...]:
    """What a refused control call must leave unchanged (with the clock frozen, the state document is exact)."""
    return running.snapshot(), ctl.state()


def licence_expiry(running: RunningFleet, name: str = "a") -> date:
    text = running.core(name).licence().json()["expiration"]
    return datetime.strptime(text, "%m/%d/%Y").date()


def poll_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def running(make_fleet: FleetFactory) -> RunningFleet:
    """Three instances a, b, c; one key with two slots."""
    return make_fleet()


@pytest.fixture
def ctl(running: RunningFleet) -> Control:
    return control(running)


@pytest.fixture(scope="module")
def shared_fleet() -> Iterator[RunningFleet]:
    """One fleet for the many bad-input cases, reset before each as a client's suite would."""
    fleet = Fleet(FleetConfig(instances=("a", "b", "c"), keys=(KeySpec(slots=2),)))
    running = serve_fleet(fleet)
    try:
        yield running
    finally:
        running.server.stop()


@pytest.fixture
def reset_fleet(shared_fleet: RunningFleet) -> RunningFleet:
    reset = control(shared_fleet)
    reset.post("/_mock/reset")
    reset.put("/_mock/journal/config", {"cap": DEFAULT_CAP})
    reset.delete("/_mock/journal")
    return shared_fleet


@pytest.fixture
def reset_ctl(reset_fleet: RunningFleet) -> Control:
    return control(reset_fleet)


# The OpenAPI document


def test_spec_is_a_valid_openapi_3_document() -> None:
    assert str(SPEC["openapi"]).startswith("3.0.")
    assert SPEC["info"]["title"] and SPEC["info"]["version"]
    if importlib.util.find_spec("openapi_spec_validator") is not None:  # installed here, not a test dependency
        from openapi_spec_validator import validate

        validate(SPEC)
    # and in any case, the structural checks below

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    for ref in refs(SPEC):
        _resolve({"$ref": ref})  # every reference resolves
    error_schema = SPEC["components"]["schemas"]["Error"]
    for path, item in SPEC["paths"].items():
        assert path.startswith("/_mock/"), path
        for method, operation in item.items():
            assert method in HTTP_METHODS, (path, method)
            assert operation["responses"], (path, method)
            for status, response in operation["responses"].items():
                resolved = _resolve(response)
                assert resolved["description"], (path, method, status)
                content = resolved["content"]
                assert content and all("schema" in media for media in content.values()), (path, method, status)
                if int(status) >= 400:  # every failure is {"err": string}
                    assert _resolve(content["application/json"]["schema"]) == error_schema, (path, method, status)
                elif "application/json" not in content:  # only the dashboard's page, files and diagram are not JSON
                    assert path.startswith("/_mock/ui"), (path, method, status)
    for schema in COMPONENTS["schemas"].values():
        Draft202012Validator.check_schema({"components": COMPONENTS, **schema})


def test_spec_ships_in_the_package() -> None:
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert "*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["mockcore"]
    assert "openapi: 3.0" in SPEC_TEXT


def _served_control_routes(server: MockFleet) -> list[set[tuple[str, str]]]:
    per_face = []
    for app in server.apps().values():
        routes = set()
        for rule in app.url_map.iter_rules():
            if not rule.rule.startswith("/_mock/"):
                continue
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                routes.add((path, method.lower()))
        per_face.append(routes)
    return per_face


def test_served_routes_and_spec_are_the_same_set(running: RunningFleet) -> None:
    documented = {(path, method) for path, item in SPEC["paths"].items() for method in item if method in HTTP_METHODS}
    per_face = _served_control_routes(running.server)
    assert len(per_face) == 4  # a, b, c and the activation server
    for served in per_face:
        assert served == documented, (served - documented, documented - served)


# Health, info, reset


def test_health_and_info_on_every_port_answer_the_same_fleet(running: RunningFleet) -> None:
    infos = []
    for url in running.urls.values():
        port = Control(url)
        assert port.get("/_mock/health") == {"status": "ok"}
        infos.append(port.get("/_mock/info"))
    assert all(info == infos[0] for info in infos)
    info = infos[0]
    assert info["instances"] == {name: running.urls[name] for name in ("a", "b", "c")}
    assert info["activation_server"] == running.urls[ACTIVATION]
    assert info["emulated_version"] == running.fleet.config.version
    # a change made through one port is seen through every other
    Control(running.urls["c"]).scenario("production-only")
    states = [Control(url).state() for url in running.urls.values()]
    assert all(s["instances"] == states[0]["instances"] and s["keys"] == states[0]["keys"] for s in states)
    assert states[0]["instances"]["a"]["licence"]["state"] == "active"


def test_unknown_control_path_answers_a_vendor_style_404(running: RunningFleet) -> None:
    response = requests.get(running.urls["a"] + "/_mock/nothing", timeout=TIMEOUT)
    assert response.status_code == 404 and response.json() == {"err": "Not found."}


def _normalised(doc: dict[str, Any]) -> dict[str, Any]:
    """A state document without the moments that depend on when the fleet (re)started."""
    doc = copy.deepcopy(doc)
    doc.pop("clock"), doc.pop("started")
    for key in doc["keys"]:
        key["terms"].pop("expires")
    return doc


def test_reset_restores_the_start_state_and_clears_clock_faults_journal_progression(
    running: RunningFleet, ctl: Control
) -> None:
    start = ctl.state()
    ctl.scenario("production-with-online-backup")
    running.core("a").scan(b"hello")
    ctl.post("/_mock/clock/advance", {"days": 30})
    ctl.freeze()
    ctl.fault(path="/version", status=503)
    ctl.put("/_mock/progression", {"engine_polls": 3, "scan_seconds": 10})
    ctl.put("/_mock/journal/config", {"cap": 50})
    assert running.core("a").request("GET", "/version").status_code == 503
    assert ctl.journal()

    assert Control(running.urls[ACTIVATION]).post("/_mock/reset") == {"reset": True}

    after = ctl.state()
    assert _normalised(after) == _normalised(start)
    assert all(not key["holders"] for key in after["keys"])
    assert all(inst["licence"]["state"] == "unlicensed" for inst in after["instances"].values())
    started = datetime.fromisoformat(after["started"])
    assert after["keys"][0]["terms"]["expires"] == (started.date() + timedelta(days=365)).isoformat()
    clock = ctl.clock()
    assert clock["frozen"] is False
    assert abs((datetime.fromisoformat(clock["now"]) - datetime.now(started.tzinfo)).total_seconds()) < 60
    assert ctl.faults() == []
    assert ctl.journal() == []
    assert ctl.get("/_mock/journal")["cap"] == 50  # the cap is configuration, kept
    assert ctl.get("/_mock/progression") == {
        "engine_polls": 0,
        "engine_seconds": 0.0,
        "scan_polls": 0,
        "scan_seconds": 0.0,
    }
    assert running.core("a").request("GET", "/version").status_code == 200
    assert running.core("a").licence().json().keys() == {"deployment", "deployment_id"}


def test_reset_is_atomic_for_concurrent_readers(running: RunningFleet, ctl: Control) -> None:
    """While one client resets and sets up scenarios over and over, a reader never sees a half-done fleet: the
    slot holders are exactly the active instances, and the states are one of the scenarios' outcomes."""
    deployments = {name: inst["deployment"] for name, inst in ctl.state()["instances"].items()}
    outcomes = {
        ("unlicensed", "unlicensed", "unlicensed"),
        ("active", "unlicensed", "unlicensed"),
        ("active", "backup-online", "unlicensed"),
        ("active", "backup-offline", "unlicensed"),
    }
    stop = threading.Event()
    problems: list[str] = []
    reads = 0

    def writer() -> None:
        writer_ctl = Control(running.urls["b"])
        names = ["production-with-online-backup", "fresh", "production-with-offline-backup", "production-only"]
        try:
            while not stop.is_set():
                for name in names:
                    writer_ctl.scenario(name)
                    writer_ctl.post("/_mock/reset")
        except Exception as exc:
            problems.append(f"writer: {exc!r}")

    def core_reader() -> None:
        core = running.core("a")
        while not stop.is_set():
            response = core.licence()
            if response.status_code != 200:
                problems.append(f"core reader: {response.status_code} {response.text}")

    threads = [threading.Thread(target=writer), threading.Thread(target=core_reader)]
    for thread in threads:
        thread.start()
    reader = Control(running.urls[ACTIVATION])
    deadline = time.monotonic() + 1.5
    try:
        while time.monotonic() < deadline and not problems:
            doc = reader.state()
            reads += 1
            states = tuple(doc["instances"][name]["licence"]["state"] for name in ("a", "b", "c"))
            holders = set(doc["keys"][0]["holders"])
            active = {deployments[name] for name, s in zip(("a", "b", "c"), states, strict=True) if s == "active"}
            if states not in outcomes or holders != active:
                problems.append(f"half-done fleet: {states} holders {holders}")
            backup = doc["instances"]["b"]["licence"]
            if backup["state"].startswith("backup") and backup["production"] != deployments["a"]:
                problems.append(f"backup of an unknown production: {backup}")
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not problems, problems[:5]
    assert reads > 5


def test_reset_keeps_the_servers_and_their_ports(running: RunningFleet, ctl: Control) -> None:
    """Reset swaps the fleet's data only: the servers, their ports and open keep-alive connections stay (its speed is
    measured in bench/inprocess_lifecycle.py, not asserted here)."""
    ctl.scenario("production-with-online-backup")
    before = ctl.get("/_mock/info")
    session = requests.Session()
    for _ in range(20):
        assert session.post(running.urls["a"] + "/_mock/reset", timeout=10).status_code == 200
        assert session.get(running.urls["b"] + "/_mock/health", timeout=10).status_code == 200
    assert ctl.get("/_mock/info") == before
    assert set(running.fleet.states().values()) == {LicenceState.UNLICENSED}


# The state document


def test_state_get_put_round_trip(running: RunningFleet, ctl: Control) -> None:
    ctl.scenario("production-with-online-backup")
    a = running.core("a")
    session = a.request("POST", "/login", json={"user": "admin", "password": "admin"}).json()["session_id"]
    data_id = a.scan(EICAR).json()["data_id"]
    assert running.core("b").request("POST", "/admin/engine/avira_1_linux/disable").status_code == 200
    ctl.post("/_mock/clock/advance", {"days": 3})
    ctl.freeze()
    snapshot = ctl.state()
    before = running.snapshot()

    ctl.post("/_mock/reset")
    assert ctl.state()["instances"]["a"]["licence"]["state"] == "unlicensed"
    assert ctl.put("/_mock/state", snapshot) == {"loaded": True}

    assert ctl.state() == snapshot
    assert running.snapshot() == before
    assert ctl.clock()["frozen"] is True
    assert running.core("a", apikey=session).licence().json()["online_activated"] is True  # the session survived
    assert a.request("GET", f"/file/{data_id}").json()["scan_results"]["scan_all_result_i"] == 1
    assert running.core("b").is_backup().json() == {"is_backup": True}
    engines = {e["eng_id"]: e["active"] for e in running.core("b").request("GET", "/stat/engines").json()}
    assert engines["avira_1_linux"] is False


def test_slots_are_the_state_documents_holders(running: RunningFleet, ctl: Control) -> None:
    """`GET /_mock/slots`: who holds each key's slots, as the state document says, and nothing else."""
    assert ctl.get("/_mock/slots") == {"holders": {k["terms"]["activation_key"]: [] for k in ctl.state()["keys"]}}
    ctl.scenario("production-with-online-backup")
    state = ctl.state()
    assert ctl.get("/_mock/slots") == {"holders": {k["terms"]["activation_key"]: k["holders"] for k in state["keys"]}}
    assert [h for k in state["keys"] for h in k["holders"]] == [state["instances"]["a"]["deployment"]]


def test_state_put_with_a_running_clock_keeps_running(running: RunningFleet, ctl: Control) -> None:
    ctl.set_clock("2030-06-01T12:00:00+00:00")
    doc = ctl.state()
    ctl.post("/_mock/reset")
    ctl.put("/_mock/state", doc)
    clock = ctl.clock()
    assert clock["frozen"] is False and clock["date"] == "2030-06-01"
    assert datetime.fromisoformat(clock["now"]) >= datetime.fromisoformat(doc["clock"]["now"])


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def mutate(doc: dict[str, Any]) -> Any:
        *parents, last = path.split(".")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        return doc

    return mutate


def _rename_instance(doc: dict[str, Any]) -> Any:
    doc["instances"]["zz"] = doc["instances"].pop("c")
    return doc


def _too_many_holders(doc: dict[str, Any]) -> Any:
    doc["keys"][0]["holders"] = [inst["deployment"] for inst in doc["instances"].values()]  # 3 holders, 2 slots
    return doc


def _backup_without_production(doc: dict[str, Any]) -> Any:
    doc["instances"]["b"]["licence"]["production"] = None
    return doc


def _with_bad_scan_time(doc: dict[str, Any]) -> dict[str, Any]:
    scan = {"data_id": "0" * 32, "filename": "x", "size": 1, "sha256": "0" * 64, "infected": False}
    doc["instances"]["a"]["scans"] = [{**scan, "started": "2026-01-01T00:00:00+00:00"}]
    return doc


INVALID_STATES: list[tuple[str, Callable[[dict[str, Any]], Any], str]] = [
    ("wrong format", _set("format", "mockcore-fleet/99"), "$.format"),
    ("unknown instance names", _rename_instance, "$.instances"),
    ("holders beyond slots", _too_many_holders, "$.keys[0].slots"),
    ("malformed JSON", lambda doc: '{"format": "mockcore-fleet/1",', "not JSON"),
    ("a list, not an object", lambda doc: [doc], "$: expected dict"),
    ("a string, not an object", lambda doc: "fleet", "$: expected dict"),
    ("backup without production", _backup_without_production, "$.instances.b.licence.production"),
    ("bad expiry date", _set("keys.0.terms.expires", "2027-02-30"), "$.keys[0].terms.expires"),
    ("bad clock time", _set("clock.now", "yesterday"), "$.clock.now"),
    ("clock time without offset", _set("clock.now", "2030-01-01T00:00:00"), "$.clock.now"),
    ("unknown top-level field", _set("journal", []), "$: unknown journal"),
    ("bad licence state", _set("instances.a.licence.state", "zombie"), "$.instances.a.licence.state"),
    ("bad deployment id", _set("instances.c.deployment", "MSCL-nope"), "$.instances.c.deployment"),
    ("no admin user", _set("instances.a.users.0.id", 3), "$.instances.a.users"),
    ("bad scan time", _with_bad_scan_time, "$.instances.a.scans[0].started"),
]


@pytest.mark.parametrize(("mutate", "fragment"), [c[1:] for c in INVALID_STATES], ids=[c[0] for c in INVALID_STATES])
def test_state_put_refuses_an_invalid_document_and_changes_nothing(
    reset_fleet: RunningFleet, reset_ctl: Control, mutate: Callable[[dict[str, Any]], Any], fragment: str
) -> None:
    reset_ctl.scenario("production-with-online-backup")
    reset_ctl.freeze()
    before = frozen_view(reset_fleet, reset_ctl)
    bad = mutate(copy.deepcopy(reset_ctl.state()))
    raw = bad if isinstance(bad, str) and fragment == "not JSON" else json.dumps(bad)
    message = reset_ctl.error("PUT", "/_mock/state", 400, raw=raw)
    assert fragment in message, message
    assert frozen_view(reset_fleet, reset_ctl) == before


# Scenarios


def test_scenarios_are_listed(ctl: Control) -> None:
    assert set(ctl.get("/_mock/scenarios")) == {
        "fresh",
        "production-only",
        "production-with-online-backup",
        "production-with-offline-backup",
        "expiring-soon",
        "expired",
    }


def test_scenario_fresh(running: RunningFleet, ctl: Control) -> None:
    ctl.scenario("production-with-online-backup")
    answer = ctl.scenario("fresh")
    assert answer == {"scenario": "fresh", "states": {"a": "unlicensed", "b": "unlicensed", "c": "unlicensed"}}
    for name in ("a", "b", "c"):
        core = running.core(name)
        assert core.licence().json().keys() == {"deployment", "deployment_id"}
        assert core.is_backup().json() == {"is_backup": False}
        assert core.readyz().status_code == 503
    assert running.slots_used() == {running.key: 0}


def test_scenario_production_only(running: RunningFleet, ctl: Control) -> None:
    assert ctl.scenario("production-only")["states"] == {"a": "active", "b": "unlicensed", "c": "unlicensed"}
    a = running.core("a")
    info = a.licence().json()
    assert info["online_activated"] is True and info["days_left"] == 365
    assert a.readyz().status_code == 200
    assert a.scan(b"clean").status_code == 200
    assert running.core("b").licence().json().keys() == {"deployment", "deployment_id"}
    assert running.slots_used() == {running.key: 1}


def test_scenario_production_with_online_backup(running: RunningFleet, ctl: Control) -> None:
    states = ctl.scenario("production-with-online-backup")["states"]
    assert states == {"a": "active", "b": "backup-online", "c": "unlicensed"}
    a, b = running.core("a"), running.core("b")
    assert a.licence().json()["online_activated"] is True
    assert b.is_backup().json() == {"is_backup": True}
    assert b.licence().json()["online_activated"] is True
    assert b.scan(b"clean").status_code == 403  # a backup does not scan
    assert running.slots_used() == {running.key: 1}
    assert b.nominate().status_code == 200  # and it is a real online backup: nomination works


def test_scenario_production_with_offline_backup(running: RunningFleet, ctl: Control) -> None:
    states = ctl.scenario("production-with-offline-backup")["states"]
    assert states == {"a": "active", "b": "backup-offline", "c": "unlicensed"}
    a, b = running.core("a"), running.core("b")
    assert a.licence().json()["online_activated"] is False
    assert b.is_backup().json() == {"is_backup": True}
    assert b.licence().json()["online_activated"] is False
    assert b.nominate().status_code == 400  # offline backups cannot be nominated


def test_scenario_expiring_soon(running: RunningFleet, ctl: Control) -> None:
    assert ctl.scenario("expiring-soon")["states"]["a"] == "active"
    a = running.core("a")
    assert a.licence().json()["days_left"] == 7
    assert a.readyz().status_code == 200
    assert a.scan(b"clean").status_code == 200


def test_scenario_expired(running: RunningFleet, ctl: Control) -> None:
    assert ctl.scenario("expired")["states"]["a"] == "active"
    a = running.core("a")
    assert a.licence().json()["days_left"] == 0
    scan = a.scan(b"clean")
    assert (scan.status_code, scan.json()) == (500, {"err": "License is expired"})
    assert a.readyz().status_code == 503
    assert a.readyz(verbose=True).json()["license"]["status"] == "expired"


@pytest.mark.parametrize("name", ["production-with-online-backup", "production-with-offline-backup"])
def test_scenario_needing_two_instances_on_a_one_instance_fleet_is_409(make_fleet: FleetFactory, name: str) -> None:
    running = make_fleet(instances=("solo",))
    ctl = control(running, "solo")
    ctl.scenario("production-only")
    ctl.freeze()
    before = frozen_view(running, ctl)
    message = ctl.error("POST", f"/_mock/scenarios/{name}", 409)
    assert "2 instances" in message, message
    assert frozen_view(running, ctl) == before


def test_scenario_needing_a_key_on_a_keyless_fleet_is_409(make_fleet: FleetFactory) -> None:
    running = make_fleet(keys=())
    ctl = control(running)
    assert "key" in ctl.error("POST", "/_mock/scenarios/production-only", 409)
    assert ctl.state()["instances"]["a"]["licence"]["state"] == "unlicensed"


def test_unknown_scenario_is_404(running: RunningFleet, ctl: Control) -> None:
    ctl.freeze()
    before = frozen_view(running, ctl)
    message = ctl.error("POST", "/_mock/scenarios/production-on-the-moon", 404)
    assert "production-on-the-moon" in message and "production-only" in message
    assert frozen_view(running, ctl) == before


# The clock


def test_clock_read_set_freeze_unfreeze(ctl: Control) -> None:
    clock = ctl.clock()
    now = datetime.fromisoformat(clock["now"])
    assert clock["frozen"] is False and clock["date"] == now.date().isoformat()

    assert ctl.set_clock("2030-01-02T03:04:05+00:00", frozen=True) == {
        "now": "2030-01-02T03:04:05+00:00",
        "date": "2030-01-02",
        "frozen": True,
    }
    time.sleep(0.02)
    assert ctl.clock()["now"] == "2030-01-02T03:04:05+00:00"  # frozen: time stands still

    running_again = ctl.put("/_mock/clock", {"frozen": False})
    assert running_again["frozen"] is False
    time.sleep(0.02)
    assert datetime.fromisoformat(ctl.clock()["now"]) > datetime.fromisoformat("2030-01-02T03:04:05+00:00")

    frozen = ctl.freeze()
    assert frozen["frozen"] is True
    time.sleep(0.02)
    assert ctl.clock() == frozen
    unfrozen = ctl.post("/_mock/clock/unfreeze")
    assert unfrozen["frozen"] is False
    assert datetime.fromisoformat(unfrozen["now"]) >= datetime.fromisoformat(frozen["now"])
    time.sleep(0.02)
    assert datetime.fromisoformat(ctl.clock()["now"]) > datetime.fromisoformat(frozen["now"])


@pytest.mark.parametrize("frozen", [False, True], ids=["running", "frozen"])
def test_clock_set_with_another_offset_counts_in_utc(running: RunningFleet, ctl: Control, frozen: bool) -> None:
    """A moment with another UTC offset is that moment; the fleet's date, expiry and days_left are in UTC, whether
    the clock runs or stands still."""
    ctl.scenario("production-only")
    expiry = licence_expiry(running)
    clock = ctl.set_clock(f"{expiry}T23:30:00-05:00", frozen=frozen)  # already the next day in UTC
    assert clock["date"] == (expiry + timedelta(days=1)).isoformat()
    assert datetime.fromisoformat(clock["now"]) >= datetime.fromisoformat(f"{expiry + timedelta(days=1)}T04:30:00Z")
    a = running.core("a")
    assert a.readyz().status_code == 503
    assert a.scan(b"too late").json() == {"err": "License is expired"}


def test_clock_advance(ctl: Control) -> None:
    ctl.set_clock("2030-01-01T00:00:00+00:00", frozen=True)
    assert ctl.post("/_mock/clock/advance", {"days": 1, "hours": 2, "minutes": 3, "seconds": 4.5})["now"] == (
        "2030-01-02T02:03:04.500000+00:00"
    )
    assert ctl.post("/_mock/clock/advance", {"days": -2})["now"] == "2029-12-31T02:03:04.500000+00:00"
    assert ctl.clock()["frozen"] is True


CLOCK_SET_ERRORS: list[tuple[str, str, str]] = [
    ("no fields", "{}", "now"),
    ("unknown field", '{"now": "2030-01-01T00:00:00+00:00", "zone": "UTC"}', "now"),
    ("not a time", '{"now": "tomorrow"}', "now"),
    ("a number", '{"now": 1234567890}', "now"),
    ("no UTC offset", '{"now": "2030-01-01T00:00:00"}', "offset"),
    ("frozen not a boolean", '{"frozen": "yes"}', "frozen"),
    ("not an object", '["2030-01-01T00:00:00+00:00"]', "object"),
    ("malformed JSON", '{"now": ', "JSON"),
]


@pytest.mark.parametrize(("raw", "fragment"), [c[1:] for c in CLOCK_SET_ERRORS], ids=[c[0] for c in CLOCK_SET_ERRORS])
def test_clock_set_refuses_bad_input(reset_ctl: Control, raw: str, fragment: str) -> None:
    before = reset_ctl.freeze()
    assert fragment in reset_ctl.error("PUT", "/_mock/clock", 400, raw=raw)
    assert reset_ctl.clock() == before


CLOCK_ADVANCE_ERRORS: list[tuple[str, str, str]] = [
    ("no offset", "{}", "days"),
    ("unknown unit", '{"weeks": 1}', "days"),
    ("not a number", '{"days": "1"}', "`days`"),
    ("a boolean", '{"hours": true}', "`hours`"),
    ("not a number (NaN)", '{"seconds": NaN}', "`seconds`"),
    ("out of range", '{"days": 1e12}', "range"),
    ("beyond year 9999", '{"days": 3000000}', "range"),
    ("infinite", '{"minutes": Infinity}', "range"),
    ("not an object", "[1]", "object"),
    ("malformed JSON", "{days: 1}", "JSON"),
]


@pytest.mark.parametrize(
    ("raw", "fragment"), [c[1:] for c in CLOCK_ADVANCE_ERRORS], ids=[c[0] for c in CLOCK_ADVANCE_ERRORS]
)
def test_clock_advance_refuses_bad_input(reset_ctl: Control, raw: str, fragment: str) -> None:
    before = reset_ctl.freeze()
    assert fragment in reset_ctl.error("POST", "/_mock/clock/advance", 400, raw=raw)
    assert reset_ctl.clock() == before


def test_clock_set_beyond_year_9999_in_utc_is_refused(running: RunningFleet, ctl: Control) -> None:
    """9999-12-31T23:59:59-05:00 is in the year 10000 in UTC, out of range: a 400, and the fleet still works."""
    before = ctl.freeze()
    message = ctl.error("PUT", "/_mock/clock", 400, body={"now": "9999-12-31T23:59:59-05:00", "frozen": False})
    assert "range" in message or "now" in message, message
    assert ctl.clock() == before
    assert running.core("a").request("GET", "/version").status_code == 200


def test_expiry_and_days_left_follow_the_clock(running: RunningFleet, ctl: Control) -> None:
    ctl.scenario("production-only")
    a = running.core("a")
    assert a.licence().json()["days_left"] == 365
    ctl.post("/_mock/clock/advance", {"days": 100})
    assert a.licence().json()["days_left"] == 265
    expiry = licence_expiry(running)

    ctl.set_clock(f"{expiry - timedelta(days=10)}T12:00:00+00:00")
    assert a.licence().json()["days_left"] == 10
    ctl.set_clock(f"{expiry}T00:00:00+00:00")  # valid through its expiration date
    assert a.licence().json()["days_left"] == 0
    assert a.readyz().status_code == 200
    assert a.scan(b"still fine").status_code == 200

    ctl.set_clock(f"{expiry + timedelta(days=1)}T00:00:00+00:00", frozen=True)
    assert a.readyz().status_code == 503
    assert a.readyz(verbose=True).json()["license"]["status"] == "expired"
    ctl.post("/_mock/clock/advance", {"days": -1})
    assert a.readyz().status_code == 200


# Faults


def _version(running: RunningFleet, name: str = "a") -> requests.Response:
    return requests.get(running.urls[name] + "/version", timeout=TIMEOUT)


def test_fault_fires_exactly_times_then_the_mock_answers_normally(running: RunningFleet, ctl: Control) -> None:
    rule = ctl.fault(path="/version", times=3, status=503, err="Down for maintenance")
    assert rule["id"] and rule["times"] == 3 and rule["matched"] == 0
    answers = [_version(running) for _ in range(5)]
    assert [r.status_code for r in answers] == [503, 503, 503, 200, 200]
    assert answers[0].json() == {"err": "Down for maintenance"}
    assert answers[3].json()["product_id"] == "MSCL"
    assert ctl.faults() == []  # used up


def test_fault_default_err_text(running: RunningFleet, ctl: Control) -> None:
    rule = ctl.fault(method="GET", path="/admin/license", status=500)
    assert rule["err"] == "Injected fault."
    response = running.core("a").licence()
    assert (response.status_code, response.json()) == (500, {"err": "Injected fault."})
    assert response.headers["Content-Type"].startswith("application/json")


def _statuses(running: RunningFleet, count: int = 30) -> list[int]:
    return [_version(running).status_code for _ in range(count)]


def test_fault_probability_with_a_seed_is_deterministic(make_fleet: FleetFactory) -> None:
    sequences = []
    for _ in range(2):
        running = make_fleet(instances=("a",))
        control(running).fault(path="/version", probability=0.5, seed=1234, status=503)
        sequences.append(_statuses(running))
    assert sequences[0] == sequences[1]
    assert {200, 503} == set(sequences[0])  # it really is random: some fire, some do not
    fired = sequences[0].count(503)
    assert control(running).faults()[0]["matched"] == fired


def test_fault_probability_zero_never_fires_and_one_always_does(running: RunningFleet, ctl: Control) -> None:
    ctl.fault(path="/version", probability=0, seed=7, status=503)
    assert set(_statuses(running, 20)) == {200}
    assert ctl.faults()[0]["matched"] == 0
    ctl.delete("/_mock/faults")
    ctl.fault(path="/version", probability=1, status=503)
    assert set(_statuses(running, 20)) == {503}
    assert ctl.faults()[0]["matched"] == 20


def test_fault_delay_answers_no_earlier_than_the_delay(running: RunningFleet, ctl: Control) -> None:
    ctl.fault(path="/version", delay=0.2, times=1)
    started = time.monotonic()
    response = _version(running)
    assert time.monotonic() - started >= 0.2
    assert response.status_code == 200  # a delay alone slows a normal answer
    ctl.fault(path="/version", delay=0.2, status=504, times=1)
    started = time.monotonic()
    response = _version(running)
    assert time.monotonic() - started >= 0.2
    assert response.status_code == 504


def test_fault_drops_the_connection_and_the_next_request_works(running: RunningFleet, ctl: Control) -> None:
    rule = ctl.fault(path="/version", drop=True, times=1)
    session = requests.Session()
    with pytest.raises(requests.ConnectionError):
        session.get(running.urls["a"] + "/version", timeout=TIMEOUT)
    assert session.get(running.urls["a"] + "/version", timeout=TIMEOUT).status_code == 200
    assert _version(running).status_code == 200

    def dropped() -> list[dict[str, Any]]:
        return [e for e in ctl.journal(path="/version") if e["fault"] == rule["id"]]

    poll_until(lambda: bool(dropped()))
    assert dropped()[0]["status"] is None


def test_fault_instance_filter(running: RunningFleet, ctl: Control) -> None:
    ctl.fault(instance="b", status=503)
    assert _version(running, "a").status_code == 200
    assert _version(running, "b").status_code == 503
    assert _version(running, "c").status_code == 200
    assert requests.get(running.urls[ACTIVATION] + "/nothing", timeout=TIMEOUT).status_code == 404


def test_fault_method_filter(running: RunningFleet, ctl: Control) -> None:
    rule = ctl.fault(method="post", path="/admin/license", status=503)  # any case
    assert rule["method"] == "POST"
    a = running.core("a")
    assert a.licence().status_code == 200
    assert a.upload(b"anything").status_code == 503


def test_fault_path_glob(running: RunningFleet, ctl: Control) -> None:
    ctl.fault(path="/admin/license/*", status=503)
    a = running.core("a")
    assert a.licence().status_code == 200
    assert a.is_backup().status_code == 503
    assert a.request("POST", "/admin/license/backup/nomination").status_code == 503  # * crosses /
    assert _version(running).status_code == 200


def test_fault_face_filter(running: RunningFleet, ctl: Control) -> None:
    ctl.fault(face="core", status=503)
    assert _version(running).status_code == 503
    deployment = ctl.state()["instances"]["a"]["deployment"]
    assert running.activation.obtain(running.key, deployment).status_code == 200
    ctl.delete("/_mock/faults")
    ctl.fault(face="any", status=502)
    assert _version(running).status_code == 502
    assert running.activation.obtain(running.key, deployment).status_code == 502


def test_control_plane_is_never_faulted(running: RunningFleet, ctl: Control) -> None:
    ctl.fault(status=503)
    ctl.fault(drop=True)
    for url in running.urls.values():
        assert Control(url).get("/_mock/health") == {"status": "ok"}
    assert len(ctl.faults()) == 2
    ctl.delete("/_mock/faults")
    assert _version(running).status_code == 200


def test_activation_fault_on_the_activation_face(running: RunningFleet, ctl: Control) -> None:
    rule = ctl.fault(face="activation", path="/activation", status=503, err="Activation server is down")
    deployment = ctl.state()["instances"]["a"]["deployment"]
    response = running.activation.obtain(running.key, deployment)
    assert (response.status_code, response.json()) == (503, {"err": "Activation server is down"})
    assert running.slots_used() == {running.key: 0}
    assert running.activation.release(running.key, deployment).status_code == 404  # other paths unaffected
    assert running.core("a").licence().status_code == 200  # Core faces unaffected
    assert ctl.faults()[0]["matched"] == 1 and ctl.faults()[0]["id"] == rule["id"]


@pytest.mark.parametrize("effect", [{"status": 503}, {"drop": True}], ids=["status", "drop"])
def test_activation_fault_fails_online_activation(running: RunningFleet, ctl: Control, effect: dict[str, Any]) -> None:
    ctl.fault(face="activation", path="/activation", **effect)
    before = running.snapshot()
    response = running.core("a").activate(running.key)
    assert (response.status_code, response.json()) == (500, {"err": UNREACHABLE})
    assert running.snapshot() == before
    assert ctl.faults()[0]["matched"] == 1


def test_activation_fault_fails_online_backup_registration(running: RunningFleet, ctl: Control) -> None:
    ctl.scenario("production-only")
    production = running.core("a").deployment()
    ctl.fault(face="activation", path="/activation", status=500, times=1)
    before = running.snapshot()
    response = running.core("b").register_online(running.key, production)
    assert (response.status_code, response.json()) == (500, {"err": UNREACHABLE})
    assert running.snapshot() == before
    assert running.core("b").register_online(running.key, production).status_code == 200  # once the rule is spent


def test_activation_fault_fails_nomination(running: RunningFleet, ctl: Control) -> None:
    ctl.scenario("production-with-online-backup")
    ctl.fault(face="activation", path="/activation", status=503)
    before = running.snapshot()
    response = running.core("b").nominate()
    assert (response.status_code, response.json()) == (500, {"err": UNREACHABLE})
    assert running.snapshot() == before
    assert running.core("b").is_backup().json() == {"is_backup": True}


def test_activation_fault_fails_online_deactivation(running: RunningFleet, ctl: Control) -> None:
    ctl.scenario("production-only")
    rule = ctl.fault(face="activation", path="/deactivation", drop=True)
    before = running.snapshot()
    response = running.core("a").deactivate()
    assert (response.status_code, response.json()) == (500, {"err": UNREACHABLE})
    assert running.snapshot() == before
    ctl.delete(f"/_mock/faults/{rule['id']}")
    ctl.fault(face="activation", path="/activation", status=503)  # the other path: deactivation unaffected
    assert running.core("a").deactivate().status_code == 200
    assert running.slots_used() == {running.key: 0}


def test_activation_fault_leaves_offline_operations_alone(running: RunningFleet, ctl: Control) -> None:
    deployment = ctl.state()["instances"]["a"]["deployment"]
    licence_file = running.activation.obtain(running.key, deployment).content
    ctl.fault(face="activation", status=503)  # every activation-server path
    a, b = running.core("a"), running.core("b")
    assert a.upload(licence_file).json() == {"success": True}
    assert b.register_offline(licence_file).status_code == 200
    assert a.deactivate().status_code == 200  # an offline production steps down without the activation server
    assert ctl.faults()[0]["matched"] == 0


def test_activation_delay_slows_the_online_operation_but_not_the_rest_of_the_fleet(
    running: RunningFleet, ctl: Control
) -> None:
    """The delay is spent before the fleet lock is taken: other instances and the control plane answer meanwhile."""
    ctl.fault(face="activation", path="/activation", delay=1.0, times=1)
    outcome: dict[str, Any] = {}

    def activate() -> None:
        outcome["response"] = running.core("a").activate(running.key)
        outcome["done"] = time.monotonic()

    started = time.monotonic()
    thread = threading.Thread(target=activate)
    thread.start()
    poll_until(lambda: not ctl.faults())  # the rule fired (and was used up): the activation is in its delay
    other = running.core("b").licence()
    state = requests.get(running.urls["a"] + "/_mock/state", timeout=10)
    others_done = time.monotonic()
    thread.join(timeout=30)
    assert outcome["response"].status_code == 200  # a delay alone slows, it does not fail
    assert outcome["done"] - started >= 1.0
    assert other.status_code == 200 and state.status_code == 200
    assert others_done < outcome["done"]  # they did not wait for the delayed activation


INVALID_RULES: list[tuple[str, Any, str]] = [
    ("unknown field", {"status": 500, "color": "red"}, "color"),
    ("bad face", {"face": "backend", "status": 500}, "`face`"),
    ("path without slash", {"path": "admin/license", "status": 500}, "`path`"),
    ("times zero", {"times": 0, "status": 500}, "`times`"),
    ("times not a number", {"times": "2", "status": 500}, "`times`"),
    ("probability above 1", {"probability": 1.5, "status": 500}, "`probability`"),
    ("probability a string", {"probability": "half", "status": 500}, "`probability`"),
    ("seed not an integer", {"probability": 0.5, "seed": 1.5, "status": 500}, "`seed`"),
    ("status out of range", {"status": 700}, "`status`"),
    ("status a boolean", {"status": True}, "`status`"),
    ("err without status", {"err": "boom", "delay": 0.1}, "`err`"),
    ("err not a string", {"err": 5, "status": 500}, "`err`"),
    ("negative delay", {"delay": -1}, "`delay`"),
    ("delay above a minute", {"delay": 61}, "`delay`"),
    ("drop not a boolean", {"drop": "yes"}, "`drop`"),
    ("drop and status", {"drop": True, "status": 500}, "drop"),
    ("no effect", {"path": "/version"}, "effect"),
    ("instance not a string", {"instance": 3, "status": 500}, "`instance`"),
    ("method not a string", {"method": ["GET"], "status": 500}, "`method`"),
    ("not an object", [{"status": 500}], "object"),
]


@pytest.mark.parametrize(("rule", "fragment"), [c[1:] for c in INVALID_RULES], ids=[c[0] for c in INVALID_RULES])
def test_invalid_fault_rule_is_400_naming_the_field(reset_ctl: Control, rule: Any, fragment: str) -> None:
    kept = reset_ctl.fault(path="/version", status=503)
    assert fragment in reset_ctl.error("POST", "/_mock/faults", 400, body=rule)
    assert reset_ctl.faults() == [kept]


def test_fault_rule_malformed_json_is_400(ctl: Control) -> None:
    assert "JSON" in ctl.error("POST", "/_mock/faults", 400, raw='{"status": ')
    assert ctl.faults() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/_mock/faults"),
        ("PUT", "/_mock/clock"),
        ("POST", "/_mock/clock/advance"),
        ("PUT", "/_mock/journal/config"),
        ("PUT", "/_mock/progression"),
    ],
)
def test_oversized_control_body_is_refused(reset_ctl: Control, method: str, path: str) -> None:
    raw = b"{" + b" " * (1024 * 1024 + 1) + b"}"
    assert reset_ctl.error(method, path, 413, raw=raw) == "Request body is too large."
    assert reset_ctl.faults() == [] and reset_ctl.clock()["frozen"] is False


def test_fault_list_shows_matched_counts_and_rules_can_be_removed(running: RunningFleet, ctl: Control) -> None:
    first = ctl.fault(instance="a", path="/version", status=503)
    second = ctl.fault(instance="b", path="/version", status=502, times=5)
    for _ in range(3):
        _version(running, "a")
    _version(running, "b")
    listed = {rule["id"]: rule for rule in ctl.faults()}
    assert listed[first["id"]]["matched"] == 3 and listed[first["id"]]["times"] is None
    assert listed[second["id"]]["matched"] == 1 and listed[second["id"]]["times"] == 4
    assert [rule["id"] for rule in ctl.faults()] == [first["id"], second["id"]]  # in the order added

    assert ctl.delete(f"/_mock/faults/{first['id']}") == {"removed": first["id"]}
    assert [rule["id"] for rule in ctl.faults()] == [second["id"]]
    assert _version(running, "a").status_code == 200
    assert first["id"] in ctl.error("DELETE", f"/_mock/faults/{first['id']}", 404)

    ctl.fault(path="/readyz", status=500)
    assert ctl.delete("/_mock/faults") == {"cleared": True}
    assert ctl.faults() == []
    assert _version(running, "b").status_code == 200


# The journal


def test_journal_records_requests_and_answers(running: RunningFleet, ctl: Control) -> None:
    a = running.core("a")
    a.activate(running.key, comment="journalled")
    a.request("GET", "/readyz", params={"verbose": "true"})
    a.deployment()
    other = ctl.state()["instances"]["b"]["deployment"]
    running.activation.obtain(running.key, other)

    activation, readyz, _, obtain = ctl.journal()
    assert activation["face"] == "core" and activation["instance"] == "a"
    assert (activation["method"], activation["path"], activation["query"]) == (
        "POST",
        "/admin/license/activation",
        "",
    )
    assert activation["request_headers"]["apikey"] == running.apikey
    assert json.loads(activation["request_body"]) == {
        "activationKey": running.key,
        "quantity": 1,
        "comment": "journalled",
    }
    assert activation["request_body_size"] == len(activation["request_body"])
    assert activation["status"] == 200 and json.loads(activation["response_body"]) == {"success": True}
    assert activation["response_headers"]["content-type"].startswith("application/json")
    assert activation["fault"] is None and activation["duration_ms"] >= 0
    assert datetime.fromisoformat(activation["fleet_time"]) and datetime.fromisoformat(activation["time"])

    assert (readyz["path"], readyz["query"], readyz["status"]) == ("/readyz", "verbose=true", 200)
    assert "license" in json.loads(readyz["response_body"])
    assert obtain["face"] == "activation" and obtain["instance"] is None
    assert obtain["path"] == "/activation" and f"deployment={other}" in obtain["query"]
    assert obtain["status"] == 200 and other in obtain["response_body"]
    assert obtain["response_headers"]["content-type"].startswith("application/x-yaml")
    assert readyz["request_headers"]["apikey"] == running.apikey
    assert activation["id"] < readyz["id"] < obtain["id"]


def test_journal_records_the_fault_that_fired(running: RunningFleet, ctl: Control) -> None:
    rule = ctl.fault(path="/version", status=503, err="nope", times=1)
    _version(running)
    (entry,) = ctl.journal()
    assert (entry["status"], entry["fault"], json.loads(entry["response_body"])) == (503, rule["id"], {"err": "nope"})


def test_journal_filters(running: RunningFleet, ctl: Control) -> None:
    a, b = running.core("a"), running.core("b")
    a.licence()
    b.licence()
    a.request("GET", "/version")
    b.upload(b"not a licence")
    running.activation.release(running.key, a.deployment())  # also `a.deployment()` is journalled

    assert {e["instance"] for e in ctl.journal(instance="b")} == {"b"}
    assert len(ctl.journal(instance="b")) == 2
    assert [e["method"] for e in ctl.journal(method="post")] == ["POST"]  # any case
    assert {e["path"] for e in ctl.journal(path="/admin/license*")} == {"/admin/license"}
    assert len(ctl.journal(path="/admin/license*")) == 4
    assert [e["path"] for e in ctl.journal(face="activation")] == ["/deactivation"]
    assert all(e["face"] == "core" for e in ctl.journal(face="core"))
    newest = ctl.journal(limit=2)
    assert [e["id"] for e in newest] == [e["id"] for e in ctl.journal()][-2:]
    assert ctl.journal(limit=0) == []
    assert [e["path"] for e in ctl.journal(instance="a", method="GET", limit=1)] == ["/admin/license"]
    for bad in ("-1", "two", "1.5", ""):
        assert "limit" in ctl.error("GET", "/_mock/journal", 400, params={"limit": bad})


def test_journal_default_cap_and_cap_from_the_fleet(make_fleet: FleetFactory) -> None:
    assert control(make_fleet(instances=("a",))).get("/_mock/journal")["cap"] == 1000
    fleet = Fleet(FleetConfig(instances=("a",)), journal_cap=2)
    with MockFleet.serving(fleet) as server:
        ctl = Control(server.urls["a"])
        assert ctl.get("/_mock/journal")["cap"] == 2
        for _ in range(4):
            requests.get(server.urls["a"] + "/version", timeout=TIMEOUT)
        assert len(ctl.journal()) == 2


def test_journal_cap_drops_the_oldest(running: RunningFleet, ctl: Control) -> None:
    assert ctl.put("/_mock/journal/config", {"cap": 3}) == {"cap": 3}
    for n in range(5):
        requests.get(running.urls["a"] + "/version", params={"n": n}, timeout=TIMEOUT)
    journal = ctl.get("/_mock/journal")
    assert journal["cap"] == 3
    assert [e["query"] for e in journal["entries"]] == ["n=2", "n=3", "n=4"]
    ctl.put("/_mock/journal/config", {"cap": 2})  # lowering the cap drops the oldest at once
    assert [e["query"] for e in ctl.journal()] == ["n=3", "n=4"]
    ctl.put("/_mock/journal/config", {"cap": 10})
    assert [e["query"] for e in ctl.journal()] == ["n=3", "n=4"]


def test_journal_never_exceeds_its_cap_under_concurrency(running: RunningFleet, ctl: Control) -> None:
    ctl.put("/_mock/journal/config", {"cap": 10})
    seen: list[int] = []

    def client(name: str) -> None:
        session = requests.Session()
        for _ in range(15):
            session.get(running.urls[name] + "/version", timeout=TIMEOUT)

    def watcher(stop: threading.Event) -> None:
        while not stop.is_set():
            seen.append(len(ctl.journal()))

    stop = threading.Event()
    watching = threading.Thread(target=watcher, args=(stop,))
    watching.start()
    clients = [threading.Thread(target=client, args=(name,)) for name in ("a", "b", "c", ACTIVATION)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(timeout=30)
    stop.set()
    watching.join(timeout=30)
    assert len(ctl.journal()) == 10
    assert max(seen, default=0) <= 10


def test_journal_cap_zero_records_nothing(running: RunningFleet, ctl: Control) -> None:
    running.core("a").licence()
    assert ctl.put("/_mock/journal/config", {"cap": 0}) == {"cap": 0}
    assert ctl.journal() == []
    running.core("a").licence()
    _version(running, "b")
    assert ctl.get("/_mock/journal") == {"cap": 0, "entries": []}


BAD_CAPS: list[tuple[str, str]] = [
    ("negative", '{"cap": -1}'),
    ("above the maximum", '{"cap": 100001}'),
    ("a string", '{"cap": "10"}'),
    ("a float", '{"cap": 1.5}'),
    ("a boolean", '{"cap": true}'),
    ("null", '{"cap": null}'),
    ("missing", "{}"),
    ("unknown field", '{"cap": 10, "keep": "all"}'),
    ("not an object", "[10]"),
    ("malformed JSON", '{"cap": '),
]


@pytest.mark.parametrize("raw", [c[1] for c in BAD_CAPS], ids=[c[0] for c in BAD_CAPS])
def test_journal_bad_cap_is_400_and_changes_nothing(reset_fleet: RunningFleet, reset_ctl: Control, raw: str) -> None:
    reset_fleet.core("a").licence()
    message = reset_ctl.error("PUT", "/_mock/journal/config", 400, raw=raw)
    assert "cap" in message or "JSON" in message or "object" in message, message
    journal = reset_ctl.get("/_mock/journal")
    assert journal["cap"] == 1000 and len(journal["entries"]) == 1


def test_journal_clear(running: RunningFleet, ctl: Control) -> None:
    ctl.put("/_mock/journal/config", {"cap": 5})
    running.core("a").licence()
    assert ctl.delete("/_mock/journal") == {"cleared": True}
    assert ctl.get("/_mock/journal") == {"cap": 5, "entries": []}
    running.core("a").licence()
    assert len(ctl.journal()) == 1


def test_control_plane_is_not_journalled(running: RunningFleet) -> None:
    for url in running.urls.values():
        port = Control(url)
        port.get("/_mock/health")
        port.get("/_mock/state")
        port.post("/_mock/clock/freeze")
        port.error("POST", "/_mock/scenarios/nope", 404)
    requests.get(running.urls["a"] + "/_mock/nothing", timeout=TIMEOUT)
    ctl = control(running)
    assert ctl.journal() == []
    _version(running)
    assert [e["path"] for e in ctl.journal()] == ["/version"]


def test_journal_bodies_are_cut_at_16_kib(running: RunningFleet, ctl: Control) -> None:
    ctl.scenario("production-only")
    body = b"x" * 20_000
    assert running.core("a").scan(body).status_code == 200
    (entry,) = ctl.journal(path="/file")
    assert entry["request_body_size"] == 20_000
    assert entry["request_body"] == "x" * 16 * 1024


# Progression


def _engines(running: RunningFleet, name: str = "a") -> list[dict[str, Any]]:
    return list(requests.get(running.urls[name] + "/stat/engines", timeout=TIMEOUT).json())


def _engine_state(running: RunningFleet) -> tuple[str, int]:
    engines = _engines(running)
    states = {(e["state"], e["download_progress"]) for e in engines}
    assert len(states) == 1, states
    return states.pop()


def _scan_result(running: RunningFleet, data_id: str) -> tuple[int, int, str]:
    result = requests.get(f"{running.urls['a']}/file/{data_id}", timeout=TIMEOUT).json()
    scan = result["scan_results"]
    assert result["process_info"]["progress_percentage"] == scan["progress_percentage"]
    return scan["progress_percentage"], scan["scan_all_result_i"], scan["scan_all_result_a"]


def test_progression_default_is_immediate(running: RunningFleet, ctl: Control) -> None:
    assert ctl.get("/_mock/progression") == {
        "engine_polls": 0,
        "engine_seconds": 0.0,
        "scan_polls": 0,
        "scan_seconds": 0.0,
    }
    ctl.scenario("production-only")
    assert _engine_state(running) == ("production", 100)
    data_id = running.core("a").scan(b"clean").json()["data_id"]
    assert _scan_result(running, data_id) == (100, 0, "No Threat Detected")


def test_default_progression_is_immediate_even_after_the_clock_moves_back(running: RunningFleet, ctl: Control) -> None:
    ctl.scenario("production-only")
    data_id = running.core("a").scan(b"clean").json()["data_id"]
    ctl.post("/_mock/clock/advance", {"days": -1})
    assert _engine_state(running) == ("production", 100)
    assert _scan_result(running, data_id) == (100, 0, "No Threat Detected")


def test_progression_engines_download_for_exactly_n_polls(running: RunningFleet, ctl: Control) -> None:
    ctl.scenario("production-only")
    assert ctl.put("/_mock/progression", {"engine_polls": 3})["engine_polls"] == 3
    polls = [_engine_state(running) for _ in range(5)]
    assert [state for state, _ in polls] == ["downloading"] * 3 + ["production"] * 2
    progress = [p for _, p in polls]
    assert all(0 <= p < 100 for p in progress[:3]) and progress[:3] == sorted(progress[:3])
    assert progress[3:] == [100, 100]
    # /readyz?verbose=true is not a poll of the engine list
    ctl.scenario("production-only")
    ctl.put("/_mock/progression", {"engine_polls": 1})
    running.core("a").readyz(verbose=True)
    assert [_engine_state(running)[0] for _ in range(2)] == ["downloading", "production"]


def test_progression_scans_stay_below_100_for_exactly_n_polls(running: RunningFleet, ctl: Control) -> None:
    ctl.scenario("production-only")
    ctl.put("/_mock/progression", {"scan_polls": 2})
    clean = running.core("a").scan(b"clean").json()["data_id"]
    infected = running.core("a").scan(EICAR).json()["data_id"]
    clean_polls = [_scan_result(running, clean) for _ in range(4)]
    infected_polls = [_scan_result(running, infected) for _ in range(3)]
    for progress, verdict, text in clean_polls[:2] + infected_polls[:2]:
        assert progress < 100 and (verdict, text) == (255, "In Progress")
    assert clean_polls[2:] == [(100, 0, "No Threat Detected")] * 2
    assert infected_polls[2] == (100, 1, "Infected")


def test_progression_engine_seconds_follow_the_fleet_clock(running: RunningFleet, ctl: Control) -> None:
    ctl.scenario("production-only")
    ctl.freeze()
    ctl.put("/_mock/progression", {"engine_seconds": 60})
    for _ in range(5):  # a frozen clock holds the download, however often it is polled
        assert _engine_state(running)[0] == "downloading"
    ctl.post("/_mock/clock/advance", {"seconds": 30})
    state, progress = _engine_state(running)
    assert state == "downloading" and 40 <= progress <= 60
    ctl.post("/_mock/clock/advance", {"seconds": 30})
    assert _engine_state(running) == ("production", 100)


def test_progression_scan_seconds_follow_the_fleet_clock(running: RunningFleet, ctl: Control) -> None:
    ctl.scenario("production-only")
    today = ctl.clock()["date"]
    ctl.set_clock(f"{today}T12:00:00+00:00", frozen=True)  # a whole second: scan times are kept to the second
    ctl.put("/_mock/progression", {"scan_seconds": 10, "scan_polls": 1})
    data_id = running.core("a").scan(b"clean").json()["data_id"]
    assert _scan_result(running, data_id)[0] == 0
    ctl.post("/_mock/clock/advance", {"seconds": 9})
    progress, verdict, _ = _scan_result(running, data_id)  # 2 polls, but 9 s < 10 s
    assert 80 <= progress < 100 and verdict == 255
    ctl.post("/_mock/clock/advance", {"seconds": 1})
    assert _scan_result(running, data_id) == (100, 0, "No Threat Detected")


def test_progression_is_not_part_of_the_state_document(running: RunningFleet, ctl: Control) -> None:
    ctl.put("/_mock/progression", {"scan_polls": 5})
    doc = ctl.state()
    assert "progression" not in json.dumps(doc)
    ctl.put("/_mock/state", doc)
    assert ctl.get("/_mock/progression")["scan_polls"] == 5  # loading a state leaves the settings alone


BAD_PROGRESSIONS: list[tuple[str, str, str]] = [
    ("negative polls", '{"engine_polls": -1}', "engine_polls"),
    ("too many polls", '{"scan_polls": 1001}', "scan_polls"),
    ("fractional polls", '{"engine_polls": 1.5}', "engine_polls"),
    ("polls as a float", '{"scan_polls": 2.0}', "scan_polls"),
    ("polls a string", '{"engine_polls": "2"}', "engine_polls"),
    ("polls a boolean", '{"scan_polls": true}', "scan_polls"),
    ("polls null", '{"scan_polls": null}', "scan_polls"),
    ("negative seconds", '{"engine_seconds": -0.5}', "engine_seconds"),
    ("more than a day", '{"scan_seconds": 86401}', "scan_seconds"),
    ("infinite seconds", '{"scan_seconds": Infinity}', "scan_seconds"),
    ("NaN seconds", '{"engine_seconds": NaN}', "engine_seconds"),
    ("one good, one bad", '{"engine_polls": 2, "scan_polls": -1}', "scan_polls"),
    ("unknown field", '{"engine_polls": 1, "av_polls": 1}', "engine_polls"),
    ("empty", "{}", "engine_polls"),
    ("not an object", "[1]", "object"),
    ("malformed JSON", '{"engine_polls": 1', "JSON"),
]


@pytest.mark.parametrize(("raw", "fragment"), [c[1:] for c in BAD_PROGRESSIONS], ids=[c[0] for c in BAD_PROGRESSIONS])
def test_progression_bad_values_are_400_and_change_nothing(reset_ctl: Control, raw: str, fragment: str) -> None:
    before = reset_ctl.put("/_mock/progression", {"engine_seconds": 1.5})
    assert fragment in reset_ctl.error("PUT", "/_mock/progression", 400, raw=raw)
    assert reset_ctl.get("/_mock/progression") == before


# The control token


@pytest.fixture
def guarded() -> Iterator[RunningFleet]:
    fleet = Fleet(FleetConfig(instances=("a", "b"), keys=(KeySpec(slots=2),)))
    running = serve_fleet(fleet, control_token="s3cret")
    try:
        yield running
    finally:
        running.server.stop()


def test_control_token_guards_the_control_plane_only(guarded: RunningFleet) -> None:
    apikey = guarded.fleet.config.resolved_apikey
    for url in guarded.urls.values():
        anonymous, wrong, right = Control(url), Control(url, token="guess"), Control(url, token="s3cret")
        assert TOKEN_HEADER in anonymous.error("GET", "/_mock/info", 401)
        assert TOKEN_HEADER in wrong.error("GET", "/_mock/info", 403)
        assert right.get("/_mock/info")["instances"].keys() == {"a", "b"}
        assert anonymous.get("/_mock/health") == {"status": "ok"}  # health stays open
        anonymous.error("POST", "/_mock/reset", 401)
        wrong.error("PUT", "/_mock/clock", 403, body={"frozen": True})
        anonymous.error("POST", "/_mock/faults", 401, body={"status": 500})
    right = Control(guarded.urls["a"], token="s3cret")
    assert right.clock()["frozen"] is False and right.faults() == []
    assert right.scenario("production-only")["states"]["a"] == "active"
    # the Core API and the activation server do not need the token
    urls = guarded.urls
    licence = requests.get(urls["a"] + "/admin/license", headers={"apikey": apikey}, timeout=TIMEOUT)
    assert licence.status_code == 200 and licence.json()["online_activated"] is True
    wrong_token = requests.get(
        urls["b"] + "/admin/license", headers={"apikey": apikey, TOKEN_HEADER: "guess"}, timeout=TIMEOUT
    )
    assert wrong_token.status_code == 200
    deployment = wrong_token.json()["deployment"]
    obtained = requests.get(
        urls[ACTIVATION] + "/activation",
        params={"key": guarded.fleet.activation_keys()[0].key, "deployment": deployment, "quantity": 1},
        timeout=TIMEOUT,
    )
    assert obtained.status_code == 200 and obtained.headers["Content-Type"].startswith("application/x-yaml")
