"""Serve a fleet on real ports with cheroot, a production WSGI server that does TLS (see README, "WSGI server").

Each face (every Core instance, the activation server) gets its own cheroot server on its own port, started in a
background thread; port 0 means any free port, and `urls` tells which was taken.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from mockcore.config import ACTIVATION_FACE
from mockcore.fleet import Fleet
from mockcore.http.activation_api import create_activation_app
from mockcore.http.control_api import create_control_blueprint
from mockcore.http.core_api import create_core_app
from mockcore.http.dashboard import create_dashboard_blueprint
from mockcore.http.middleware import DROP_KEY, FaceMiddleware
from mockcore.tls import TlsFiles

ACTIVATION = ACTIVATION_FACE  # the activation server's face name (one constant: mockcore.config)


class _DroppingGateway(wsgi.Gateway_10):
    """cheroot's WSGI gateway plus `mockcore.drop` in the environ: a fault rule's way to cut the connection."""

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ[DROP_KEY] = self._drop
        return environ

    def _drop(self) -> None:
        self.req.close_connection = True
        with contextlib.suppress(OSError):
            self.req.conn.socket.shutdown(socket.SHUT_RDWR)


@dataclass
class _Face:
    name: str
    app: Any
    port: int
    tls: TlsFiles | None
    server: wsgi.Server | None = None
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
        self._faces = [
            _Face(name, create_core_app(fleet, name), options.instance_ports.get(name, 0), options.core_tls)
            for name in fleet.names
        ]
        self._faces.append(
            _Face(ACTIVATION, create_activation_app(fleet), options.activation_port, options.activation_tls)
        )
        for face in self._faces:
            face.app.register_blueprint(create_control_blueprint(fleet, self.urls, options.control_token))
            face.app.register_blueprint(
                create_dashboard_blueprint(fleet, self.urls, self.wsgi_apps, options.control_token)
            )
            if face.name == ACTIVATION:
                face.wsgi = FaceMiddleware(face.app, fleet, "activation", None)
            else:
                face.wsgi = FaceMiddleware(face.app, fleet, "core", face.name)

    def start(self) -> None:
        """Bind every port first (so a taken port fails before anything serves), then serve them all."""
        try:
            for face in self._faces:
                server = wsgi.Server(
                    (self.options.host, face.port),
                    face.wsgi,
                    numthreads=self.options.threads,
                    server_name="mockcore",
                    request_queue_size=64,
                    shutdown_timeout=1,
                )
                # cheroot's selector loop notices a stop request at its next wake-up; waking every 50 ms
                # keeps stop fast at a negligible idle cost.
                server.expiration_interval = 0.05
                server.gateway = _DroppingGateway
                if face.tls is not None:
                    server.ssl_adapter = BuiltinSSLAdapter(str(face.tls.cert), str(face.tls.key))
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
        """Stop every face, fast.

        cheroot's own stop waits for its selector loop to notice, which sleeps up to `expiration_interval`, then
        polls every 10 ms. For a plain-HTTP face we end the loop first: raise cheroot's stop flag and touch the
        listening socket so `select()` returns now, then let cheroot's stop tidy up with nothing left to wait for.
        The flag is a private cheroot attribute: when it is missing, or for a TLS face (a bare connection would
        make it log a failed handshake), the face stops the ordinary way, in parallel with the others."""
        live = [face for face in self._faces if face.server is not None]
        woken = [
            f
            for f in live
            if f.tls is None
            and f.thread is not None
            and hasattr(getattr(f.server, "_connections", None), "_stop_requested")
        ]
        ordinary = [threading.Thread(target=f.server.stop, daemon=True) for f in live if f not in woken]  # type: ignore[union-attr]
        for stopper in ordinary:
            stopper.start()
        for face in woken:
            assert face.server is not None
            face.server.ready = False  # serve() returns once its loop does...
            face.server._connections._stop_requested = True  # ...which it does when select() returns
            self._touch(face)
        deadline = time.monotonic() + 5
        for face in woken:
            while face.thread is not None and face.thread.is_alive() and time.monotonic() < deadline:
                face.thread.join(0.005)
                if face.thread.is_alive():
                    self._touch(face)
        for face in woken:
            assert face.server is not None
            face.server.ready = True  # let cheroot's stop run: its loop is over, it has nothing to wait for
            face.server.stop()
        for stopper in ordinary:
            stopper.join(timeout=10)
        for face in self._faces:
            if face.thread is not None:
                face.thread.join(timeout=5)
            face.server, face.thread = None, None

    def _touch(self, face: _Face) -> None:
        host = self._url(face).rsplit(":", 1)[0].split("//", 1)[1].strip("[]")
        with contextlib.suppress(OSError), socket.create_connection((host, face.port), timeout=0.5):
            pass

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
