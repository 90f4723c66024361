"""Bad input never yields a 5xx or a traceback, and never changes state (docs/behaviour.md, "Request handling" and
"Order of checks"; docs/errors.md: E_BAD_REQUEST / E_TOO_LARGE / E_INVALID_LICENSE; docs/decisions.md, "Decisions
where the vendor is silent").

Most tests share one *arena* fleet whose instances sit in every licence state, so each bad request is tried
where the state rule would otherwise answer first:

- ``u`` unlicensed (its deployment holds a stale slot on key 2: a file was obtained for it, never uploaded),
- ``a`` active online on key 1, ``o`` active offline on key 1 (uploaded file),
- ``b`` backup-online of ``a``, ``f`` backup-offline with ``o``'s file.

Every refused request is checked to leave ``running.snapshot()`` exactly as it was; if one does change it, the
arena is rebuilt before the next test so one failure does not cascade.
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockcore.fleet import Fleet, FleetConfig, KeySpec
from mockcore.server import ACTIVATION
from tests.client import CoreClient
from tests.conftest import FleetFactory, RunningFleet, serve_fleet

# docs/errors.md texts (written out here, not imported, so the test is a second opinion on the catalogue).
INVALID_LICENSE = "Invalid license"
BAD_REQUEST = "Invalid request."
TOO_LARGE = "Request body is too large."
NOT_FOUND = "Not found."
METHOD = "Method not allowed."
ACCESS = "Access denied"
ACTIVATE_BACKUP = (
    "This instance is registered as a backup. Nominate it, or remove the backup registration before activating it."
)
REGISTER_ACTIVE = "An activated instance cannot be registered as a backup."
ALREADY_BACKUP = "This instance is already registered as a backup."
BACKUP_REQUEST = "Provide the activation-key and active-deployment-id headers, or a license file body."
BACKUP_KEY = "The activation key is not valid."
BACKUP_PRODUCTION = "The active deployment is not activated with this activation key."

TEN_MB = 10 * 1024 * 1024
INSTANCES = ("u", "a", "o", "b", "f")
ACTIVE = ("a", "o")
BACKUPS = ("b", "f")
UNKNOWN_KEY = "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ"
UNKNOWN_DEPLOYMENT = "MSCL" + "0" * 32


# The arena


@dataclass
class Arena:
    running: RunningFleet
    deployments: dict[str, str]
    key1: str
    key2: str
    own_file: bytes  # a valid licence file issued for u (key 2), never uploaded
    production_file: bytes  # o's licence file (key 1), uploaded on o and registered on f
    pristine: tuple[object, ...] = ()
    licence_bodies: dict[str, bytes] = field(default_factory=dict)

    def client(self, name: str, apikey: str | None = "") -> CoreClient:
        return self.running.core(name, apikey)


def serve(instances: tuple[str, ...], keys: tuple[KeySpec, ...]) -> RunningFleet:
    fleet = Fleet(FleetConfig(instances=instances, keys=keys))
    return serve_fleet(fleet)


def ok(response: requests.Response) -> requests.Response:
    assert response.status_code == 200 and response.reason == "OK", (response.status_code, response.text)
    return response


def build_arena() -> Arena:
    running = serve(INSTANCES, (KeySpec(slots=2), KeySpec(slots=1, days=200)))
    key1, key2 = running.keys
    deployments = {name: running.core(name).deployment() for name in INSTANCES}
    ok(running.core("a").activate(key1))
    production_file = ok(running.activation.obtain(key1, deployments["o"])).content
    ok(running.core("o").upload(production_file))
    own_file = ok(running.activation.obtain(key2, deployments["u"])).content
    ok(running.core("b").register_online(key1, deployments["a"]))
    ok(running.core("f").register_offline(production_file))
    arena = Arena(running, deployments, key1, key2, own_file, production_file)
    arena.pristine = running.snapshot()
    arena.licence_bodies = _licence_variants(own_file)
    return arena


@dataclass
class ArenaCache:
    arena: Arena | None = None

    def get(self) -> Arena:
        """The shared arena, rebuilt when an earlier (failing) test left it changed."""
        if self.arena is not None and self.arena.running.snapshot() != self.arena.pristine:
            self.close()
        if self.arena is None:
            self.arena = build_arena()
        return self.arena

    def close(self) -> None:
        if self.arena is not None:
            self.arena.running.server.stop()
            self.arena = None


@pytest.fixture(scope="module")
def arena_cache() -> Iterator[ArenaCache]:
    cache = ArenaCache()
    yield cache
    cache.close()


@pytest.fixture
def arena(arena_cache: ArenaCache) -> Arena:
    return arena_cache.get()


# Checks


def describe(response: requests.Response) -> str:
    return (
        f"{response.request.method} {response.url} -> {response.status_code} {response.reason}: {response.text[:300]!r}"
    )


def assert_json_error(response: requests.Response, status: int | None = None, text: str | None = None) -> None:
    """A 4xx whose body is exactly `{"err": <str>}` as JSON: no HTML page, no traceback."""
    assert 400 <= response.status_code < 500, describe(response)
    assert "Traceback" not in response.text, describe(response)
    assert "<html" not in response.text.lower(), describe(response)
    assert response.headers.get("Content-Type", "").startswith("application/json"), describe(response)
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"err"} and isinstance(body["err"], str), describe(response)
    if status is not None:
        assert response.status_code == status, describe(response)
    if text is not None:
        assert body["err"] == text, describe(response)


def refused(
    running: RunningFleet,
    send: Callable[[], requests.Response],
    status: int | None = None,
    text: str | None = None,
    label: str = "",
) -> requests.Response:
    """Send a bad request: it must be a JSON 4xx and leave every licence and slot holder as it was."""
    before = running.snapshot()
    response = send()
    try:
        assert_json_error(response, status, text)
        assert running.snapshot() == before, f"a refused request changed state: {describe(response)}"
    except AssertionError as failure:
        if label:
            failure.args = (f"[{label}] {failure.args[0] if failure.args else ''}",)
        raise
    return response


def chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    """A generator body: requests sends it with `Transfer-Encoding: chunked` and no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def payload(body: bytes, chunked: bool) -> bytes | Iterator[bytes]:
    return chunks(body) if chunked else body


