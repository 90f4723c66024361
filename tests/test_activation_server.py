"""The activation server (docs/activation-server.md) over HTTP: licence files, slots, its HTTP-200 failures, and
`/deactivation`."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import requests
import yaml

from mockcore.fleet import KeySpec
from tests.conftest import FleetFactory, RunningFleet
from tests.states import LICENCE_FILE_FIELDS

UNKNOWN_KEY = "Zzzz-0000-Zzzz-0000-Zzzz-0000-Zzzz"
# The documented sentences (docs/activation-server.md): their first sentence is fixed, what follows is ours.
INVALID_KEY = "Could not activate your product because the Activation Key you provided is invalid."
INVALID_DEPLOYMENT = "Could not activate your product because the Deployment ID you provided is invalid."
INVALID_QUANTITY = "Could not activate your product because the quantity you provided is invalid."


def _get(running: RunningFleet, path: str, params: dict[str, str | int] | None = None) -> requests.Response:
    return requests.get(running.urls["activation_server"] + path, params=params, timeout=30)


def _licence(response: requests.Response) -> dict[str, Any]:
    assert (response.status_code, response.reason) == (200, "OK"), (response.reason, response.text)
    doc = yaml.safe_load(response.text)
    assert isinstance(doc, dict), response.text
    return doc


def _refusal(response: requests.Response, reason: str) -> str:
    """The text of a refusal: HTTP 200 with `reason` as reason phrase and a YAML body `error: '...'`."""
    assert response.status_code == 200, response.text
    assert response.reason == reason, (response.reason, response.text)
    assert response.text.startswith("error: '"), response.text
    doc = yaml.safe_load(response.text)
    assert isinstance(doc, dict) and set(doc) == {"error"}, response.text
    assert isinstance(doc["error"], str) and doc["error"]
    return doc["error"]


# /activation: success


def test_activation_answers_a_licence_file_and_takes_a_slot(fleet3: RunningFleet) -> None:
    deployment = fleet3.core("a").deployment()
    response = fleet3.activation.obtain(fleet3.key, deployment)
    licence = _licence(response)
    assert set(licence) >= LICENCE_FILE_FIELDS
    assert licence["activation_key"] == fleet3.key
    assert licence["deployment"] == deployment
    assert licence["online"] is False
    assert re.fullmatch(r"[0-9]{2}/[0-9]{2}/[0-9]{4}", licence["expiration"])
    expected = (fleet3.fleet.started.date() + timedelta(days=365)).strftime("%m/%d/%Y")
    assert licence["expiration"] == expected
    for name in LICENCE_FILE_FIELDS - {"online"}:
        assert isinstance(licence[name], str) and licence[name], name
    assert fleet3.slots_used() == {fleet3.key: 1}
    # The file is for this deployment: the instance accepts it (docs/behaviour.md, Transitions: upload).
    assert fleet3.core("a").upload(response.content).json() == {"success": True}


def test_activation_file_is_served_as_a_download(fleet3: RunningFleet) -> None:
    response = fleet3.activation.obtain(fleet3.key, fleet3.core("a").deployment())
    _licence(response)
    assert response.headers["Content-Type"].startswith("application/x-yaml")
    assert "attachment" in response.headers["Content-Disposition"]


def test_asking_again_returns_a_file_without_a_new_slot(fleet3: RunningFleet) -> None:
    deployment = fleet3.core("a").deployment()
    first = _licence(fleet3.activation.obtain(fleet3.key, deployment))
    again = _licence(fleet3.activation.obtain(fleet3.key, deployment))
    assert again["deployment"] == first["deployment"]
    assert fleet3.slots_used() == {fleet3.key: 1}
    # A second deployment still finds the key's other slot.
    _licence(fleet3.activation.obtain(fleet3.key, fleet3.core("b").deployment()))
    assert fleet3.slots_used() == {fleet3.key: 2}


def test_activation_takes_a_numeric_quantity(fleet3: RunningFleet) -> None:
    for name, quantity in (("a", "1"), ("b", "1000")):
        _licence(fleet3.activation.obtain(fleet3.key, fleet3.core(name).deployment(), quantity))
    # One slot per deployment whatever the quantity (docs/decisions.md, Slots).
    assert fleet3.slots_used() == {fleet3.key: 2}


def test_an_edited_licence_file_is_refused_by_the_instance(fleet3: RunningFleet) -> None:
    body = fleet3.activation.obtain(fleet3.key, fleet3.core("a").deployment()).content
    edited = body.replace(b"max_node_count: '1'", b"max_node_count: '99'")
    assert edited != body
    response = fleet3.core("a").upload(edited)
    assert (response.status_code, response.json()) == (400, {"err": "Invalid license"})


# /activation: refusals


def test_malformed_key(fleet3: RunningFleet) -> None:
    deployment = fleet3.core("a").deployment()
    for key in ("not-a-key", "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF", "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGG!", ""):
        text = _refusal(fleet3.activation.obtain(key, deployment), "Invalid parameter")
        assert text.startswith(INVALID_KEY), text
    text = _refusal(_get(fleet3, "/activation", {"deployment": deployment, "quantity": 1}), "Invalid parameter")
    assert text.startswith(INVALID_KEY), text
    assert fleet3.slots_used() == {fleet3.key: 0}


def test_malformed_deployment(fleet3: RunningFleet) -> None:
    good = fleet3.core("a").deployment()
    for deployment in ("MSCL", good.upper(), good[:-1], good + "0", "XXXX" + good[4:], ""):
        text = _refusal(fleet3.activation.obtain(fleet3.key, deployment), "Invalid parameter")
        assert text.startswith(INVALID_DEPLOYMENT), (deployment, text)
    text = _refusal(_get(fleet3, "/activation", {"key": fleet3.key, "quantity": 1}), "Invalid parameter")
    assert text.startswith(INVALID_DEPLOYMENT), text
    assert fleet3.slots_used() == {fleet3.key: 0}


def test_malformed_quantity(fleet3: RunningFleet) -> None:
    deployment = fleet3.core("a").deployment()
    for quantity in (0, 1001, "abc", -1, "1.5", ""):
        text = _refusal(fleet3.activation.obtain(fleet3.key, deployment, quantity), "Invalid parameter")
        assert text.startswith(INVALID_QUANTITY), (quantity, text)
    missing = _get(fleet3, "/activation", {"key": fleet3.key, "deployment": deployment})
    text = _refusal(missing, "Invalid parameter")
    assert text.startswith(INVALID_QUANTITY), text
    assert fleet3.slots_used() == {fleet3.key: 0}


def test_unknown_key(fleet3: RunningFleet) -> None:
    _refusal(fleet3.activation.obtain(UNKNOWN_KEY, fleet3.core("a").deployment()), "Activation failed")
    assert fleet3.slots_used() == {fleet3.key: 0}


def test_no_free_slot(make_fleet: FleetFactory) -> None:
    running = make_fleet(keys=(KeySpec(slots=1),))
    _licence(running.activation.obtain(running.key, running.core("a").deployment()))
    _refusal(running.activation.obtain(running.key, running.core("b").deployment()), "Activation failed")
    assert running.fleet.slot_holders() == {running.key: [running.core("a").deployment()]}
    # The deployment that holds the slot still gets its file.
    _licence(running.activation.obtain(running.key, running.core("a").deployment()))


def test_expired_key(make_fleet: FleetFactory) -> None:
    running = make_fleet(keys=(KeySpec(slots=2, days=5),))
    deployment = running.core("a").deployment()
    # Valid through its expiration date (docs/decisions.md, "Expiry").
    running.fleet.advance_clock(timedelta(days=5))
    _licence(running.activation.obtain(running.key, deployment))
    running.fleet.advance_clock(timedelta(days=2))
    _refusal(running.activation.obtain(running.key, running.core("b").deployment()), "Activation failed")
    assert running.slots_used() == {running.key: 1}


# /deactivation


def test_deactivation_frees_the_slot(make_fleet: FleetFactory) -> None:
    running = make_fleet(keys=(KeySpec(slots=1),))
    a, b = running.core("a").deployment(), running.core("b").deployment()
    _licence(running.activation.obtain(running.key, a))
    response = running.activation.release(running.key, a)
    assert response.status_code == 200, response.text
    body = yaml.safe_load(response.text)
    assert isinstance(body, dict) and "error" not in body
    assert running.slots_used() == {running.key: 0}
    # The freed slot serves another deployment.
    _licence(running.activation.obtain(running.key, b))


def test_deactivation_of_a_deployment_not_active(fleet3: RunningFleet) -> None:
    a, b = fleet3.core("a").deployment(), fleet3.core("b").deployment()
    _licence(fleet3.activation.obtain(fleet3.key, a))
    for key, deployment in ((fleet3.key, b), (UNKNOWN_KEY, a), ("not-a-key", a), (fleet3.key, "")):
        response = fleet3.activation.release(key, deployment)
        assert response.status_code == 404, (key, deployment, response.text)
    assert fleet3.slots_used() == {fleet3.key: 1}
    assert fleet3.activation.release(fleet3.key, a).status_code == 200
    assert fleet3.activation.release(fleet3.key, a).status_code == 404


def test_deactivation_reaches_an_online_instance(fleet3: RunningFleet) -> None:
    client = fleet3.core("a")
    assert client.activate(fleet3.key).json() == {"success": True}
    assert fleet3.activation.release(fleet3.key, client.deployment()).status_code == 200
    # An online instance whose slot was freed is unlicensed with `reactivate` on its next request
    # (docs/decisions.md, Online and offline instances).
    assert client.licence().json() == {
        "deployment": client.deployment(),
        "deployment_id": client.deployment(),
        "reactivate": True,
    }


# Unknown paths and methods


def test_unknown_path_is_json_404(fleet3: RunningFleet) -> None:
    for path in ("/", "/nope", "/activation/extra", "/admin/license"):
        response = _get(fleet3, path)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json() == {"err": "Not found."}


def test_wrong_method_is_json_405(fleet3: RunningFleet) -> None:
    response = requests.post(fleet3.urls["activation_server"] + "/activation", timeout=30)
    assert response.status_code == 405
    assert response.json() == {"err": "Method not allowed."}
    assert "GET" in response.headers["Allow"]
