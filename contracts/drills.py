"""Drills: short fixed sequences, each driving a family of rules to its edges on purpose, run before the generated
exploration so that every rule is reached by every default run, whatever the seed.

Each drill starts from a reset fleet whose keys the suite chose (through the control plane's state document):
`K1` with two slots and 30 days left, `K2` with one slot, 60 days and another licensee, and `K3` already expired.
Outside machines (well-formed deployment ids in no instance) take slots at the activation server, so a drill can
fill a key, or stand for a production, on a fleet of any size. Each drill declares the rules it covers; a test
checks each one exercises every rule it declares.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import yaml

from contracts.checks import (
    EICAR,
    MALFORMED_DEPLOYMENT,
    MALFORMED_KEY,
    SAMPLE,
    UNKNOWN_APIKEY,
    UNKNOWN_KEY,
    Checker,
    Violation,
    broken,
    outsider,
)
from contracts.common import edited
from contracts.exchange import Exchange
from contracts.model import (
    BACKUP_PATH,
    CALLBACK_MAX,
    DEACTIVATION_PATH,
    NOMINATION_PATH,
    READYZ_PATH,
    SYNC_PATH,
    LicenceFileModel,
    Profile,
)
from contracts.rules import CELLS, cell
from contracts.target import TargetError

K1, K2, K3 = (f"SUIT-EKEY-000{n}-AAAA-BBBB-CCCC-DDDD" for n in (1, 2, 3))
GENERIC_TERMS = {
    "product_id": "MSCL-4-unlimited",
    "product_name": "Metadefender Core 5 Linux",
    "licensed_to": "mockcore contract suite",
    "max_node_count": "10",
    "licensed_engines": "*",
}
# A well-formed API key (36 of 0-9a-f, at least 10 letters and 10 digits, no more than 3 of either in a row).
NEW_APIKEY = "abc123def456abc789def012abc345def678"
LATER_APIKEY = "fed987cba654fed321cba098fed765cba432"  # well-formed, sorts after NEW_APIKEY, never set
SECOND_PASSWORD = "contract-suite-password-2"
MAX_SESSIONS = 1000  # sessions an instance keeps
JSON_LIMIT = 64 * 1024  # the largest JSON body accepted
SCAN_LIMIT = 64 * 1024 * 1024  # the largest file accepted for a scan
# The least-privilege drill's users: their own API keys (the documented form), names, roles and passwords.
READER_APIKEY = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8"
OPERATOR_APIKEY = "1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d6c7b8a"
STRAY_APIKEY = "ab12cd34ef56ab78cd90ef12ab34cd56ef78"  # offered to users that must not be created
READER, OPERATOR, NOBODY = "contract-reader", "contract-operator", "contract-nobody"
READER_ROLE, OPERATOR_ROLE = "contract-licence-readers", "contract-licence-operators"
READER_PASSWORD, OPERATOR_PASSWORD = "contract-reader-password", "contract-operator-password"
# A user whose role grants submitting scans and reading the nodes, and nothing else.
SCANNER_APIKEY = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f"
SCANNER, SCANNER_ROLE, SCANNER_PASSWORD = "contract-scanner", "contract-scanners", "contract-scanner-password"
RIGHTS = ("auth.role-rights",)
SCAN_RIGHTS = ("auth.scan-rights",)
NODES_RIGHTS = ("auth.nodes-rights",)
RENEWED_DAYS = 365  # how much later the vendor's renewal of a key ends


def callback_of(length: int) -> str:
    """A well-formed `callbackurl` of exactly `length` characters."""
    base = "https://ci.example.com:65535/hooks/"
    return base + "a" * (length - len(base))


# `callbackurl`s of the vendor's format, at its edges, and ones just past them (docs/responses.md, Scans).
GOOD_CALLBACKS = (
    ("http://example.com", "a host name"),
    ("HTTPS://CI.Example.COM:65535/hook?scan=1#done", "port 65535, a query and a fragment, in upper case"),
    ("http://192.0.2.10:1/", "an IPv4 address and port 1"),
    ("http://[2001:db8::1]:8080/cb", "an IPv6 address in brackets"),
    (callback_of(CALLBACK_MAX), f"{CALLBACK_MAX} characters"),
)
BAD_CALLBACKS = (
    ("http://example.com:65536/hook", "port 65536"),
    ("http://example.com:0/hook", "port 0"),
    ("ftp://example.com/hook", "another scheme"),
    ("example.com/hook", "no scheme"),
    ("http:///hook", "no host"),
    ("http://exa mple.com/", "a space in the host"),
    ("http://-example.com/", "a label starting with a hyphen"),
    ("http://2001:db8::1/cb", "an IPv6 address without brackets"),
    (callback_of(CALLBACK_MAX + 1), f"{CALLBACK_MAX + 1} characters"),
)
MALFORMED_APIKEYS = (
    ("not-a-key", "not 36 hex digits"),
    ("abc123def456abc789def012abc345def67", "35 characters"),
    ("abcd23def456abc789def012abc345def678", "4 letters in a row"),
    ("abc1234ef456abc789def012abc345def678", "4 digits in a row"),
    ("ABC123DEF456ABC789DEF012ABC345DEF678", "upper case"),
)


@dataclass(frozen=True)
class Drill:
    name: str
    covers: tuple[str, ...]
    run: Callable[[Checker], None]
    instances: int = 1  # the fewest instances it needs
    needs: tuple[str, ...] = ()  # the Core paths it needs: it steps aside under a profile lacking one
    claims_under: str = "5.6"  # the profile under which it exercises every rule it covers

    def steps_aside(self, profile: Profile) -> tuple[str, ...]:
        """The paths it needs that the profile lacks (none: it runs)."""
        return tuple(path for path in self.needs if profile.lacks(path))


def suite_keys(today: date, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The drills' keys, as state-document entries, with the target's own first key's terms."""
    base = dict(entries[0]["terms"]) if entries else dict(GENERIC_TERMS)

    def entry(key: str, slots: int, days: int, **terms: str) -> dict[str, Any]:
        expires = (today + timedelta(days=days)).isoformat()
        return {"terms": {**base, **terms, "activation_key": key, "expires": expires}, "slots": slots, "holders": []}

    return [entry(K1, 2, 30), entry(K2, 1, 60, licensed_to="another licensee of the suite"), entry(K3, 2, -1)]


def fresh(c: Checker) -> None:
    c.start(keys=suite_keys, new_run=False)
    if [k.key for k in c.keys] != [K1, K2, K3]:
        raise TargetError("the control plane did not load the suite's keys (PUT /_mock/state)")


def key_expiry(c: Checker, key: str) -> date:
    return c.model.keys[key].expires


def read(c: Checker, name: str) -> None:
    """A step that reads an instance's licence view and backup flag against the model."""
    step = c.begin(f"read the licence of {name}")
    c.check_licence_view(name)
    c.check_backup_flag(name)
    step.exchanges = c.conn.recorder.take()


def simple(
    c: Checker,
    title: str,
    method: str,
    url: str,
    expected: tuple[int, object],
    rules: tuple[str, ...],
    **kwargs: Any,
) -> dict[str, Any]:
    """A request whose answer is known exactly: status and JSON body (`...` for "any JSON object")."""
    status, body = expected
    shown = "with a JSON object" if body is ... else body
    exchange = c.send_step(title, lambda: c.conn.request(method, url, **kwargs), f"{status} {shown}")
    if exchange.status != status:
        raise broken(rules[0], f"expected {status} {body}, got {exchange.status} {exchange.response_body[:200]!r}")
    got = c.json_of(exchange, rules[0]) if not isinstance(body, list) else exchange.json()
    if body is not ... and got != body:
        raise broken(rules[-1] if len(rules) > 1 and status >= 400 else rules[0], f"expected {body}, got {got}")
    c.exercised(*rules)
    return got


def error(c: Checker, title: str, method: str, url: str, code: str, rule: str, **kwargs: Any) -> None:
    entry = c.model.error(code)
    simple(c, title, method, url, (entry.status, entry.body), (rule, f"error.{code}"), **kwargs)


def refusals(c: Checker, name: str, state: str, own_file: bytes, other_file: bytes) -> None:
    """Every licence operation the transition table refuses in `state`, sent to `name`; nothing may change."""
    key = c.model.instances[name].key or K1
    production = outsider(1)
    for operation, in_state in CELLS:
        if in_state != state or "refused" not in CELLS[(operation, in_state)]:
            continue
        if operation == "activate":
            c.activate(name, key, 1)
        elif operation == "upload":
            c.upload(name, own_file, "a licence file issued for it")
        elif operation == "register-online":
            c.register_online(name, key, production)
        elif operation == "register-offline":
            c.register_offline(name, other_file, "an outside machine's licence file")
        elif operation == "unregister":
            c.unregister(name)
        elif operation == "nominate":
            c.nominate(name)
        elif operation == "deactivate":
            c.deactivate(name)


def file_for(c: Checker, key: str, deployment: str) -> LicenceFileModel:
    issued = c.obtain_file(key, deployment)
    if issued is None:
        raise broken("activation.issues-file", f"no licence file was issued for {c.deployment_label(deployment)}")
    return issued