# Bad bodies

_GARBAGE = random.Random(20240601).randbytes(4096)
_HUGE_DIGITS = "1" + "0" * 400  # 10**400
_HUGER_DIGITS = "9" * 5000  # past Python's 4300-digit int conversion limit


_MISSING = object()


def _activation(**fields: object) -> bytes:
    doc: dict[str, object] = {"activationKey": "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG", "quantity": 1, "comment": "x"}
    doc.update(fields)
    return json.dumps({k: v for k, v in doc.items() if v is not _MISSING}).encode()


# Bodies every JSON endpoint refuses with E_BAD_REQUEST (docs/errors.md: malformed JSON, non-object JSON).
MALFORMED_JSON: Mapping[str, bytes] = {
    "empty": b"",
    "truncated": b'{"activationKey": ',
    "single-quotes": b"{'activationKey': 'x'}",
    "trailing-comma": b'{"quantity": 1,}',
    "bare-word": b"nul",
    "list": b'["AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG", 1]',
    "empty-list": b"[]",
    "string": b'"activationKey"',
    "number": b"42",
    "null": b"null",
    "true": b"true",
    "non-utf8": b'{"activationKey": "\xff\xfe\xfa", "quantity": 1}',
    "utf16": '{"activationKey": "x"}'.encode("utf-16"),
    "utf8-bom-then-invalid": b"\xef\xbb\xbf\xff{}",
    "nested-60000": b"[" * 60000,
    "garbage": _GARBAGE,
    "nul-bytes": b"\x00" * 128,
}

# Bodies with the right shape but wrong field types or values: E_BAD_REQUEST on the activation endpoint.
BAD_ACTIVATION_FIELDS: Mapping[str, bytes] = {
    "quantity-list": _activation(quantity=[1]),
    "quantity-object": _activation(quantity={"n": 1}),
    "quantity-null": _activation(quantity=None),
    "quantity-true": _activation(quantity=True),
    "quantity-false": _activation(quantity=False),
    "quantity-float": _activation(quantity=1.5),
    "quantity-10**400": b'{"activationKey": "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG", "quantity": '
    + _HUGE_DIGITS.encode()
    + b"}",
    "quantity-9x5000": b'{"activationKey": "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG", "quantity": '
    + _HUGER_DIGITS.encode()
    + b"}",
    "quantity-string-10**400": _activation(quantity=_HUGE_DIGITS),
    "quantity-string-9x5000": _activation(quantity=_HUGER_DIGITS),
    "quantity-1e999": b'{"activationKey": "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG", "quantity": 1e999}',
    "quantity-NaN": b'{"activationKey": "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG", "quantity": NaN}',
    "quantity-minus-infinity": b'{"activationKey": "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG", "quantity": -Infinity}',
    "quantity-negative": _activation(quantity=-1),
    "quantity-0": _activation(quantity=0),
    "quantity-1001": _activation(quantity=1001),
    "quantity-string-0": _activation(quantity="0"),
    "quantity-string-1001": _activation(quantity="1001"),
    "quantity-string-negative": _activation(quantity="-1"),
    "quantity-string-float": _activation(quantity="1.5"),
    "quantity-string-empty": _activation(quantity=""),
    "quantity-string-word": _activation(quantity="one"),
    "quantity-string-arabic-digit": _activation(quantity="\u0663"),
    "key-number": _activation(activationKey=12345),
    "key-null": _activation(activationKey=None),
    "key-missing": _activation(activationKey=_MISSING),
    "key-list": _activation(activationKey=["AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG"]),
    "key-bool": _activation(activationKey=True),
    "comment-number": _activation(comment=7),
    "comment-null": _activation(comment=None),
}


