"""Put Core instances into a licence state over HTTP, and read their state back over HTTP.

Everything here speaks to a running fleet through `CoreClient` / `ActivationClient`; nothing calls a Fleet
method to change state.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests
import yaml

from mockcore.lifecycle import LicenceState
from tests.client import ActivationClient, CoreClient
from tests.conftest import RunningFleet

# Clients are cached per running fleet, so a test reuses its keep-alive connections; `closing_clients` empties
# the cache (and closes the connections) between tests.
_CORE_CLIENTS: dict[tuple[int, str], CoreClient] = {}
_ACTIVATION_CLIENTS: dict[int, ActivationClient] = {}


def core(running: RunningFleet, name: str) -> CoreClient:
    """The client of instance `name` (with the configured API key), one per fleet and instance."""
    return _CORE_CLIENTS.setdefault((id(running), name), running.core(name))


def activation(running: RunningFleet) -> ActivationClient:
    """The client of the fleet's activation server."""
    return _ACTIVATION_CLIENTS.setdefault(id(running), running.activation)


def closing_clients() -> Iterator[None]:
    """Generator for an autouse fixture: after the test, close and forget every cached client."""
    yield
    for client in [*_CORE_CLIENTS.values(), *_ACTIVATION_CLIENTS.values()]:
        client.session.close()
    _CORE_CLIENTS.clear()
    _ACTIVATION_CLIENTS.clear()


# Success bodies (docs/responses.md).
OK: dict[str, object] = {"success": True}
BACKUP_REGISTERED: dict[str, object] = {
    "success": "The backup MetaDefender Core instance is now registered as a backup one."
}
BACKUP_REMOVED: dict[str, object] = {
    "success": "This MetaDefender Core instance is no longer registered as a backup one."
}
NOMINATED: dict[str, object] = {
    "success": "This MetaDefender Core instance is now fully activated and allowed to process files."
}

# The fields of a licence file issued by the activation server (docs/behaviour.md, Licence files).
LICENCE_FILE_FIELDS = {
    "product_id",
    "product_name",
    "activation_key",
    "deployment",
    "expiration",
    "licensed_engines",
    "licensed_to",
    "max_node_count",
    "online",
    "issued",
    "signature",
}

# The fields of the licensed shape of GET /admin/license (docs/responses.md, The licence view).
LICENSED_FIELDS = {
    "days_left",
    "deployment",
    "expiration",
    "licensed_engines",
    "licensed_to",
    "max_node_count",
    "online_activated",
    "product_id",
    "product_name",
}


def expect(response: requests.Response, status: int, body: object) -> None:
    """Assert the exact status and JSON body, showing both on failure."""
    got: Any
    try:
        got = response.json()
    except ValueError:
        got = response.text
    assert (response.status_code, got) == (status, body)


def licence_file(activation: ActivationClient, key: str, deployment: str) -> bytes:
    """A licence file from the activation server (takes a slot unless the deployment already holds one)."""
    response = activation.obtain(key, deployment)
    assert response.status_code == 200 and response.reason == "OK", (response.reason, response.text)
    return response.content


def activation_error(response: requests.Response) -> str:
    """The `error: '...'` text of a refusal of the activation server (which stays HTTP 200)."""
    assert response.status_code == 200, response.text
    assert response.reason in ("Invalid parameter", "Activation failed"), response.reason
    doc = yaml.safe_load(response.text)
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str), response.text
    return doc["error"]


def observe(client: CoreClient) -> LicenceState:
    """The licence state, as seen over HTTP through GET /admin/license and GET /admin/license/backup."""
    info = client.licence()
    backup = client.is_backup()
    assert info.status_code == 200 and backup.status_code == 200, (info.text, backup.text)
    doc, is_backup = info.json(), backup.json()["is_backup"]
    assert isinstance(is_backup, bool)
    if is_backup:
        assert set(doc) == LICENSED_FIELDS, doc
        return LicenceState.BACKUP_ONLINE if doc["online_activated"] else LicenceState.BACKUP_OFFLINE
    if "days_left" in doc:
        assert set(doc) == LICENSED_FIELDS, doc
        return LicenceState.ACTIVE
    assert set(doc) - {"reactivate"} == {"deployment", "deployment_id"}, doc
    return LicenceState.UNLICENSED


def assert_unlicensed(client: CoreClient, deployment: str, *, reactivate: bool) -> None:
    """Unlicensed shape (docs/responses.md): both deployment keys, `reactivate: true` only when a key is held."""
    expected: dict[str, object] = {"deployment": deployment, "deployment_id": deployment}
    if reactivate:
        expected["reactivate"] = True
    expect(client.licence(), 200, expected)
    expect(client.is_backup(), 200, {"is_backup": False})


def assert_licensed(client: CoreClient, deployment: str, *, online: bool, backup: bool) -> dict[str, Any]:
    """Licensed shape (docs/responses.md) with the instance's own deployment; returns the licence body."""
    response = client.licence()
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    assert set(doc) == LICENSED_FIELDS, doc
    assert doc["deployment"] == deployment
    assert doc["online_activated"] is online
    assert isinstance(doc["days_left"], int) and not isinstance(doc["days_left"], bool)
    assert isinstance(doc["max_node_count"], str)
    expect(client.is_backup(), 200, {"is_backup": backup})
    return doc


class States:
    """Puts instances of a running fleet into a state over HTTP.

    A backup needs a production: `production` is the instance activated online on `key` that backups are
    registered against (online: its deployment in the headers; offline: its licence file as body).
    """

    def __init__(self, running: RunningFleet, production: str = "c", key: str | None = None) -> None:
        self.running = running
        self.key = key or running.key
        self.production_name = production
        self.production = core(running, production)
        self._production_deployment: str | None = None

    @property
    def activation(self) -> ActivationClient:
        return activation(self.running)

    def production_deployment(self) -> str:
        """The production's deployment, activating it online on the key first if needed."""
        if self._production_deployment is None:
            expect(self.production.activate(self.key), 200, OK)
            self._production_deployment = self.production.deployment()
        return self._production_deployment

    def production_file(self) -> bytes:
        return licence_file(self.activation, self.key, self.production_deployment())

    def put(self, name: str, state: LicenceState) -> CoreClient:
        """Put instance `name` into `state` over HTTP and check it got there; returns its client."""
        client = core(self.running, name)
        if state is LicenceState.ACTIVE:
            expect(client.activate(self.key), 200, OK)
        elif state is LicenceState.BACKUP_ONLINE:
            expect(client.register_online(self.key, self.production_deployment()), 200, BACKUP_REGISTERED)
        elif state is LicenceState.BACKUP_OFFLINE:
            expect(client.register_offline(self.production_file()), 200, BACKUP_REGISTERED)
        assert observe(client) is state
        return client

    def activate_offline(self, name: str, key: str | None = None) -> tuple[CoreClient, bytes]:
        """Activate `name` with a licence file obtained by hand from the activation server."""
        client = core(self.running, name)
        body = licence_file(self.activation, key or self.key, client.deployment())
        expect(client.upload(body), 200, OK)
        return client, body
