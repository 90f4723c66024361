"""One WSGI app served on one port: the server every face of mockcore runs on (`make_server`).

Everything that serves a face (mockcore.server's FleetServer, the tenant server) makes its server here, so the
choice of WSGI server, its limits and its timeouts live in one place. The object `make_server` returns binds in
`prepare()`, serves in `serve()` (blocking: run it in a thread) until `stop()`, which returns in milliseconds.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, Protocol

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter

from mockcore.http.middleware import DROP_KEY, WSGIApp
from mockcore.tls import TlsFiles

SERVER_NAME = "mockcore"


class FaceServer(Protocol):
    """What `make_server` returns."""

    @property
    def bind_addr(self) -> tuple[str, int]: ...

    def prepare(self) -> None: ...

    def serve(self) -> None: ...

    def stop(self) -> None: ...


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


class CherootServer:
    """A cheroot `wsgi.Server` with mockcore's settings and a fast `stop()`."""

    def __init__(self, host: str, port: int, app: WSGIApp, *, threads: int, tls: TlsFiles | None, name: str) -> None:
        self.name = name
        self.tls = tls
        self._server = wsgi.Server(
            (host, port),
            app,
            numthreads=threads,
            server_name=SERVER_NAME,
            request_queue_size=64,
            shutdown_timeout=1,
        )
        # cheroot's selector loop notices a stop request at its next wake-up; waking every 50 ms keeps stop fast
        # at a negligible idle cost.
        self._server.expiration_interval = 0.05
        self._server.gateway = _DroppingGateway
        if tls is not None:
            self._server.ssl_adapter = BuiltinSSLAdapter(str(tls.cert), str(tls.key))
        self._serving = threading.Event()
        self._served = threading.Event()

    @property
    def bind_addr(self) -> tuple[str, int]:
        host, port = self._server.bind_addr[:2]
        return str(host), int(port)

    def prepare(self) -> None:
        self._server.prepare()

    def serve(self) -> None:
        self._serving.set()
        try:
            self._server.serve()
        finally:
            self._served.set()

    def stop(self) -> None:
        """Stop, fast.

        cheroot's own stop waits for its selector loop to notice, which sleeps up to `expiration_interval`, then
        polls every 10 ms. For a plain-HTTP server being served we end the loop first: raise cheroot's stop flag
        and touch the listening socket so `select()` returns now, then let cheroot's stop tidy up with nothing left
        to wait for. The flag is a private cheroot attribute: when it is missing, or with TLS (a bare connection
        would make it log a failed handshake), the server stops the ordinary way."""
        connections = getattr(self._server, "_connections", None)
        if self.tls is None and self._serving.is_set() and hasattr(connections, "_stop_requested"):
            self._server.ready = False  # serve() returns once its loop does...
            connections._stop_requested = True  # type: ignore[union-attr]  # ...which it does when select() returns
            self._touch()
            deadline = time.monotonic() + 5
            while not self._served.wait(0.005) and time.monotonic() < deadline:
                self._touch()
            self._server.ready = True  # let cheroot's stop run: its loop is over, it has nothing to wait for
        self._server.stop()

    def _touch(self) -> None:
        host, port = self.bind_addr
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            pass


def make_server(host: str, port: int, app: WSGIApp, *, threads: int, tls: TlsFiles | None, name: str) -> FaceServer:
    """The server of one face: `app` on `host:port` (0: any free port, `bind_addr` tells which once prepared),
    with `threads` worker threads, TLS when `tls` is given; `name` names its threads."""
    return CherootServer(host, port, app, threads=threads, tls=tls, name=name)
