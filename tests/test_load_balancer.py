"""The load balancer's configuration (deploy/haproxy.cfg) never sends a request twice: GETs change state here too.

The activation server takes and frees slots with `GET /activation` and `GET /deactivation`. If a replica carries out
such a GET and dies before answering, a proxy that retries the GET elsewhere has it applied twice: the client is told
its successful release failed (`404 not activated`). In front of one real `mockcore serve --tenants` and one replica
that carries every request to it and then closes the connection without answering, each release through HAProxy
is answered 200 (the real replica) or with the proxy's own 502 (the dying one), never the 404 of a second release.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests import haproxy
from tests.serving import MockcoreProcess, free_port


class DyingReplica:
    """A replica that carries each request to `upstream` (so it is done there) and closes the connection before
    answering; it answers the proxy's health check itself."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.carried: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.server.accept()
                threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            method, path, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
            if path.startswith("/_mock/health"):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
                return
            answer = requests.request(method, self.upstream + path, timeout=10)
            with self.lock:
                self.carried.append((path, answer.status_code))
            # ... and dies before answering: the connection closes with nothing sent.

    def stop(self) -> None:
        self.server.close()


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[str]:
    process = MockcoreProcess(tmp_path, ["--tenants", "--port", "0"], free_ports=False).start()
    try:
        yield process.wait_ready()["url"]
    finally:
        process.stop()


def test_a_get_already_sent_is_never_sent_again(upstream: str, tmp_path: Path) -> None:
    haproxy.require("haproxy")
    dying = DyingReplica(upstream)
    dying.thread.start()
    real_port = int(upstream.rsplit(":", 1)[1])
    port = free_port()
    servers = [("127.0.0.1", dying.port), ("127.0.0.1", real_port)]
    proxy = haproxy.Haproxy(haproxy.config(port, servers, balance="roundrobin"), port, tmp_path).start()
    try:
        tenant = requests.post(upstream + "/_mock/tenants", json={"instances": ["a"], "keys": [":20"]}, timeout=10)
        assert tenant.status_code == 201, tenant.text
        created = tenant.json()
        key = created["keys"][0]["key"]
        activation = created["activation_server"].replace(upstream, proxy.url)
        answers = []
        for number in range(8):
            deployment = "MSCL" + f"{number + 1:032x}"
            taken = requests.get(
                created["activation_server"] + "/activation",
                params={"key": key, "deployment": deployment, "quantity": 1},
                timeout=10,
            )
            assert taken.status_code == 200, taken.text  # taken directly at the real replica
            released = requests.get(
                activation + "/deactivation", params={"key": key, "deployment": deployment}, timeout=30
            )
            answers.append(released.status_code)
            assert released.status_code in (200, 502), (
                f"release #{number + 1} through the proxy answered {released.status_code} {released.text!r}: "
                "sent twice (the first release was carried out, the second found nothing to release)"
            )
        assert 502 in answers and 200 in answers, answers  # both replicas were asked
        state = requests.get(
            created["control"] + "/_mock/state", headers={"X-Mock-Control-Token": created["control_token"]}, timeout=10
        ).json()
        assert state["keys"][0]["holders"] == []  # every release happened, once
        assert all(status == 200 for _, status in dying.carried), dying.carried
    finally:
        proxy.stop()
        dying.stop()