def fill(c: Checker, key: str, start: int = 10) -> None:
    """Outside machines take every free slot of `key`."""
    for n in range(start, start + c.model.keys[key].free):
        file_for(c, key, outsider(n))


# The drills


def online_production(c: Checker) -> None:
    fresh(c)
    a = c.names[0]
    own = c.model.instances[a].deployment
    assert c.engines(a) == []
    c.readiness(a)
    c.readiness(a, verbose=False)
    c.scan(a)
    outside = file_for(c, K1, outsider(1))
    c.free_slot(K1, outsider(1))
    c.upload(a, b"licence: not really\n", "a body that is not a licence file")
    refusals(c, a, "unlicensed", b"not a licence file", outside.content)
    c.activate(a, K1, 1)
    c.check_backup_flag(a)
    fill(c, K1)
    c.activate(a, K1, "1000")  # the same key, with the key full: no new slot
    c.readiness(a)
    c.readiness(a, verbose=False)
    engines = c.engines(a)
    c.toggle_engine(a, engines[0], enable=False)
    c.engines(a)
    c.toggle_engine(a, engines[0], enable=True)
    c.engines(a)
    clean = c.scan(a)
    infected = c.scan(a, EICAR, "the EICAR test file")
    c.scan(a, b"\0" * SCAN_LIMIT, "a file of exactly 64 MiB")
    c.exercised("scan.size")
    error(
        c,
        f"scan a file of 64 MiB and a byte on {a}",
        "POST",
        c.url(a, "/file"),
        "E_TOO_LARGE",
        "scan.size",
        headers=c.auth(a),
        body=b"\0" * (SCAN_LIMIT + 1),
    )
    assert clean is not None and infected is not None
    c.scan_result(a, clean, infected=False)
    c.scan_result(a, infected, infected=True, apikey=False)
    av = [e for e, (_, kind) in c.engine_types.items() if kind == "av"]
    for eng_id in av:
        c.toggle_engine(a, eng_id, enable=False)
    c.readiness(a)  # no AV engine active
    c.scan_result(a, infected, infected=True)
    for eng_id in av:
        c.toggle_engine(a, eng_id, enable=True)
    error(
        c,
        f"scan an empty file on {a}",
        "POST",
        c.url(a, "/file"),
        "E_EMPTY_FILE",
        "scan.empty",
        headers=c.auth(a),
        body=b"",
    )
    error(
        c,
        f"read the result of an unknown scan on {a}",
        "GET",
        c.url(a, "/file/" + "0" * 32),
        "E_NOT_FOUND",
        "scan.unknown-id",
        headers=c.auth(a),
    )
    own_file = file_for(c, K1, own)  # re-issue for a deployment that holds a slot: no new slot
    refusals(c, a, "active", own_file.content, outside.content)
    c.register_online(a, UNKNOWN_KEY, outsider(1))  # the state rule before the key: E_REGISTER_ACTIVE
    c.exercised("service.order-of-checks")
    c.deactivate(a)
    c.toggle_engine(a, engines[0], enable=True)
    c.engines(a)
    c.activate(a, K1, 1)
    c.free_slot(K1, own)  # freed at the activation server: unlicensed, with `reactivate`, on its next request
    read(c, a)
    c.exercised("online.slot-lost")


def requests_and_order(c: Checker) -> None:
    fresh(c)
    a = c.names[0]
    for quantity in (0, 1001, -1, "0", "1001", " 5", "5a", 1.5, True, None, [1]):
        c.activate(a, K1, quantity)
    url = c.url(a, "/admin/license/activation")
    json_type = {"Content-Type": "application/json"}
    error(
        c,
        f"activate {a} with malformed JSON",
        "POST",
        url,
        "E_BAD_REQUEST",
        "activate.quantity",
        headers={**c.auth(a), **json_type},
        body=b'{"activationKey": ',
    )
    error(
        c,
        f"activate {a} without an activationKey",
        "POST",
        url,
        "E_BAD_REQUEST",
        "activate.quantity",
        headers=c.auth(a),
        json_body={"quantity": 1, "comment": "contract suite"},
    )
    c.activate(a, K1, 1, body={"activationKey": K1, "quantity": 1})  # `comment` is optional
    c.deactivate(a)
    c.activate(a, K1, 1, body=padded({"activationKey": K1, "quantity": 1}, JSON_LIMIT))  # exactly 64 KiB
    c.deactivate(a)
    error(
        c,
        f"activate {a} with a JSON body one byte over 64 KiB",
        "POST",
        url,
        "E_TOO_LARGE",
        "error.E_TOO_LARGE",
        headers={**c.auth(a), **json_type},
        body=json.dumps(padded({"activationKey": K1, "quantity": 1}, JSON_LIMIT + 1)).encode(),
    )
    error(
        c,
        f"activate {a} with a body over 64 KiB",
        "POST",
        url,
        "E_TOO_LARGE",
        "error.E_TOO_LARGE",
        headers=c.auth(a),
        json_body={"activationKey": K1, "quantity": 1, "comment": "x" * 70_000},
    )
    error(
        c,
        f"activate {a} with an unknown apikey and malformed JSON",
        "POST",
        url,
        "E_ACCESS",
        "service.order-of-checks",
        headers={"apikey": UNKNOWN_APIKEY, **json_type},
        body=b"{",
    )
    error(
        c,
        f"GET an unknown path on {a}",
        "GET",
        c.url(a, "/admin/no-such-thing"),
        "E_NOT_FOUND",
        "service.unknown-path",
        headers=c.auth(a),
    )
    error(c, f"GET {url} (it takes POST only)", "GET", url, "E_METHOD", "service.unknown-method", headers=c.auth(a))
    backup_url = c.url(a, "/admin/license/backup")
    outside = file_for(c, K1, outsider(1))
    production = outside.deployment
    for label, headers, body in (
        ("neither headers nor a body", {}, None),
        ("only the activation-key header", {"activation-key": K1}, None),
        ("only the active-deployment-id header", {"active-deployment-id": production}, None),
        ("both headers and a body", {"activation-key": K1, "active-deployment-id": production}, outside.content),
    ):
        c.refused(
            a,
            f"register {a} as a backup with {label}",
            "E_BACKUP_REQUEST",
            ("register.request-shape",),
            lambda h=headers, b=body: c.conn.request("POST", backup_url, headers={**c.auth(a), **h}, body=b),
        )
    c.register_online(a, K1, production)
    c.activate(a, K1, 0)  # well-formedness before the state rule: E_BAD_REQUEST on a backup
    c.exercised("service.order-of-checks")
    c.unregister(a)


def activation_server_down(c: Checker) -> None:
    """Online operations need the activation server; an upload does not."""
    fresh(c)
    a = c.names[0]
    mine = file_for(c, K1, c.model.instances[a].deployment)
    file_for(c, K1, outsider(1))
    c.free_slot(K1, mine.deployment)
    rules = ("online.activation-server-down",)
    down = c.fleet.control_request("POST", "faults", {"face": "activation", "status": 503})
    c.refused(
        a,
        f"activate {a} while the activation server is down",
        "E_ACTIVATION_UNREACHABLE",
        (*rules, "transition.activate.unlicensed"),
        lambda: c.post(a, "/admin/license/activation", json_body={"activationKey": K1, "quantity": 1}),
        kind="activate",
    )
    headers = {"activation-key": K1, "active-deployment-id": outsider(1)}
    c.refused(
        a,
        f"register {a} online while the activation server is down",
        "E_ACTIVATION_UNREACHABLE",
        (*rules, "transition.register-online.unlicensed"),
        lambda: c.post(a, "/admin/license/backup", headers=headers),
    )
    c.fleet.control_request("DELETE", f"faults/{down['id']}")
    c.register_online(a, K1, outsider(1))
    down = c.fleet.control_request("POST", "faults", {"face": "activation", "status": 503})
    c.refused(
        a,
        f"nominate {a} while the activation server is down",
        "E_ACTIVATION_UNREACHABLE",
        (*rules, "transition.nominate.backup-online"),
        lambda: c.post(a, "/admin/license/backup/nomination"),
        kind="nominate",
    )
    c.fleet.control_request("DELETE", f"faults/{down['id']}")
    c.nominate(a)
    down = c.fleet.control_request("POST", "faults", {"face": "activation", "status": 503})
    c.refused(
        a,
        f"deactivate {a} (online) while the activation server is down",
        "E_ACTIVATION_UNREACHABLE",
        (*rules, "transition.deactivate.active"),
        lambda: c.post(a, "/admin/license/deactivation"),
        kind="deactivate",
    )
    c.upload(a, mine.content, f"the licence file issued for {a}, while the activation server is down")
    c.exercised(*rules)
    c.fleet.control_request("DELETE", f"faults/{down['id']}")


