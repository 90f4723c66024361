"""`check_client`: one call that validates a client, starting a mock fleet of its own when no URL is given."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contracts.client.adapter import ClientDriver, PythonClient
from contracts.client.command import CommandClient
from contracts.client.harness import HarnessSettings, run_harness
from contracts.client.report import ClientReport
from contracts.client.serve import DEFAULT_INSTANCES, Certificates, ServedMock, connect
from contracts.target import TargetError


def driver_for(client: Any, *, call_timeout: float = 30.0) -> ClientDriver:
    """A driver from what the user has: a driver, a command line (str) or a Python adapter object."""
    if isinstance(client, PythonClient | CommandClient):
        return client
    if isinstance(client, str):
        return CommandClient(client, timeout=call_timeout)
    return PythonClient(client, timeout=call_timeout)


def check_client(
    client: Any,
    *,
    url: str | None = None,
    apikey: str | None = None,
    control_token: str | None = None,
    settings: HarnessSettings | None = None,
    instances: Sequence[str] = DEFAULT_INSTANCES,
    keys: Sequence[str] | None = None,
    call_timeout: float = 30.0,
    overrides: Path | None = None,
    tls: bool = False,
    ca: Path | None = None,
) -> ClientReport:
    """Validate `client` (a Python adapter object, a command line, or a driver) against the mock at `url`, or
    against a `mockcore serve` the harness starts and stops (with `overrides`, the fidelity overrides file the mock
    at `url` runs with). `tls`: the mock the harness starts serves HTTPS with a throwaway CA of the harness's;
    `ca`: the CA file of an HTTPS mock at `url`. Raises TargetError when the mock cannot be used."""
    if tls and url is not None:
        raise TargetError("--tls serves the mock the harness starts over HTTPS; for an HTTPS mock at --url give --ca")
    if ca is not None and url is None:
        raise TargetError("--ca goes with --url (the CA of a running HTTPS mock); --tls makes the harness's own")
    driver = driver_for(client, call_timeout=call_timeout)
    served: ServedMock | None = None
    certificates = Certificates.make() if tls else None
    try:
        if url is None:
            served = ServedMock.start(instances, keys, certificates)
            url, apikey = served.url, None  # log in on each instance: an apikey each
        if certificates is not None:
            ca = certificates.trust
        fleet = connect(url, apikey=apikey, control_token=control_token, overrides=overrides, ca=ca)
        try:
            return run_harness(driver, fleet, settings, certificates)
        finally:
            fleet.connection.close()
    finally:
        driver.close()
        if served is not None:
            served.stop()
        if certificates is not None:
            certificates.remove()
