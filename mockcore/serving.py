"""One WSGI app served on one port: the server every face of mockcore runs on (`make_server`).

Everything that serves a face (mockcore.server's FleetServer, the tenant server) makes its server here, so the
choice of WSGI server, its limits and its timeouts live in one place. The object `make_server` returns binds in
`prepare()`, serves in `serve()` (blocking: run it in a thread) until `stop()`, which returns in milliseconds.
"""

from __future__ import annotations

import contextlib
import re
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from cheroot import wsgi
from cheroot.makefile import MakeFile
from cheroot.server import HTTPConnection, HTTPRequest
from cheroot.ssl.builtin import BuiltinSSLAdapter

from mockcore.http.middleware import DROP_KEY, WSGIApp
from mockcore.tls import TlsFiles

SERVER_NAME = "mockcore"
REQUEST_TIMEOUT = 10.0  # seconds from a request's first byte to its last, plus its size at MIN_BODY_RATE
MIN_BODY_RATE = 64 * 1024  # bytes/s: past REQUEST_TIMEOUT, a request must have come at least this fast on average
IDLE_TIMEOUT = 10.0  # cheroot's: a kept-alive connection idle this long is closed; a worker's wait on one read
HEAD_LIMIT = 64 * 1024  # request line and headers; past it cheroot refuses the request
# A body up to this is received before a worker sees it: the largest any face accepts (scans, state documents:
# mockcore.http's SCAN_LIMIT and STATE_LIMIT, checked by tests/test_slow_clients.py). A larger one streams.
BODY_READ_AHEAD = 64 * 1024 * 1024
# Bytes the read-ahead holds over all its connections: past this, a request whose head is in goes to a worker,
# which reads the rest of its body itself (within the same time limit), rather than memory growing further.
READ_AHEAD_BUDGET = 256 * 1024 * 1024
CHUNK_LINE_LIMIT = 1024
RECV_SIZE = 64 * 1024
_TIMEOUT_BODY = b'{"err": "Request Timeout"}'
TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
    + f"Content-Length: {len(_TIMEOUT_BODY)}\r\n\r\n".encode()
    + _TIMEOUT_BODY
)
CONTINUE_ANSWER = b"HTTP/1.1 100 Continue\r\n\r\n"


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


class _RequestReader:
    """A connection's `rfile`: what the read-ahead received, then the socket (blocking, cheroot's timeout).

    cheroot reads requests with `readline`/`read` and asks `has_data()` whether a pipelined request is buffered;
    the read-ahead fills `buffer` without blocking (`pull`)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.bytes_read = 0
        self.closed = False
        self._eof = False
        self._received = 0  # bytes taken from the socket, ever
        self._started: float | None = None  # when the request being read began; None: no time limit (no read-ahead)
        self._grace = REQUEST_TIMEOUT
        self._idle = IDLE_TIMEOUT
        self._base = 0  # `_received` before the request being read

    def has_data(self) -> bool:
        return bool(self.buffer)

    def begin(self, grace: float, idle: float) -> None:
        """A request starts now (its first byte is here or on its way): its time limit counts from now."""
        self._started, self._grace, self._idle = time.monotonic(), grace, idle
        self._base = self._received - len(self.buffer)

    def deadline(self) -> float:
        """When the request being read must have fully arrived: `grace` seconds from its start, and one more second
        for every MIN_BODY_RATE bytes of it received so far (a big body sent at a fair pace is never cut)."""
        if self._started is None:
            return float("inf")
        return self._started + self._grace + (self._received - self._base) / MIN_BODY_RATE

    def pull(self, cap: int) -> bool:
        """Take what the socket holds now, up to `cap` bytes buffered, without waiting (the socket must be
        non-blocking); False at its end."""
        while len(self.buffer) < cap:
            try:
                data = self.sock.recv(RECV_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError, InterruptedError):
                return True
            except OSError:
                self._eof = True
                return False
            if not self._keep(data):
                return False
        return True

    def _fill(self) -> bool:
        """A worker's blocking read: each wait at most `idle` seconds, and none past the request's deadline (then
        `TimeoutError`, which cheroot answers 408), so a client trickling a body a worker streams is cut."""
        if self._eof:
            return False
        if self._started is not None:
            left = self.deadline() - time.monotonic()
            if left <= 0:
                raise TimeoutError("timed out")
            self.sock.settimeout(min(left, self._idle))
        return self._keep(self.sock.recv(RECV_SIZE))

    def _keep(self, data: bytes) -> bool:
        """Buffer what a read brought and count it; False (and at its end from now on) when it brought nothing."""
        if not data:
            self._eof = True
            return False
        self._received += len(data)
        self.buffer += data
        return True

    def _take(self, size: int) -> bytes:
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        self.bytes_read += len(out)
        return out

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            return self._take(len(self.buffer))
        while len(self.buffer) < size and self._fill():
            pass
        return self._take(size)

    def readline(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        searched = 0
        while True:
            newline = self.buffer.find(b"\n", searched)
            if newline >= 0:
                end = newline + 1
                break
            if limit is not None and len(self.buffer) >= limit:
                end = limit
                break
            searched = len(self.buffer)
            if not self._fill():
                end = len(self.buffer)
                break
        return self._take(end if limit is None else min(end, limit))

    def __iter__(self) -> _RequestReader:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self) -> None:
        self.closed = True


class _Request(HTTPRequest):
    """cheroot's request, answering a timed-out request vendor-style: 408 `{"err": "Request Timeout"}`."""

    def simple_response(self, status: Any, msg: Any = "") -> None:
        if str(status).startswith("408"):
            self.close_connection = True
            self.conn.wfile.write(TIMEOUT_ANSWER)
            return
        super().simple_response(status, msg)


