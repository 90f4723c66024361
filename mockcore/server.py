"""Serve a fleet on real ports.

Each face (every Core instance, the activation server) gets its own server (mockcore.serving.make_server) on its
own port, started in a background thread; port 0 means any free port, and `urls` tells which was taken.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from mockcore.config import ACTIVATION_FACE
from mockcore.fleet import Fleet
from mockcore.http.faces import build_face
from mockcore.serving import FaceServer, make_server
from mockcore.tls import TlsFiles

ACTIVATION = ACTIVATION_FACE  # the activation server's face name (one constant: mockcore.config)


@dataclass
class _Face:
    name: str
    app: Any
    port: int
    tls: TlsFiles | None
    server: FaceServer | None = None
    thread: threading.Thread | None = None
    wsgi: Any = None  # the app wrapped in the fault and journal middleware


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    instance_ports: dict[str, int] = field(default_factory=dict)  # missing instances: any free port
    activation_port: int = 0
    core_tls: TlsFiles | None = None
    activation_tls: TlsFiles | None = None
    threads: int = 16
    control_token: str | None = None  # when set, /_mock/ (but /_mock/health) demands it


class FleetServer:
    def __init__(self, fleet: Fleet, options: ServeOptions) -> None:
        self.fleet = fleet
        self.options = options
        ports = {**options.instance_ports, ACTIVATION: options.activation_port}
        self._faces = []
        for name in (*fleet.names, ACTIVATION):
            built = build_face(fleet, name, self.urls, self.wsgi_apps, options.control_token)
            tls = options.activation_tls if name == ACTIVATION else options.core_tls
            self._faces.append(_Face(name, built.app, ports.get(name, 0), tls, wsgi=built.wsgi))

    def start(self) -> None:
        """Bind every port first (so a taken port fails before anything serves), then serve them all."""
        try:
            for face in self._faces:
                server = make_server(
                    self.options.host,
                    face.port,
                    face.wsgi,
                    threads=self.options.threads,
                    tls=face.tls,
                    name=f"mockcore-{face.name}",
                )
                face.server = server
                try:
                    server.prepare()
                except OSError as exc:
                    where = f"{self.options.host}:{face.port}"
                    raise OSError(f"cannot listen on {where} for {face.name}: {exc.strerror or exc}") from exc
                face.port = server.bind_addr[1]
        except BaseException:
            self.stop()
            raise
        for face in self._faces:
            assert face.server is not None
            face.thread = threading.Thread(target=face.server.serve, name=f"mockcore-{face.name}", daemon=True)
            face.thread.start()

    def stop(self) -> None:
        """Stop every face, all at once (each server's own stop is fast: see mockcore.serving)."""
        stoppers = [threading.Thread(target=face.server.stop, daemon=True) for face in self._faces if face.server]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join(timeout=10)
        for face in self._faces:
            if face.thread is not None:
                face.thread.join(timeout=5)
            face.server, face.thread = None, None

    def _url(self, face: _Face) -> str:
        host = self.options.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if face.tls is not None else "http"
        return f"{scheme}://{host}:{face.port}"

    def wsgi_apps(self) -> dict[str, Any]:
        """Face name -> its WSGI callable (fault and journal middleware included), to drive a fleet in-process
        without sockets, as the contract suite's in-process runs do; works whether or not the server started."""
        return {face.name: face.wsgi for face in self._faces}

    def apps(self) -> dict[str, Any]:
        """Face name -> its Flask app, before the fault and journal middleware."""
        return {face.name: face.app for face in self._faces}

    def urls(self) -> dict[str, str]:
        """Face name -> base URL; the activation server is under `activation_server`."""
        return {face.name: self._url(face) for face in self._faces}

    def __enter__(self) -> FleetServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