def _licence_variants(own_file: bytes) -> dict[str, bytes]:
    """Licence bodies that are not a valid licence for anyone (own_file: a valid file to forge from)."""
    doc = yaml.safe_load(own_file)

    def forged(**changes: object) -> bytes:
        edited = {**doc, **changes}
        return yaml.safe_dump(edited, sort_keys=False, allow_unicode=True).encode()

    lol = [b'lol1: ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'.replace(b"lol1:", b"lol1: &lol1")]
    lol += [b"lol%d: &lol%d [%s]\n" % (i, i, b",".join([b"*lol%d" % (i - 1)] * 9)) for i in range(2, 10)]
    return {
        "empty": b"",
        "garbage": _GARBAGE,
        "non-utf8": own_file.replace(b"mockcore", b"mock\xffcore"),
        "json": json.dumps({k: str(v) for k, v in doc.items()}).encode(),
        "yaml-list": b"- a\n- b\n",
        "yaml-scalar": b"just a string\n",
        "python-apply-os-system": b'!!python/object/apply:os.system ["echo hi"]\n',
        "python-apply-in-field": own_file.replace(
            b"licensed_to: mockcore", b'licensed_to: !!python/object/apply:os.system ["echo hi"]'
        ),
        "python-name": b"!!python/name:os.system\n",
        "billion-laughs": b"".join(lol),
        "nested-100000": b"[" * 100000,
        "nested-mapping-100000": b"{a: " * 100000,
        "anchor-in-licence": own_file.replace(b"licensed_to: mockcore", b"licensed_to: &x mockcore"),
        "forged-signature-hex": forged(signature="0" * 64),
        "forged-signature-non-ascii": forged(signature="\u00e9" * 64),
        "forged-signature-empty": forged(signature=""),
        "forged-signature-number": forged(signature=12345),
        "edited-field": forged(licensed_to="somebody else"),
        "edited-expiration": forged(expiration="12/31/2099"),
        "extra-field": forged(extra="x"),
        "missing-field": yaml.safe_dump({k: v for k, v in doc.items() if k != "issued"}).encode(),
        "online-true": forged(online=True),
        "ten-mb": own_file + b"#" * TEN_MB,
    }


# Activation and the other JSON endpoints


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("case", [*MALFORMED_JSON, *BAD_ACTIVATION_FIELDS])
def test_bad_activation_body_is_refused_in_every_state(arena: Arena, case: str, chunked: bool) -> None:
    """Well-formedness is checked before the state rule (docs/behaviour.md, Order of checks), so every state
    answers E_BAD_REQUEST."""
    body = {**MALFORMED_JSON, **BAD_ACTIVATION_FIELDS}[case]
    for name in INSTANCES:
        client = arena.client(name)
        refused(
            arena.running,
            partial(
                client.request,
                "POST",
                "/admin/license/activation",
                data=payload(body, chunked),
                headers={"Content-Type": "application/json"},
            ),
            400,
            BAD_REQUEST,
        )


JSON_ENDPOINTS = [
    ("POST", "/admin/license/activation"),
    ("POST", "/login"),
    ("POST", "/user/changepassword"),
    ("PUT", "/admin/user/2"),
]


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_ten_megabytes_to_a_json_endpoint_is_too_large(arena: Arena, method: str, path: str, chunked: bool) -> None:
    body = b'{"activationKey": "' + b"A" * TEN_MB + b'"}'
    for name in ("u", "a", "b"):
        client = arena.client(name)
        refused(arena.running, partial(client.request, method, path, data=payload(body, chunked)), 413, TOO_LARGE)


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS[1:])
def test_malformed_json_on_account_endpoints(arena: Arena, method: str, path: str) -> None:
    client = arena.client("u")
    for case, body in MALFORMED_JSON.items():
        refused(arena.running, partial(client.request, method, path, data=body), 400, BAD_REQUEST, label=case)
    wrong_types: list[dict[str, Any]] = [
        {"user": 1, "password": "admin"},
        {"user": "admin", "password": None},
        {"old_password": None, "new_password": ["x"]},
        {"old_password": "admin", "new_password": 5},
        {"api_key": 12345},
        {"api_key": None},
    ]
    for doc in wrong_types:
        refused(arena.running, partial(client.request, method, path, json=doc), label=str(doc))
    # Nothing about the account changed: the admin still logs in with the original password, no API key was set.
    login = client.request("POST", "/login", json={"user": "admin", "password": "admin"})
    assert login.status_code == 200, describe(login)
    assert client.request("GET", "/user").json()["api_key"] == ""


