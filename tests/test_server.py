"""The serving layer: failures outside a view, stop after a failed start, ports closed after stop."""

from __future__ import annotations

import socket

import pytest
import requests

from mockcore.fleet import Fleet, FleetConfig, StoreError
from mockcore.lifecycle import LicenceState
from mockcore.server import FleetServer, ServeOptions


def _refuses(url: str) -> bool:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return True
    return False


def activate_with_a_failing_listener(failure: Exception) -> tuple[Fleet, requests.Response]:
    """An activation over HTTP on a fleet whose listener (a state store) raises `failure` when told of it."""

    def failing_store() -> None:
        raise failure

    fleet = Fleet(FleetConfig())
    fleet.subscribe(failing_store)  # told of the change after the decision, before the answer
    with FleetServer(fleet, ServeOptions()) as server:
        response = requests.post(
            server.urls()["core"] + "/admin/license/activation",
            headers={"apikey": fleet.config.resolved_apikey},
            json={"activationKey": fleet.activation_keys()[0].key},
            timeout=10,
        )
    return fleet, response


def test_a_failure_after_the_view_answers_a_json_500() -> None:
    _, response = activate_with_a_failing_listener(RuntimeError("disk full"))
    assert response.status_code == 500
    assert response.json() == {"err": "Internal error."}


def test_a_store_that_refuses_the_write_answers_503_saying_so() -> None:
    fleet, response = activate_with_a_failing_listener(StoreError("disk full\n  (the state file cannot grow)"))
    assert response.status_code == 503
    assert response.json() == {"err": "The state store refused the change: disk full (the state file cannot grow)"}
    assert fleet.states() == {"core": LicenceState.UNLICENSED}  # the change did not happen


def test_stop_closes_every_port_and_a_failed_start_cleans_up() -> None:
    server = FleetServer(Fleet(FleetConfig(instances=("a", "b"))), ServeOptions())
    server.start()
    urls = server.urls()
    assert requests.get(urls["a"] + "/_mock/health", timeout=10).status_code == 200
    server.stop()
    assert all(_refuses(url) for url in urls.values())

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        clash = FleetServer(Fleet(FleetConfig()), ServeOptions(activation_port=port))
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port} for activation_server"):
            clash.start()
        clash.stop()  # nothing left to stop: must not raise
