"""HAProxy for tests (Debian's package: `apt-get install -y haproxy`), configured from deploy/haproxy.cfg: the same
timeouts, health check, retries and redispatch, with the bind address and the servers replaced by loopback ports.

`require(*tools)` skips a test when HAProxy or PostgreSQL is missing, except under CI (CI=true), where it fails:
.ci/run installs both. `Haproxy(config).start()` runs it in the foreground as a subprocess; `stop()`.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from tests import postgres
from tests.serving import unavailable

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "haproxy.cfg"
INSTALL = "apt-get install -y haproxy postgresql"
SERVERS_RE = re.compile(r"^    server-template .*$", re.MULTILINE)
BIND_RE = re.compile(r"^    bind :8008$", re.MULTILINE)
RESOLVERS_RE = re.compile(r"^resolvers dns\n(?:    .*\n)+", re.MULTILINE)
BALANCE_RE = re.compile(r"^    balance .*$", re.MULTILINE)


def require(*tools: str) -> None:
    """Skip (fail under CI) unless every tool is installed: `haproxy`, `postgres`."""
    missing = [
        tool
        for tool in tools
        if (tool == "haproxy" and shutil.which("haproxy") is None)
        or (tool == "postgres" and postgres.binaries() is None)
    ]
    if not missing:
        return
    unavailable(f"{' and '.join(missing)} not installed: `{INSTALL}`")


def config(port: int, servers: list[tuple[str, int]], *, balance: str | None = None) -> str:
    """deploy/haproxy.cfg listening on 127.0.0.1:`port` in front of `servers` (host, port), each checked as the
    template checks its replicas; `balance` replaces the template's algorithm."""
    text = TEMPLATE.read_text()
    assert SERVERS_RE.search(text) and BIND_RE.search(text) and BALANCE_RE.search(text), "deploy/haproxy.cfg changed"
    lines = "\n".join(f"    server mockcore-{n} {host}:{p} check" for n, (host, p) in enumerate(servers, 1))
    text = SERVERS_RE.sub(lambda _: lines, text)
    text = BIND_RE.sub(f"    bind 127.0.0.1:{port}", text)
    text = RESOLVERS_RE.sub("", text)  # loopback addresses: nothing to resolve
    if balance is not None:
        text = BALANCE_RE.sub(f"    balance {balance}", text)
    return text


def check(config_text: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`haproxy -c` on a configuration."""
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as out:
        out.write(config_text)
    try:
        return subprocess.run(
            ["haproxy", "-c", "-f", out.name],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, **(env or {})},
        )
    finally:
        os.unlink(out.name)


class Haproxy:
    def __init__(self, config_text: str, port: int, workdir: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.path = workdir / "haproxy.cfg"
        self.path.write_text(config_text)
        self.log = workdir / "haproxy.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Haproxy:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                ["haproxy", "-db", "-f", str(self.path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"haproxy exited with {self.process.returncode}:\n{self.log.read_text()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/_proxy/health", timeout=2).status_code == 200:
                    return self
            if time.monotonic() > deadline:
                raise AssertionError(f"haproxy not listening within {timeout} s:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
