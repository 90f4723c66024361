"""The mock fleet a client is checked against: one the harness starts (`mockcore serve` in a subprocess, on free
ports; contracts never imports mockcore) or a running one given by URL. Either way the harness reaches it over
real HTTP (or HTTPS) and drives it through its control plane.

Over HTTPS the harness makes its own throwaway certificates (`Certificates`): a CA, a certificate it signs for the
loopback addresses (the fleet's, when the harness starts it, and its relays'), and two a client must refuse: one
for the right addresses signed by another CA, one signed by the CA for another host name.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from contracts.target import Fleet, Target, TargetError, discover, load_overrides

DEFAULT_INSTANCES = ("prod", "backup", "spare")
# The mock the harness starts has two keys: one with two slots (a production and another), one with a single slot
# (so "no free slot" happens), each valid for a year. Like real keys they mix upper and lower case with digits (a
# client that changes a key's case sends another key), and they are drawn afresh for every run (`fresh_keys`), so a
# client cannot pass by using a key it read somewhere instead of the one it is given. EXAMPLE_KEYS are the ones the
# docs show, for tests that want fixed keys.
KEY_TERMS = ((2, 365), (1, 365))  # (slots, days) of each key
EXAMPLE_KEYS = ("k3Fq-8ZtA-mW2x-Pq7R-c9Lh-4VnB-tY6d:2:365", "H7pX-2bNq-9TkW-dF4m-Rz8C-5gLs-Qe3J:1:365")
KEY_GROUPS, GROUP_LENGTH = 7, 4
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
JOURNAL_CAP = 1000
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WRONG_HOST = "impostor.invalid"  # the host name of the certificate that names another host


def fresh_key() -> str:
    """A new activation key: seven groups of four letters and digits, with upper case, lower case and a digit."""
    alphabet = string.ascii_letters + string.digits
    while True:
        text = "".join(secrets.choice(alphabet) for _ in range(KEY_GROUPS * GROUP_LENGTH))
        if any(c.isupper() for c in text) and any(c.islower() for c in text) and any(c.isdigit() for c in text):
            return "-".join(text[i : i + GROUP_LENGTH] for i in range(0, len(text), GROUP_LENGTH))


def fresh_keys() -> tuple[str, ...]:
    """The keys of a mock the harness starts (`--key` specs: KEY:SLOTS:DAYS), drawn afresh."""
    return tuple(f"{fresh_key()}:{slots}:{days}" for slots, days in KEY_TERMS)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    now = datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, hosts: Sequence[str]
) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for `hosts` (names or IP addresses), signed by the CA."""
    now = datetime.now(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@dataclass(frozen=True)
class Certificates:
    """The harness's throwaway TLS material, in `directory` (removed by `remove()`).

    `trust` is the CA file a client is given (`Instance.ca_path`) for the fleet: the harness's own CA when it
    serves the fleet, else the fleet's CA (`--ca`); `relay_trust` the one given for a call through the harness's
    relay (the fleet's CA and the harness's together). `server` is signed by the harness's CA for the loopback
    addresses; `untrusted` is for the same addresses, signed by another CA; `wrong_host` is signed by the
    harness's CA for another host name only."""

    directory: Path
    trust: Path
    relay_trust: Path
    server: tuple[Path, Path]  # (certificate, key)
    untrusted: tuple[Path, Path]
    wrong_host: tuple[Path, Path]

    @classmethod
    def make(cls, fleet_ca: Path | None = None) -> Certificates:
        directory = Path(tempfile.mkdtemp(prefix="mockcore-contracts-tls-"))
        ca_key, ca_cert = _new_ca("mockcore-contracts throwaway CA")
        other_key, other_cert = _new_ca("mockcore-contracts impostor CA")
        ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
        (directory / "ca.pem").write_bytes(ca_pem)
        if fleet_ca is None:
            trust = relay_trust = directory / "ca.pem"
        else:
            trust = fleet_ca.resolve()
            relay_trust = directory / "fleet-and-relay-ca.pem"
            relay_trust.write_bytes(trust.read_bytes().rstrip(b"\n") + b"\n" + ca_pem)
        pairs = {}
        for name, (key, cert, hosts) in {
            "server": (ca_key, ca_cert, LOOPBACK),
            "untrusted": (other_key, other_cert, LOOPBACK),
            "wrong-host": (ca_key, ca_cert, (WRONG_HOST,)),
        }.items():
            cert_pem, key_pem = _server_cert(key, cert, hosts)
            pair = (directory / f"{name}.pem", directory / f"{name}-key.pem")
            pair[0].write_bytes(cert_pem)
            pair[1].write_bytes(key_pem)
            pair[1].chmod(0o600)
            pairs[name] = pair
        return cls(directory, trust, relay_trust, pairs["server"], pairs["untrusted"], pairs["wrong-host"])

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


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
    def start(
        cls,
        instances: Sequence[str] = DEFAULT_INSTANCES,
        keys: Sequence[str] | None = None,
        certificates: Certificates | None = None,
    ) -> ServedMock:
        """`mockcore serve` on free ports, with `keys` (default: fresh ones); with `certificates`, every face over
        HTTPS with their `server` pair."""
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
        for key in fresh_keys() if keys is None else keys:
            command += ["--key", key]
        if certificates is not None:
            command += ["--tls-cert", str(certificates.server[0]), "--tls-key", str(certificates.server[1])]
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
    url: str,
    *,
    apikey: str | None = None,
    control_token: str | None = None,
    overrides: Path | None = None,
    ca: Path | None = None,
) -> Fleet:
    """A running mock, given any of its faces' base URLs: its instances, activation server and keys come from its
    control plane; without an apikey the harness logs in (admin:admin) on every instance. `overrides`: the
    fidelity overrides file the mock runs with, so the model expects its texts; `ca`: the CA file its HTTPS
    certificate is verified with."""
    if url.startswith("https://") and ca is None:
        raise TargetError(f"{url} is served over HTTPS: give the CA its certificate is signed with (--ca FILE)")
    verify: bool | str = str(ca) if ca is not None else True
    target = Target.from_urls([url], apikey=apikey, control=True, control_token=control_token, verify=verify)
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