def test_bad_body_without_apikey_is_access_denied_first(arena: Arena) -> None:
    """Authentication comes before well-formedness (docs/behaviour.md, Order of checks): missing apikey 400,
    unknown apikey 403."""
    for name in ("u", "a", "b"):
        missing, unknown = arena.client(name, None), arena.client(name, "0" * 36)
        for path in ("/admin/license/activation", "/admin/license", "/admin/license/backup"):
            refused(arena.running, partial(missing.request, "POST", path, data=_GARBAGE), 400, ACCESS)
            refused(arena.running, partial(unknown.request, "POST", path, data=_GARBAGE), 403, ACCESS)


# Licence bodies: upload and offline registration


# Costly bodies (PyYAML takes about a second on 100000 brackets) are tried on one instance per answer path: u
# (the file is parsed), a (active: parsed too), b (backup: the state rule answers); the rest on all five.
COSTLY = frozenset({"nested-100000", "ten-mb"})


def _instances_for(case: str) -> tuple[str, ...]:
    return ("u", "a", "b") if case in COSTLY else INSTANCES


def _licence_case_ids() -> list[str]:
    return list(_licence_variants(yaml.safe_dump({"signature": "x"}).encode()))


def _expected_upload(name: str) -> str:
    """Upload: the state rule first (backups refuse any upload), then the file (docs/behaviour.md, Order of
    checks)."""
    return ACTIVATE_BACKUP if name in BACKUPS else INVALID_LICENSE


def _expected_offline_registration(name: str, body: bytes) -> str:
    """Offline registration: no body at all is malformed (E_BACKUP_REQUEST) before the state rule; then the state
    rule; then the file (docs/behaviour.md, Order of checks; docs/decisions.md, 'Backup registration request')."""
    if not body:
        return BACKUP_REQUEST
    if name in ACTIVE:
        return REGISTER_ACTIVE
    if name in BACKUPS:
        return ALREADY_BACKUP
    return INVALID_LICENSE


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("case", _licence_case_ids())
def test_bad_licence_upload_is_refused(arena: Arena, case: str, chunked: bool) -> None:
    body = arena.licence_bodies[case]
    for name in _instances_for(case):
        client = arena.client(name)
        refused(
            arena.running,
            partial(
                client.request,
                "POST",
                "/admin/license",
                data=payload(body, chunked),
                headers={"Content-Type": "application/octet-stream"},
            ),
            400,
            _expected_upload(name),
        )


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("case", _licence_case_ids())
def test_bad_licence_offline_registration_is_refused(arena: Arena, case: str, chunked: bool) -> None:
    body = arena.licence_bodies[case]
    for name in _instances_for(case):
        client = arena.client(name)
        refused(
            arena.running,
            partial(
                client.request,
                "POST",
                "/admin/license/backup",
                data=payload(body, chunked),
                headers={"Content-Type": "application/octet-stream"},
            ),
            400,
            _expected_offline_registration(name, body),
        )


def test_licence_file_for_another_deployment_is_refused(arena: Arena) -> None:
    """Upload: a file must be issued for this deployment; offline registration: for another one
    (docs/behaviour.md, Transitions)."""
    for name in INSTANCES:
        client = arena.client(name)
        for other_file in (arena.own_file, arena.production_file):
            owner = "u" if other_file is arena.own_file else "o"
            if owner == name:
                continue
            refused(arena.running, partial(client.upload, other_file), 400, _expected_upload(name))
    # Registering u offline with its own file (a backup of itself) is E_INVALID_LICENSE (docs/decisions.md, 'A
    # backup of itself').
    refused(arena.running, partial(arena.client("u").register_offline, arena.own_file), 400, INVALID_LICENSE)