class _Connection(HTTPConnection):
    """cheroot's connection, reading through a `_RequestReader` the read-ahead can fill."""

    RequestHandlerClass = _Request

    def __init__(self, server: Any, sock: socket.socket, makefile: Any = MakeFile) -> None:
        super().__init__(server, sock, makefile)
        self.rfile.close()  # cheroot's own reader: closing it only releases its hold on the socket
        self.rfile = _RequestReader(sock)


_BARE_LF = re.compile(rb"(?<!\r)\n")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


@dataclass(frozen=True)
class _Head:
    """The head of the request at the start of a buffer, as far as the read-ahead needs it."""

    body: int  # offset of the body's first byte
    length: int | None
    chunked: bool
    expect: tuple[int, int] | None  # where its `Expect: 100-continue` line is (CRLF included)


def _parse_head(buf: bytes | bytearray) -> _Head | bool:
    """The head at the start of `buf`; True when cheroot will refuse the request from what is there (a bare LF, a head
    past HEAD_LIMIT, a framing it does not take), False when the head has not fully arrived."""
    start = 0
    while buf.startswith(b"\r\n", start):
        start += 2
    end = buf.find(b"\r\n\r\n", start)
    if _BARE_LF.search(buf, start, len(buf) if end < 0 else end + 4):
        return True  # cheroot answers 400: HTTP requires CRLF terminators
    if end < 0:
        return len(buf) - start > HEAD_LIMIT
    length: int | None = None
    chunked = False
    expect: tuple[int, int] | None = None
    line_start = buf.find(b"\r\n", start) + 2
    while line_start < end + 2:
        line_end = buf.find(b"\r\n", line_start)
        name, colon, value = bytes(buf[line_start:line_end]).partition(b":")
        if not colon:
            return True
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            if length is not None or not value.isdigit():
                return True
            length = int(value)
        elif name == b"transfer-encoding":
            if value != b"chunked":
                return True
            chunked = True  # cheroot reads a chunked body as chunked, whatever Content-Length says
        elif name == b"expect" and value == b"100-continue":
            expect = (line_start, line_end + 2)
        line_start = line_end + 2
    return _Head(end + 4, length, chunked, expect)


def _body_complete(buf: bytes | bytearray, head: _Head) -> bool:
    if head.chunked:
        return _chunked_complete(buf, head.body)
    if head.length is None:
        return True
    return head.length > BODY_READ_AHEAD or len(buf) - head.body >= head.length


def request_complete(buf: bytes | bytearray) -> bool:
    """Whether `buf` holds a request a worker can handle without waiting on the client: a whole head and its body
    (up to BODY_READ_AHEAD), or something cheroot will refuse from what is there. False: more must arrive first."""
    head = _parse_head(buf)
    return head if isinstance(head, bool) else _body_complete(buf, head)


