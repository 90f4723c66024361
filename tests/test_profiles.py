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