def test_yaml_tags_never_run_code(arena: Arena, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    bodies = [
        f'!!python/object/apply:os.system ["touch {canary}"]\n'.encode(),
        f'!!python/object/apply:subprocess.check_call [["touch", "{canary}"]]\n'.encode(),
        f'!!python/object/new:os.system ["touch {canary}"]\n'.encode(),
        arena.own_file.replace(
            b"licensed_to: mockcore", f'licensed_to: !!python/object/apply:os.system ["touch {canary}"]'.encode()
        ),
    ]
    for body in bodies:
        for name in INSTANCES:
            client = arena.client(name)
            refused(arena.running, partial(client.upload, body), 400, _expected_upload(name))
            refused(
                arena.running,
                partial(client.register_offline, body),
                400,
                _expected_offline_registration(name, body),
            )
    assert not canary.exists(), "a YAML tag ran a command"


def test_expired_licence_file_is_refused(make_fleet: FleetFactory) -> None:
    """Expired files are E_INVALID_LICENSE for upload and offline registration (docs/decisions.md); an expired key is
    refused by the activation server."""
    running = make_fleet(instances=("x", "y", "z"), keys=(KeySpec(slots=3, days=30),))
    x, y, z = (running.core(name) for name in ("x", "y", "z"))
    ok(z.activate(running.key))  # z: active online, so the state rule would answer first for it
    x_file = ok(running.activation.obtain(running.key, x.deployment())).content
    y_file = ok(running.activation.obtain(running.key, y.deployment())).content
    running.fleet.advance_clock(timedelta(days=45))
    for client in (x, y):
        client.licence()  # bring every instance up to date before comparing snapshots
    refused(running, partial(x.upload, x_file), 400, INVALID_LICENSE)
    refused(running, partial(y.register_offline, x_file), 400, INVALID_LICENSE)
    refused(running, partial(z.register_offline, y_file), 400, REGISTER_ACTIVE)
    refused(running, partial(x.activate, running.key), 400)  # E_ACTIVATION_FAILED carries the server's text
    before = running.snapshot()
    answer = running.activation.obtain(running.key, y.deployment())
    assert (answer.status_code, answer.reason) == (200, "Activation failed"), answer.text
    assert running.snapshot() == before


# Backup registration requests


def test_malformed_backup_registration_in_every_state(arena: Arena) -> None:
    """Both headers and a body, or one header alone, is E_BACKUP_REQUEST before the state rule (docs/decisions.md,
    Backup registration request)."""
    key, production = arena.key1, arena.deployments["a"]
    variants: list[tuple[dict[str, str], bytes]] = [
        ({"activation-key": key, "active-deployment-id": production}, arena.production_file),
        ({"activation-key": key}, b""),
        ({"active-deployment-id": production}, b""),
        ({"activation-key": key}, arena.production_file),
        ({"active-deployment-id": production}, _GARBAGE),
        ({}, b""),
    ]
    for name in INSTANCES:
        client = arena.client(name)
        for headers, body in variants:
            refused(
                arena.running,
                partial(client.request, "POST", "/admin/license/backup", headers=headers, data=body),
                400,
                BACKUP_REQUEST,
            )


def test_bad_online_backup_registration(arena: Arena) -> None:
    u = arena.client("u")
    cases: list[tuple[str, str, str]] = [
        (UNKNOWN_KEY, arena.deployments["a"], BACKUP_KEY),
        ("not-a-key", arena.deployments["a"], BACKUP_KEY),
        ("", "", BACKUP_KEY),
        (arena.key1, UNKNOWN_DEPLOYMENT, BACKUP_PRODUCTION),
        (arena.key1, "not-a-deployment", BACKUP_PRODUCTION),
        (arena.key1, arena.deployments["u"], BACKUP_PRODUCTION),  # itself
        (arena.key2, arena.deployments["u"], BACKUP_PRODUCTION),  # itself, though it holds a slot on key 2
        (arena.key2, arena.deployments["a"], BACKUP_PRODUCTION),  # a is active on key 1, not key 2
        (arena.key1, arena.deployments["b"], BACKUP_PRODUCTION),  # a backup holds no slot
    ]
    for key, production, text in cases:
        refused(arena.running, partial(u.register_online, key, production), 400, text)
    for name, text in (("a", REGISTER_ACTIVE), ("o", REGISTER_ACTIVE), ("b", ALREADY_BACKUP), ("f", ALREADY_BACKUP)):
        client = arena.client(name)
        for key, production, _ in cases:
            refused(arena.running, partial(client.register_online, key, production), 400, text)


# Unknown paths and methods, on every face

CORE_ROUTES: Mapping[str, frozenset[str]] = {
    "/login": frozenset({"POST"}),
    "/logout": frozenset({"POST"}),
    "/user": frozenset({"GET"}),
    "/user/changepassword": frozenset({"POST"}),
    "/admin/user/2": frozenset({"PUT"}),
    "/admin/license": frozenset({"GET", "POST"}),
    "/admin/license/activation": frozenset({"POST"}),
    "/admin/license/deactivation": frozenset({"POST"}),
    "/admin/license/backup": frozenset({"GET", "POST", "DELETE"}),
    "/admin/license/backup/nomination": frozenset({"POST"}),
    "/version": frozenset({"GET"}),
    "/readyz": frozenset({"GET"}),
    "/stat/engines": frozenset({"GET"}),
    "/admin/engine/clamav_1_linux/enable": frozenset({"POST"}),
    "/admin/engine/clamav_1_linux/disable": frozenset({"POST"}),
    "/file": frozenset({"POST"}),
    "/file/0123456789abcdef0123456789abcdef": frozenset({"GET"}),
}
ACTIVATION_ROUTES: Mapping[str, frozenset[str]] = {
    "/activation": frozenset({"GET"}),
    "/deactivation": frozenset({"GET"}),
}
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "BREW", "PROPFIND")
UNKNOWN_PATHS = (
    "/",
    "/nope",
    "/admin",
    "/admin/licence",
    "/admin/license/",
    "/admin/license/nope",
    "/admin/license/backup/nomination/again",
    "/admin/user/abc",
    "/admin/engine/x/frobnicate",
    "/activation/extra",
    "/%ff%fe",
    "/" + "x" * 4000,
    "/..%2f..%2fetc%2fpasswd",
    "/_mock/nope",
)
FACES = ("u", "a", "b", ACTIVATION)


