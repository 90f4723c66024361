"""Every Core endpoint (docs/responses.md) over HTTP: bodies, statuses, authentication, and the vendor's schemas.

The JSON bodies that the vendor's OpenAPI extract describes (login, licence information, engines, readiness, scan
submission and results, version) are validated against it (reference/vendor/), allowing only the known conflicts
of docs/decisions.md, Vendor conflicts.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from mockcore.fleet import KeySpec
from tests.client import CoreClient
from tests.conftest import FleetFactory, RunningFleet

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
DEPLOYMENT_RE = re.compile(r"MSCL[0-9a-f]{32}")
DATA_ID_RE = re.compile(r"[0-9a-f]{32}")
EXPIRATION_RE = re.compile(r"(0[1-9]|1[0-2])/(0[1-9]|[12][0-9]|3[01])/[0-9]{4}")
VALID_APIKEY = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"  # 18 letters, 18 digits, never two of a kind in a row
UNKNOWN_APIKEY = "9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a"

OPENAPI_EXTRACT = Path(__file__).resolve().parents[1] / "reference" / "vendor" / "mdcore-5.6.1-openapi-extract.json"

# Endpoints that need an apikey (docs/responses.md, the `apikey` column).
PROTECTED: list[tuple[str, str]] = [
    ("POST", "/logout"),
    ("GET", "/admin/license"),
    ("POST", "/admin/license"),
    ("POST", "/admin/license/activation"),
    ("POST", "/admin/license/deactivation"),
    ("GET", "/admin/license/backup"),
    ("POST", "/admin/license/backup"),
    ("DELETE", "/admin/license/backup"),
    ("POST", "/admin/license/backup/nomination"),
    ("GET", "/user"),
    ("POST", "/user/changepassword"),
    ("PUT", "/admin/user/2"),
    ("POST", "/admin/engine/clamav_1_linux/enable"),
    ("POST", "/admin/engine/clamav_1_linux/disable"),
]

BACKUP_REGISTERED = "The backup MetaDefender Core instance is now registered as a backup one."
BACKUP_REMOVED = "This MetaDefender Core instance is no longer registered as a backup one."
NOMINATED = "This MetaDefender Core instance is now fully activated and allowed to process files."


# The vendor's schemas


@functools.cache
def _openapi() -> dict[str, Any]:
    if not OPENAPI_EXTRACT.exists():
        pytest.fail(f"the vendor's OpenAPI extract is not at {OPENAPI_EXTRACT} (it belongs to the repository)")
    return json.loads(OPENAPI_EXTRACT.read_text())


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _response_schema(path: str, method: str = "get", status: str = "200") -> str:
    return _pointer("paths", path, method, "responses", status, "content", "application/json", "schema")


def _component(name: str) -> str:
    return _pointer("components", "schemas", name)


def assert_vendor_schema(body: object, pointer: str, conflicts: frozenset[tuple[str | int, ...]] = frozenset()) -> None:
    """`body` validates against the vendor schema at `pointer`; errors at the paths in `conflicts` (vendor
    conflicts) are allowed. Skipped, after the hand checks the caller made first, where jsonschema is missing."""
    jsonschema = pytest.importorskip("jsonschema")
    document = _openapi()
    # Draft 7: a root `$ref` ignores its siblings and resolves inside the whole document.
    validator = jsonschema.Draft7Validator({**document, "$ref": pointer})
    errors = [e for e in validator.iter_errors(body) if tuple(e.absolute_path) not in conflicts]
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]


# Arranging states, over HTTP


def _ok(response: requests.Response) -> requests.Response:
    assert response.status_code == 200, response.text
    return response


def _licence_file(running: RunningFleet, name: str) -> bytes:
    response = _ok(running.activation.obtain(running.key, running.core(name).deployment()))
    assert response.reason == "OK", response.text
    return response.content


def _bring(running: RunningFleet, state: str, name: str = "b", production: str = "a") -> CoreClient:
    """Bring instance `name` to `state`; a backup's production is `production`, activated online for
    backup-online and with a licence file for backup-offline."""
    client = running.core(name)
    if state == "active":
        _ok(client.activate(running.key))
    elif state == "backup-online":
        _ok(running.core(production).activate(running.key))
        _ok(client.register_online(running.key, running.core(production).deployment()))
    elif state == "backup-offline":
        production_file = _licence_file(running, production)
        _ok(running.core(production).upload(production_file))
        _ok(client.register_offline(production_file))
    else:
        assert state == "unlicensed"
    return client


def _assert_error(response: requests.Response, status: int, text: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"err": text}


def _login(client: CoreClient, user: str = "admin", password: str = "admin") -> requests.Response:
    return client.request("POST", "/login", json={"user": user, "password": password})


# /login, /logout


def test_login_answers_a_session_that_works_as_apikey(fleet3: RunningFleet) -> None:
    anonymous = fleet3.core("a", apikey=None)
    response = _ok(_login(anonymous))
    body = response.json()
    assert set(body) == {"oms-csrf-token", "session_id"}
    assert isinstance(body["oms-csrf-token"], str) and body["oms-csrf-token"]
    assert isinstance(body["session_id"], str) and body["session_id"]
    as_session = fleet3.core("a", apikey=body["session_id"])
    assert _ok(as_session.request("GET", "/user")).json()["id"] == 2
    assert _ok(as_session.licence()).json()["deployment"] == fleet3.core("a").deployment()
    # Sessions belong to their instance.
    _assert_error(fleet3.core("b", apikey=body["session_id"]).licence(), 403, "Access denied")
    # Every login opens its own session.
    assert _ok(_login(anonymous)).json()["session_id"] != body["session_id"]
    assert_vendor_schema(body, _component("UserLogin"))


def test_login_with_bad_credentials(fleet3: RunningFleet) -> None:
    anonymous = fleet3.core("a", apikey=None)
    for user, password in [("admin", "wrong"), ("nobody", "admin"), ("", ""), ("ADMIN", "admin")]:
        _assert_error(_login(anonymous, user, password), 403, "Failed to login")
    response = anonymous.request("POST", "/login", data=b"{", headers={"Content-Type": "application/json"})
    _assert_error(response, 400, "Invalid request.")


def test_login_with_the_configured_admin_account(make_fleet: FleetFactory) -> None:
    running = make_fleet(admin_user="root", admin_password="s3cret")
    anonymous = running.core("a", apikey=None)
    _assert_error(_login(anonymous), 403, "Failed to login")
    _ok(_login(anonymous, "root", "s3cret"))


def test_logout_ends_the_session(fleet3: RunningFleet) -> None:
    session = _ok(_login(fleet3.core("a", apikey=None))).json()["session_id"]
    as_session = fleet3.core("a", apikey=session)
    response = _ok(as_session.request("POST", "/logout"))
    assert response.json() == {"response": "Logout success"}
    _assert_error(as_session.request("GET", "/user"), 403, "Access denied")
    _assert_error(as_session.request("POST", "/logout"), 403, "Access denied")
    # The configured key is untouched, and logging out with it rather than a session is refused.
    client = fleet3.core("a")
    _ok(client.request("GET", "/user"))
    _assert_error(client.request("POST", "/logout"), 400, "Logout error")
    _ok(client.request("GET", "/user"))


# Authentication rules


def test_missing_apikey_on_protected_endpoints(fleet3: RunningFleet) -> None:
    anonymous = fleet3.core("a", apikey=None)
    before = fleet3.snapshot()
    for method, path in PROTECTED:
        response = anonymous.request(method, path)
        assert (response.status_code, response.json()) == (400, {"err": "Access denied"}), (method, path)
    assert fleet3.snapshot() == before


def test_unknown_apikey_on_protected_endpoints(fleet3: RunningFleet) -> None:
    stranger = fleet3.core("a", apikey=UNKNOWN_APIKEY)
    before = fleet3.snapshot()
    for method, path in PROTECTED:
        response = stranger.request(method, path)
        assert (response.status_code, response.json()) == (403, {"err": "Access denied"}), (method, path)
    assert fleet3.snapshot() == before


def test_authentication_comes_before_well_formedness(fleet3: RunningFleet) -> None:
    # docs/behaviour.md, Order of checks: a malformed body from a stranger is an authentication error.
    stranger = fleet3.core("a", apikey=UNKNOWN_APIKEY)
    response = stranger.request(
        "POST", "/admin/license/activation", data=b"{", headers={"Content-Type": "application/json"}
    )
    _assert_error(response, 403, "Access denied")
    _assert_error(fleet3.core("a", apikey=None).request("PUT", "/admin/user/2", json={}), 400, "Access denied")


def test_optional_apikey_endpoints_without_a_key(fleet3: RunningFleet) -> None:
    client = _bring(fleet3, "active", "a")
    anonymous = fleet3.core("a", apikey=None)
    assert _ok(anonymous.request("GET", "/version")).json()["product_id"] == "MSCL"
    assert _ok(anonymous.request("GET", "/stat/engines")).json() == _ok(client.request("GET", "/stat/engines")).json()
    data_id = _ok(anonymous.scan(b"anonymous")).json()["data_id"]
    assert _ok(anonymous.request("GET", f"/file/{data_id}")).json()["data_id"] == data_id


def test_optional_apikey_endpoints_with_an_unknown_key(fleet3: RunningFleet) -> None:
    data_id = _ok(_bring(fleet3, "active", "a").scan(b"known")).json()["data_id"]
    stranger = fleet3.core("a", apikey=UNKNOWN_APIKEY)
    for response in (
        stranger.request("GET", "/version"),
        stranger.request("GET", "/stat/engines"),
        stranger.scan(b"stranger"),
        stranger.request("GET", f"/file/{data_id}"),
    ):
        _assert_error(response, 403, "Access denied")


# Users


def test_get_user_answers_the_caller(fleet3: RunningFleet) -> None:
    body = _ok(fleet3.core("a").request("GET", "/user")).json()
    assert body["id"] == 2
    assert body["name"] == "admin"
    assert isinstance(body["roles"], list)


def test_change_password(fleet3: RunningFleet) -> None:
    client = fleet3.core("a")
    anonymous = fleet3.core("a", apikey=None)
    wrong = client.request("POST", "/user/changepassword", json={"old_password": "nope", "new_password": "n3w"})
    _assert_error(wrong, 400, "Invalid password.")
    _ok(_login(anonymous, "admin", "admin"))
    right = client.request("POST", "/user/changepassword", json={"old_password": "admin", "new_password": "n3w"})
    assert _ok(right).json() == {"success": True}
    _assert_error(_login(anonymous, "admin", "admin"), 403, "Failed to login")
    _ok(_login(anonymous, "admin", "n3w"))
    # Other instances keep their own accounts.
    _ok(_login(fleet3.core("b", apikey=None), "admin", "admin"))


def test_set_the_admins_apikey(fleet3: RunningFleet) -> None:
    client = fleet3.core("a")
    response = _ok(client.request("PUT", "/admin/user/2", json={"api_key": VALID_APIKEY}))
    assert response.json()["id"] == 2
    as_new_key = fleet3.core("a", apikey=VALID_APIKEY)
    assert _ok(as_new_key.request("GET", "/user")).json()["id"] == 2
    _ok(as_new_key.licence())
    # The key is this instance's only, and the configured key keeps working.
    _assert_error(fleet3.core("b", apikey=VALID_APIKEY).licence(), 403, "Access denied")
    _ok(client.licence())


BAD_APIKEYS: dict[str, str] = {
    "too-short": VALID_APIKEY[:-1],
    "too-long": VALID_APIKEY + "1",
    "uppercase": VALID_APIKEY.upper(),
    "four-digits-in-a-row": "1234ab5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e",
    "four-letters-in-a-row": "1abcd2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7",
    "too-few-letters": "123a" * 9,
    "too-few-digits": "abc1" * 9,
    "not-hex": VALID_APIKEY[:-1] + "g",
    "empty": "",
}


def test_set_apikey_refuses_a_bad_format(fleet3: RunningFleet) -> None:
    client = fleet3.core("a")
    for label, key in BAD_APIKEYS.items():
        response = client.request("PUT", "/admin/user/2", json={"api_key": key})
        assert (response.status_code, response.json()) == (400, {"err": "Invalid API key format."}), label
        if key:
            _assert_error(fleet3.core("a", apikey=key).licence(), 403, "Access denied")
    assert _ok(client.request("GET", "/user")).json()["api_key"] == ""
    # A well-formed key for a user that does not exist.
    response = client.request("PUT", "/admin/user/999", json={"api_key": VALID_APIKEY})
    assert response.status_code == 404
    assert set(response.json()) == {"err"} and isinstance(response.json()["err"], str)
    _assert_error(fleet3.core("a", apikey=VALID_APIKEY).licence(), 403, "Access denied")


# /version


def test_version(fleet3: RunningFleet) -> None:
    response = _ok(fleet3.core("a").request("GET", "/version"))
    assert response.json() == {"product_id": "MSCL", "version": "5.6.1"}
    assert_vendor_schema(response.json(), _response_schema("/version"))


def test_version_is_the_emulated_one(make_fleet: FleetFactory) -> None:
    running = make_fleet(version="5.19.0")
    assert _ok(running.core("a").request("GET", "/version")).json() == {"product_id": "MSCL", "version": "5.19.0"}


# /readyz


def _assert_ready(client: CoreClient, status: int, licence_status: str) -> None:
    plain = client.readyz()
    assert (plain.status_code, plain.json()) == (status, {}), client.base_url
    verbose = client.readyz(verbose=True)
    assert verbose.status_code == status
    body = verbose.json()
    assert body["license"] == {"status": licence_status}
    assert_vendor_schema(body, _component("readyz"))


@pytest.mark.parametrize("backup", ["backup-online", "backup-offline"])
def test_readyz_in_every_state(make_fleet: FleetFactory, backup: str) -> None:
    running = make_fleet(keys=(KeySpec(slots=2, days=10),))
    _bring(running, backup)
    # /readyz needs no apikey.
    unlicensed, backup_client, production = (running.core(name, apikey=None) for name in ("c", "b", "a"))
    # docs/responses.md, Readiness: unlicensed 503 invalid, active 200 ok, backup 200 ok.
    _assert_ready(unlicensed, 503, "invalid")
    _assert_ready(production, 200, "ok")
    _assert_ready(backup_client, 200, "ok")
    # docs/behaviour.md, Licence states: past the expiry date an active or backup instance is expired.
    running.fleet.advance_clock(timedelta(days=12))
    _assert_ready(unlicensed, 503, "invalid")
    _assert_ready(production, 503, "expired")
    _assert_ready(backup_client, 503, "expired")


# /admin/license and the licence operations' answers


def test_licence_info_when_unlicensed(fleet3: RunningFleet) -> None:
    body = _ok(fleet3.core("a").licence()).json()
    assert body == {"deployment": body["deployment"], "deployment_id": body["deployment"]}
    assert DEPLOYMENT_RE.fullmatch(body["deployment"])


def _assert_licensed_shape(running: RunningFleet, body: dict[str, Any], deployment: str, online: bool) -> None:
    assert body["deployment"] == deployment
    assert isinstance(body["days_left"], int) and not isinstance(body["days_left"], bool)
    assert body["days_left"] == 365
    expected = (running.fleet.started.date() + timedelta(days=365)).strftime("%m/%d/%Y")
    assert EXPIRATION_RE.fullmatch(body["expiration"]) and body["expiration"] == expected
    assert body["licensed_engines"] == "*"  # a vendor conflict: what clients meet, not the array
    assert isinstance(body["licensed_to"], str)
    assert isinstance(body["max_node_count"], str)
    assert body["online_activated"] is online
    assert isinstance(body["product_id"], str) and body["product_id"]
    assert isinstance(body["product_name"], str) and body["product_name"]
    assert "reactivate" not in body
    assert_vendor_schema(body, _component("LicenseInformation"), conflicts=frozenset({("licensed_engines",)}))


def test_licence_info_after_online_activation(fleet3: RunningFleet) -> None:
    client = fleet3.core("a")
    deployment = client.deployment()
    assert _ok(client.activate(fleet3.key)).json() == {"success": True}
    _assert_licensed_shape(fleet3, _ok(client.licence()).json(), deployment, online=True)


def test_licence_info_after_uploading_a_file(fleet3: RunningFleet) -> None:
    client = fleet3.core("a")
    assert _ok(client.upload(_licence_file(fleet3, "a"))).json() == {"success": True}
    _assert_licensed_shape(fleet3, _ok(client.licence()).json(), client.deployment(), online=False)


@pytest.mark.parametrize("state", ["backup-online", "backup-offline"])
def test_licence_info_of_a_backup(fleet3: RunningFleet, state: str) -> None:
    backup = _bring(fleet3, state)
    body = _ok(backup.licence()).json()
    # docs/decisions.md, A backup's licence view: the licensed shape for its key, with its own deployment.
    own = fleet3.core("b").deployment()
    assert own != fleet3.core("a").deployment()
    _assert_licensed_shape(fleet3, body, own, online=state == "backup-online")


def test_licence_info_once_expired(make_fleet: FleetFactory) -> None:
    running = make_fleet(keys=(KeySpec(slots=2, days=1),))
    client = _bring(running, "active", "a")
    running.fleet.advance_clock(timedelta(days=3))
    assert _ok(client.licence()).json()["days_left"] == 0


def test_activation_takes_an_integer_or_a_numeric_string(fleet3: RunningFleet) -> None:
    client = fleet3.core("a")
    for quantity in (1, "1", 1000, "1000"):
        # Re-activation on the same key (docs/behaviour.md, Transitions) takes no new slot.
        assert _ok(client.activate(fleet3.key, quantity=quantity)).json() == {"success": True}, quantity
        assert fleet3.slots_used() == {fleet3.key: 1}
    # docs/decisions.md, Activation on the Core face: `quantity` defaults to 1 and `comment` is optional.
    response = client.request("POST", "/admin/license/activation", json={"activationKey": fleet3.key})
    assert _ok(response).json() == {"success": True}


def test_activation_refuses_a_bad_quantity(fleet3: RunningFleet) -> None:
    client = fleet3.core("a")
    before = fleet3.snapshot()
    for quantity in (0, 1001, "abc", "", -1, 1.5, True, None, [1]):
        response = client.activate(fleet3.key, quantity=quantity)
        assert (response.status_code, response.json()) == (400, {"err": "Invalid request."}), quantity
    # Wrong field types elsewhere in the body (docs/errors.md, E_BAD_REQUEST).
    for body in (
        {"activationKey": 42, "quantity": 1},
        {"quantity": 1},
        {"activationKey": fleet3.key, "quantity": 1, "comment": 5},
        [fleet3.key],
    ):
        response = client.request("POST", "/admin/license/activation", json=body)
        assert (response.status_code, response.json()) == (400, {"err": "Invalid request."}), body
    assert fleet3.snapshot() == before


def test_online_deactivation(fleet3: RunningFleet) -> None:
    client = _bring(fleet3, "active", "a")
    assert _ok(client.deactivate()).json() == {"success": True}
    body = _ok(client.licence()).json()
    assert body == {"deployment": client.deployment(), "deployment_id": client.deployment(), "reactivate": True}
    assert fleet3.slots_used() == {fleet3.key: 0}


def test_online_backup_answers(fleet3: RunningFleet) -> None:
    production = _bring(fleet3, "active", "a")
    backup = fleet3.core("b")
    assert _ok(backup.is_backup()).json() == {"is_backup": False}
    response = _ok(backup.register_online(fleet3.key, production.deployment()))
    assert response.json() == {"success": BACKUP_REGISTERED}
    assert _ok(backup.is_backup()).json() == {"is_backup": True}
    assert _ok(production.is_backup()).json() == {"is_backup": False}
    assert _ok(backup.nominate()).json() == {"success": NOMINATED}
    assert _ok(backup.is_backup()).json() == {"is_backup": False}


def test_offline_backup_answers(fleet3: RunningFleet) -> None:
    backup = _bring(fleet3, "backup-offline")
    assert _ok(backup.is_backup()).json() == {"is_backup": True}
    assert _ok(backup.unregister()).json() == {"success": BACKUP_REMOVED}
    assert _ok(backup.is_backup()).json() == {"is_backup": False}
    assert _ok(backup.licence()).json() == {"deployment": backup.deployment(), "deployment_id": backup.deployment()}


# Deployment ids


def test_deployment_ids_are_deterministic(make_fleet: FleetFactory) -> None:
    def deployments(seed: str) -> dict[str, str]:
        running = make_fleet(instances=("a", "b"), seed=seed)
        return {name: running.core(name).deployment() for name in ("a", "b")}

    first, again, other = deployments("7"), deployments("7"), deployments("8")
    assert first == again
    assert first["a"] != first["b"]
    assert first["a"] != other["a"] and first["b"] != other["b"]
    for deployment in (*first.values(), *other.values()):
        assert DEPLOYMENT_RE.fullmatch(deployment), deployment


# Engines


@pytest.mark.parametrize("state", ["active", "backup-online", "backup-offline"])
def test_engines_once_licensed(fleet3: RunningFleet, state: str) -> None:
    engines = _ok(_bring(fleet3, state).request("GET", "/stat/engines")).json()
    assert isinstance(engines, list) and engines
    for engine in engines:
        for name in ("eng_id", "eng_name", "eng_type", "engine_type", "state", "def_time"):
            assert isinstance(engine[name], str) and engine[name], (name, engine)
        assert engine["active"] is True
        assert engine["engine_type"] in {"av", "archive", "filetype"}
    assert len({engine["eng_id"] for engine in engines}) == len(engines)
    assert any(engine["engine_type"] == "av" for engine in engines)
    assert_vendor_schema(engines, _response_schema("/stat/engines"))


@pytest.mark.parametrize("state", ["active", "backup-online"])
def test_enable_and_disable_an_engine(fleet3: RunningFleet, state: str) -> None:
    client = _bring(fleet3, state)
    eng_id = _ok(client.request("GET", "/stat/engines")).json()[0]["eng_id"]

    def active() -> bool:
        engines = _ok(client.request("GET", "/stat/engines")).json()
        return next(e["active"] for e in engines if e["eng_id"] == eng_id)

    response = _ok(client.request("POST", f"/admin/engine/{eng_id}/disable"))
    assert response.json() == {"result": "Engine is disabled"}
    assert active() is False
    response = _ok(client.request("POST", f"/admin/engine/{eng_id}/enable"))
    assert response.json() == {"result": "Engine is enabled"}
    assert active() is True


def test_no_engines_while_unlicensed(fleet3: RunningFleet) -> None:
    assert _ok(fleet3.core("a").request("GET", "/stat/engines")).json() == []
    for action in ("enable", "disable"):
        response = fleet3.core("a").request("POST", f"/admin/engine/clamav_1_linux/{action}")
        _assert_error(response, 403, "Engines cannot be changed on an unlicensed instance.")


def test_unknown_engine(fleet3: RunningFleet) -> None:
    client = _bring(fleet3, "active", "a")
    for action in ("enable", "disable"):
        response = client.request("POST", f"/admin/engine/no_such_engine/{action}")
        assert response.status_code == 404, action
        assert set(response.json()) == {"err"}


# Scans


def _submit(client: CoreClient, body: bytes, filename: str = "sample.txt") -> str:
    response = _ok(client.scan(body, filename))
    assert set(response.json()) == {"data_id"}
    data_id = response.json()["data_id"]
    assert DATA_ID_RE.fullmatch(data_id), data_id
    assert_vendor_schema(response.json(), _response_schema("/file", "post"))
    return data_id


@pytest.mark.parametrize(
    ("body", "verdict", "verdict_text"),
    [
        pytest.param(EICAR, 1, "Infected", id="eicar"),
        pytest.param(b"just some text\n", 0, "No Threat Detected", id="clean"),
    ],
)
def test_scan_result(fleet3: RunningFleet, body: bytes, verdict: int, verdict_text: str) -> None:
    client = _bring(fleet3, "active", "a")
    data_id = _submit(client, body, "sample.com")
    result = _ok(client.request("GET", f"/file/{data_id}")).json()
    assert result["data_id"] == data_id
    assert isinstance(result["file_info"], dict)
    assert result["file_info"]["file_size"] == len(body)
    assert result["file_info"]["display_name"] == "sample.com"
    assert result["process_info"]["progress_percentage"] == 100
    scan_results = result["scan_results"]
    assert scan_results["scan_all_result_i"] == verdict
    assert scan_results["scan_all_result_a"] == verdict_text
    assert isinstance(scan_results["scan_details"], dict) and scan_results["scan_details"]
    assert_vendor_schema(result, _response_schema("/file/{data_id}"))


def test_data_ids(fleet3: RunningFleet) -> None:
    client = _bring(fleet3, "active", "a")
    first, second = _submit(client, b"same"), _submit(client, b"same")
    assert first != second
    # Results belong to the instance that scanned.
    other = _bring(fleet3, "active", "b")
    assert other.request("GET", f"/file/{first}").status_code == 404
    # Unknown ids.
    for data_id in ("0" * 32, "not-an-id"):
        response = client.request("GET", f"/file/{data_id}")
        assert response.status_code == 404
        assert set(response.json()) == {"err"} and isinstance(response.json()["err"], str)
    # An empty body is no scan.
    _assert_error(client.scan(b""), 422, "File is empty.")


@pytest.mark.parametrize(
    ("state", "text"),
    [
        ("unlicensed", "This instance is not licensed to process files."),
        ("backup-online", "This instance is a backup and is not allowed to process files."),
        ("backup-offline", "This instance is a backup and is not allowed to process files."),
    ],
)
def test_scan_refused(fleet3: RunningFleet, state: str, text: str) -> None:
    _assert_error(_bring(fleet3, state).scan(b"hello"), 403, text)


def test_scan_once_expired(make_fleet: FleetFactory) -> None:
    running = make_fleet(keys=(KeySpec(slots=2, days=1),))
    client = _bring(running, "active", "a")
    running.fleet.advance_clock(timedelta(days=3))
    _assert_error(client.scan(b"hello"), 500, "License is expired")