def progress(c: Checker) -> None:
    """Scans and engines that take polls, then fleet time, to finish (the control plane's progression: the n-th of
    N polls shows n/(N+1) of 100 %, a duration the share of it gone by)."""
    fresh(c)
    a = c.names[0]
    c.fleet.control_request("PUT", "progression", {"engine_polls": 2, "scan_polls": 3})
    c.activate(a, K1, 1)
    done = -1
    for n in (1, 2):
        done = c.poll_downloading_engines(a, done, int(100 * n / 3))
    c.engines(a)
    for content, infected in ((SAMPLE, False), (EICAR, True)):
        data_id = c.scan(a, content, "the EICAR test file" if infected else "a file")
        assert data_id is not None
        done = -1
        for n in (1, 2, 3):
            done = c.poll_unfinished_scan(a, data_id, done, int(100 * n / 4))
        c.scan_result(a, data_id, infected)
    timed = {"engine_polls": 0, "scan_polls": 0, "engine_seconds": 40, "scan_seconds": 40}
    c.fleet.control_request("PUT", "progression", timed)
    c.deactivate(a)
    c.fleet.control_request("POST", "clock/advance", {"seconds": 100})  # unlicensed meanwhile: no download
    c.activate(a, K1, 1)  # licensed anew: the engines download again, for 40 s of fleet time
    data_id = c.scan(a)
    assert data_id is not None
    engines = scan = -1
    for _ in range(3):
        engines = c.poll_downloading_engines(a, engines)
        scan = c.poll_unfinished_scan(a, data_id, scan)
        c.fleet.control_request("POST", "clock/advance", {"seconds": 12})
    c.fleet.control_request("POST", "clock/advance", {"seconds": 4})
    c.engines(a)
    c.scan_result(a, data_id, infected=False)


def online_backup(c: Checker) -> None:
    fresh(c)
    a = c.names[0]
    outside = file_for(c, K1, outsider(1))
    c.register_online(a, K1, outsider(1))
    own = file_for(c, K2, c.model.instances[a].deployment)
    c.free_slot(K2, own.deployment)
    c.readiness(a)
    c.scan(a)
    engines = c.engines(a)
    c.toggle_engine(a, engines[-1], enable=False)
    c.engines(a)
    refusals(c, a, "backup-online", own.content, outside.content)
    c.activate(a, UNKNOWN_KEY, 1)  # the state rule before the key: E_ACTIVATE_BACKUP
    c.exercised("service.order-of-checks")
    c.unregister(a)
    c.register_online(a, K1, outsider(1))
    c.nominate(a)
    c.scan(a)
    c.deactivate(a)


def offline_backup(c: Checker) -> None:
    fresh(c)
    a = c.names[0]
    outside = file_for(c, K1, outsider(1))
    c.register_offline(a, outside.content, "an outside machine's licence file")
    c.readiness(a)
    own = file_for(c, K2, c.model.instances[a].deployment)
    c.free_slot(K2, own.deployment)
    refusals(c, a, "backup-offline", own.content, outside.content)
    # The documented way out: free the production, a file of its own, unregister, upload.
    c.free_slot(K1, outsider(1))
    mine = file_for(c, K1, c.model.instances[a].deployment)
    c.unregister(a)
    c.upload(a, mine.content, f"the licence file issued for {a}")
    c.scan(a)
    c.free_slot(K1, mine.deployment)
    read(c, a)  # an offline licence stays when its slot is freed
    c.exercised("offline.keeps-licence")
    c.deactivate(a)
    c.upload(a, mine.content, f"the licence file issued for {a}, again after its slot was freed")
    file_for(c, K1, mine.deployment)
    c.deactivate(a)  # offline: the slot stays held until /deactivation


def failover(c: Checker) -> None:
    fresh(c)
    a, b = c.names[0], c.names[1]
    c.activate(a, K1, 1)
    c.register_online(b, K1, c.model.instances[a].deployment)
    if len(c.names) > 2:
        third = c.names[2]
        c.register_online(third, K1, c.model.instances[a].deployment)
        c.nominate(b)
        read(c, third)
        c.exercised("nominate.other-backups-stay")
        c.unregister(third)
    else:
        c.nominate(b)
    read(c, a)
    c.exercised("online.slot-lost")
    c.activate(a, K1, 1)  # the old production takes the second slot
    c.free_slot(K1, c.model.instances[b].deployment)
    read(c, b)


def nomination_slots(c: Checker) -> None:
    fresh(c)
    a = c.names[0]
    file_for(c, K1, outsider(1))
    c.register_online(a, K1, outsider(1))
    c.free_slot(K1, outsider(1))
    c.nominate(a)  # the production holds no slot: a free one is taken
    fresh(c)
    file_for(c, K1, outsider(1))
    c.register_online(a, K1, outsider(1))
    fill(c, K1)
    c.nominate(a)  # the key is full, but the production's slot moves
    fresh(c)
    file_for(c, K1, outsider(1))
    c.register_online(a, K1, outsider(1))
    file_for(c, K1, c.model.instances[a].deployment)  # the backup's deployment holds a slot of its own
    c.free_slot(K1, outsider(1))
    c.nominate(a)  # the production holds none: the backup keeps its own, no new slot
    fresh(c)
    file_for(c, K1, outsider(1))
    c.register_online(a, K1, outsider(1))
    c.free_slot(K1, outsider(1))
    fill(c, K1)
    c.nominate(a)  # neither: E_NO_SLOT, still a backup
    read(c, a)
    fresh(c)
    fill(c, K1)
    c.activate(a, K1, 1)
    c.obtain_file(K1, outsider(2))


def keys(c: Checker) -> None:
    fresh(c)
    a = c.names[0]
    c.activate(a, K1, 1)
    c.activate(a, K2, 1)  # moves, and frees the online slot on K1
    c.activate(a, K1, 1)
    fill(c, K2)
    c.activate(a, K2, 1)  # no slot on K2: keeps K1
    c.deactivate(a)  # online: unlicensed, keeps K1 (`reactivate`)
    file_for(c, K1, c.model.instances[a].deployment)  # its deployment takes a K1 slot by hand
    c.activate(a, K2, 1)  # from unlicensed: nothing to move, the K1 slot stays held
    for key in (K3, UNKNOWN_KEY, MALFORMED_KEY):
        core = c.activate(a, key, 1)
        c.obtain_file(key, c.model.instances[a].deployment)
        server = yaml.safe_load(c.log.steps[-1].exchanges[0].response_body)
        if core.json().get("err") != server.get("error"):
            raise broken(
                "error.E_ACTIVATION_FAILED",
                f"the Core's refusal carries the activation server's text {server.get('error')!r}: {core.json()}",
            )
    fresh(c)
    own = c.model.instances[a].deployment
    c.activate(a, K1, 1)
    c.upload(a, file_for(c, K2, own).content, f"the licence file issued for {a} on K2")  # takes the file's key
    c.free_slot(K2, own)
    c.upload(a, file_for(c, K1, own).content, f"the licence file issued for {a} on K1")
    c.upload(a, file_for(c, K2, outsider(4)).content, "an outside machine's licence file")  # refused when active
    c.free_slot(K2, outsider(4))
    c.activate(a, K1, 1)  # online again on the same key: no new slot, `online_activated` true
    c.upload(a, file_for(c, K1, own).content, f"the licence file issued for {a} on K1")
    c.activate(a, K2, 1)  # an offline licence moving off K1 keeps its slot held


def registration(c: Checker) -> None:
    fresh(c)
    a = c.names[0]
    own = c.model.instances[a].deployment
    outside = file_for(c, K1, outsider(1))
    c.register_online(a, UNKNOWN_KEY, outsider(1))
    c.register_online(a, K1, outsider(2))
    file_for(c, K2, outsider(3))
    c.register_online(a, K1, outsider(3))  # the production holds a slot, but on another key
    mine = file_for(c, K1, own)
    c.register_online(a, K1, own)
    c.register_offline(a, mine.content, f"the licence file issued for {a} itself")
    c.upload(a, outside.content, "an outside machine's licence file")
    oversized = mine.content + b"#" * (1024 * 1024)
    for content, label in (
        (edited(mine.content), "edited"),
        (b"licence: not really\n", "not a licence file"),
        (oversized, "over 1 MiB"),
    ):
        c.upload(a, content, f"a licence file, {label}")
        c.register_offline(a, content, f"a licence file, {label}")
    c.set_date(key_expiry(c, K1))  # the last valid day: both files are still good
    c.register_offline(a, outside.content, "an outside machine's licence file, on its last valid day")
    c.exercised("expiry.last-valid-day")
    c.unregister(a)
    c.set_date(key_expiry(c, K1) + timedelta(days=1))
    c.upload(a, mine.content, f"the licence file issued for {a}, expired")
    c.register_offline(a, outside.content, "an outside machine's licence file, expired")
    c.set_date(key_expiry(c, K1))
    c.upload(a, mine.content, f"the licence file issued for {a}, on its last valid day")


