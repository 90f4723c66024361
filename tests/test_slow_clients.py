"""Slow and abandoned clients do not hold the workers (mockcore.serving's read-ahead); functional, never timed.

Each test serves a small WSGI app (or a whole fleet) with the server every face uses, opens connections that send
part of a request and stall, and checks that others are still served, that the stalled ones are cut, and that a
request trickled in slowly is still served whole. Timeouts here are failure bounds, not speed claims.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mockcore.config import FleetConfig
from mockcore.fleet import Fleet
from mockcore.server import FleetServer, ServeOptions
from mockcore.serving import CherootServer, make_server, request_complete
from mockcore.tls import TlsFiles, make_throwaway_ca

BOUND = 10.0  # seconds: past this a test fails (nothing here should come near it)
SLOW_HEAD = b"GET /echo HTTP/1.1\r\nHost: slow\r\nX-Slow: "
SLOW_BODY = b"POST /echo HTTP/1.1\r\nHost: slow\r\nContent-Length: 100\r\n\r\n"


def echo(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Answers the request's body (and method), so a test sees what the worker received."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else environ["wsgi.input"].read()
    payload = environ["REQUEST_METHOD"].encode() + b" " + body
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(payload)))])
    return [payload]


@contextlib.contextmanager
def serving(tls: TlsFiles | None = None, request_timeout: float = 30.0, threads: int = 4) -> Iterator[CherootServer]:
    server = CherootServer("127.0.0.1", 0, echo, threads=threads, tls=tls, name="test", request_timeout=request_timeout)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout=BOUND)


def stalled(port: int, first: bytes, count: int) -> list[socket.socket]:
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
        sock.sendall(first)
        socks.append(sock)
    return socks


def wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def read_all(sock: socket.socket) -> bytes:
    sock.settimeout(BOUND)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_the_factory_serves_an_app() -> None:
    server = make_server("127.0.0.1", 0, echo, threads=2, tls=None, name="factory")
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        answer = requests.post(f"http://127.0.0.1:{server.bind_addr[1]}/", data=b"hello", timeout=BOUND)
        assert answer.status_code == 200 and answer.content == b"POST hello"
    finally:
        server.stop()
        thread.join(timeout=BOUND)
    assert not thread.is_alive()


def test_a_fleet_answers_while_many_slow_clients_hold_connections() -> None:
    """More slow connections than worker threads (4): an ordinary request is still answered."""
    with FleetServer(Fleet(FleetConfig(instances=("a",))), ServeOptions(threads=4)) as server:
        url = server.urls()["a"]
        port = int(url.rsplit(":", 1)[1])
        socks = stalled(port, SLOW_HEAD, 40) + stalled(port, SLOW_BODY.replace(b"/echo", b"/version"), 40)
        try:
            answer = requests.get(f"{url}/_mock/health", timeout=BOUND)
            assert answer.status_code == 200
            assert requests.get(f"{url}/version", timeout=BOUND).status_code in (200, 401, 403)
        finally:
            for sock in socks:
                sock.close()


def test_slow_connections_wait_in_the_read_ahead_not_in_workers() -> None:
    with serving(threads=2) as server:
        port = server.bind_addr[1]
        socks = stalled(port, SLOW_HEAD, 20) + stalled(port, SLOW_BODY, 20)
        try:
            assert wait_for(lambda: server.waiting() == 40)
            answer = requests.post(f"http://127.0.0.1:{port}/echo", data=b"quick", timeout=BOUND)
            assert answer.content == b"POST quick"
        finally:
            for sock in socks:
                sock.close()


def test_a_slow_request_is_cut_after_the_time_limit_with_408() -> None:
    with serving(request_timeout=0.3) as server:
        port = server.bind_addr[1]
        (slow,) = stalled(port, SLOW_HEAD, 1)
        (silent,) = stalled(port, b"", 1)
        with slow, silent:
            answer = read_all(slow)
            assert answer.startswith(b"HTTP/1.1 408 ")
            assert answer.endswith(b'{"err": "Request Timeout"}')
            assert read_all(silent) == b""  # nothing asked, nothing answered: just closed
        assert wait_for(lambda: server.waiting() == 0)


def test_a_kept_alive_connection_that_stalls_mid_request_is_cut() -> None:
    with (
        serving(request_timeout=0.3) as server,
        socket.create_connection(("127.0.0.1", server.bind_addr[1]), timeout=BOUND) as sock,
    ):
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        sock.sendall(SLOW_HEAD)
        assert b"HTTP/1.1 408 " in read_all(sock)


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_body_trickled_byte_by_byte_is_served_whole(chunked: bool) -> None:
    body = bytes(range(48, 48 + 60))
    if chunked:
        head = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        wire = b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7]) for i in range(0, len(body), 7))
        wire += b"0\r\n\r\n"
    else:
        head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
        wire = body
    with serving(threads=1) as server, socket.create_connection(("127.0.0.1", server.bind_addr[1])) as sock:
        for byte in head + wire:
            sock.sendall(bytes([byte]))
            time.sleep(0.002)
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"POST " + body)


def test_pipelined_and_kept_alive_requests_are_each_answered() -> None:
    one = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
    two = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\ntwo"
    with serving() as server, socket.create_connection(("127.0.0.1", server.bind_addr[1])) as sock:
        sock.sendall(one + two)
        answer = read_all(sock)
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert b"POST one" in answer and answer.endswith(b"POST two")


def test_expect_continue_still_gets_its_100() -> None:
    with serving() as server, socket.create_connection(("127.0.0.1", server.bind_addr[1]), timeout=BOUND) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"body")
        assert read_all(sock).endswith(b"POST body")


def test_tls_is_served_with_slow_clients_open(tmp_path: Path) -> None:
    tls = make_throwaway_ca(tmp_path, ["127.0.0.1"])
    assert tls.ca_cert is not None
    with serving(tls=tls, threads=2) as server:
        port = server.bind_addr[1]
        context = ssl.create_default_context(cafile=str(tls.ca_cert))
        slow = []
        try:
            for _ in range(10):
                raw = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
                sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
                sock.sendall(SLOW_HEAD)
                slow.append(sock)
            assert wait_for(lambda: server.waiting() == 10)
            answer = requests.post(f"https://127.0.0.1:{port}/echo", data=b"secure", verify=str(tls.ca_cert))
            assert answer.status_code == 200 and answer.content == b"POST secure"
        finally:
            for sock in slow:
                sock.close()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_abandoned_connections_leak_neither_threads_nor_sockets() -> None:
    with serving(request_timeout=0.3, threads=2) as server:
        port = server.bind_addr[1]
        requests.get(f"http://127.0.0.1:{port}/", timeout=BOUND)  # every worker started
        threads, descriptors = threading.active_count(), open_descriptors()
        for sock in stalled(port, SLOW_HEAD, 15):
            sock.close()  # abandoned mid-request: the server sees the end
        silent = stalled(port, SLOW_BODY, 15)  # abandoned without a word: the time limit cuts them
        assert wait_for(lambda: server.waiting() == 0)
        for sock in silent:
            sock.close()
        assert wait_for(lambda: open_descriptors() <= descriptors)
        assert threading.active_count() == threads


@pytest.mark.parametrize(
    ("wire", "complete"),
    [
        (b"", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
        (b"\r\nGET / HTTP/1.1\r\n\r\n", True),
        (b"GET / HTTP/1.1\nHost: x", True),  # a bare LF: cheroot refuses it from what is there
        (b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabc", False),
        (b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd", True),
        (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", True),  # too big to hold: the worker streams it
        (b"POST / HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", False),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n", False),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", True),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nBad header line\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000, True),  # past the head limit: cheroot refuses it
    ],
)
def test_request_complete(wire: bytes, complete: bool) -> None:
    assert request_complete(wire) is complete
