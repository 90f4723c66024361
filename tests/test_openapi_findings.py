"""Regression tests for what schemathesis (tests/test_schemathesis.py) and the contract checks found, each fixed in
the mock or in the contract; each test fails without its fix.

1. schemathesis, negative data accepted: `GET /readyz?verbose=null` answered 200. The mock read any value other
   than `true`/`1` as false; `verbose` is a boolean (the vendor's type), so another value is now a malformed
   request, 400 `Invalid request.` (fixed in the mock; the contract documents the 400).
2. schemathesis, positive data rejected: `POST /file` with an empty body is schema-valid under a bare binary
   string, but the vendor documents 422 `File is empty.` for it (fixed in the contract: the body has
   `minLength: 1`).
3. Writing the contract's pattern for a numeric `quantity` string: the mock took `" 5"`, `"5\\n"` (and other
   whitespace around the digits) as 5, the contract says ASCII digits only (fixed in the mock, on the Core face
   and at the activation server).
4. The vendor comparison (tests/test_openapi_vendor.py): the scan result's `file_info.type_category` and
   `process_info.outdated_data` items are enums in the vendor's schema, free strings in the first draft of the
   contract (fixed in the contract).
5. Checking the contract against every status the views can raise: a body cut short (broken chunked framing)
   is 400 `Invalid request.` on every endpoint that reads a body, which the first draft did not document for the
   licence upload, the backup registration and `POST /file` (fixed in the contract).
6. Checking the mock's routes against the contract's integer path parameter: `PUT /admin/user/٢` (an
   Arabic-Indic digit two) set user 2's key, as werkzeug's `int` converter matches any Unicode digit; the
   contract's `id` is an integer, ASCII digits on the wire (fixed in the mock: such a path is 404).
"""

from __future__ import annotations

import json
import socket

import pytest
import yaml

from contracts.spec import ContractSpec
from tests.conftest import RunningFleet

INVALID_REQUEST = {"err": "Invalid request."}


@pytest.fixture(scope="module")
def spec() -> ContractSpec:
    return ContractSpec.load()


# 1. /readyz?verbose=


@pytest.mark.parametrize("value", ["null", "yes", "1", "0", "", "truthy"])
def test_readyz_refuses_a_verbose_that_is_not_a_boolean(fleet3: RunningFleet, spec: ContractSpec, value: str) -> None:
    response = fleet3.core("a", apikey=None).request("GET", f"/readyz?verbose={value}")
    assert (response.status_code, response.json()) == (400, INVALID_REQUEST)
    problems = spec.validate_response(
        "GET", "/readyz", response.status_code, response.headers["Content-Type"], response.content
    )
    assert problems == []


@pytest.mark.parametrize(("value", "detailed"), [("true", True), ("TRUE", True), ("False", False), ("false", False)])
def test_readyz_takes_true_and_false_in_any_case(fleet3: RunningFleet, value: str, detailed: bool) -> None:
    response = fleet3.core("a", apikey=None).request("GET", f"/readyz?verbose={value}")
    assert response.status_code == 503  # unlicensed
    assert ("license" in response.json()) is detailed


def test_contract_documents_the_readyz_400(spec: ContractSpec) -> None:
    assert "400" in spec.operation("healthCheck").definition["responses"]
    assert spec.validate_request("GET", "/readyz?verbose=maybe") != []
    assert spec.validate_request("GET", "/readyz?verbose=TRUE") == []


# 2. POST /file with an empty body


def test_contract_says_a_scanned_file_is_not_empty(spec: ContractSpec) -> None:
    body = spec.resolve(spec.operation("submitFile").definition["requestBody"])
    assert body["content"]["application/octet-stream"]["schema"]["minLength"] == 1


def test_empty_scan_is_the_documented_422(fleet3: RunningFleet, spec: ContractSpec) -> None:
    client = fleet3.core("a")
    assert client.activate(fleet3.key).status_code == 200
    response = client.scan(b"")
    assert (response.status_code, response.json()) == (422, {"err": "File is empty."})
    assert spec.validate_response("POST", "/file", 422, response.headers["Content-Type"], response.content) == []