@pytest.mark.parametrize("face", FACES)
def test_unknown_paths_are_json_404(arena: Arena, face: str) -> None:
    session = requests.Session()
    base = arena.running.urls[face]
    for path in UNKNOWN_PATHS:
        for method in METHODS:
            refused(
                arena.running,
                partial(
                    session.request,
                    method,
                    base + path,
                    headers={"apikey": arena.running.apikey},
                    data=_GARBAGE[:64],
                    timeout=30,
                ),
                404,
                NOT_FOUND,
            )


@pytest.mark.parametrize("face", FACES)
def test_wrong_methods_are_json_405_with_allow(arena: Arena, face: str) -> None:
    session = requests.Session()
    base = arena.running.urls[face]
    routes = ACTIVATION_ROUTES if face == ACTIVATION else CORE_ROUTES
    for path, allowed in routes.items():
        for method in METHODS:
            if method in allowed:
                continue
            response = refused(
                arena.running,
                partial(
                    session.request,
                    method,
                    base + path,
                    headers={"apikey": arena.running.apikey},
                    data=_GARBAGE[:64],
                    timeout=30,
                ),
                405,
                METHOD,
            )
            allow = {m.strip() for m in response.headers.get("Allow", "").split(",")}
            assert allowed <= allow, f"{method} {path}: Allow {allow} misses {allowed}"
            assert method not in allow, f"{method} {path}: Allow lists the refused method"


# The activation server: bad queries are its documented failures, never a 5xx


def test_activation_server_bad_queries(arena: Arena) -> None:
    base = arena.running.urls[ACTIVATION]
    dep = arena.deployments["u"]
    session = requests.Session()
    bad_activation: list[dict[str, str]] = [
        {},
        {"key": arena.key1},
        {"key": "not-a-key", "deployment": dep, "quantity": "1"},
        {"key": arena.key1, "deployment": "MSCLnope", "quantity": "1"},
        {"key": arena.key1, "deployment": dep, "quantity": "0"},
        {"key": arena.key1, "deployment": dep, "quantity": "1001"},
        {"key": arena.key1, "deployment": dep, "quantity": "-1"},
        {"key": arena.key1, "deployment": dep, "quantity": "1.5"},
        {"key": arena.key1, "deployment": dep, "quantity": _HUGE_DIGITS},
        {"key": arena.key1, "deployment": dep, "quantity": _HUGER_DIGITS},
        {"key": arena.key1 + "\x00", "deployment": dep, "quantity": "1"},
    ]
    for params in bad_activation:
        before = arena.running.snapshot()
        response = session.get(base + "/activation", params=params, timeout=30)
        assert (response.status_code, response.reason) == (200, "Invalid parameter"), (params, describe(response))
        body = yaml.safe_load(response.text)
        assert isinstance(body, dict) and set(body) == {"error"} and isinstance(body["error"], str), response.text
        assert arena.running.snapshot() == before, params
    # Well-formed but refused: unknown key, and no free slot (key 1's two slots are held by a and o).
    for params, reason in (
        ({"key": UNKNOWN_KEY, "deployment": dep, "quantity": "1"}, "Activation failed"),
        ({"key": arena.key1, "deployment": dep, "quantity": "1"}, "Activation failed"),
    ):
        before = arena.running.snapshot()
        response = session.get(base + "/activation", params=params, timeout=30)
        assert (response.status_code, response.reason) == (200, reason), describe(response)
        assert arena.running.snapshot() == before
    for params in (
        {},
        {"key": arena.key1},
        {"key": arena.key1, "deployment": arena.deployments["b"]},  # a backup holds no slot
        {"key": arena.key2, "deployment": arena.deployments["a"]},
        {"key": "\u043a\u043b\u044e\u0447", "deployment": "\x00"},
    ):
        before = arena.running.snapshot()
        response = session.get(base + "/deactivation", params=params, timeout=30)
        assert response.status_code == 404, describe(response)
        assert "Traceback" not in response.text
        body = yaml.safe_load(response.text)
        assert isinstance(body, dict) and isinstance(body.get("error"), str), response.text
        assert arena.running.snapshot() == before, params


