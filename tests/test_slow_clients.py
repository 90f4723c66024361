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
from mockcore.http.control_api import STATE_LIMIT
from mockcore.http.scan_api import SCAN_LIMIT
from mockcore.server import FleetServer, ServeOptions
from mockcore.serving import BODY_READ_AHEAD, CherootServer, make_server, request_complete
from mockcore.tls import TlsFiles, make_throwaway_ca

BOUND = 10.0  # seconds: past this a test fails (nothing here should come near it)
SLOW_HEAD = b"GET /echo HTTP/1.1\r\nHost: slow\r\nX-Slow: "
SLOW_BODY = b"POST /echo HTTP/1.1\r\nHost: slow\r\nContent-Length: 100\r\n\r\n"
BIG_BODY = b"POST /echo HTTP/1.1\r\nHost: slow\r\nContent-Length: 2000000\r\n\r\n{"
BIG_EXPECT = b"POST /echo HTTP/1.1\r\nHost: slow\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n"
BIG_CHUNKED = b"POST /echo HTTP/1.1\r\nHost: slow\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n1\r\n{\r\n"
HUGE_BODY = b"POST /echo HTTP/1.1\r\nHost: slow\r\nContent-Length: %d\r\n\r\n{" % (BODY_READ_AHEAD + 1)


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
        (b"POST / HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n", False),  # the body is read ahead
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


class Trickler:
    """Sends one byte on each socket every `every` seconds (a thread) until stopped or the socket fails."""

    def __init__(self, socks: list[socket.socket], every: float = 0.05) -> None:
        self.socks, self.every = socks, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        live = list(self.socks)
        while live and not self._stop.wait(self.every):
            for sock in list(live):
                try:
                    sock.send(b" ")
                except OSError:
                    live.remove(sock)

    def __enter__(self) -> Trickler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=BOUND)
        for sock in self.socks:
            sock.close()


def test_the_read_ahead_holds_every_body_a_face_accepts() -> None:
    assert max(SCAN_LIMIT, STATE_LIMIT) <= BODY_READ_AHEAD


def test_a_fleet_answers_while_big_bodies_and_expect_continue_trickle() -> None:
    """The reviewer's case: 2 MB declared, `{`, then a byte now and then; with and without `Expect: 100-continue`."""
    with FleetServer(Fleet(FleetConfig(instances=("a",))), ServeOptions(threads=4)) as server:
        url = server.urls()["a"]
        port = int(url.rsplit(":", 1)[1])
        big = BIG_BODY.replace(b"/echo", b"/version")
        socks = stalled(port, big, 24) + stalled(port, BIG_EXPECT.replace(b"/echo", b"/version"), 24)
        socks += stalled(port, BIG_CHUNKED.replace(b"/echo", b"/version"), 24)
        with Trickler(socks, every=0.2):
            time.sleep(0.5)  # every slow connection has sent its head and some body
            for _ in range(3):
                assert requests.get(f"{url}/version", timeout=BOUND).status_code in (200, 401, 403)


def test_big_bodies_and_expect_continue_wait_in_the_read_ahead() -> None:
    with serving(threads=2) as server:
        port = server.bind_addr[1]
        socks = stalled(port, BIG_BODY, 20) + stalled(port, BIG_EXPECT, 20) + stalled(port, BIG_CHUNKED, 20)
        with Trickler(socks):
            assert wait_for(lambda: server.waiting() == 60)
            answer = requests.post(f"http://127.0.0.1:{port}/echo", data=b"quick", timeout=BOUND)
            assert answer.content == b"POST quick"
            for sock in socks[20:40]:
                assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"  # from the read-ahead, no worker


def test_expect_continue_for_a_big_body_gets_one_100_and_the_whole_body() -> None:
    body = os.urandom(3 * 1024 * 1024)
    head = BIG_EXPECT.replace(b"2000000", str(len(body)).encode()).replace(
        b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"
    )
    with serving(threads=1) as server, socket.create_connection(("127.0.0.1", server.bind_addr[1])) as sock:
        sock.settimeout(BOUND)
        sock.sendall(head)
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b"100 Continue" not in answer
    assert answer.endswith(b"POST " + body)


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_big_body_sent_at_a_normal_pace_is_served_whole(chunked: bool) -> None:
    body = os.urandom(20 * 1024 * 1024)
    data: Any = (body[i : i + 256 * 1024] for i in range(0, len(body), 256 * 1024)) if chunked else body
    with serving(threads=2) as server:
        answer = requests.post(f"http://127.0.0.1:{server.bind_addr[1]}/echo", data=data, timeout=4 * BOUND)
    assert answer.status_code == 200
    assert answer.content == b"POST " + body


def test_a_fleet_takes_a_big_scan_sent_at_once() -> None:
    with FleetServer(Fleet(FleetConfig(instances=("a",))), ServeOptions(threads=2)) as server:
        url = server.urls()["a"]
        answer = requests.post(f"{url}/file", data=os.urandom(20 * 1024 * 1024), timeout=4 * BOUND)
        assert answer.status_code != 408 and answer.status_code < 500


@pytest.mark.parametrize(
    "first", [BIG_BODY, BIG_EXPECT, BIG_CHUNKED, HUGE_BODY], ids=["big", "expect", "chunked", "streamed"]
)
def test_a_trickled_big_body_is_cut_after_the_deadline_with_408(first: bytes) -> None:
    """Read ahead or (past BODY_READ_AHEAD) streamed by a worker, a body trickled in is cut at the deadline."""
    with serving(request_timeout=0.3, threads=1) as server:
        (sock,) = stalled(server.bind_addr[1], first, 1)
        with Trickler([sock]):
            answer = read_all(sock)
        assert answer.endswith(
            b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close"
            b'\r\nContent-Length: 26\r\n\r\n{"err": "Request Timeout"}'
        )
        assert wait_for(lambda: server.waiting() == 0)
        answer = requests.post(f"http://127.0.0.1:{server.bind_addr[1]}/echo", data=b"next", timeout=BOUND)
        assert answer.content == b"POST next"  # the one worker is free again


def test_past_its_memory_budget_the_read_ahead_hands_a_body_to_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mockcore.serving.READ_AHEAD_BUDGET", 100_000)
    body = os.urandom(1_000_000)
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    with serving(threads=1) as server, socket.create_connection(("127.0.0.1", server.bind_addr[1])) as sock:
        sock.sendall(head + body[:300_000])
        assert wait_for(lambda: server.waiting() == 0)  # over budget: a worker reads the rest
        sock.sendall(body[300_000:])
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.endswith(b"POST " + body)