def expiry(c: Checker) -> None:
    fresh(c)
    a = c.names[0]
    c.activate(a, K1, 1)
    backup = c.names[1] if len(c.names) > 1 else None
    if backup is not None:
        c.register_online(backup, K1, c.model.instances[a].deployment)
    last = key_expiry(c, K1)
    for day in (last - timedelta(days=1), last, last + timedelta(days=1)):
        c.set_date(day)
        read(c, a)
        c.readiness(a)
        c.readiness(a, verbose=False)
        c.scan(a)
        if backup is not None:
            c.readiness(backup)
            read(c, backup)
    c.activate(a, K1, 1)  # an expired key activates nothing


def activation_server(c: Checker) -> None:
    fresh(c)
    c.obtain_file(MALFORMED_KEY, outsider(1))
    c.obtain_file(K1, MALFORMED_DEPLOYMENT)
    for quantity in (0, 1001):
        c.obtain_file(K1, outsider(1), quantity)
    c.obtain_file(UNKNOWN_KEY, outsider(1))
    issued = file_for(c, K1, outsider(1))
    now = datetime.fromisoformat(c.fleet.control_request("GET", "clock")["now"]).replace(microsecond=0)
    stamp = yaml.safe_load(issued.content).get("issued")
    if not isinstance(stamp, str) or datetime.fromisoformat(stamp) != now:
        raise broken("file.values", f"the file was issued at {now.isoformat()} (the fleet's frozen clock): {stamp!r}")
    c.obtain_file(K1, outsider(1), 1000)  # re-issue: no new slot
    c.free_slot(K1, outsider(1))
    c.free_slot(K1, outsider(1))
    c.free_slot(UNKNOWN_KEY, outsider(2))


def own_fleet(c: Checker) -> None:
    """The main families again on the target's own fleet and first key, as it was started (no state document
    loaded: whatever the target built its instances, scanning and activation server from stays in place). Needs one
    free slot only; outside machines stand for a production."""
    c.start(new_run=False)
    usable = [k for k in c.keys if k.slots >= 1 and c.model.keys[k.key].expires > c.model.today]
    if not usable:
        return  # no key with a slot and a day left: the suite's own keys (the other drills) cover the families
    a, key = c.names[0], usable[0].key
    own = c.model.instances[a].deployment
    c.activate(a, key, 1)
    engines = c.engines(a)
    clean, infected = c.scan(a), c.scan(a, EICAR, "the EICAR test file")
    assert clean is not None and infected is not None
    c.scan_result(a, clean, infected=False)
    c.scan_result(a, infected, infected=True)
    c.toggle_engine(a, engines[0], enable=False)
    c.readiness(a)
    c.toggle_engine(a, engines[0], enable=True)
    c.activate(a, key, 1)  # the same key: no new slot
    c.deactivate(a)
    outside = file_for(c, key, outsider(1))
    c.register_offline(a, outside.content, "an outside machine's licence file")
    c.nominate(a)  # offline: refused
    c.unregister(a)
    c.register_online(a, key, outsider(1))
    c.scan(a)  # a backup: refused
    c.nominate(a)  # the outside production's slot moves
    c.deactivate(a)
    mine = file_for(c, key, own)
    c.upload(a, edited(mine.content), f"the licence file issued for {a}, edited")
    c.upload(a, outside.content, "an outside machine's licence file")
    c.upload(a, mine.content, f"the licence file issued for {a}")
    c.obtain_file(key, own)  # re-issue: no new slot
    c.free_slot(key, own)
    c.free_slot(key, own)
    read(c, a)  # offline: the licence stays
    c.exercised("offline.keeps-licence")
    expires = c.model.keys[key].expires
    if c.know_clock and expires != date.max:
        for day in (expires, expires + timedelta(days=1)):
            c.set_date(day)
            read(c, a)
            c.readiness(a)
            c.scan(a)
    c.deactivate(a)


def scan_requests(c: Checker) -> None:
    """The scan requests beyond a plain `POST /file`: `/file/sync` by licence state and by verdict (read back with
    `GET /file/{data_id}`), a body sent without its length, and the `callbackurl` header at the edges of its format;
    each refusal leaves the instance's scans as they were. Under a profile without `/file/sync` its requests expect
    the generic 404."""
    fresh(c)
    a = c.names[0]
    sync = not c.model.profile.lacks(SYNC_PATH)
    good, bad = GOOD_CALLBACKS[0][0], BAD_CALLBACKS[0][0]
    c.scan(a, sync=True)  # unlicensed: refused as `POST /file` is
    c.scan(a, framed=False)  # whatever the licence
    c.scan(a, sync=True, framed=False)
    # The order of checks: the body's length, then the callbackurl, then the licence's state.
    c.scan(a, framed=False, callback=bad)
    c.scan(a, callback=bad)
    c.scan(a, sync=True, callback=good)
    c.exercised("service.order-of-checks")
    c.activate(a, K1, 1)
    c.engines(a)
    for content, label in ((SAMPLE, "a file"), (EICAR, "the EICAR test file")):
        data_id = c.scan(a, content, label, sync=True)
        if data_id is not None:
            c.scan_result(a, data_id, content == EICAR, rule="scan.sync")
    c.scan(a, framed=False)
    c.scan(a, EICAR, "the EICAR test file", sync=True, framed=False)
    for url, why in GOOD_CALLBACKS:
        c.scan(a, label=f"a file, callbackurl with {why},", callback=url)
    for url, why in BAD_CALLBACKS:
        c.scan(a, label=f"a file, callbackurl with {why},", callback=url)
    c.scan(a, sync=True, callback=good)
    c.scan(a, sync=True, callback=bad)
    if sync and not c.model.profile.lacks(BACKUP_PATH):
        c.deactivate(a)
        file_for(c, K1, outsider(1))
        c.register_online(a, K1, outsider(1))
        c.scan(a, sync=True)  # a backup: refused
        c.scan(a, sync=True, framed=False)
        c.unregister(a)
        c.activate(a, K1, 1)
    last = key_expiry(c, K1)
    for day in (last, last + timedelta(days=1)):
        c.set_date(day)
        c.scan(a, sync=True)


def renew_key(c: Checker, key: str, days: int) -> date:
    """The vendor renews `key`: its expiry moves `days` later at the activation server (through the control plane's
    state document); the licences already issued keep theirs. Returns the new expiry."""
    step = c.begin(f"the vendor renews key {c.key_label(key)} by {days} days")
    document = c.fleet.state_document()
    entry = next(e for e in document["keys"] if e["terms"]["activation_key"] == key)
    expires = date.fromisoformat(entry["terms"]["expires"]) + timedelta(days=days)
    entry["terms"]["expires"] = expires.isoformat()
    c.fleet.control_request("PUT", "state", document)
    c.fleet.log_in_again()
    step.exchanges = c.conn.recorder.take()
    c.model.keys[key].expires = expires
    return expires


def nodes_and_renewal(c: Checker) -> None:
    """`GET /stat/nodes` by value: 0 unlicensed, the activation's quantity at 1 and 1000, a file's quantity, an
    online backup's key's own count; then a renewal: the key's expiry moves at the vendor, the licence keeps its
    date until it is activated again on the same key, which takes the key's current expiry and no new slot."""
    fresh(c)
    a = c.names[0]
    own = c.model.instances[a].deployment
    c.nodes(a)
    for quantity in (1, 1000):
        c.activate(a, K1, quantity)
        c.nodes(a)
    issued = c.obtain_file(K1, own, 5)
    assert issued is not None
    c.upload(a, issued.content, f"the licence file issued for {a} with quantity 5")
    c.nodes(a)
    if len(c.names) > 1 and not c.model.profile.lacks(BACKUP_PATH):
        b = c.names[1]
        c.register_online(b, K1, own)
        c.nodes(b)
    c.activate(a, K1, 1)
    renewed = renew_key(c, K1, RENEWED_DAYS)
    read(c, a)  # the licence still says the old date
    try:
        c.activate(a, K1, 1)
    except Violation as found:
        if found.rule in ("view.days_left", "view.expiration"):
            detail = f"re-activated on the key renewed until {renewed.isoformat()}: {found.detail}"
            raise broken("activate.renews", detail) from found
        raise
    c.exercised("activate.renews")
    c.nodes(a)


def probe(c: Checker, name: str) -> tuple[str, object]:
    """A read that needs only a valid key, and what it answers: the backup flag, or (a profile without it) the
    licence view."""
    flag = c.model.backup_flag(name)
    if flag.ok:
        return BACKUP_PATH, flag.body
    return "/admin/license", c.model.licence_info(name).body