# Bodies that are not well-formed HTTP


def _raw_exchange(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)  # the whole request is out: a server waiting for more sees the end
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def _post(path: str, apikey: str, extra: bytes, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: mockcore\r\napikey: {apikey}\r\nConnection: close\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


RAW_APP_REQUESTS: Mapping[str, tuple[bytes, bytes]] = {
    "negative-content-length": (b"Content-Length: -5\r\n", b"{}"),
    "bad-chunk-size": (b"Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n"),
    "chunk-size-overflow": (b"Transfer-Encoding: chunked\r\n", b"ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n"),
}


@pytest.mark.parametrize("path", ["/admin/license/activation", "/admin/license", "/admin/license/backup", "/login"])
@pytest.mark.parametrize("case", list(RAW_APP_REQUESTS))
def test_broken_framing_reaching_the_app_is_a_json_4xx(arena: Arena, case: str, path: str) -> None:
    """A request whose line and headers parse reaches the app, so its error is the app's JSON, never a 500."""
    extra, body = RAW_APP_REQUESTS[case]
    for name in ("u", "a", "b"):
        before = arena.running.snapshot()
        status, headers, answer = _raw_exchange(
            arena.running.urls[name], _post(path, arena.running.apikey, extra, body)
        )
        assert 400 <= status < 500, (name, status, answer[:300])
        assert b"Traceback" not in answer
        assert headers.get("content-type", "").startswith("application/json"), (status, headers, answer[:300])
        doc = json.loads(answer)
        assert isinstance(doc, dict) and set(doc) == {"err"} and isinstance(doc["err"], str), answer
        assert arena.running.snapshot() == before


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST /admin/license HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,  # a TLS hello to a plain port
    ],
    ids=["no-request-line", "non-ascii-target", "non-numeric-length", "tls-hello"],
)
def test_unparseable_http_is_a_4xx_not_a_crash(arena: Arena, request_bytes: bytes) -> None:
    """Requests the HTTP server cannot parse never reach the app: they must still be a 4xx (or a closed
    connection), never a 5xx or a traceback."""
    for face in ("u", ACTIVATION):
        before = arena.running.snapshot()
        try:
            status, _, answer = _raw_exchange(arena.running.urls[face], request_bytes)
        except (ValueError, IndexError):  # the server closed the connection without an answer
            status, answer = 400, b""
        assert 400 <= status < 500, (status, answer[:300])
        assert b"Traceback" not in answer and b"<html" not in answer.lower()
        assert arena.running.snapshot() == before
    # The faces still serve afterwards.
    assert arena.client("u").licence().status_code == 200


def _split_responses(raw: bytes) -> list[tuple[int, bytes]]:
    """(status, body) of each HTTP/1.1 response in `raw`, in order (bodies framed by Content-Length)."""
    answers: list[tuple[int, bytes]] = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(
            (int(v) for k, _, v in (line.partition(":") for line in lines[1:]) if k.lower() == "content-length"), 0
        )
        answers.append((int(lines[0].split()[1]), rest[:length]))
        raw = rest[length:]
    return answers


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/admin/license/deactivation"),
        ("POST", "/admin/license/backup/nomination"),
        ("DELETE", "/admin/license/backup"),
        ("GET", "/admin/license"),
        ("POST", "/nope"),
    ],
)
def test_unread_chunked_body_does_not_poison_the_next_request(arena: Arena, method: str, path: str) -> None:
    """A chunked body sent to an endpoint that has no use for it must not be taken for the next request on the
    same keep-alive connection: the second, valid request must get its own JSON answer."""
    apikey = arena.running.apikey
    first = (
        f"{method} {path} HTTP/1.1\r\nHost: mockcore\r\napikey: {apikey}\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\n\r\n"
    ).encode()
    second = f"GET /admin/license HTTP/1.1\r\nHost: mockcore\r\napikey: {apikey}\r\nConnection: close\r\n\r\n".encode()
    parts = urlsplit(arena.running.urls["u"])
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as conn:
        conn.sendall(first + second)
        conn.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    answers = _split_responses(received)
    assert len(answers) == 2, received[:600]
    assert answers[0][0] < 500, answers[0]
    status, body = answers[1]
    assert status == 200, f"the valid second request got {status} {body[:200]!r}"
    assert json.loads(body)["deployment"] == arena.deployments["u"]


# Controls: the chunked path really reads the body (so the chunked cases above are not vacuous)


