"""Least-privilege accounts over HTTP: users and roles created through the API, each request authorised by the
rights of its caller's roles, refusals that change nothing, and users and roles kept by reset, the state document
and the state file like the rest of the fleet."""

from __future__ import annotations

import json
from pathlib import Path

import requests
from jsonschema import Draft4Validator

from mockcore.catalogue import DEFAULT_ENTRIES, ErrorCode
from mockcore.fleet import Fleet, FleetConfig
from mockcore.persistence import StateStore
from tests.conftest import RunningFleet

READER_KEY = "9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a"
WRITER_KEY = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"


def add_user(running: RunningFleet, name: str, rights: dict[str, list[str]], apikey: str) -> dict[str, object]:
    admin = running.core("a")
    role = admin.request("POST", "/admin/role", json={"name": f"{name}-role", "rights": rights})
    assert role.status_code == 200, role.text
    assert role.json()["rights"] == rights and role.json()["editable"] is True
    body = {"name": name, "password": "pw", "roles": [str(role.json()["id"])], "apikey": apikey}
    user = admin.request("POST", "/admin/user", json=body)
    assert user.status_code == 200, user.text
    return dict(user.json())


def no_rights(response: requests.Response) -> None:
    entry = DEFAULT_ENTRIES[ErrorCode.NO_RIGHTS]
    assert (response.status_code, response.json()) == (entry.status, {"err": entry.text}), response.text


def test_a_licence_reader_reads_and_is_refused_every_licence_change(fleet3: RunningFleet) -> None:
    add_user(fleet3, "reader", {"license": ["read"]}, READER_KEY)
    reader, admin = fleet3.core("a", READER_KEY), fleet3.core("a")
    assert reader.licence().status_code == 200
    assert reader.request("GET", "/admin/license/backup").json() == {"is_backup": False}
    before = fleet3.snapshot()
    no_rights(reader.activate(fleet3.key))
    no_rights(reader.request("POST", "/admin/license/deactivation"))
    no_rights(reader.request("POST", "/admin/license", data=b"a licence file"))
    no_rights(reader.request("POST", "/admin/license/backup/nomination"))
    no_rights(reader.request("DELETE", "/admin/license/backup"))
    no_rights(reader.request("POST", "/admin/engine/clamav_1_linux/disable"))
    no_rights(reader.request("POST", "/admin/role", json={"name": "escalate", "rights": {"license": ["write"]}}))
    no_rights(reader.request("PUT", "/admin/user/2", json={"api_key": WRITER_KEY}))
    assert fleet3.snapshot() == before
    assert admin.request("GET", "/admin/license").status_code == 200


def test_with_license_write_the_same_flow_succeeds(fleet3: RunningFleet) -> None:
    add_user(fleet3, "operator", {"license": ["read", "write"]}, WRITER_KEY)
    operator = fleet3.core("a", WRITER_KEY)
    assert operator.activate(fleet3.key).status_code == 200
    assert operator.licence().json()["online_activated"] is True
    assert operator.request("POST", "/admin/license/deactivation").status_code == 200
    no_rights(operator.request("POST", "/admin/engine/clamav_1_linux/disable"))  # engines: not granted


def test_a_created_user_logs_in_and_keeps_its_own_rights(fleet3: RunningFleet) -> None:
    add_user(fleet3, "reader", {"license": ["read"]}, READER_KEY)
    session = fleet3.core("a", None).request("POST", "/login", json={"user": "reader", "password": "pw"})
    assert session.status_code == 200
    as_reader = fleet3.core("a", session.json()["session_id"])
    me = as_reader.request("GET", "/user").json()
    assert me["name"] == "reader" and me["roles"] != ["1"]
    assert as_reader.licence().status_code == 200
    no_rights(as_reader.activate(fleet3.key))
    changed = as_reader.request("POST", "/user/changepassword", json={"old_password": "pw", "new_password": "p2"})
    assert changed.status_code == 200  # one's own password needs no right


