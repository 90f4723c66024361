"""The contract `contracts/openapi.yaml` as a document, as the mock serves it (`GET /openapi.json`), and the
validation helpers of `contracts/spec.py` (responses and requests checked against it)."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import requests
import schemathesis
import yaml

from contracts.spec import ContractSpec, load_document, media_type
from mockcore.catalogue import DEFAULT_ENTRIES, ErrorCode
from mockcore.fleet import Fleet, FleetConfig, KeySpec
from mockcore.http.activation_api import create_activation_app
from mockcore.http.core_api import create_core_app
from tests.conftest import FleetFactory, RunningFleet

ROOT = Path(__file__).resolve().parents[1]
EXTRACT = ROOT / "reference" / "vendor" / "mdcore-5.6.1-openapi-extract.json"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
JSON = "application/json"
OCTETS = "application/octet-stream"


@pytest.fixture(scope="module")
def spec() -> ContractSpec:
    return ContractSpec.load()


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in _refs(item)]
    return []


# The document


def test_contract_ships_as_package_data() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["contracts"]
    assert resources.files("contracts").joinpath("openapi.yaml").is_file()


def test_contracts_never_imports_mockcore() -> None:
    for source in sorted((ROOT / "contracts").glob("*.py")):
        tree = ast.parse(source.read_text(), str(source))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(name.split(".")[0] == "mockcore" for name in names), (source.name, names)


def test_contract_is_valid_openapi_3_0(spec: ContractSpec) -> None:
    """Against the OpenAPI 3.0 meta-schema schemathesis ships (a dependency), and, where it is installed, with
    openapi-spec-validator too (see tests/test_openapi_vendor.py)."""
    assert str(spec.document["openapi"]).startswith("3.0.")
    schemathesis.openapi.from_dict(dict(spec.document)).validate()
    broken = {**spec.document, "paths": {"/login": {"post": {"responses": {"200": {"content": 5}}}}}}
    with pytest.raises(Exception, match="content"):
        schemathesis.openapi.from_dict(broken).validate()


def test_every_reference_resolves(spec: ContractSpec) -> None:
    refs = _refs(spec.document)
    assert refs
    for ref in refs:
        spec.resolve({"$ref": ref})


def test_operations_have_unique_ids_and_a_server_tag(spec: ContractSpec) -> None:
    ids = [op.operation_id for op in spec.operations()]
    assert len(ids) == len(set(ids))
    for op in spec.operations():
        assert op.tags and set(op.tags) <= {"core", "activation"}, op.label
        assert op.definition.get("summary"), op.label
    assert {op.operation_id for op in spec.operations_tagged("activation")} == {
        "obtainLicenceFile",
        "releaseSlot",
        "getContract",
    }


def _routes(app: Any) -> set[str]:
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/_mock") or rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        served |= {f"{method} {path}" for method in rule.methods - {"HEAD", "OPTIONS"}}
    return served


def _templated(label: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", label)


def test_the_contract_describes_every_route_the_mock_serves(spec: ContractSpec) -> None:
    """Every endpoint of both faces is an operation of the contract with the face's tag, and the other way round
    (path parameter names aside: the vendor's `engineId` is the mock's `eng_id`)."""
    fleet = Fleet(FleetConfig(instances=("a",)))
    for tag, app in (("core", create_core_app(fleet, "a")), ("activation", create_activation_app(fleet))):
        described = {_templated(op.label) for op in spec.operations_tagged(tag)}
        assert {_templated(route) for route in _routes(app)} == described, tag


def test_error_answers_are_err_bodies_listing_catalogue_codes_of_their_status(spec: ContractSpec) -> None:
    for op in spec.operations_tagged("core"):
        for status, raw in op.definition["responses"].items():
            if int(status) < 400 or (op.operation_id, status) in {("healthCheck", "503"), ("submitFileSync", "408")}:
                continue  # /readyz's 503 is the unhealthy answer, with the readiness body; a sync scan's 408 its id
            response = spec.resolve(raw)
            assert list(response["content"]) == [JSON], (op.label, status)
            assert response["content"][JSON]["schema"] == {"$ref": "#/components/schemas/Error"}, (op.label, status)
            for code in response.get("x-errors", ()):
                assert DEFAULT_ENTRIES[ErrorCode(code)].status == int(status), (op.label, status, code)
            if int(status) < 500 and status != "413":
                assert response.get("x-errors"), (op.label, status)


def test_every_catalogue_code_is_documented(spec: ContractSpec) -> None:
    documented = {
        code
        for op in spec.operations()
        for raw in op.definition["responses"].values()
        for code in spec.resolve(raw).get("x-errors", ())
    }
    documented |= {
        code for raw in spec.document["x-generic-responses"].values() for code in spec.resolve(raw).get("x-errors", ())
    }
    assert documented == {code.value for code in ErrorCode}


def test_links_name_real_operations_and_parameters(spec: ContractSpec) -> None:
    links = 0
    for op in spec.operations():
        for response in op.definition["responses"].values():
            for name, link in spec.resolve(response).get("links", {}).items():
                links += 1
                target = spec.operation(link["operationId"])
                declared = {f"{p['in']}.{p['name']}" for _, p in spec.parameters(target)}
                for parameter in link.get("parameters", {}):
                    assert parameter in declared, (op.label, name, parameter)
                if "requestBody" in link:
                    assert "requestBody" in target.definition, (op.label, name)
    assert links >= 20


def test_descriptions_are_our_own_words(spec: ContractSpec) -> None:
    """No sentence of the vendor's document is copied into the contract."""
    assert EXTRACT.is_file(), f"the vendor's extract is part of the repository: {EXTRACT}"
    vendor = json.loads(EXTRACT.read_text())
    ours = (resources.files("contracts") / "openapi.yaml").read_text()

    def texts(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [t for key, value in node.items() for t in ([value] if key == "description" else texts(value))]
        if isinstance(node, list):
            return [t for item in node for t in texts(item)]
        return []

    sentences = {s.strip() for text in texts(vendor) for s in re.split(r"(?<=[.:])\s", str(text)) if len(s) > 40}
    copied = [sentence for sentence in sentences if sentence in ours]
    assert not copied, copied


# Served as /openapi.json


def test_every_face_serves_the_contract_as_json_without_a_key(fleet3: RunningFleet) -> None:
    expected = load_document()
    for url in fleet3.urls.values():
        for _ in range(2):  # converted once per app, answered the same every time
            response = requests.get(f"{url}/openapi.json", timeout=10)
            assert response.status_code == 200, url
            assert media_type(response.headers["Content-Type"]) == JSON
            assert response.json() == expected


def test_the_served_contract_keeps_the_contract(fleet3: RunningFleet, spec: ContractSpec) -> None:
    response = requests.get(f"{fleet3.urls['a']}/openapi.json", timeout=10)
    assert spec.validate_response("GET", "/openapi.json", 200, response.headers["Content-Type"], response.content) == []


# Path matching


def test_match_finds_templates_methods_and_parameters(spec: ContractSpec) -> None:
    found = spec.match("GET", "/file/0123abcd")
    assert found is not None and found.operation is not None
    assert (found.template, found.operation.operation_id) == ("/file/{data_id}", "getScanResult")
    assert found.path_parameters == {"data_id": "0123abcd"}
    engine = spec.match("POST", "/admin/engine/clamav_1_linux/disable?x=1")
    assert engine is not None and engine.path_parameters == {"engineId": "clamav_1_linux"}
    wrong = spec.match("PUT", "/admin/license")
    assert wrong is not None and wrong.operation is None and wrong.methods == ("GET", "POST")
    assert spec.match("GET", "/admin/licence") is None
    assert spec.match("GET", "/file/a/b") is None
    assert spec.match("GET", "/admin/license/") is None


def test_lookups(spec: ContractSpec) -> None:
    assert spec.operation("nominate").label == "POST /admin/license/backup/nomination"
    with pytest.raises(KeyError):
        spec.operation("noSuchOperation")
    assert spec.resolve({"$ref": "#/components/schemas/Error"})["required"] == ["err"]
    names = [(p["in"], p["name"]) for _, p in spec.parameters(spec.operation("registerBackup"))]
    assert names == [("header", "apikey"), ("header", "activation-key"), ("header", "active-deployment-id")]


# Responses: every answer of a live fleet keeps the contract


class Recorder:
    """Sends requests to a running fleet and validates every answer against the contract."""

    def __init__(self, running: RunningFleet, spec: ContractSpec) -> None:
        self.running = running
        self.spec = spec
        self.seen: set[tuple[str, int]] = set()

    def call(self, face: str, method: str, path: str, *, apikey: str | None = "", **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if apikey is not None and face != "activation_server":
            headers["apikey"] = apikey or self.running.apikey
        response = requests.request(method, self.running.urls[face] + path, headers=headers, timeout=30, **kwargs)
        problems = self.spec.validate_response(
            method, path, response.status_code, response.headers.get("Content-Type"), response.content, response.headers
        )
        assert problems == [], problems
        found = self.spec.match(method, path)
        if found is not None and found.operation is not None:
            self.seen.add((found.operation.operation_id, response.status_code))
        return response


def test_every_answer_of_a_licence_lifecycle_keeps_the_contract(make_fleet: FleetFactory, spec: ContractSpec) -> None:
    running = make_fleet(keys=(KeySpec(slots=2), KeySpec(slots=1)))
    r = Recorder(running, spec)
    key, second = running.keys
    deployment = {name: r.call(name, "GET", "/admin/license").json()["deployment"] for name in ("a", "b", "c")}
    activation = {"activationKey": key, "quantity": 1, "comment": "prod"}
    online = {"activation-key": key, "active-deployment-id": deployment["a"]}

    # accounts
    session = r.call("a", "POST", "/login", apikey=None, json={"user": "admin", "password": "admin"}).json()
    r.call("a", "GET", "/user", apikey=session["session_id"])
    r.call("a", "POST", "/logout", apikey=session["session_id"])
    r.call("a", "POST", "/logout")  # a configured key is not a session: 400
    r.call("a", "POST", "/login", apikey=None, json={"user": "admin", "password": "nope"})
    r.call("a", "POST", "/login", apikey=None, data=b"{")
    r.call("a", "POST", "/user/changepassword", json={"old_password": "nope", "new_password": "x"})
    r.call("a", "POST", "/user/changepassword", json={"old_password": "admin", "new_password": "admin"})
    r.call("a", "PUT", "/admin/user/2", json={"api_key": "0" * 36})
    r.call("a", "PUT", "/admin/user/2", json={"api_key": "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"})
    r.call("a", "PUT", "/admin/user/7", json={"api_key": "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"})
    # users and roles: a licence reader is refused a licence change (405), and the refusals of the new endpoints
    reader = r.call("a", "POST", "/admin/role", json={"name": "reader", "rights": {"license": ["read"]}}).json()
    r.call("a", "POST", "/admin/role", json={"name": "reader"})
    r.call("a", "POST", "/admin/role", json={"name": "bad", "rights": {"license": ["own"]}})
    own_key = "9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a"
    r.call(
        "a",
        "POST",
        "/admin/user",
        json={"name": "ro", "password": "pw", "roles": [str(reader["id"])], "apikey": own_key},
    )
    r.call("a", "POST", "/admin/user", json={"name": "ro", "password": "pw", "roles": ["1"]})
    r.call("a", "POST", "/admin/user", json={"name": "other", "password": "pw", "roles": ["99"]})
    r.call("a", "GET", "/admin/license", apikey=own_key)
    r.call("a", "POST", "/admin/license/activation", apikey=own_key, json={"activationKey": r.running.key})
    r.call("a", "POST", "/admin/role", apikey=own_key, json={"name": "escalate"})
    r.call("a", "GET", "/stat/nodes")
    r.call("a", "GET", "/stat/nodes", apikey=own_key)  # a licence reader has no `agents: read`
    r.call("a", "GET", "/stat/nodes", apikey=None)
    r.call("a", "GET", "/user", apikey=None)
    r.call("a", "GET", "/user", apikey="f" * 36)
    r.call("a", "GET", "/version", apikey=None)
    r.call("a", "GET", "/version", apikey="f" * 36)

    # unlicensed
    r.call("a", "GET", "/readyz", apikey=None)
    r.call("a", "GET", "/readyz?verbose=true", apikey=None)
    r.call("a", "GET", "/stat/engines")
    r.call("a", "POST", "/admin/engine/clamav_1_linux/disable")
    r.call("a", "POST", "/file", data=b"hello")
    r.call("a", "POST", "/admin/license/deactivation")
    r.call("a", "POST", "/admin/license/backup/nomination")
    r.call("a", "DELETE", "/admin/license/backup")
    r.call("a", "POST", "/admin/license/backup")
    r.call("a", "POST", "/admin/license", data=b"not a licence")

    # online production a, online backup b, nomination
    r.call("a", "POST", "/admin/license/activation", json=activation)
    r.call("a", "POST", "/admin/license/activation", json={**activation, "quantity": 0})
    r.call(
        "a",
        "POST",
        "/admin/license/activation",
        json={**activation, "activationKey": "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ"},
    )
    r.call("a", "GET", "/admin/license")
    r.call("a", "GET", "/readyz?verbose=TRUE", apikey=None)
    engines = r.call("a", "GET", "/stat/engines").json()
    r.call("a", "POST", f"/admin/engine/{engines[0]['eng_id']}/disable")
    r.call("a", "POST", f"/admin/engine/{engines[0]['eng_id']}/enable")
    r.call("a", "POST", "/admin/engine/nope/enable")
    data_id = r.call("a", "POST", "/file", data=EICAR, headers={"filename": "eicar.com"}).json()["data_id"]
    r.call("a", "GET", f"/file/{data_id}", apikey=None)
    r.call("a", "GET", f"/file/{'0' * 32}")
    r.call("a", "POST", "/file", data=b"")
    r.call("a", "POST", "/file/sync", data=EICAR)
    r.call("a", "POST", "/file", data=b"x", headers={"callbackurl": "not a url"})
    r.call("a", "POST", "/admin/license/backup", headers=online)
    r.call("b", "POST", "/admin/license/backup", headers={"activation-key": key})
    r.call("b", "POST", "/admin/license/backup", headers={**online, "activation-key": second})
    r.call("b", "POST", "/admin/license/backup", headers={**online, "active-deployment-id": deployment["b"]})
    r.call("b", "POST", "/admin/license/backup", headers=online)
    r.call("b", "POST", "/admin/license/backup", headers=online)
    r.call("b", "GET", "/admin/license/backup")
    r.call("b", "GET", "/admin/license")
    r.call("b", "POST", "/file", data=b"x")
    r.call("b", "POST", "/file/sync", data=b"x")
    r.call("b", "POST", "/admin/license/activation", json=activation)
    r.call("b", "POST", "/admin/license/deactivation")
    r.call("b", "POST", "/admin/license/backup/nomination")
    r.call("a", "GET", "/admin/license")  # lost its slot: reactivate
    r.call("a", "GET", "/readyz", apikey=None)

    # offline: a file from the activation server, uploaded to c, registered offline on a
    licence = r.call("activation_server", "GET", f"/activation?key={second}&deployment={deployment['c']}&quantity=1")
    r.call("activation_server", "GET", f"/activation?key={second}&deployment={deployment['a']}&quantity=1")
    r.call("activation_server", "GET", f"/activation?key=bad&deployment={deployment['a']}&quantity=1")
    r.call("activation_server", "GET", "/activation")
    r.call("c", "POST", "/admin/license", data=licence.content, headers={"Content-Type": OCTETS})
    r.call("a", "POST", "/admin/license/backup", data=licence.content)
    r.call("a", "POST", "/admin/license/backup/nomination")
    r.call("a", "DELETE", "/admin/license/backup")
    r.call("activation_server", "GET", f"/deactivation?key={second}&deployment={deployment['c']}")
    r.call("activation_server", "GET", f"/deactivation?key={second}&deployment={deployment['c']}")
    r.call("c", "POST", "/admin/license/deactivation")

    # answers every path shares
    r.call("a", "GET", "/no/such/path")
    r.call("a", "PATCH", "/admin/license")
    r.call("activation_server", "POST", "/activation")
    r.call("activation_server", "GET", "/openapi.json")

    statuses = {status for _, status in r.seen}
    assert {200, 400, 403, 404, 422, 503} <= statuses
    assert {op.operation_id for op in spec.operations()} <= {operation for operation, _ in r.seen}


# Responses: what breaks the contract is reported


@pytest.mark.parametrize(
    ("method", "path", "status", "content_type", "body", "headers", "expected"),
    [
        ("POST", "/login", 418, JSON, b"{}", None, "status 418 is not documented for POST /login"),
        ("GET", "/version", 200, "text/html", b"<p>", None, "Content-Type text/html is not documented"),
        ("GET", "/version", 200, None, b"{}", None, "no Content-Type"),
        ("GET", "/version", 200, JSON, b'{"product_id": "MSCL"}', None, "'version' is a required property"),
        ("GET", "/version", 200, JSON, b"{", None, "the body is not application/json"),
        ("POST", "/admin/license", 400, JSON, b'{"err": "x", "code": 1}', None, "Additional properties"),
        ("POST", "/admin/license", 200, JSON, b'{"success": "yes"}', None, "'yes' is not of type 'boolean'"),
        ("GET", "/admin/license/backup", 200, JSON, b'{"is_backup": 1}', None, "is not of type 'boolean'"),
        ("GET", "/no/such/path", 200, JSON, b"{}", None, "the path is not in the contract"),
        ("PUT", "/admin/license", 400, JSON, b'{"err": "x"}', None, "does not take PUT"),
        ("PUT", "/admin/license", 405, JSON, b'{"err": "x"}', {}, "the Allow header is required"),
        ("PUT", "/admin/license", 405, JSON, b'{"err": "x"}', {"Allow": "GET"}, "Allow says 'GET'"),
        ("GET", "/deactivation", 404, "application/x-yaml", b"success: 'x'\n", None, "'error' is a required"),
        ("GET", "/activation", 200, "application/x-yaml", b"error: 1\n", None, "at the body"),
    ],
)
def test_a_broken_answer_is_reported(
    spec: ContractSpec,
    method: str,
    path: str,
    status: int,
    content_type: str | None,
    body: bytes,
    headers: dict[str, str] | None,
    expected: str,
) -> None:
    problems = spec.validate_response(method, path, status, content_type, body, headers)
    assert any(expected in problem for problem in problems), problems


def test_head_is_its_get_without_a_body_and_options_the_frameworks_answer(
    fleet3: RunningFleet, spec: ContractSpec
) -> None:
    for method in ("HEAD", "OPTIONS"):
        response = requests.request(method, f"{fleet3.urls['a']}/admin/license", timeout=10)
        content_type = response.headers.get("Content-Type")
        assert spec.validate_response(method, "/admin/license", response.status_code, content_type, b"") == []
        assert spec.validate_request(method, "/admin/license", headers={"apikey": fleet3.apikey}) == []
    assert spec.validate_response("HEAD", "/admin/license", 418, JSON, b"") != []
    assert spec.validate_request("HEAD", "/admin/license") != []  # the apikey its GET needs


def test_licensed_engines_as_a_list_is_reported(spec: ContractSpec) -> None:
    body = {
        "days_left": 3,
        "deployment": "MSCL" + "0" * 32,
        "expiration": "01/31/2027",
        "licensed_engines": ["*"],
        "licensed_to": "x",
        "max_node_count": "1",
        "online_activated": True,
        "product_id": "p",
        "product_name": "n",
    }
    assert spec.validate_response("GET", "/admin/license", 200, JSON, body) != []
    assert spec.validate_response("GET", "/admin/license", 200, JSON, {**body, "licensed_engines": "*"}) == []


# Requests


KEY = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG"
DEPLOYMENT = "MSCL" + "0123456789abcdef" * 2
APIKEY = MappingProxyType({"apikey": "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"})
AS_JSON = MappingProxyType({**APIKEY, "Content-Type": JSON})


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("POST", "/login", {"Content-Type": JSON}, b'{"user": "admin", "password": "admin"}'),
        ("GET", "/admin/license", APIKEY, b""),
        ("POST", "/admin/license/activation", AS_JSON, b'{"activationKey": "k", "quantity": "12", "comment": "c"}'),
        ("POST", "/admin/license/activation", AS_JSON, b'{"activationKey": "k"}'),
        ("POST", "/admin/license", {**APIKEY, "Content-Type": OCTETS}, b"product_id: x\n"),
        ("POST", "/admin/license", APIKEY, b"product_id: x\n"),  # no Content-Type: taken as octet-stream
        ("POST", "/admin/license/backup", {**APIKEY, "activation-key": KEY, "active-deployment-id": DEPLOYMENT}, b""),
        ("POST", "/admin/license/backup", {**APIKEY, "Content-Type": OCTETS}, b"product_id: x\n"),
        ("PUT", "/admin/user/2", AS_JSON, b'{"api_key": "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"}'),
        ("GET", "/readyz?verbose=false", {}, b""),
        ("GET", "/version", {}, b""),
        ("POST", "/file", {"filename": "a.txt"}, b"hello"),
        ("GET", "/activation?key=k&deployment=d&quantity=x", {}, b""),
        ("GET", "/openapi.json", {}, b""),
    ],
)
def test_a_request_that_keeps_the_contract_has_no_problem(
    spec: ContractSpec, method: str, path: str, headers: Mapping[str, str], body: bytes
) -> None:
    assert spec.validate_request(method, path, headers=headers, body=body) == []


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "expected"),
    [
        ("GET", "/admin/license", {}, b"", "the required header parameter `apikey` is missing"),
        ("POST", "/admin/license/nomination", APIKEY, b"", "the contract has no such path"),
        ("DELETE", "/admin/license", APIKEY, b"", "does not take DELETE"),
        (
            "POST",
            "/admin/license/backup",
            {**APIKEY, "active-deployment-id": DEPLOYMENT},
            b"",
            "the online form also needs the `activation-key` header",
        ),
        (
            "POST",
            "/admin/license/backup",
            {**APIKEY, "activation-key": KEY},
            b"",
            "the online form also needs the `active-deployment-id` header",
        ),
        (
            "POST",
            "/admin/license/backup",
            {**APIKEY, "activation-key": KEY, "active-deployment-id": DEPLOYMENT, "Content-Type": OCTETS},
            b"x",
            "both a body and the",
        ),
        ("POST", "/admin/license/backup", APIKEY, b"", "matches no request form"),
        ("POST", "/admin/license/backup", {**APIKEY, "activation-key": "nope"}, b"", "does not match"),
        ("POST", "/admin/license/activation", AS_JSON, b'{"activationKey": "k", "quantity": true}', "/quantity"),
        ("POST", "/admin/license/activation", AS_JSON, b'{"activationKey": "k", "quantity": " 5"}', "/quantity"),
        ("POST", "/admin/license/activation", AS_JSON, b'{"activationKey": "k", "quantity": 0}', "/quantity"),
        ("POST", "/admin/license/activation", AS_JSON, b'{"quantity": 1}', "'activationKey' is a required"),
        ("POST", "/admin/license/activation", AS_JSON, b"{", "not valid JSON"),
        ("POST", "/admin/license/activation", AS_JSON, b"", "the body is missing"),
        (
            "POST",
            "/admin/license/activation",
            {**APIKEY, "Content-Type": "application/x-www-form-urlencoded"},
            b'{"activationKey": "k"}',
            "Content-Type application/x-www-form-urlencoded is not accepted",
        ),
        ("POST", "/admin/license/activation", APIKEY, b'{"activationKey": "k"}', "without Content-Type"),
        ("POST", "/admin/license", AS_JSON, b'{"product_id": "x"}', "the body was sent as JSON"),
        ("POST", "/admin/license", {**APIKEY, "Content-Type": "text/plain"}, b"x", "text/plain is not accepted"),
        ("POST", "/admin/license/deactivation", AS_JSON, b"{}", "takes no body"),
        ("PUT", "/admin/user/two", AS_JSON, b'{"api_key": "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"}', "not of type"),
        ("PUT", "/admin/user/2", AS_JSON, b'{"api_key": "short"}', "/api_key"),
        ("GET", "/readyz?verbose=yes", {}, b"", "query parameter `verbose` is 'yes'"),
        ("POST", "/file", {}, b"", "the body is missing"),
    ],
)
def test_a_request_that_breaks_the_contract_is_reported(
    spec: ContractSpec, method: str, path: str, headers: Mapping[str, str], body: bytes, expected: str
) -> None:
    problems = spec.validate_request(method, path, headers=headers, body=body)
    assert any(expected in problem for problem in problems), problems