# 3. quantity as a numeric string


@pytest.mark.parametrize("quantity", [" 5", "5 ", "5\n", "\t1", "+1", "1_0", "\u00a01"])
def test_core_refuses_a_quantity_string_that_is_not_plain_digits(fleet3: RunningFleet, quantity: str) -> None:
    response = fleet3.core("a").activate(fleet3.key, quantity=quantity)
    assert (response.status_code, response.json()) == (400, INVALID_REQUEST)
    assert fleet3.slots_used() == {fleet3.key: 0}


@pytest.mark.parametrize("quantity", [" 5", "5 ", "+1"])
def test_activation_server_refuses_a_quantity_that_is_not_plain_digits(fleet3: RunningFleet, quantity: str) -> None:
    response = fleet3.activation.obtain(fleet3.key, fleet3.core("a").deployment(), quantity)
    assert (response.status_code, response.reason) == (200, "Invalid parameter")
    assert yaml.safe_load(response.text)["error"].startswith("Could not activate your product because the quantity")


@pytest.mark.parametrize("quantity", ["1", "0001", "1000", 1, 1000])
def test_plain_digits_and_integers_are_quantities(fleet3: RunningFleet, spec: ContractSpec, quantity: object) -> None:
    response = fleet3.core("a").activate(fleet3.key, quantity=quantity)
    assert (response.status_code, response.json()) == (200, {"success": True})
    headers = {"apikey": fleet3.apikey, "Content-Type": "application/json"}
    body = json.dumps({"activationKey": fleet3.key, "quantity": quantity}).encode()
    assert spec.validate_request("POST", "/admin/license/activation", headers=headers, body=body) == []


# 4. enums the vendor's schema has


def test_scan_result_enums_follow_the_vendor(spec: ContractSpec) -> None:
    schemas = spec.document["components"]["schemas"]
    assert schemas["FileInformation"]["properties"]["type_category"]["items"]["enum"] == list("ADEGIMPTZO")
    outdated = schemas["ProcessInformation"]["properties"]["outdated_data"]["items"]["enum"]
    assert outdated == ["enginedefinitions", "configuration", "sanitization"]


# 5. a body cut short


def _raw_exchange(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("path", ["/file", "/admin/license", "/admin/license/backup", "/admin/license/activation"])
def test_a_body_cut_short_is_a_documented_answer(fleet3: RunningFleet, spec: ContractSpec, path: str) -> None:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: mockcore\r\napikey: {fleet3.apikey}\r\nConnection: close\r\n"
        "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
    ).encode()
    status, headers, body = _raw_exchange(fleet3.urls["a"], request)
    assert (status, json.loads(body)) == (400, {"err": "Invalid request."})
    content_type = next(value for name, value in headers.items() if name.lower() == "content-type")
    assert spec.validate_response("POST", path, status, content_type, body) == []


# 6. /admin/user/{id} in ASCII digits


@pytest.mark.parametrize("path", ["/admin/user/%D9%A2", "/admin/user/%EF%BC%92"])
def test_a_user_id_in_other_digits_is_not_found(fleet3: RunningFleet, spec: ContractSpec, path: str) -> None:
    response = fleet3.core("a").request("PUT", path, json={"api_key": "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"})
    assert (response.status_code, response.json()) == (404, {"err": "Not found."})
    assert spec.validate_response("PUT", path, 404, response.headers["Content-Type"], response.content) == []


def test_a_user_id_in_ascii_digits_still_names_the_user(fleet3: RunningFleet) -> None:
    for path in ("/admin/user/2", "/admin/user/002"):
        response = fleet3.core("a").request("PUT", path, json={"api_key": "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"})
        assert (response.status_code, response.json()["id"]) == (200, 2)
