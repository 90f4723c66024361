"""The control plane under `/_mock/`, served on every port of the fleet (every instance and the activation server):
the same fleet answers whichever port is asked."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response

from mockcore import __version__
from mockcore.fleet import Fleet
from mockcore.http.rendering import json_response


def create_control_blueprint(fleet: Fleet, urls: Callable[[], dict[str, str]]) -> Blueprint:
    control = Blueprint("mock_control", __name__, url_prefix="/_mock")

    @control.get("/health")
    def health() -> Response:
        return json_response({"status": "ok"})

    @control.get("/info")
    def info() -> Response:
        served = urls()
        return json_response(
            {
                "mockcore": __version__,
                "emulated_version": fleet.config.version,
                "instances": {name: served.get(name) for name in fleet.instances},
                "activation_server": served.get("activation_server"),
            }
        )

    return control
