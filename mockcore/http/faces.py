"""One face of a fleet, wired as `mockcore serve` serves it: the face's Flask app (a Core instance or the activation
server), the control plane and the dashboard registered on it, all inside the fault and journal middleware.

`mockcore.server.FleetServer` wires each of its faces this way; the tenant server (mockcore.http.tenant_api) builds
a tenant's faces with `build_face`, one at a time and only when first asked (a face costs ~0.3 MB and ~75 ms).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask

from mockcore.config import ACTIVATION_FACE
from mockcore.fleet import Fleet
from mockcore.http.activation_api import create_activation_app
from mockcore.http.control_api import create_control_blueprint
from mockcore.http.core_api import create_core_app
from mockcore.http.dashboard import create_dashboard_blueprint
from mockcore.http.middleware import FaceMiddleware


@dataclass(frozen=True)
class Face:
    name: str  # an instance's name, or ACTIVATION_FACE
    app: Flask  # before the middleware
    wsgi: FaceMiddleware  # what a server serves


def build_face(
    fleet: Fleet,
    name: str,
    urls: Callable[[], dict[str, str]],
    wsgi_apps: Callable[[], dict[str, Any]],
    control_token: str | None,
) -> Face:
    """The face `name` of `fleet`: `urls` answers face name -> base URL (for /_mock/info and the dashboard),
    `wsgi_apps` face name -> WSGI app (the dashboard's buttons call faces in-process)."""
    activation = name == ACTIVATION_FACE
    app = create_activation_app(fleet) if activation else create_core_app(fleet, name)
    app.register_blueprint(create_control_blueprint(fleet, urls, control_token))
    app.register_blueprint(create_dashboard_blueprint(fleet, urls, wsgi_apps, control_token))
    wsgi = FaceMiddleware(app, fleet, "activation", None) if activation else FaceMiddleware(app, fleet, "core", name)
    return Face(name, app, wsgi)
