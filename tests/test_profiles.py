"""Version profiles: `--profile 4.18` serves the 4.x surface (no backup, nomination, deactivation, `/readyz` or
`/file/sync`: each answers 404 as an unknown path; the licence view names the deployment `deployment_id` too;
`/version` says 4.18.0), the default 5.6 the whole one; the CLI, MockFleet and the pytest plugin take it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft4Validator

from mockcore import MockFleet
from mockcore.config import ConfigError
from tests.client import CoreClient
from tests.serving import MockcoreProcess

VENDOR_418 = "reference/vendor/mdcore-4.18-openapi-extract.json"
ABSENT = [
    ("GET", "/admin/license/backup"),
    ("POST", "/admin/license/backup"),
    ("DELETE", "/admin/license/backup"),
    ("POST", "/admin/license/backup/nomination"),
    ("POST", "/admin/license/deactivation"),
    ("GET", "/readyz"),
    ("POST", "/file/sync"),
]


@pytest.fixture(scope="module")
def old() -> MockFleet:
    with MockFleet(("prod", "backup"), profile="4.18") as mock:
        yield mock


@pytest.mark.parametrize(("method", "path"), ABSENT)
def test_under_4_18_the_5_x_endpoints_are_unknown(old: MockFleet, method: str, path: str) -> None:
    old.reset()
    with old.session("prod") as prod:
        response = prod.request(method, path, data=b"x" if method == "POST" else None)
        assert (response.status_code, response.json()) == (404, {"err": "Not found."})
    assert old.states() == {"prod": "unlicensed", "backup": "unlicensed"}


def test_under_4_18_the_licence_view_carries_deployment_id_and_version_says_4_18(old: MockFleet) -> None:
    old.reset()
    with old.session("prod") as prod:
        assert prod.get("/version").json()["version"] == "4.18.0"
        assert prod.post("/admin/license/activation", json={"activationKey": old.key}).status_code == 200
        view = prod.get("/admin/license").json()
        assert view["deployment_id"] == view["deployment"] == old.deployments["prod"]
        assert prod.get("/_mock/info").json()["profile"] == "4.18"
        assert prod.get("/stat/nodes").status_code == 200  # 4.x has /stat/nodes


def test_the_default_5_6_serves_everything_and_no_deployment_id_when_licensed() -> None:
    with MockFleet(("prod",)) as mock:
        client = CoreClient(mock.urls["prod"], mock.apikey)
        assert client.activate(mock.key).status_code == 200
        assert "deployment_id" not in client.licence().json()
        assert client.request("GET", "/admin/license/backup").status_code == 200
        assert client.request("GET", "/readyz").status_code == 200
        assert client.request("GET", "/version").json()["version"] == "5.6.1"


def test_an_unknown_profile_is_refused_alike_by_the_cli_and_mockfleet() -> None:
    with pytest.raises(ConfigError):
        MockFleet(profile="3.0")
    result = subprocess.run(
        [sys.executable, "-m", "mockcore", "serve", "--profile", "3.0"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "--profile" in result.stderr


def test_mockcore_serve_profile_4_18(tmp_path: Path) -> None:
    process = MockcoreProcess(tmp_path, ["--profile", "4.18"]).start()
    try:
        served = process.wait_ready()
        client = CoreClient(served["instances"]["core"], served["apikey"])
        assert client.request("GET", "/readyz").status_code == 404
        assert client.request("GET", "/version").json()["version"] == "4.18.0"
    finally:
        process.stop()


def test_the_4_18_licence_view_validates_against_the_vendors_4_18_schema(old: MockFleet) -> None:
    """Allowing only the documented conflict: `licensed_engines` is the string "*" (docs/decisions.md)."""
    vendor = json.loads((Path(__file__).resolve().parents[1] / VENDOR_418).read_text())
    schema = {"$ref": "#/components/schemas/LicenseInformation", "components": vendor["components"]}
    old.reset()
    with old.session("prod") as prod:
        assert prod.post("/admin/license/activation", json={"activationKey": old.key}).status_code == 200
        view = prod.get("/admin/license").json()
    assert view["licensed_engines"] == "*"
    del view["licensed_engines"]
    assert [e.message for e in Draft4Validator(schema).iter_errors(view)] == []


@pytest.mark.parametrize("scenario", ["production-with-online-backup", "production-with-offline-backup"])
def test_a_4_18_fleet_has_no_backup_scenario_and_is_left_as_it_was(old: MockFleet, scenario: str) -> None:
    old.scenario("production-only")
    old.clock.freeze()
    before = old.state()
    with pytest.raises(ValueError, match="has no hot backups"):
        old.scenario(scenario)
    assert old.state() == before
    with old.session("prod") as prod:
        answer = prod.post(f"/_mock/scenarios/{scenario}")
        assert answer.status_code in (400, 409, 422) and "no hot backups" in answer.json()["err"]
    assert old.state() == before


def test_a_4_18_fleet_refuses_a_state_document_holding_a_backup(old: MockFleet) -> None:
    with MockFleet(("prod", "backup")) as new:
        new.scenario("production-with-online-backup")
        with_backup = new.state()
    old.reset()
    old.clock.freeze()
    before = old.state()
    with pytest.raises(ValueError, match=r"\$\.instances\.backup\.licence: Core 4\.18 has no hot backups"):
        old.load_state(with_backup)
    assert old.state() == before


def test_the_openapi_document_of_a_4_18_instance_leaves_out_what_it_lacks(old: MockFleet) -> None:
    with old.session("prod") as prod, MockFleet(("prod",)) as new, new.session("prod") as latest:
        lacking, whole = prod.get("/openapi.json").json(), latest.get("/openapi.json").json()
    absent = {path for _, path in ABSENT}
    assert absent <= set(whole["paths"])
    assert set(lacking["paths"]) == set(whole["paths"]) - absent
    gone = {op["operationId"] for path in absent for op in whole["paths"][path].values() if isinstance(op, dict)}
    links = [
        link["operationId"]
        for item in lacking["paths"].values()
        for op in item.values()
        if isinstance(op, dict)
        for response in op.get("responses", {}).values()
        for link in response.get("links", {}).values()
    ]
    assert links and not gone & set(links)  # links to what is there remain; none leads to what is not


def test_an_overrides_version_stays_what_it_was_given_under_4_18(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text("version: 5.6.1\n")
    with MockFleet(("prod",), profile="4.18", overrides=overrides) as mock, mock.session("prod") as prod:
        assert prod.get("/version").json()["version"] == "5.6.1"