def authentication(c: Checker) -> None:
    c.start(new_run=False)  # the target's own fleet: loading a state document would replace its accounts
    a = c.names[0]
    base = c.fleet.instances[a]
    for method, path in (
        ("GET", "/admin/license"),
        ("GET", "/admin/license/backup"),
        ("POST", "/admin/license/activation"),
        ("POST", "/admin/license/backup/nomination"),
        ("POST", "/admin/license/deactivation"),
        ("DELETE", "/admin/license/backup"),
        ("POST", "/admin/license"),
        ("POST", "/admin/license/backup"),
        ("POST", "/admin/engine/clamav_1_linux/disable"),
        ("GET", "/user"),
        ("POST", "/user/changepassword"),
        ("PUT", "/admin/user/2"),
        ("POST", "/logout"),
    ):
        for missing in (True, False):
            headers = {} if missing else {"apikey": UNKNOWN_APIKEY}
            code, rule = ("E_ACCESS_MISSING", "auth.missing-apikey") if missing else ("E_ACCESS", "auth.unknown-apikey")
            if c.model.profile.lacks(path):  # the profile comes first: the generic 404, whatever the key
                code, rule = "E_NOT_FOUND", "profile.absent-endpoints"
            c.refused(
                a,
                f"{method} {path} on {a} {'without an apikey' if missing else 'with an unknown one'}",
                code,
                (rule,),
                lambda m=method, p=path, h=headers: c.conn.request(m, base + p, headers=h),
                kind="activate",
            )
    version = simple(
        c,
        f"GET /version on {a} without an apikey",
        "GET",
        base + "/version",
        (200, ...),
        ("service.version", "auth.optional-apikey"),
    )
    if (
        version.get("product_id") != "MSCL"
        or not isinstance(version.get("version"), str)
        or set(version) != {"product_id", "version"}
    ):
        raise broken("service.version", f"expected {{'product_id': 'MSCL', 'version': <text>}}, got {version}")
    simple(
        c,
        f"GET /version on {a} with the apikey",
        "GET",
        base + "/version",
        (200, version),
        ("service.version",),
        headers=c.auth(a),
    )
    for path, body in (("/version", None), ("/stat/engines", None), ("/file", b"sample")):
        method = "POST" if body else "GET"
        error(
            c,
            f"{method} {path} on {a} with an unknown apikey",
            method,
            base + path,
            "E_ACCESS",
            "auth.optional-apikey",
            headers={"apikey": UNKNOWN_APIKEY},
            body=body,
        )
    simple(
        c,
        f"GET /stat/engines on {a} (unlicensed) without an apikey",
        "GET",
        base + "/stat/engines",
        (200, []),
        ("auth.optional-apikey",),
    )
    c.refused(
        a,
        f"scan on {a} without an apikey (optional there)",
        "E_SCAN_UNLICENSED",
        ("auth.optional-apikey",),
        lambda: c.conn.request("POST", base + "/file", body=b"sample"),
        kind="scan",
    )
    user = simple(c, f"GET /user on {a}", "GET", base + "/user", (200, ...), ("auth.user",), headers=c.auth(a))
    if user.get("id") != 2 or not isinstance(user.get("name"), str) or not isinstance(user.get("roles"), list):
        raise broken("auth.user", f"the admin is user 2 with a name and roles, got {user}")
    login_url = base + "/login"
    admin, password, known = admin_account(c, a)
    for user_name, wrong in (
        (admin, password + "-wrong"),
        (admin, ""),
        ("nobody-" + admin, password),
        ("a-nobody", password),  # sorts before the admin's name
    ):
        error(
            c,
            f"log in as {user_name} with a wrong password",
            "POST",
            login_url,
            "E_LOGIN",
            "auth.login-refused",
            json_body={"user": user_name, "password": wrong},
        )
    session = log_in(c, a, admin, password, required=known)
    if session is None:
        return  # the suite was not told the admin's password, and its guess was refused: the account rules need it
    simple(
        c,
        f"log out the new session on {a}",
        "POST",
        base + "/logout",
        (200, {"response": "Logout success"}),
        ("auth.logout",),
        headers={"apikey": session},
    )
    error(
        c,
        f"read the licence with the logged-out session on {a}",
        "GET",
        base + "/admin/license",
        "E_ACCESS",
        "auth.logout",
        headers={"apikey": session},
    )
    sessions_are_bounded(c, a, admin, password)
    error(
        c,
        f"change the password on {a} with a wrong old one",
        "POST",
        base + "/user/changepassword",
        "E_PASSWORD",
        "auth.change-password-refused",
        headers=c.auth(a),
        json_body={"old_password": password + "-wrong", "new_password": SECOND_PASSWORD},
    )
    log_in(c, a, admin, password)
    error(
        c,
        f"change the password on {a} to an empty one",
        "POST",
        base + "/user/changepassword",
        "E_BAD_REQUEST",
        "auth.change-password-refused",
        headers=c.auth(a),
        json_body={"old_password": password, "new_password": ""},
    )
    log_in(c, a, admin, password)
    simple(
        c,
        f"change the password on {a}",
        "POST",
        base + "/user/changepassword",
        (200, {"success": True}),
        ("auth.change-password",),
        headers=c.auth(a),
        json_body={"old_password": password, "new_password": SECOND_PASSWORD},
    )
    log_in(c, a, admin, SECOND_PASSWORD, "auth.change-password")
    error(
        c,
        f"log in on {a} with the old password",
        "POST",
        login_url,
        "E_LOGIN",
        "auth.change-password",
        json_body={"user": admin, "password": password},
    )
    for malformed, why in MALFORMED_APIKEYS:
        error(
            c,
            f"set user 2's API key on {a} to one that is {why}",
            "PUT",
            base + "/admin/user/2",
            "E_APIKEY_FORMAT",
            "auth.set-apikey-format",
            headers=c.auth(a),
            json_body={"api_key": malformed},
        )
    simple(
        c,
        f"set user 2's API key on {a}",
        "PUT",
        base + "/admin/user/2",
        (200, ...),
        ("auth.set-apikey",),
        headers=c.auth(a),
        json_body={"api_key": NEW_APIKEY},
    )
    path, expected = probe(c, a)
    simple(
        c,
        f"read the licence on {a} with the new API key",
        "GET",
        base + path,
        (200, expected),
        ("auth.set-apikey", "auth.configured-apikey"),
        headers={"apikey": NEW_APIKEY},
    )
    error(
        c,
        f"read the licence on {a} with another well-formed API key, never set",
        "GET",
        base + path,
        "E_ACCESS",
        "auth.unknown-apikey",
        headers={"apikey": LATER_APIKEY},
    )
    error(
        c,
        f"log out on {a} with an API key (not a session)",
        "POST",
        base + "/logout",
        "E_LOGOUT",
        "auth.logout-apikey",
        headers={"apikey": NEW_APIKEY},
    )


def sessions_are_bounded(c: Checker, name: str, admin: str, password: str) -> None:
    """1,001 logins: the first session ends, the second and the last still work."""
    base = c.fleet.instances[name]
    step = c.begin(f"log in {MAX_SESSIONS + 1} times on {name} (the exchanges of the first and last are shown)")
    sessions = []
    for n in range(MAX_SESSIONS + 1):
        answer = c.conn.request(
            "POST", base + "/login", json_body={"user": admin, "password": password}, record=n in (0, MAX_SESSIONS)
        )
        session = answer.json().get("session_id") if answer.status == 200 else None
        if session is None:
            step.exchanges = c.conn.recorder.take()
            raise broken("auth.login", f"login {n + 1} answered {answer.status} {answer.response_body[:200]!r}")
        sessions.append(session)
    step.exchanges = c.conn.recorder.take()
    path, expected = probe(c, name)
    flag = base + path
    error(
        c,
        f"read with the first of the {MAX_SESSIONS + 1} sessions",
        "GET",
        flag,
        "E_ACCESS",
        "auth.sessions-bounded",
        headers={"apikey": sessions[0]},
    )
    for which, session in (("second", sessions[1]), ("last", sessions[-1])):
        simple(
            c,
            f"read with the {which} of the {MAX_SESSIONS + 1} sessions",
            "GET",
            flag,
            (200, expected),
            ("auth.sessions-bounded",),
            headers={"apikey": session},
        )
    c.fleet.log_in_again()  # the suite's own session, if it logged in, was among the oldest


def admin_account(c: Checker, name: str) -> tuple[str, str, bool]:
    """The admin's name and password, and whether the suite knows them (from the control plane's state document,
    or `--admin`) rather than guessing the default."""
    if c.fleet.control:
        users = c.fleet.state_document()["instances"][name].get("users") or []
        admin = next((u for u in users if u.get("id") == 2), None)
        if admin is not None:
            return str(admin["name"]), str(admin["password"]), True
    given = c.fleet.target.admin
    return (*(given or ("admin", "admin")), given is not None)


def log_in(
    c: Checker, name: str, user: str, password: str, rule: str = "auth.login", *, required: bool = True
) -> str | None:
    """Log in; the session must then work as `apikey`. None when a guessed password (not `required`) is refused."""
    base = c.fleet.instances[name]
    exchange = c.send_step(
        f"log in as {user} on {name}",
        lambda: c.conn.request("POST", base + "/login", json_body={"user": user, "password": password}),
        "200 with a session",
    )
    if exchange.status == 403 and not required:
        return None
    body = c.json_of(exchange, rule)
    session, token = body.get("session_id"), body.get("oms-csrf-token")
    if exchange.status != 200 or not isinstance(session, str) or not session or not isinstance(token, str):
        raise broken(rule, f"expected 200 with session_id and oms-csrf-token, got {exchange.status} {body}")
    simple(
        c,
        f"read {name} with the new session",
        "GET",
        base + probe(c, name)[0],
        (200, ...),
        (rule,),
        headers={"apikey": session},
    )
    c.exercised(rule)
    return session