def test_users_and_roles_are_part_of_the_fleets_state(fleet3: RunningFleet, tmp_path: Path) -> None:
    add_user(fleet3, "reader", {"license": ["read"]}, READER_KEY)
    document = fleet3.fleet.dump()
    assert [role["name"] for role in document["instances"]["a"]["roles"]] == ["admin", "reader-role"]
    assert [user["name"] for user in document["instances"]["a"]["users"]] == ["admin", "reader"]
    assert document["instances"]["b"]["roles"][1:] == []  # each instance has its own accounts

    fleet3.fleet.reset()
    assert fleet3.core("a", READER_KEY).licence().status_code == 403  # the user is gone with the reset
    put = requests.put(fleet3.urls["a"] + "/_mock/state", json=document, timeout=10)
    assert put.status_code == 200, put.text
    assert fleet3.core("a", READER_KEY).licence().status_code == 200
    no_rights(fleet3.core("a", READER_KEY).activate(fleet3.key))

    # a state file keeps them across a restart
    state = tmp_path / "fleet.db"
    first = Fleet(FleetConfig(instances=("a", "b", "c"), keys=fleet3.fleet.config.keys))
    first.load(document)
    StateStore.open(state, first).close()
    second = Fleet(FleetConfig(instances=("a", "b", "c"), keys=fleet3.fleet.config.keys))
    with StateStore.open(state, second):
        assert second.dump()["instances"]["a"]["roles"] == document["instances"]["a"]["roles"]
        reader = second.authorise("a", "licence-read", READER_KEY)
        assert reader is not None and reader.name == "reader"


def test_a_document_without_roles_loads_with_the_administrator_role_only(fleet3: RunningFleet) -> None:
    document = fleet3.fleet.dump()
    for instance in document["instances"].values():
        del instance["roles"]
        for user in instance["users"]:
            del user["display_name"]
    put = requests.put(fleet3.urls["a"] + "/_mock/state", json=document, timeout=10)
    assert put.status_code == 200, put.text
    assert [r["name"] for r in fleet3.fleet.dump()["instances"]["a"]["roles"]] == ["admin"]
    altered = fleet3.fleet.dump()
    altered["instances"]["a"]["roles"][0]["rights"] = {}
    refused = requests.put(fleet3.urls["a"] + "/_mock/state", json=altered, timeout=10)
    assert refused.status_code == 400 and "built-in administrator role" in refused.json()["err"]


# The vendor's own schemas (v4.18, reference/vendor/mdcore-4.18-openapi-extract.json)

VENDOR_418 = json.loads(
    (Path(__file__).resolve().parents[1] / "reference" / "vendor" / "mdcore-4.18-openapi-extract.json").read_text()
)


def vendor_problems(schema_name: str, instance: object, *, array: bool = False) -> list[str]:
    ref: dict[str, object] = {"$ref": f"#/components/schemas/{schema_name}"}
    schema = {**({"type": "array", "items": ref} if array else ref), "components": VENDOR_418["components"]}
    return [error.message for error in Draft4Validator(schema).iter_errors(instance)]


def test_the_new_answers_validate_against_the_vendors_schemas(fleet3: RunningFleet) -> None:
    admin = fleet3.core("a")
    role = admin.request("POST", "/admin/role", json={"name": "ops", "rights": {"license": ["read", "write"]}})
    assert vendor_problems("NewUserRoleResponse", role.json()) == []
    user = admin.request(
        "POST", "/admin/user", json={"name": "ops", "password": "pw", "roles": [str(role.json()["id"])]}
    )
    assert vendor_problems("UserResponse", user.json()) == []
    assert admin.activate(fleet3.key, quantity=2).status_code == 200
    nodes = admin.request("GET", "/stat/nodes").json()
    assert vendor_problems("NodeStatus", nodes, array=True) == []
    session = fleet3.core("a", None).request("POST", "/login", json={"user": "ops", "password": "pw"})
    as_ops = fleet3.core("a", session.json()["session_id"])
    answer = as_ops.request("POST", "/admin/role", json={"name": "more"})
    error_schema = VENDOR_418["components"]["responses"]["Error405"]["content"]["application/json"]["schema"]
    assert answer.status_code == 405 and list(Draft4Validator(error_schema).iter_errors(answer.json())) == []
