"""`mockcore serve` as a real subprocess, for the CLI tests: start it on free ports, wait for its ready file, stop it
with a signal, and always kill it in the end.

Output goes to files in the server's work directory (never to pipes, which could fill up and block the server), and
TMPDIR points there too, so the throwaway CA of `--tls` lands in the test's temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest

READY_TIMEOUT = 30.0  # generous: CI machines may run other suites at the same time
EXIT_TIMEOUT = 15.0


def mockcore_command() -> list[str]:
    """The installed console script, else the same entry point through this interpreter."""
    script = shutil.which("mockcore")
    if script is not None:
        return [script]
    return [sys.executable, "-c", "from mockcore.cli import main; main()"]


def under_ci() -> bool:
    """Whether this run is CI's (CI=true): there, `.ci/run` has installed every tool a test needs."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(reason: str) -> NoReturn:
    """A test whose tools are missing: skipped, saying why and how to install them, except under CI, where it
    fails (`.ci/run` installs them, so a skip there would hide a test that never ran)."""
    if under_ci():
        pytest.fail(f"{reason} (.ci/run installs it; under CI this test must not skip)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A port that was free a moment ago (the usual small race, acceptable in tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listens(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    return parts.hostname, parts.port


@dataclass(frozen=True)
class Exited:
    returncode: int
    stdout: str
    stderr: str


class MockcoreProcess:
    """One `mockcore serve` subprocess. `serve_args` come after `--port 0 --activation-port 0 --ready-file FILE`,
    so a test may still override the ports (click keeps the last value)."""

    def __init__(self, workdir: Path, serve_args: Sequence[str] = (), *, free_ports: bool = True) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.ready_file = workdir / "ready.json"
        self.stdout_path = workdir / "stdout.txt"
        self.stderr_path = workdir / "stderr.txt"
        ports = ["--port", "0", "--activation-port", "0"] if free_ports else []
        self.argv = [*mockcore_command(), "serve", *ports, "--ready-file", str(self.ready_file), *serve_args]
        self.process: subprocess.Popen[bytes] | None = None
        self.ready: dict[str, Any] = {}
        self.ready_text = ""
        self.exited: Exited | None = None
        self.signalled: int | None = None

    # Life cycle

    def start(self) -> MockcoreProcess:
        env = dict(os.environ, TMPDIR=str(self.workdir), PYTHONUNBUFFERED="1")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=self.workdir,
                env=env,
                start_new_session=True,  # a Ctrl-C on pytest does not reach it; teardown kills it
            )
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        """Poll for the ready file (written atomically, so it is complete once it exists)."""
        assert self.process is not None, "not started"
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"mockcore exited with {self.process.returncode} before it was ready: {self.argv}\n"
                    + self.stderr_path.read_text(errors="replace")
                )
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"mockcore was not ready within {timeout} s: {self.argv}")
            time.sleep(0.02)
        self.ready_text = self.ready_file.read_text()
        self.ready = json.loads(self.ready_text)
        return self.ready

    def stdout_line(self, timeout: float = 10.0) -> str:
        """The first complete line on stdout (click flushes it just after the ready file is written)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.stdout_path.read_text(errors="replace")
            if "\n" in text:
                return text.split("\n", 1)[0] + "\n"
            if time.monotonic() > deadline:
                raise AssertionError(f"no line on stdout within {timeout} s: {text!r}")
            time.sleep(0.02)

    def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> Exited:
        """Wait for the process to end by itself (a start-up error); kill it if it does not."""
        assert self.process is not None, "not started"
        try:
            returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"mockcore still running after {timeout} s: {self.argv}") from None
        self.exited = Exited(
            returncode,
            self.stdout_path.read_text(errors="replace"),
            self.stderr_path.read_text(errors="replace"),
        )
        return self.exited

    def send(self, signum: int) -> None:
        """Send `signum` without waiting (to stop several servers at once, then `stop` each)."""
        assert self.process is not None, "not started"
        if self.exited is None and self.signalled is None and self.process.poll() is None:
            self.process.send_signal(signum)
            self.signalled = signum

    def stop(self, signum: int = signal.SIGTERM, timeout: float = EXIT_TIMEOUT) -> Exited:
        """Send `signum` and wait for the exit; idempotent (a stopped process answers its first exit)."""
        if self.exited is not None:
            return self.exited
        self.send(signum)  # once: a second signal could land while the interpreter finalizes
        return self.wait_exit(timeout)

    def kill(self) -> None:
        """Last-resort cleanup; safe to call at any time, any number of times."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    # What the ready file says

    @property
    def instances(self) -> dict[str, str]:
        return dict(self.ready["instances"])

    @property
    def activation_url(self) -> str:
        return str(self.ready["activation_server"])

    @property
    def apikey(self) -> str:
        return str(self.ready["apikey"])

    @property
    def ca_cert(self) -> str | None:
        value = self.ready.get("ca_cert")
        return None if value is None else str(value)

    @property
    def key(self) -> str:
        return str(self.ready["keys"][0]["key"])

    def urls(self) -> list[str]:
        return [*self.instances.values(), self.activation_url]

    def addresses(self) -> list[tuple[str, int]]:
        return [host_port(url) for url in self.urls()]


def start_all(processes: Iterable[MockcoreProcess]) -> list[MockcoreProcess]:
    """Start every process first, then wait for each: start-ups overlap."""
    started = [process.start() for process in processes]
    try:
        for process in started:
            process.wait_ready()
    except BaseException:
        for process in started:
            process.kill()
        raise
    return started


def run_all(processes: Iterable[MockcoreProcess], timeout: float = EXIT_TIMEOUT) -> list[Exited]:
    """Start every process, then wait for each to exit by itself (for start-up errors)."""
    started = [process.start() for process in processes]
    try:
        return [process.wait_exit(timeout) for process in started]
    finally:
        for process in started:
            process.kill()