def least_privilege(c: Checker) -> None:
    """Users and roles created through the API, and each request authorised by its caller's rights: a licence reader
    reads and is refused every change (nothing changes), a licence operator activates and deactivates; names taken
    and unknown roles are refused. On the target's own fleet after a reset, like the authentication drill."""
    c.start(new_run=False)
    a = c.names[0]
    base = c.fleet.instances[a]
    reader_role = create_role(c, a, READER_ROLE, {"license": ["read"]})
    reader_id = create_user(c, a, READER, READER_PASSWORD, reader_role, READER_APIKEY)
    reader = {"apikey": READER_APIKEY}
    read_as(c, a, READER, reader)
    me = simple(
        c,
        f"GET /user on {a} as {READER}",
        "GET",
        base + "/user",
        (200, ...),
        ("auth.own-account-needs-no-right", "auth.create-user"),
        headers=reader,
    )
    if me.get("id") != reader_id or me.get("name") != READER or me.get("roles") != [reader_role]:
        raise broken("auth.create-user", f"{READER}'s own key reads {READER} (id {reader_id}), got {me}")
    usable = [k for k in c.keys if k.slots >= 1 and c.model.keys[k.key].expires > c.model.today]
    key = usable[0].key if usable else c.keys[0].key if c.keys else K1
    activation = {"activationKey": key, "quantity": 1, "comment": "contract suite"}
    no_rights(
        c,
        a,
        f"activate {a} as {READER} (license: read only)",
        lambda: c.conn.request("POST", base + "/admin/license/activation", headers=reader, json_body=activation),
    )
    operator_rights = {"license": ["read", "write"], "scan": ["read"]}
    no_rights(
        c,
        a,
        f"create the role {OPERATOR_ROLE} on {a} as {READER} (no users right)",
        lambda: c.conn.request(
            "POST", base + "/admin/role", headers=reader, json_body={"name": OPERATOR_ROLE, "rights": operator_rights}
        ),
    )
    # Nothing changed: the role the reader was refused can be created by the administrator under its name.
    operator_role = create_role(c, a, OPERATOR_ROLE, operator_rights, taken="auth.no-rights-changes-nothing")
    create_user(c, a, OPERATOR, OPERATOR_PASSWORD, operator_role, OPERATOR_APIKEY)
    operator = {"apikey": OPERATOR_APIKEY}
    scanner_role = create_role(c, a, SCANNER_ROLE, {"scan": ["write"], "agents": ["read"]})
    create_user(c, a, SCANNER, SCANNER_PASSWORD, scanner_role, SCANNER_APIKEY)
    scanner = {"apikey": SCANNER_APIKEY}
    sync = not c.model.profile.lacks(SYNC_PATH)
    for who, headers in ((READER, reader), (OPERATOR, operator)):  # neither has `scan: write` nor `agents: read`
        for path in ("/file", SYNC_PATH) if sync else ("/file",):
            no_scan(c, a, f"scan a file on {a} ({path}) as {who} (no scan: write)", base + path, headers)
        no_rights(
            c,
            a,
            f"list the nodes of {a} as {who} (no agents right)",
            lambda h=headers: c.conn.request("GET", base + "/stat/nodes", headers=h),
            rules=NODES_RIGHTS,
        )
    granted(c, lambda: c.nodes(a, scanner, SCANNER), NODES_RIGHTS[0])
    if usable:
        granted(
            c,
            lambda: c.run(
                f"activate {a} online with key {c.key_label(key)} as {OPERATOR} (license: read and write)",
                lambda m: m.activate(a, key, 1),
                lambda: c.conn.request(
                    "POST", base + "/admin/license/activation", headers=operator, json_body=activation
                ),
                on=a,
                kind="activate",
            ),
        )
        read_as(c, a, READER, reader)
        writes = DEACTIVATION_PATH if not c.model.profile.lacks(DEACTIVATION_PATH) else "/admin/license"
        no_rights(
            c,
            a,
            f"{'deactivate' if writes == DEACTIVATION_PATH else 'upload a licence file to'} {a} as {READER} "
            "(license: read only)",
            lambda: c.conn.request("POST", base + writes, headers=reader, body=b"licence: not really\n"),
        )
        engines = c.engines(a)
        for who, headers in ((READER, reader), (OPERATOR, operator)):
            no_rights(
                c,
                a,
                f"disable engine {engines[0]} on {a} as {who} (no engines right)",
                lambda h=headers: c.conn.request("POST", base + f"/admin/engine/{engines[0]}/disable", headers=h),
                then=lambda: c.engines(a),
            )
        scan_rights(c, a, scanner, operator, reader, sync)
        c.nodes(a, scanner, SCANNER)
        if writes == DEACTIVATION_PATH:
            granted(
                c,
                lambda: c.run(
                    f"deactivate {a} as {OPERATOR}",
                    lambda m: m.deactivate(a),
                    lambda: c.conn.request("POST", base + "/admin/license/deactivation", headers=operator),
                    on=a,
                    kind="deactivate",
                ),
            )
    own_account(c, a)
    unknown = str(max(int(reader_role), int(operator_role)) + 1000)
    for title, path, code, rule, doc in (
        (
            f"create a role on {a} named like an existing one ({READER_ROLE})",
            "/admin/role",
            "E_NAME_TAKEN",
            "auth.name-taken",
            {"name": READER_ROLE, "display_name": "taken", "rights": {"scan": ["read"]}},
        ),
        (
            f"create a user on {a} named like an existing one ({READER})",
            "/admin/user",
            "E_NAME_TAKEN",
            "auth.name-taken",
            {"name": READER, "password": "another", "roles": [operator_role], "apikey": STRAY_APIKEY},
        ),
        (
            f"create a user on {a} with role {unknown}, which the instance does not have",
            "/admin/user",
            "E_UNKNOWN_ROLE",
            "auth.unknown-role",
            {"name": NOBODY, "password": "nobody", "roles": [unknown], "apikey": STRAY_APIKEY},
        ),
        (
            f"create a user on {a} whose API key is {READER}'s own",
            "/admin/user",
            "E_APIKEY_TAKEN",
            "error.E_APIKEY_TAKEN",
            {"name": NOBODY, "password": "nobody", "roles": [reader_role], "apikey": READER_APIKEY},
        ),
    ):
        error(c, title, "POST", base + path, code, rule, headers=c.auth(a), json_body=doc)
        if doc.get("apikey") == STRAY_APIKEY:  # no user was created: the key offered to it works nowhere
            error(
                c,
                f"read {a} with the API key offered to the refused user",
                "GET",
                base + probe(c, a)[0],
                "E_ACCESS",
                rule,
                headers={"apikey": STRAY_APIKEY},
            )
    error(
        c,
        f"log in on {a} as {NOBODY}, who was never created",
        "POST",
        base + "/login",
        "E_LOGIN",
        "auth.unknown-role",
        json_body={"user": NOBODY, "password": "nobody"},
    )


def scan_rights(
    c: Checker, name: str, scanner: dict[str, str], operator: dict[str, str], reader: dict[str, str], sync: bool
) -> None:
    """On a production: the scanner (`scan: write`) submits, by `POST /file` and `/file/sync`, but reads no result;
    the operator (`scan: read`) reads it; the reader (no scan right) reads none."""
    clean = granted(c, lambda: c.scan(name, headers=scanner, who=SCANNER), SCAN_RIGHTS[0])
    infected = granted(
        c, lambda: c.scan(name, EICAR, "the EICAR test file", sync=sync, headers=scanner, who=SCANNER), SCAN_RIGHTS[0]
    )
    assert isinstance(clean, str) and isinstance(infected, str)
    for who, headers, right in ((SCANNER, scanner, "scan: write only"), (READER, reader, "no scan right")):
        no_rights(
            c,
            name,
            f"read the result of scan {clean} on {name} as {who} ({right})",
            lambda h=headers: c.conn.request("GET", c.url(name, f"/file/{clean}"), headers=h),
            rules=SCAN_RIGHTS,
        )
    for data_id, infected_file in ((clean, False), (infected, True)):
        granted(c, lambda d=data_id, i=infected_file: c.scan_result(name, d, i, headers=operator), SCAN_RIGHTS[0])


def no_scan(c: Checker, name: str, title: str, url: str, headers: dict[str, str]) -> None:
    """A scan submitted by a caller without `scan: write`: E_NO_RIGHTS, and the instance keeps no new scan."""
    before = c.scan_count(name)

    def same_scans() -> None:
        if before is not None and c.scan_count(name) != before:
            raise broken("auth.scan-rights", f"the scan was refused E_NO_RIGHTS, yet {name} kept a new scan")

    no_rights(
        c,
        name,
        title,
        lambda: c.conn.request("POST", url, headers=headers, body=SAMPLE),
        then=same_scans,
        rules=SCAN_RIGHTS,
    )