def _chunked_complete(buf: bytes | bytearray, pos: int) -> bool:
    body = pos
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return len(buf) - pos > CHUNK_LINE_LIMIT
        size = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size):
            return True  # cheroot refuses it
        pos = eol + 2 + int(size, 16) + 2
        if pos - body > BODY_READ_AHEAD:
            return True  # too big to hold: the worker reads the rest
        if int(size, 16) == 0:
            return buf.find(b"\r\n\r\n", eol) >= 0 or len(buf) - eol > HEAD_LIMIT
        if pos > len(buf):
            return False


# The most the read-ahead buffers for one connection: a request still incomplete with this much in is handed on.
_PULL_CAP = HEAD_LIMIT + BODY_READ_AHEAD + 2 * CHUNK_LINE_LIMIT


class _ReadAhead:
    """One thread per server holding every connection whose request has not fully arrived.

    A connection comes here from cheroot instead of going to a worker: right after it is accepted, and whenever a
    kept-alive one has something to read. What is there is taken at once; when the request is complete it goes to
    the worker pool, which then never waits on the client. Otherwise the connection waits here, on a selector, for
    the rest, until its deadline (`_RequestReader.deadline`: `timeout` seconds from its admission, plus a second
    per MIN_BODY_RATE bytes received): past that it is answered 408 (when anything of the request arrived) and
    closed, without a worker ever having been held. A request with `Expect: 100-continue` is answered
    `100 Continue` here, and its body read here too. Only a body past BODY_READ_AHEAD, or one arriving while the
    read-ahead holds READ_AHEAD_BUDGET bytes, is read by a worker, within the same deadline."""

    def __init__(self, server: _ReadAheadServer, timeout: float, name: str) -> None:
        self._server = server
        self._timeout = timeout
        self._name = name
        self._lock = threading.Lock()
        self._arrivals: list[_Connection] = []
        self._waiting: set[_Connection] = set()
        self._held = 0  # bytes buffered by the connections in `_waiting` (the read-ahead thread's alone)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self._name}-read-ahead", daemon=True)
        self._thread.start()

    def admit(self, conn: _Connection) -> None:
        """From cheroot's selector thread or a worker: hand `conn` on now if its request is there, else keep it."""
        reader: _RequestReader = conn.rfile
        conn.socket.settimeout(0)
        reader.begin(self._timeout, self._server.timeout)
        open_, head = self._advance(conn)
        if head is True or not open_:
            self._dispatch(conn, open_)
            return
        with self._lock:
            stopping = self._stopping
            if not stopping:
                self._arrivals.append(conn)
        if stopping:
            conn.close()
        else:
            self._wake()

    def waiting(self) -> int:
        """How many connections wait for the rest of their request."""
        with self._lock:
            return len(self._waiting) + len(self._arrivals)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for conn in self._arrivals:
                self._close(conn)
            self._arrivals.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _advance(self, conn: _Connection) -> tuple[bool, bool | _Head]:
        """Take what `conn` sent; answer `100 Continue` for a head that asks for it. Returns whether the connection
        is still open, and True when the request is complete (a worker will not wait on it), else its head (the
        body is still to come) or False (the head is)."""
        reader: _RequestReader = conn.rfile
        open_ = reader.pull(_PULL_CAP)
        head = _parse_head(reader.buffer)
        if isinstance(head, bool):
            return open_, head or len(reader.buffer) >= _PULL_CAP
        if head.expect is not None and not _body_complete(reader.buffer, head):
            # What cheroot's worker would send: the client may send the body. The header goes, so the worker
            # does not send it a second time.
            first, last = head.expect
            del reader.buffer[first:last]
            head = _Head(head.body - (last - first), head.length, head.chunked, None)
            try:
                sent = conn.socket.send(CONTINUE_ANSWER)
            except (OSError, ValueError):
                sent = 0
            if sent != len(CONTINUE_ANSWER):
                reader.buffer.clear()  # the client is gone or stuck: nothing for a worker, the connection closes
                return False, True
        if _body_complete(reader.buffer, head) or len(reader.buffer) >= _PULL_CAP:
            return open_, True
        return open_, head

    def _dispatch(self, conn: _Connection, open_: bool) -> None:
        if not open_ and not conn.rfile.buffer:
            self._close(conn)  # gone before it asked anything
            return
        conn.socket.settimeout(self._server.timeout)
        self._server.dispatch(conn)

    def _close(self, conn: _Connection, answer: bytes = b"") -> None:
        if answer:
            with contextlib.suppress(OSError, ValueError):
                conn.socket.send(answer)
        with contextlib.suppress(OSError):
            conn.close()

    def _run(self) -> None:
        next_check = float("inf")
        try:
            while True:
                with self._lock:
                    if self._stopping:
                        break
                    arrivals, self._arrivals = self._arrivals, []
                for conn in arrivals:
                    try:
                        self._selector.register(conn.socket, selectors.EVENT_READ, conn)
                    except (OSError, ValueError):
                        self._close(conn)
                        continue
                    self._waiting.add(conn)
                    self._held += len(conn.rfile.buffer)
                    next_check = min(next_check, conn.rfile.deadline())
                now = time.monotonic()
                for key, _events in self._selector.select(timeout=min(max(next_check - now, 0), 1.0)):
                    if key.data is None:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                        continue
                    self._read(key.data)
                now = time.monotonic()
                if now >= next_check:
                    next_check = float("inf")
                    for conn in list(self._waiting):
                        deadline = conn.rfile.deadline()
                        if deadline <= now:
                            self._forget(conn)
                            self._close(conn, TIMEOUT_ANSWER if conn.rfile.buffer else b"")
                        else:
                            next_check = min(next_check, deadline)
        finally:
            for conn in list(self._waiting):
                self._forget(conn)
                self._close(conn)

    def _read(self, conn: _Connection) -> None:
        """`conn` has something to read: take it, and hand the connection on if its request is complete (or has
        its head in while the read-ahead holds more than its budget)."""
        before = len(conn.rfile.buffer)
        open_, head = self._advance(conn)
        self._held += len(conn.rfile.buffer) - before
        if head is True or not open_ or (head is not False and self._held > READ_AHEAD_BUDGET):
            self._forget(conn)
            self._dispatch(conn, open_)

    def _forget(self, conn: _Connection) -> None:
        self._waiting.discard(conn)
        self._held -= len(conn.rfile.buffer)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(conn.socket)