def test_query_can_be_given_apart_and_content_type_as_an_argument(spec: ContractSpec) -> None:
    assert spec.validate_request("GET", "/readyz", query={"verbose": "maybe"}) != []
    assert spec.validate_request("GET", "/readyz", query={"verbose": ["true"]}) == []
    body = b'{"product_id": "x"}'
    assert spec.validate_request("POST", "/admin/license", headers=APIKEY, body=body, content_type=JSON) != []
    assert spec.validate_request("POST", "/admin/license", headers=APIKEY, body=body, content_type=OCTETS) == []


def test_requests_of_the_projects_own_client_keep_the_contract(fleet3: RunningFleet, spec: ContractSpec) -> None:
    """Read back from the mock's journal: what tests/client.py sends is what the contract describes."""
    a, b = fleet3.core("a"), fleet3.core("b")
    a.activate(fleet3.key, quantity="1")
    b.register_online(fleet3.key, a.deployment())
    b.nominate()
    c = fleet3.core("c")
    c.upload(fleet3.activation.obtain(fleet3.key, c.deployment()).content)
    c.scan(b"hello")
    c.readyz(verbose=True)
    with requests.get(f"{fleet3.urls['a']}/_mock/journal", timeout=10) as response:
        entries = response.json()["entries"]
    assert len(entries) >= 8
    for entry in entries:
        headers = entry["request_headers"]
        problems = spec.validate_request(
            entry["method"],
            entry["path"],
            query=entry["query"],
            headers=headers,
            body=entry["request_body"].encode(),
        )
        assert problems == [], (entry["method"], entry["path"], problems)


def test_load_document_is_a_fresh_copy() -> None:
    first = load_document()
    first["paths"].clear()
    assert load_document()["paths"]
    assert yaml.safe_load((resources.files("contracts") / "openapi.yaml").read_text()) == load_document()


def test_a_whole_body_problem_says_body_once(spec: ContractSpec) -> None:
    """A JSON body that is not even an object is a problem of the whole body: the report reads "the body", not
    "body the body"; a field's problem keeps its pointer after "body"."""
    headers = {"apikey": "k", "Content-Type": "application/json"}
    whole = spec.validate_request("POST", "/admin/license/activation", headers=headers, body=b"[1]")
    field = spec.validate_request(
        "POST", "/admin/license/activation", headers=headers, body=b'{"activationKey": 7, "quantity": 1}'
    )
    assert whole and all("body the body" not in p and "the body" in p for p in whole), whole
    assert field and any("body /activationKey" in p for p in field), field
