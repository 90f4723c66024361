"""A relay that loses an answer: the request reaches the instance and is carried out, the client never hears back.

The mock's own `drop` fault closes the connection *before* the request is carried out, so retrying after it is
always safe. The dangerous case for a retrying client is the other one: the operation happened, the answer was
lost on the way back (a proxy timed out, a connection reset). The harness makes it with this relay: it gives the
client the relay's URL for one call; the relay forwards every request to the instance unchanged (headers and
body as the client sent them, plus `x-contracts-relay`, so the journal tells relayed requests apart) and answers
normally, except the first request of the armed method and path, whose answer it reads from the instance and
throws away, closing the client's connection instead.

Over HTTPS the relay speaks TLS on both sides: to the client with a certificate it is given, to the instance
verifying the fleet's CA. The same relay, given a certificate a client must refuse and a `label` of its own,
stands in for an impostor: every request that reaches the instance through it is marked with that label, so the
journal shows a client that talked to it anyway.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

RELAY_HEADER = "x-contracts-relay"
LOST = "answer-lost"
RELAYED = "relayed"
UNTRUSTED = "untrusted-certificate"  # the label of a relay presenting a certificate another CA signed
WRONG_HOST = "wrong-host-certificate"  # ... one the CA signed for another host name
IMPOSTORS = (UNTRUSTED, WRONG_HOST)
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", RELAY_HEADER}
)
UPSTREAM_TIMEOUT = 60.0
MAX_BODY = 64 * 1024 * 1024


class Relay:
    """A relay to one instance on a free loopback port, in a background thread. `arm(method, path)` makes it lose
    the answer of the next matching request.

    For an `https` upstream give `certificate` (the (certificate, key) files the relay presents to the client)
    and `trust` (the CA file the upstream's certificate is verified with). `label` marks every relayed request."""

    def __init__(
        self,
        upstream: str,
        *,
        certificate: tuple[Path, Path] | None = None,
        trust: Path | None = None,
        label: str = RELAYED,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the relay forwards http or https, got {upstream!r}")
        tls = parts.scheme == "https"
        if tls and (certificate is None or trust is None):
            raise ValueError("a relay to an https instance needs a certificate to present and a CA to trust")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or (443 if tls else 80)
        self.upstream_context = ssl.create_default_context(cafile=str(trust)) if tls and trust else None
        self.label = label
        self._lock = threading.Lock()
        self._armed: tuple[str, str] | None = None
        self.lost = 0
        relay = self

        class Handler(_RelayHandler):
            owner = relay

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "https" if tls else "http"
        if tls and certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(certificate[0]), str(certificate[1]))
            # The handshake happens in the handler's thread (a client that never sends one blocks only itself).
            self._server.socket = context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="client-relay", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}"

    def arm(self, method: str, path: str) -> None:
        with self._lock:
            self._armed = (method.upper(), path)

    def disarm(self) -> bool:
        """Stop losing answers; True when the armed request never came."""
        with self._lock:
            was, self._armed = self._armed, None
        return was is not None

    def take(self, method: str, path: str) -> bool:
        """Whether to lose this request's answer (the arm is used up by the first match)."""
        with self._lock:
            if self._armed == (method.upper(), path):
                self._armed = None
                self.lost += 1
                return True
            return False

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _RelayHandler(BaseHTTPRequestHandler):
    owner: Relay
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection is closed after this

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the mock's journal is the record

    def handle(self) -> None:
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (OSError, ValueError):  # the client refused the certificate (or hung up): nothing to relay
                self.close_connection = True
                return
        super().handle()

    def _body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        size = int(length)
        if not 0 <= size <= MAX_BODY:
            raise ValueError(f"Content-Length {size}")
        return self.rfile.read(size)

    def _relay(self) -> None:
        try:
            body = self._body()
        except ValueError:
            self.send_error(400)
            return
        path_only = self.path.split("?", 1)[0]
        lose = self.owner.take(self.command, path_only)
        owner = self.owner
        upstream: http.client.HTTPConnection
        if owner.upstream_context is not None:
            upstream = http.client.HTTPSConnection(
                owner.upstream_host, owner.upstream_port, timeout=UPSTREAM_TIMEOUT, context=owner.upstream_context
            )
        else:
            upstream = http.client.HTTPConnection(owner.upstream_host, owner.upstream_port, UPSTREAM_TIMEOUT)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    upstream.putheader(name, value)
            if chunked and body is not None:
                upstream.putheader("Content-Length", str(len(body)))
            upstream.putheader(RELAY_HEADER, LOST if lose else self.owner.label)
            upstream.endheaders(body)
            answer = upstream.getresponse()
            data = answer.read()
            status, reason, headers = answer.status, answer.reason, answer.getheaders()
        except (OSError, http.client.HTTPException):
            self.close_connection = True
            self._abort()
            return
        finally:
            upstream.close()
        if lose:
            self.close_connection = True
            self._abort()
            return
        self.send_response_only(status, reason)
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _abort(self) -> None:
        """Close the client's connection without a byte of answer."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = _relay
    do_POST = _relay
    do_PUT = _relay
    do_DELETE = _relay
    do_PATCH = _relay
    do_HEAD = _relay
    do_OPTIONS = _relay