class _ReadAheadServer(wsgi.Server):
    """cheroot's WSGI server, with every connection passing through a `_ReadAhead` on its way to a worker."""

    ConnectionClass = _Connection

    def __init__(self, *args: Any, request_timeout: float, name: str, read_ahead: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_ahead = _ReadAhead(self, request_timeout, name)
        self._reading_ahead = read_ahead

    def process_conn(self, conn: _Connection) -> None:
        if self._reading_ahead:
            self.read_ahead.admit(conn)
        else:
            self.dispatch(conn)

    def dispatch(self, conn: _Connection) -> None:
        super().process_conn(conn)


class CherootServer:
    """A cheroot `wsgi.Server` with mockcore's settings, a read-ahead in front of its workers and a fast `stop()`."""

    def __init__(
        self,
        host: str,
        port: int,
        app: WSGIApp,
        *,
        threads: int,
        tls: TlsFiles | None,
        name: str,
        request_timeout: float = REQUEST_TIMEOUT,
        read_ahead: bool = True,
    ) -> None:
        """`read_ahead=False` is cheroot as mockcore used it before the read-ahead (workers read requests
        themselves): the baseline of bench/slow_clients.py."""
        self.name = name
        self.tls = tls
        self._server = _ReadAheadServer(
            (host, port),
            app,
            numthreads=threads,
            server_name=SERVER_NAME,
            request_queue_size=64,
            shutdown_timeout=1,
            timeout=IDLE_TIMEOUT,
            request_timeout=request_timeout,
            name=name,
            read_ahead=read_ahead,
        )
        self._server.max_request_header_size = HEAD_LIMIT
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

    def waiting(self) -> int:
        """How many connections the read-ahead holds (their request has not fully arrived)."""
        return self._server.read_ahead.waiting()

    def prepare(self) -> None:
        self._server.prepare()

    def serve(self) -> None:
        self._serving.set()
        self._server.read_ahead.start()
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
        self._server.read_ahead.stop()

    def _touch(self) -> None:
        host, port = self.bind_addr
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            pass


def make_server(host: str, port: int, app: WSGIApp, *, threads: int, tls: TlsFiles | None, name: str) -> FaceServer:
    """The server of one face: `app` on `host:port` (0: any free port, `bind_addr` tells which once prepared),
    with `threads` worker threads, TLS when `tls` is given; `name` names its threads.

    Slow clients do not hold workers: a request goes to a worker only once it has fully arrived (see `_ReadAhead`);
    one that has not within REQUEST_TIMEOUT seconds is answered 408 and its connection closed."""
    return CherootServer(host, port, app, threads=threads, tls=tls, name=name)