def create_role(c: Checker, name: str, role: str, rights: dict[str, list[str]], taken: str = "auth.create-role") -> str:
    """`POST /admin/role` as the suite's administrator; the answer by value. Returns the role's id, as users'
    `roles` name it. E_NAME_TAKEN breaks `taken` (the refused request that was to change nothing, if any)."""
    sent = {"name": role, "display_name": f"{role} (contract suite)", "rights": rights}
    exchange = c.send_step(
        f"create the role {role} on {name} with {rights}",
        lambda: c.conn.request("POST", c.url(name, "/admin/role"), headers=c.auth(name), json_body=sent),
        "200 with the role",
    )
    body = c.json_of(exchange, "auth.create-role")
    if exchange.status != 200:
        rule = taken if body == c.model.error("E_NAME_TAKEN").body else "auth.create-role"
        raise broken(rule, f"expected 200 with the role {role}, got {exchange.status} {body}")
    got = {field: body.get(field) for field in ("name", "display_name", "rights", "editable")}
    role_id = body.get("id")
    if got != {**sent, "editable": True} or not isinstance(role_id, int) or isinstance(role_id, bool):
        raise broken("auth.create-role", f"expected the role as sent, with an integer id and editable: got {body}")
    c.exercised("auth.create-role")
    return str(role_id)


def create_user(c: Checker, name: str, user: str, password: str, role: str, apikey: str) -> int:
    """`POST /admin/user` as the suite's administrator, with one role and an API key of its own; the answer by
    value. Returns the user's id."""
    sent = {"name": user, "display_name": f"{user} (contract suite)", "password": password, "roles": [role]}
    exchange = c.send_step(
        f"create the user {user} on {name} with role {role} and an API key of its own",
        lambda: c.conn.request(
            "POST", c.url(name, "/admin/user"), headers=c.auth(name), json_body={**sent, "apikey": apikey}
        ),
        "200 with the user",
    )
    body = c.json_of(exchange, "auth.create-user")
    user_id = body.get("id")
    if (
        exchange.status != 200
        or (body.get("name"), body.get("roles")) != (user, [role])
        or body.get("display_name", sent["display_name"]) != sent["display_name"]
        or body.get("api_key", apikey) != apikey
        or not isinstance(user_id, int)
        or isinstance(user_id, bool)
    ):
        raise broken("auth.create-user", f"expected 200 with the user {user} as sent, got {exchange.status} {body}")
    c.exercised("auth.create-user")
    return user_id


def read_as(c: Checker, name: str, user: str, headers: dict[str, str]) -> None:
    """The licence view and the backup flag, read with a user's key (`license: read`): what the model says."""
    base = c.fleet.instances[name]
    reads = [("the licence", "/admin/license", c.model.licence_info(name).body)]
    if not c.model.profile.lacks(BACKUP_PATH):
        reads.append(("the backup flag", BACKUP_PATH, c.model.backup_flag(name).body))
    for what, path, expected in reads:
        simple(c, f"read {what} of {name} as {user}", "GET", base + path, (200, expected), RIGHTS, headers=headers)


def no_rights(
    c: Checker,
    name: str,
    title: str,
    send: Callable[[], Exchange],
    then: Callable[[], object] | None = None,
    rules: tuple[str, ...] = RIGHTS,
) -> None:
    """A request none of the caller's roles grants the right for: 405 E_NO_RIGHTS (a success breaks the first of
    `rules`), after which the instance's licence view and the slots (and whatever `then` reads back) are as they
    were."""
    c.run(title, lambda m: m.error("E_NO_RIGHTS", *rules), send, on=name)
    try:
        c.verify(name, "activate", changed=False)
        if then is not None:
            then()
    except Violation as found:
        detail = f"the request was refused E_NO_RIGHTS, yet [{found.rule}] {found.detail}"
        raise broken("auth.no-rights-changes-nothing", detail) from found
    c.exercised("auth.no-rights-changes-nothing")


def granted(c: Checker, request: Callable[[], object], rule: str = RIGHTS[0]) -> object:
    """A request the caller's role grants the right for, checked as for the administrator; an E_NO_RIGHTS answer
    breaks `rule` (`auth.role-rights`, or the scans' and nodes' own) rather than the operation's rule. Returns what
    the request returned."""
    try:
        answer = request()
    except Violation as found:
        exchanges = c.log.steps[-1].exchanges if c.log.steps else []
        denied = c.model.error("E_NO_RIGHTS")
        if exchanges and exchanges[-1].status == denied.status and _json(exchanges[-1]) == denied.body:
            detail = f"refused although the caller's role grants the right: {found.detail}"
            raise broken(rule, detail) from found
        raise
    c.exercised(rule)
    return answer


def _json(exchange: Exchange) -> object:
    try:
        return exchange.json()
    except ValueError:
        return None


def own_account(c: Checker, name: str) -> None:
    """The licence reader (no `users` right) logs in, reads itself with the session and logs out, then changes its
    own password with its API key and logs in with the new one."""
    base = c.fleet.instances[name]
    rule = "auth.own-account-needs-no-right"
    session = log_in(c, name, READER, READER_PASSWORD, "auth.create-user")
    assert session is not None
    me = simple(
        c,
        f"GET /user on {name} with {READER}'s session",
        "GET",
        base + "/user",
        (200, ...),
        (rule,),
        headers={"apikey": session},
    )
    if me.get("name") != READER:
        raise broken(rule, f"{READER}'s session reads {READER}, got {me}")
    simple(
        c,
        f"log out {READER}'s session on {name}",
        "POST",
        base + "/logout",
        (200, {"response": "Logout success"}),
        (rule,),
        headers={"apikey": session},
    )
    simple(
        c,
        f"change {READER}'s own password on {name} with its API key",
        "POST",
        base + "/user/changepassword",
        (200, {"success": True}),
        (rule,),
        headers={"apikey": READER_APIKEY},
        json_body={"old_password": READER_PASSWORD, "new_password": SECOND_PASSWORD},
    )
    log_in(c, name, READER, SECOND_PASSWORD, rule)


# How each path a profile may lack is asked for: its methods, with the body or headers most likely to be obeyed.
ABSENT_REQUESTS: dict[str, tuple[str, ...]] = {
    BACKUP_PATH: ("GET", "POST", "DELETE"),
    NOMINATION_PATH: ("POST",),
    DEACTIVATION_PATH: ("POST",),
    READYZ_PATH: ("GET",),
    "/file/sync": ("POST",),
}


def profile_surface(c: Checker) -> None:
    """The line of Core the target is: `/version` names it, and every endpoint the profile lacks answers the
    generic 404 and changes nothing, on an unlicensed instance, on a production, and asked to make another
    instance its backup; the licensed view's fields are the profile's."""
    fresh(c)
    a = c.names[0]
    profile = c.model.profile
    version = simple(
        c, f"GET /version on {a}", "GET", c.url(a, "/version"), (200, ...), ("profile.version",), headers=c.auth(a)
    )
    if not str(version.get("version", "")).startswith(profile.name + "."):
        raise broken("profile.version", f"the {profile.name} profile's /version is {profile.name}.*, got {version}")
    absent_endpoints(c, a, "unlicensed")
    c.activate(a, K1, 1)
    read(c, a)
    absent_endpoints(c, a, "active")
    production = c.model.instances[a].deployment
    for other in c.names[1:2]:
        absent_endpoints(c, other, f"asked to back up {a}", production)
    c.check_fleet()


def absent_endpoints(c: Checker, name: str, label: str, production: str | None = None) -> None:
    """Every path the profile lacks, with each method, sent to `name`: the generic 404, nothing changed."""
    profile = c.model.profile
    for path in sorted(profile.absent):
        for method in ABSENT_REQUESTS.get(path, ("GET",)):
            headers = dict(c.auth(name))
            body: bytes | None = None
            if method == "POST" and path == BACKUP_PATH:
                deployment = production or c.model.instances[name].deployment
                headers.update({"activation-key": K1, "active-deployment-id": deployment})
            elif method == "POST" and path == "/file/sync":
                body = SAMPLE
            c.refused(
                name,
                f"{method} {path} on {name} ({label}; the {profile.name} profile has no such endpoint)",
                "E_NOT_FOUND",
                ("profile.absent-endpoints",),
                lambda m=method, p=path, h=headers, b=body: c.conn.request(m, c.url(name, p), headers=h, body=b),
                kind="deactivate",
            )


def padded(doc: dict[str, Any], size: int) -> dict[str, Any]:
    """`doc` with a `comment` that makes its JSON (as the suite sends it) exactly `size` bytes."""
    bare = len(json.dumps({**doc, "comment": ""}))
    return {**doc, "comment": "x" * (size - bare)}


def _cells(*states: str, ops: tuple[str, ...] = tuple({op for op, _ in CELLS})) -> tuple[str, ...]:
    return tuple(cell(op, state) for op, state in CELLS if state in states and op in ops)


