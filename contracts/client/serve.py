"""The mock fleet a client is checked against: one the harness starts (`mockcore serve` in a subprocess, on free
ports; contracts never imports mockcore) or a running one given by URL. Either way the harness reaches it over
real HTTP and drives it through its control plane."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from contracts.target import Fleet, Target, TargetError, discover, load_overrides

DEFAULT_INSTANCES = ("prod", "backup", "spare")
# Two keys: one with two slots (a production and another), one with a single slot (so "no free slot" happens).
DEFAULT_KEYS = ("CLNT-AAAA-0000-1111-2222-3333-0002:2:365", "CLNT-BBBB-0000-1111-2222-3333-0001:1:365")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
JOURNAL_CAP = 1000
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def mockcore_command() -> list[str]:
    """How to run `mockcore`: the console script beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).with_name("mockcore")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("mockcore")
    if found:
        return [found]
    raise TargetError("mockcore is not installed here (no `mockcore` command): install it, or give --url")


@dataclass
class ServedMock:
    """`mockcore serve` in a subprocess; stop() it (SIGTERM, then SIGKILL)."""

    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    workdir: Path

    @classmethod
    def start(cls, instances: Sequence[str] = DEFAULT_INSTANCES, keys: Sequence[str] = DEFAULT_KEYS) -> ServedMock:
        workdir = Path(tempfile.mkdtemp(prefix="mockcore-contracts-client-"))
        ready_file = workdir / "ready.json"
        command = [
            *mockcore_command(),
            "serve",
            "--port",
            "0",
            "--activation-port",
            "0",
            "--ready-file",
            str(ready_file),
        ]
        for name in instances:
            command += ["--instance", name]
        for key in keys:
            command += ["--key", key]
        stderr = (workdir / "stderr.txt").open("wb")
        try:
            process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=stderr, stdin=subprocess.DEVNULL, start_new_session=True
            )
        finally:
            stderr.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                text = (workdir / "stderr.txt").read_text(errors="replace")[-2000:]
                _stop(process)
                shutil.rmtree(workdir, ignore_errors=True)
                raise TargetError(f"`{' '.join(command)}` did not start: {text or 'no output'}")
            time.sleep(0.05)
        ready = json.loads(ready_file.read_text())
        return cls(process, ready, workdir)

    @property
    def url(self) -> str:
        return str(next(iter(self.ready["instances"].values())))

    @property
    def apikey(self) -> str:
        return str(self.ready["apikey"])

    def stop(self) -> None:
        _stop(self.process)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ServedMock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def connect(
    url: str, *, apikey: str | None = None, control_token: str | None = None, overrides: Path | None = None
) -> Fleet:
    """A running mock, given any of its faces' base URLs: its instances, activation server and keys come from its
    control plane; without an apikey the harness logs in (admin:admin) on every instance. `overrides`: the
    fidelity overrides file the mock runs with, so the model expects its texts."""
    target = Target.from_urls([url], apikey=apikey, control=True, control_token=control_token)
    if overrides is not None:
        target.catalogue = load_overrides(overrides)
    if apikey is None:
        target.admin = ("admin", "admin")
    try:
        fleet = discover(target)
    except OSError as exc:  # requests' connection errors
        raise TargetError(f"cannot reach the mock at {url}: {exc}") from exc
    if urlsplit(url).hostname in LOOPBACK:
        fleet.connection.session.trust_env = False  # no proxy for loopback (and no environment scan per request)
    problems = []
    if len(fleet.instances) < 2:
        problems.append(f"at least two instances (it has {', '.join(fleet.instances)})")
    if fleet.activation_url is None:
        problems.append("an activation server")
    if not fleet.keys():
        problems.append("an activation key")
    if problems:
        raise TargetError(f"the harness needs a mock with {' and '.join(problems)}")
    info = fleet.control_request("GET", "journal?limit=0")
    if not info.get("cap"):
        fleet.control_request("PUT", "journal/config", {"cap": JOURNAL_CAP})
    return fleet