def test_chunked_valid_licence_upload_is_accepted(make_fleet: FleetFactory) -> None:
    running = make_fleet(instances=("x", "y"))
    x = running.core("x")
    licence_file = ok(running.activation.obtain(running.key, x.deployment())).content
    response = x.request(
        "POST", "/admin/license", data=chunks(licence_file, 16), headers={"Content-Type": "application/octet-stream"}
    )
    assert response.json() == {"success": True}, describe(response)
    y = running.core("y")
    response = y.request(
        "POST",
        "/admin/license/backup",
        data=chunks(licence_file, 16),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, describe(response)
    assert y.is_backup().json() == {"is_backup": True}


# Fuzz: Hypothesis-generated bodies and headers against every licence endpoint

LICENCE_ENDPOINTS = [
    ("GET", "/admin/license"),
    ("POST", "/admin/license"),
    ("POST", "/admin/license/activation"),
    ("POST", "/admin/license/deactivation"),
    ("GET", "/admin/license/backup"),
    ("POST", "/admin/license/backup"),
    ("DELETE", "/admin/license/backup"),
    ("POST", "/admin/license/backup/nomination"),
]
FUZZ_EXAMPLES = 13  # per endpoint: about 100 in all

_header_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60)
_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
_json_value = st.recursive(
    _json_scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def _bodies(draw: st.DrawFn, arena: Arena) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "activation", "licence"]))
    if kind == "bytes":
        return draw(st.binary(max_size=512))
    if kind == "json":
        return json.dumps(draw(_json_value)).encode()
    if kind == "activation":
        doc = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "activationKey": st.one_of(_json_value, st.sampled_from([arena.key1, arena.key2, UNKNOWN_KEY])),
                    "quantity": st.one_of(_json_value, st.integers(-5, 1005), st.text("0123456789 -+.e", max_size=8)),
                    "comment": _json_value,
                },
            )
        )
        return json.dumps(doc).encode()
    # A real licence file with one field replaced, or its bytes cut or flipped.
    doc = yaml.safe_load(draw(st.sampled_from([arena.own_file, arena.production_file])))
    mutation = draw(st.sampled_from(["field", "cut", "flip"]))
    raw = yaml.safe_dump(doc, sort_keys=False).encode()
    if mutation == "field":
        doc[draw(st.sampled_from(sorted(doc)))] = draw(_json_value)
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode()
    position = draw(st.integers(0, len(raw) - 1))
    if mutation == "cut":
        return raw[:position]
    return raw[:position] + bytes([raw[position] ^ draw(st.integers(1, 255))]) + raw[position + 1 :]


@st.composite
def _headers(draw: st.DrawFn, arena: Arena) -> dict[str, str]:
    headers: dict[str, str] = {}
    apikey = draw(st.sampled_from(["valid", "valid", "valid", "missing", "random"]))
    if apikey == "valid":
        headers["apikey"] = arena.running.apikey
    elif apikey == "random":
        headers["apikey"] = draw(_header_text)
    deployments = list(arena.deployments.values())
    if draw(st.booleans()):
        headers["activation-key"] = draw(st.one_of(st.sampled_from([arena.key1, arena.key2]), _header_text))
    if draw(st.booleans()):
        headers["active-deployment-id"] = draw(st.one_of(st.sampled_from(deployments), _header_text))
    if draw(st.booleans()):
        headers["Content-Type"] = draw(
            st.one_of(st.sampled_from(["application/json", "application/octet-stream", "text/yaml"]), _header_text)
        )
    return {name: value for name, value in headers.items() if value.strip() == value}


def _refresh(running: RunningFleet) -> None:
    """Read every licence, so lazily refreshed online instances are up to date before the next snapshot."""
    for name in running.fleet.names:
        running.core(name).licence()


@pytest.mark.parametrize(("method", "path"), LICENCE_ENDPOINTS)
def test_fuzzed_requests_to_licence_endpoints_never_fail_server_side(method: str, path: str) -> None:
    arena = build_arena()  # one fleet per test function, reused by every example
    try:

        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(
            name=st.sampled_from(INSTANCES),
            body=_bodies(arena),
            headers=_headers(arena),
            chunked=st.booleans(),
        )
        def fuzz(name: str, body: bytes, headers: dict[str, str], chunked: bool) -> None:
            before = arena.running.snapshot()
            # A fresh connection per example, so each answer belongs to its own request (keep-alive reuse after
            # an unread chunked body is tested on its own, deterministically, above).
            response = requests.request(
                method, arena.running.urls[name] + path, data=payload(body, chunked), headers=headers, timeout=30
            )
            assert response.status_code < 500, describe(response)
            assert "Traceback" not in response.text, describe(response)
            assert response.headers.get("Content-Type", "").startswith("application/json"), describe(response)
            if response.status_code >= 300:
                assert_json_error(response)
                assert arena.running.snapshot() == before, f"a refused request changed state: {describe(response)}"
            else:
                assert isinstance(response.json(), dict), describe(response)
                _refresh(arena.running)

        fuzz()
    finally:
        arena.running.server.stop()
