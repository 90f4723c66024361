"""Nodes: the activation's `quantity` is the licence's node count, in the licence view (a string), the licence
file and `GET /stat/nodes` (an integer), as the vendor ties quantity to nodes."""

from __future__ import annotations

import yaml

from tests.conftest import RunningFleet

READER_KEY = "9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a"


def test_quantity_3_shows_3_nodes_in_the_view_the_file_and_stat_nodes(fleet3: RunningFleet) -> None:
    a = fleet3.core("a")
    assert a.activate(fleet3.key, quantity=3).status_code == 200
    assert a.licence().json()["max_node_count"] == "3"
    nodes = a.request("GET", "/stat/nodes").json()
    assert [n["max_node_count"] for n in nodes] == [3]
    assert nodes[0]["external_nodes_allowed"] is False
    assert {e["id"] for e in nodes[0]["statuses"][0]["engines"]} == {
        "clamav_1_linux",
        "avira_1_linux",
        "filetype_1_linux",
        "archive_1_linux",
    }
    licence_file = fleet3.activation.obtain(fleet3.key, fleet3.core("b").deployment(), "3").content
    assert yaml.safe_load(licence_file)["max_node_count"] == "3"
    assert fleet3.core("b").upload(licence_file).status_code == 200
    assert fleet3.core("b").licence().json()["max_node_count"] == "3"
    # activating again with another quantity changes the count, not the slots
    assert a.activate(fleet3.key, quantity=5).status_code == 200
    assert a.request("GET", "/stat/nodes").json()[0]["max_node_count"] == 5
    assert fleet3.slots_used() == {fleet3.key: 2}


def test_defaults_and_an_unlicensed_instance(fleet3: RunningFleet) -> None:
    a = fleet3.core("a")
    assert a.request("GET", "/stat/nodes").json()[0]["max_node_count"] == 0
    assert a.activate(fleet3.key).status_code == 200  # quantity defaults to 1
    assert a.licence().json()["max_node_count"] == "1"
    backup = fleet3.core("b")
    registered = backup.request(
        "POST",
        "/admin/license/backup",
        headers={"activation-key": fleet3.key, "active-deployment-id": a.deployment()},
    )
    assert registered.status_code == 200, registered.text
    assert backup.licence().json()["max_node_count"] == "1"  # an online backup: the key's own terms


def test_stat_nodes_needs_agents_read(fleet3: RunningFleet) -> None:
    admin = fleet3.core("a")
    role = admin.request("POST", "/admin/role", json={"name": "ops", "rights": {"license": ["read"]}}).json()
    user = {"name": "ops", "password": "pw", "roles": [str(role["id"])], "apikey": READER_KEY}
    assert admin.request("POST", "/admin/user", json=user).status_code == 200
    refused = fleet3.core("a", READER_KEY).request("GET", "/stat/nodes")
    assert (refused.status_code, refused.json()) == (405, {"err": "Access denied"})
    assert fleet3.core("a", None).request("GET", "/stat/nodes").status_code == 400