DRILLS: tuple[Drill, ...] = (
    Drill(
        "online production",
        (
            *_cells("unlicensed", ops=("unregister", "nominate", "deactivate", "upload")),
            *_cells("active", ops=("register-online", "register-offline", "unregister", "nominate", "deactivate")),
            "transition.activate.unlicensed",
            "transition.activate.active",
            "activate.same-key-no-new-slot",
            "activate.sets-online",
            "activate.quantity",
            "deactivate.online-frees-slot",
            "file.not-a-licence",
            "view.days_left",
            "view.deployment",
            "view.expiration",
            "view.licensed_engines",
            "view.licensed_to",
            "view.max_node_count",
            "view.online_activated",
            "view.product_id",
            "view.product_name",
            "view.unlicensed",
            "view.reactivate",
            "view.backup-flag",
            "service.readyz",
            "service.readyz-plain",
            "engines.listed",
            "engines.toggle",
            "engines.toggle-unlicensed",
            "scan.active",
            "scan.refused-by-state",
            "scan.empty",
            "scan.result",
            "scan.eicar",
            "scan.clean",
            "scan.unknown-id",
            "scan.size",
            "service.readyz-verbose",
            "auth.optional-apikey",
            "activation.reissue",
            "slots.accounting",
            "slots.within-key",
            "slots.backup-holds-none",
            "refused.changes-nothing",
            "state.starts-unlicensed",
            "state.deployment-id",
            "error.E_NOT_BACKUP_REMOVE",
            "error.E_NOT_BACKUP",
            "error.E_NOT_ACTIVE",
            "error.E_SCAN_UNLICENSED",
            "error.E_ENGINES_UNLICENSED",
            "error.E_EMPTY_FILE",
            "error.E_NOT_FOUND",
            "error.E_REGISTER_ACTIVE",
            "error.E_INVALID_LICENSE",
        ),
        online_production,
    ),
    Drill(
        "requests and the order of checks",
        (
            "activate.quantity",
            "register.request-shape",
            "service.answers",
            "service.order-of-checks",
            "service.unknown-path",
            "service.unknown-method",
            "error.E_BAD_REQUEST",
            "error.E_TOO_LARGE",
            "error.E_ACCESS",
            "error.E_METHOD",
            "error.E_BACKUP_REQUEST",
            "transition.register-online.unlicensed",
            "transition.unregister.backup-online",
            "register.success-sentence",
            "unregister.success-sentence",
        ),
        requests_and_order,
        needs=(BACKUP_PATH,),
    ),
    Drill(
        "the activation server down",
        (
            "online.activation-server-down",
            "error.E_ACTIVATION_UNREACHABLE",
            "transition.upload.active",
        ),
        activation_server_down,
        needs=(BACKUP_PATH, NOMINATION_PATH, DEACTIVATION_PATH),
    ),
    Drill(
        "scans and engines in progress",
        ("scan.progress", "engines.progress"),
        progress,
        needs=(DEACTIVATION_PATH,),
    ),
    Drill(
        "an online backup",
        (
            *_cells("backup-online"),
            "view.backup",
            "nominate.moves-slot",
            "nominate.success-sentence",
            "scan.refused-by-state",
            "error.E_ACTIVATE_BACKUP",
            "error.E_ALREADY_BACKUP",
            "error.E_DEACTIVATE_BACKUP",
            "error.E_SCAN_BACKUP",
            "engines.toggle",
        ),
        online_backup,
        needs=(BACKUP_PATH, NOMINATION_PATH),
    ),
    Drill(
        "an offline backup and the offline failover",
        (
            *_cells("backup-offline"),
            "transition.upload.unlicensed",
            "transition.register-offline.unlicensed",
            "upload.sets-offline",
            "offline.keeps-licence",
            "deactivate.offline-keeps-slot",
            "file.reupload",
            "error.E_NOMINATE_OFFLINE",
            "deactivation.frees-slot",
            "activation.issues-file",
            "file.fields",
            "file.values",
        ),
        offline_backup,
        needs=(BACKUP_PATH,),
    ),
    Drill(
        "the online failover",
        ("online.slot-lost", "nominate.moves-slot", "nominate.other-backups-stay"),
        failover,
        instances=2,
        needs=(BACKUP_PATH, NOMINATION_PATH),
    ),
    Drill(
        "slots at nomination and activation",
        ("nominate.takes-free-slot", "nominate.no-slot", "activate.no-slot", "activation.no-slot", "error.E_NO_SLOT"),
        nomination_slots,
        needs=(BACKUP_PATH, NOMINATION_PATH),
    ),
    Drill(
        "keys: moving, full, expired, unknown",
        (
            "activate.other-key-moves",
            "activate.other-key-no-slot",
            "activate.expired-key",
            "activate.unknown-key",
            "activation.unknown-key",
            "activation.invalid-key",
            "upload.takes-files-key",
            "transition.upload.active",
            "error.E_ACTIVATION_FAILED",
        ),
        keys,
    ),
    Drill(
        "backup registration and licence files",
        (
            "register-online.unknown-key",
            "register-online.production-on-key",
            "register-online.not-itself",
            "register-offline.another-deployment",
            "upload.own-deployment",
            "file.signature",
            "file.not-a-licence",
            "file.expired",
            "error.E_BACKUP_KEY",
            "error.E_BACKUP_PRODUCTION",
            "error.E_INVALID_LICENSE",
        ),
        registration,
        needs=(BACKUP_PATH,),
    ),
    Drill(
        "expiry at its boundaries",
        (
            "expiry.last-valid-day",
            "expiry.first-expired-day",
            "expiry.backup",
            "error.E_EXPIRED_SCAN",
            "activate.expired-key",
        ),
        expiry,
    ),
    Drill(
        "the activation server",
        (
            "activation.invalid-key",
            "activation.invalid-deployment",
            "activation.invalid-quantity",
            "activation.unknown-key",
            "activation.issues-file",
            "activation.reissue",
            "deactivation.frees-slot",
            "deactivation.not-activated",
        ),
        activation_server,
    ),
    Drill(
        "the target's own fleet and key",
        (
            "transition.activate.unlicensed",
            "transition.register-offline.unlicensed",
            "transition.nominate.backup-offline",
            "transition.nominate.backup-online",
            "scan.eicar",
            "scan.clean",
            "file.signature",
            "upload.own-deployment",
            "offline.keeps-licence",
            "activation.reissue",
            "expiry.first-expired-day",
        ),
        own_fleet,
    ),
    Drill(
        "authentication and accounts",
        (
            "auth.missing-apikey",
            "auth.unknown-apikey",
            "auth.configured-apikey",
            "auth.optional-apikey",
            "auth.login",
            "auth.login-refused",
            "auth.logout",
            "auth.logout-apikey",
            "auth.user",
            "auth.change-password",
            "auth.change-password-refused",
            "auth.sessions-bounded",
            "auth.set-apikey",
            "auth.set-apikey-format",
            "service.version",
            "error.E_ACCESS_MISSING",
            "error.E_ACCESS",
            "error.E_LOGIN",
            "error.E_LOGOUT",
            "error.E_PASSWORD",
            "error.E_APIKEY_FORMAT",
        ),
        authentication,
    ),
    Drill(
        "least-privilege accounts",
        (
            "auth.create-role",
            "auth.create-user",
            "auth.role-rights",
            "auth.no-rights-changes-nothing",
            "auth.own-account-needs-no-right",
            "auth.name-taken",
            "auth.unknown-role",
            "refused.changes-nothing",
            "transition.activate.unlicensed",
            "transition.deactivate.active",
            "error.E_NO_RIGHTS",
            "error.E_NAME_TAKEN",
            "error.E_UNKNOWN_ROLE",
            "error.E_APIKEY_TAKEN",
            "auth.scan-rights",
            "auth.nodes-rights",
            "nodes.max-node-count",
            "scan.sync",
        ),
        least_privilege,
    ),
    Drill(
        "scan requests: synchronous, without their length, with a callbackurl",
        (
            "scan.sync",
            "scan.sync-refused-by-state",
            "scan.length-required",
            "scan.callback",
            "scan.callback-invalid",
            "scan.sync-callback",
            "scan.eicar",
            "scan.clean",
            "scan.active",
            "service.order-of-checks",
            "expiry.last-valid-day",
            "expiry.first-expired-day",
            "error.E_LENGTH_REQUIRED",
            "error.E_CALLBACK_INVALID",
            "error.E_CALLBACK_UNSUPPORTED",
            "error.E_SCAN_UNLICENSED",
            "error.E_SCAN_BACKUP",
            "error.E_EXPIRED_SCAN",
        ),
        scan_requests,
    ),
    Drill(
        "nodes and a key's renewal",
        (
            "nodes.max-node-count",
            "activate.renews",
            "activate.same-key-no-new-slot",
            "view.max_node_count",
            "view.expiration",
            "upload.sets-offline",
        ),
        nodes_and_renewal,
    ),
    Drill(
        "the profile's surface",
        (
            "profile.version",
            "profile.absent-endpoints",
            "view.deployment_id",
            "refused.changes-nothing",
            "error.E_NOT_FOUND",
        ),
        profile_surface,
        claims_under="4.18",
    ),
)
