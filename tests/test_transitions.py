"""The licence state machine over real HTTP: every cell of the transition table (docs/behaviour.md, Transitions),
the branches inside the allowed cells, and the clarifications of docs/decisions.md.

Instances are put into states and operated on only through the Core and activation server faces; the fleet is
read (snapshot, slot holders) only to compare before and after, and its clock is moved to test expiry.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import pytest
import requests
import yaml

from mockcore.catalogue import DEFAULT_ENTRIES, ErrorCode
from mockcore.fleet import KeySpec
from mockcore.lifecycle import ENDPOINTS, TRANSITIONS, LicenceState, Operation
from tests.client import CoreClient
from tests.conftest import FleetFactory, RunningFleet
from tests.states import (
    BACKUP_REGISTERED,
    BACKUP_REMOVED,
    NOMINATED,
    OK,
    States,
    activation,
    activation_error,
    assert_licensed,
    assert_unlicensed,
    closing_clients,
    core,
    expect,
    licence_file,
    observe,
)

U = LicenceState.UNLICENSED
A = LicenceState.ACTIVE
BON = LicenceState.BACKUP_ONLINE
BOFF = LicenceState.BACKUP_OFFLINE

# Keys the fleets below are made with, so a test knows which one is which.
KEY_1 = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-0001"
KEY_2 = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-0002"
UNKNOWN_KEY = "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ"
MALFORMED_KEY = "not-an-activation-key"
# A well-formed deployment id that is no instance of any fleet here.
FOREIGN_DEPLOYMENT = "MSCL" + "0123456789abcdef" * 2

Perform = Callable[[], requests.Response]

_closing_clients = pytest.fixture(autouse=True)(closing_clients)


def expect_error(response: requests.Response, code: ErrorCode) -> None:
    entry = DEFAULT_ENTRIES[code]
    expect(response, entry.status, {"err": entry.text})


def holders(running: RunningFleet, key: str | None = None) -> set[str]:
    """Deployments holding a slot on `key` (default: the fleet's first key)."""
    return set(running.fleet.slot_holders()[key or running.key])


def deployments(running: RunningFleet) -> dict[str, str]:
    """Instance name -> deployment id, read over HTTP."""
    return {name: core(running, name).deployment() for name in running.fleet.names}


def edit_licence(body: bytes, **changes: object) -> bytes:
    doc = yaml.safe_load(body)
    doc.update(changes)
    return yaml.safe_dump(doc, sort_keys=False).encode()


# ---------------------------------------------------------------------------------------------------------------
# 1. Every cell of the transition table
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowed:
    """What an allowed cell leads to, in the scene of `test_transition_table_cell`: instance `a` is operated
    on, `c` is the production (activated online on the key) that backups are registered against."""

    body: Mapping[str, object]
    state: LicenceState
    holders: frozenset[str]  # instance names holding a slot on the key afterwards
    slot_delta: int  # slots used after minus before the operation
    online: bool = False  # `online_activated` of the new licensed state
    reactivate: bool = False  # `reactivate` of the new unlicensed state
    production_lost: bool = False  # the production became unlicensed with `reactivate: true`


# docs/behaviour.md, Transitions, written out independently of mockcore.lifecycle.TRANSITIONS.
SPEC_TABLE: Mapping[tuple[Operation, LicenceState], Allowed | ErrorCode] = {
    (Operation.ACTIVATE, U): Allowed(OK, A, frozenset("ac"), +1, online=True),
    (Operation.ACTIVATE, A): Allowed(OK, A, frozenset("ac"), 0, online=True),  # same key: no new slot
    (Operation.ACTIVATE, BON): ErrorCode.ACTIVATE_BACKUP,
    (Operation.ACTIVATE, BOFF): ErrorCode.ACTIVATE_BACKUP,
    # The file is obtained (taking `a` a slot) before the operation, so the upload itself takes none.
    (Operation.UPLOAD, U): Allowed(OK, A, frozenset("ac"), 0, online=False),
    (Operation.UPLOAD, A): Allowed(OK, A, frozenset("ac"), 0, online=False),
    (Operation.UPLOAD, BON): ErrorCode.ACTIVATE_BACKUP,
    (Operation.UPLOAD, BOFF): ErrorCode.ACTIVATE_BACKUP,
    (Operation.REGISTER_ONLINE, U): Allowed(BACKUP_REGISTERED, BON, frozenset("c"), 0, online=True),
    (Operation.REGISTER_ONLINE, A): ErrorCode.REGISTER_ACTIVE,
    (Operation.REGISTER_ONLINE, BON): ErrorCode.ALREADY_BACKUP,
    (Operation.REGISTER_ONLINE, BOFF): ErrorCode.ALREADY_BACKUP,
    (Operation.REGISTER_OFFLINE, U): Allowed(BACKUP_REGISTERED, BOFF, frozenset("c"), 0, online=False),
    (Operation.REGISTER_OFFLINE, A): ErrorCode.REGISTER_ACTIVE,
    (Operation.REGISTER_OFFLINE, BON): ErrorCode.ALREADY_BACKUP,
    (Operation.REGISTER_OFFLINE, BOFF): ErrorCode.ALREADY_BACKUP,
    (Operation.UNREGISTER, U): ErrorCode.NOT_BACKUP_REMOVE,
    (Operation.UNREGISTER, A): ErrorCode.NOT_BACKUP_REMOVE,
    (Operation.UNREGISTER, BON): Allowed(BACKUP_REMOVED, U, frozenset("c"), 0, reactivate=False),
    (Operation.UNREGISTER, BOFF): Allowed(BACKUP_REMOVED, U, frozenset("c"), 0, reactivate=False),
    (Operation.NOMINATE, U): ErrorCode.NOT_BACKUP,
    (Operation.NOMINATE, A): ErrorCode.NOT_BACKUP,
    # The production's slot moves to the backup: slot use unchanged, the production loses its licence.
    (Operation.NOMINATE, BON): Allowed(NOMINATED, A, frozenset("a"), 0, online=True, production_lost=True),
    (Operation.NOMINATE, BOFF): ErrorCode.NOMINATE_OFFLINE,
    (Operation.DEACTIVATE, U): ErrorCode.NOT_ACTIVE,
    # `a` is active online in this scene: the slot is freed at once and the key is still held.
    (Operation.DEACTIVATE, A): Allowed(OK, U, frozenset("c"), -1, reactivate=True),
    (Operation.DEACTIVATE, BON): ErrorCode.DEACTIVATE_BACKUP,
    (Operation.DEACTIVATE, BOFF): ErrorCode.DEACTIVATE_BACKUP,
}


def _activate(states: States, target: CoreClient) -> Perform:
    return lambda: target.activate(states.key)


def _upload(states: States, target: CoreClient) -> Perform:
    body = licence_file(states.activation, states.key, target.deployment())
    return lambda: target.upload(body)


def _register_online(states: States, target: CoreClient) -> Perform:
    production = states.production_deployment()
    return lambda: target.register_online(states.key, production)


def _register_offline(states: States, target: CoreClient) -> Perform:
    body = states.production_file()
    return lambda: target.register_offline(body)


def _unregister(states: States, target: CoreClient) -> Perform:
    return target.unregister


def _nominate(states: States, target: CoreClient) -> Perform:
    return target.nominate


def _deactivate(states: States, target: CoreClient) -> Perform:
    return target.deactivate


# For each operation: prepare a well-formed, semantically valid request (anything that takes a slot, such as
# obtaining a licence file, happens here), and return the call that performs it.
REQUESTS: Mapping[Operation, Callable[[States, CoreClient], Perform]] = {
    Operation.ACTIVATE: _activate,
    Operation.UPLOAD: _upload,
    Operation.REGISTER_ONLINE: _register_online,
    Operation.REGISTER_OFFLINE: _register_offline,
    Operation.UNREGISTER: _unregister,
    Operation.NOMINATE: _nominate,
    Operation.DEACTIVATE: _deactivate,
}

# Driven by the emulator's own table, so a row or column added there is a new case here (and fails until
# SPEC_TABLE and REQUESTS say what it should do).
CELLS: list[tuple[Operation, LicenceState]] = [(op, state) for op, row in TRANSITIONS.items() for state in row]


@pytest.mark.parametrize(("operation", "state"), CELLS, ids=[f"{op.value}-from-{st.value}" for op, st in CELLS])
def test_transition_table_cell(fleet3: RunningFleet, operation: Operation, state: LicenceState) -> None:
    states = States(fleet3, production="c")
    states.production_deployment()
    target = states.put("a", state)
    deps = deployments(fleet3)
    perform = REQUESTS[operation](states, target)
    expected = SPEC_TABLE[(operation, state)]

    before = fleet3.snapshot()
    slots_before = fleet3.slots_used()[states.key]
    response = perform()
    method, path = ENDPOINTS[operation]
    assert (response.request.method, response.request.path_url) == (method, path)

    if isinstance(expected, ErrorCode):
        expect_error(response, expected)
        assert fleet3.snapshot() == before
        assert observe(target) is state
        assert observe(states.production) is A
        assert fleet3.snapshot() == before
        return

    expect(response, 200, dict(expected.body))
    assert observe(target) is expected.state
    if expected.state is U:
        assert_unlicensed(target, deps["a"], reactivate=expected.reactivate)
    else:
        doc = assert_licensed(target, deps["a"], online=expected.online, backup=expected.state.is_backup)
        if not expected.production_lost:
            # Same key as the production: same terms.
            production_doc = states.production.licence().json()
            for field in ("days_left", "expiration", "product_id", "product_name"):
                assert doc[field] == production_doc[field], field
    if expected.production_lost:
        assert_unlicensed(states.production, deps["c"], reactivate=True)
    else:
        assert_licensed(states.production, deps["c"], online=True, backup=False)
    assert holders(fleet3) == {deps[name] for name in expected.holders}
    assert fleet3.slots_used()[states.key] - slots_before == expected.slot_delta


def test_cells_cover_every_key_of_the_transition_table() -> None:
    table = {(op, state) for op, row in TRANSITIONS.items() for state in row}
    # Every operation is defined in every state.
    assert table == set(itertools.product(Operation, LicenceState))
    # The parametrisation actually collected is the whole table, once per cell.
    marks = [m for m in test_transition_table_cell.pytestmark if m.name == "parametrize"]  # type: ignore[attr-defined]
    assert len(marks) == 1
    collected = list(marks[0].args[1])
    assert len(collected) == len(set(collected)) == len(table)
    assert set(collected) == table
    # Each cell has a documented expectation and each operation a request.
    assert set(SPEC_TABLE) == table
    assert set(REQUESTS) == set(Operation) == set(ENDPOINTS)


def test_transition_table_says_what_spec_says() -> None:
    for (op, state), expected in SPEC_TABLE.items():
        outcome = TRANSITIONS[op][state]
        assert outcome == (expected if isinstance(expected, ErrorCode) else expected.state), (op, state)


# ---------------------------------------------------------------------------------------------------------------
# 2. Branches inside the allowed cells
# ---------------------------------------------------------------------------------------------------------------

# Online activation


@pytest.mark.parametrize("kind", ["malformed", "unknown", "expired"])
@pytest.mark.parametrize("state", [U, A])
def test_activation_refused_by_the_activation_server(make_fleet: FleetFactory, kind: str, state: LicenceState) -> None:
    running = make_fleet(keys=(KeySpec(KEY_1, slots=2), KeySpec(KEY_2, slots=2, days=1)))
    a = States(running, key=KEY_1).put("a", state)
    if kind == "expired":
        running.fleet.advance_clock(timedelta(days=2))
    bad_key = {"malformed": MALFORMED_KEY, "unknown": UNKNOWN_KEY, "expired": KEY_2}[kind]
    deployment = a.deployment()
    before = running.snapshot()

    response = a.activate(bad_key)

    assert running.snapshot() == before
    # E_ACTIVATION_FAILED carries the activation server's own text for the same request.
    server_text = activation_error(activation(running).obtain(bad_key, deployment))
    assert running.snapshot() == before
    expect(response, DEFAULT_ENTRIES[ErrorCode.ACTIVATION_FAILED].status, {"err": server_text})
    if kind == "malformed":
        assert server_text.startswith(
            "Could not activate your product because the Activation Key you provided is invalid."
        )
    assert observe(a) is state
    if state is A:
        assert_licensed(a, deployment, online=True, backup=False)
    assert running.snapshot() == before


def test_activation_without_a_free_slot(make_fleet: FleetFactory) -> None:
    running = make_fleet(keys=(KeySpec(KEY_1, slots=1),))
    states = States(running)
    states.put("b", A)
    a = core(running, "a")
    before = running.snapshot()

    expect_error(a.activate(KEY_1), ErrorCode.NO_SLOT)

    assert running.snapshot() == before
    assert_unlicensed(a, a.deployment(), reactivate=False)


@pytest.mark.parametrize("first", ["online", "offline"])
def test_reactivation_on_the_same_key_takes_no_new_slot(fleet3: RunningFleet, first: str) -> None:
    states = States(fleet3)
    if first == "online":
        a = states.put("a", A)
    else:
        a, _ = states.activate_offline("a")
    deployment = a.deployment()
    assert holders(fleet3) == {deployment}

    expect(a.activate(fleet3.key), 200, OK)

    assert holders(fleet3) == {deployment}
    assert_licensed(a, deployment, online=True, backup=False)


@pytest.mark.parametrize("first", ["online", "offline"])
def test_reactivation_on_another_key_with_a_free_slot(make_fleet: FleetFactory, first: str) -> None:
    running = make_fleet(keys=(KeySpec(KEY_1, slots=1, days=365), KeySpec(KEY_2, slots=1, days=200)))
    states = States(running, key=KEY_1)
    if first == "online":
        a = states.put("a", A)
    else:
        a, _ = states.activate_offline("a")
    deployment = a.deployment()
    old_expiration = a.licence().json()["expiration"]

    expect(a.activate(KEY_2), 200, OK)

    doc = assert_licensed(a, deployment, online=True, backup=False)
    assert doc["expiration"] != old_expiration
    assert holders(running, KEY_2) == {deployment}
    if first == "online":
        # docs/decisions.md, Moving keys: the old online slot is freed, so another instance can take it.
        assert holders(running, KEY_1) == set()
        expect(core(running, "b").activate(KEY_1), 200, OK)
    else:
        # docs/decisions.md, Moving keys: an offline slot stays held until /deactivation.
        assert holders(running, KEY_1) == {deployment}
        expect_error(core(running, "b").activate(KEY_1), ErrorCode.NO_SLOT)


@pytest.mark.parametrize("first", ["online", "offline"])
def test_reactivation_on_another_key_without_a_free_slot_keeps_the_old(make_fleet: FleetFactory, first: str) -> None:
    running = make_fleet(keys=(KeySpec(KEY_1, slots=1, days=365), KeySpec(KEY_2, slots=1, days=200)))
    States(running, key=KEY_2).put("b", A)
    states = States(running, key=KEY_1)
    if first == "online":
        a = states.put("a", A)
    else:
        a, _ = states.activate_offline("a")
    old = a.licence().json()
    before = running.snapshot()

    expect_error(a.activate(KEY_2), ErrorCode.NO_SLOT)

    assert running.snapshot() == before
    expect(a.licence(), 200, old)
    assert old["online_activated"] is (first == "online")


@pytest.mark.parametrize("state", [U, A, BON, BOFF])
def test_activation_request_is_checked_before_the_state_rule(fleet3: RunningFleet, state: LicenceState) -> None:
    """Order of checks (docs/behaviour.md): a malformed request is E_BAD_REQUEST in every state; a well-formed one
    meets the state rule before its key is looked at."""
    states = States(fleet3, production="c")
    states.production_deployment()
    a = states.put("a", state)
    before = fleet3.snapshot()
    malformed: list[object] = [
        {"activationKey": 5, "quantity": 1},
        {"activationKey": fleet3.key, "quantity": 0},
        {"activationKey": fleet3.key, "quantity": "1001"},
        {"activationKey": fleet3.key, "quantity": True},
        ["not", "an", "object"],
    ]
    for doc in malformed:
        response = a.request("POST", "/admin/license/activation", json=doc)
        entry = DEFAULT_ENTRIES[ErrorCode.BAD_REQUEST]
        assert (response.status_code, response.json()) == (entry.status, {"err": entry.text}), doc
    assert fleet3.snapshot() == before
    if state.is_backup:
        expect_error(a.activate(MALFORMED_KEY), ErrorCode.ACTIVATE_BACKUP)
        expect_error(a.activate(UNKNOWN_KEY), ErrorCode.ACTIVATE_BACKUP)
        assert fleet3.snapshot() == before
    assert observe(a) is state


# Licence file upload


@pytest.mark.parametrize("state", [U, A])
def test_upload_of_a_file_for_another_deployment(fleet3: RunningFleet, state: LicenceState) -> None:
    a = States(fleet3).put("a", state)
    other = licence_file(activation(fleet3), fleet3.key, core(fleet3, "b").deployment())
    before = fleet3.snapshot()

    expect_error(a.upload(other), ErrorCode.INVALID_LICENSE)

    assert fleet3.snapshot() == before
    assert observe(a) is state


@pytest.mark.parametrize("state", [U, A])
def test_upload_of_an_expired_file(make_fleet: FleetFactory, state: LicenceState) -> None:
    running = make_fleet(keys=(KeySpec(KEY_1, slots=2, days=365), KeySpec(KEY_2, slots=2, days=10)))
    a = States(running, key=KEY_1).put("a", state)
    expiring = licence_file(activation(running), KEY_2, a.deployment())
    running.fleet.advance_clock(timedelta(days=11))
    before = running.snapshot()

    expect_error(a.upload(expiring), ErrorCode.INVALID_LICENSE)

    assert running.snapshot() == before
    assert observe(a) is state


EDITS: Mapping[str, Callable[[bytes], bytes]] = {
    "licensed_to": lambda body: edit_licence(body, licensed_to="somebody else"),
    "max_node_count": lambda body: edit_licence(body, max_node_count="1000"),
    "expiration": lambda body: edit_licence(body, expiration="12/31/2099"),
    "forged-signature": lambda body: edit_licence(body, signature="0" * len(yaml.safe_load(body)["signature"])),
    "no-signature": lambda body: yaml.safe_dump(
        {k: v for k, v in yaml.safe_load(body).items() if k != "signature"}
    ).encode(),
    "not-yaml": lambda body: b"\x00\xff garbage",
    # Signed and untouched, but padded past the 1 MiB cap with a YAML comment (docs/errors.md: E_INVALID_LICENSE).
    "oversized": lambda body: body + b"#" + b"x" * (1024 * 1024) + b"\n",
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_upload_of_an_edited_file(fleet3: RunningFleet, edit: str) -> None:
    a = core(fleet3, "a")
    body = licence_file(activation(fleet3), fleet3.key, a.deployment())
    before = fleet3.snapshot()

    expect_error(a.upload(EDITS[edit](body)), ErrorCode.INVALID_LICENSE)

    assert fleet3.snapshot() == before
    assert observe(a) is U
    # The untouched file is fine, so it was the edit that was refused.
    expect(a.upload(body), 200, OK)


@pytest.mark.parametrize("target", ["same-key", "other-key"])
def test_upload_replaces_an_online_licence(make_fleet: FleetFactory, target: str) -> None:
    running = make_fleet(keys=(KeySpec(KEY_1, slots=1, days=365), KeySpec(KEY_2, slots=1, days=200)))
    a = States(running, key=KEY_1).put("a", A)
    deployment = a.deployment()
    new_key = KEY_1 if target == "same-key" else KEY_2
    body = licence_file(activation(running), new_key, deployment)

    expect(a.upload(body), 200, OK)

    assert_licensed(a, deployment, online=False, backup=False)
    assert holders(running, new_key) == {deployment}
    if target == "other-key":
        # Moving an online licence to another key frees the old online slot (docs/decisions.md, Moving keys).
        assert holders(running, KEY_1) == set()


# Online backup registration


@pytest.mark.parametrize("key", [UNKNOWN_KEY, MALFORMED_KEY], ids=["unknown", "malformed"])
def test_online_registration_with_an_unknown_key(fleet3: RunningFleet, key: str) -> None:
    states = States(fleet3)
    production = states.production_deployment()
    a = core(fleet3, "a")
    before = fleet3.snapshot()

    expect_error(a.register_online(key, production), ErrorCode.BACKUP_KEY)

    assert fleet3.snapshot() == before
    assert observe(a) is U


@pytest.mark.parametrize("production", ["unlicensed", "other-key", "freed", "foreign", "itself", "itself-holding"])
def test_online_registration_with_a_production_not_active_on_the_key(make_fleet: FleetFactory, production: str) -> None:
    running = make_fleet(keys=(KeySpec(KEY_1, slots=2), KeySpec(KEY_2, slots=2)))
    a, c = core(running, "a"), core(running, "c")
    if production == "unlicensed":
        named = c.deployment()
    elif production == "other-key":
        named = States(running, key=KEY_2).production_deployment()
    elif production == "freed":
        named = States(running, key=KEY_1).production_deployment()
        assert activation(running).release(KEY_1, named).status_code == 200
    elif production == "foreign":
        named = FOREIGN_DEPLOYMENT
    elif production == "itself":
        States(running, key=KEY_1).production_deployment()
        named = a.deployment()
    else:
        # `a` still holds a slot on the key (offline activation, deactivated, slot not freed), yet naming
        # itself is refused (docs/decisions.md, A backup of itself).
        States(running, key=KEY_1).activate_offline("a")
        expect(a.deactivate(), 200, OK)
        named = a.deployment()
        assert holders(running, KEY_1) == {named}
    before = running.snapshot()

    expect_error(a.register_online(KEY_1, named), ErrorCode.BACKUP_PRODUCTION)

    assert running.snapshot() == before
    assert observe(a) is U


def test_online_registration_against_an_offline_activated_production(fleet3: RunningFleet) -> None:
    c, _ = States(fleet3).activate_offline("c")
    a = core(fleet3, "a")

    expect(a.register_online(fleet3.key, c.deployment()), 200, BACKUP_REGISTERED)

    assert observe(a) is BON
    assert holders(fleet3) == {c.deployment()}


REQUEST_SHAPES = ["activation-key-only", "active-deployment-id-only", "headers-and-body", "neither"]


@pytest.mark.parametrize("state", [U, A, BON, BOFF])
def test_malformed_registration_request(fleet3: RunningFleet, state: LicenceState) -> None:
    """docs/behaviour.md, Order of checks: E_BACKUP_REQUEST, checked before the state rule (so also on an active
    instance)."""
    states = States(fleet3)
    production = states.production_deployment()
    body = states.production_file()
    a = states.put("a", state)
    shapes: dict[str, tuple[dict[str, str], bytes | None]] = {
        "activation-key-only": ({"activation-key": fleet3.key}, None),
        "active-deployment-id-only": ({"active-deployment-id": production}, None),
        "headers-and-body": ({"activation-key": fleet3.key, "active-deployment-id": production}, body),
        "neither": ({}, None),
    }
    assert list(shapes) == REQUEST_SHAPES
    before = fleet3.snapshot()
    for shape, (headers, data) in shapes.items():
        response = a.request("POST", "/admin/license/backup", headers=headers, data=data)
        entry = DEFAULT_ENTRIES[ErrorCode.BACKUP_REQUEST]
        assert (response.status_code, response.json()) == (entry.status, {"err": entry.text}), shape
        assert fleet3.snapshot() == before, shape
    assert observe(a) is state


# Offline backup registration


@pytest.mark.parametrize("file", ["own", "own-after-deactivation", "expired", "edited", "not-yaml"])
def test_offline_registration_with_an_invalid_file(make_fleet: FleetFactory, file: str) -> None:
    running = make_fleet(keys=(KeySpec(KEY_1, slots=3, days=365), KeySpec(KEY_2, slots=3, days=10)))
    states = States(running, key=KEY_1)
    a = core(running, "a")
    production_file = states.production_file()
    if file == "own":
        body = licence_file(activation(running), KEY_1, a.deployment())
    elif file == "own-after-deactivation":
        _, body = states.activate_offline("a")
        expect(a.deactivate(), 200, OK)
    elif file == "expired":
        body = licence_file(activation(running), KEY_2, states.production_deployment())
        running.fleet.advance_clock(timedelta(days=11))
    elif file == "edited":
        body = edit_licence(production_file, licensed_to="somebody else")
    else:
        body = b"{{{ not a licence"
    before = running.snapshot()

    expect_error(a.register_offline(body), ErrorCode.INVALID_LICENSE)

    assert running.snapshot() == before
    assert observe(a) is U


def test_offline_registration_needs_no_slot_held_by_the_production(fleet3: RunningFleet) -> None:
    """The file alone decides (an offline backup cannot ask anyone): a valid file for another deployment."""
    a = core(fleet3, "a")
    body = licence_file(activation(fleet3), fleet3.key, FOREIGN_DEPLOYMENT)
    assert activation(fleet3).release(fleet3.key, FOREIGN_DEPLOYMENT).status_code == 200

    expect(a.register_offline(body), 200, BACKUP_REGISTERED)

    assert_licensed(a, a.deployment(), online=False, backup=True)
    assert holders(fleet3) == set()


# Nomination


def test_nomination_moves_the_production_slot(fleet3: RunningFleet) -> None:
    states = States(fleet3, production="c")
    production = states.production_deployment()
    a = states.put("a", BON)
    slots = fleet3.slots_used()

    expect(a.nominate(), 200, NOMINATED)

    assert fleet3.slots_used() == slots
    assert holders(fleet3) == {a.deployment()}
    assert_licensed(a, a.deployment(), online=True, backup=False)
    assert a.scan(b"hello").status_code == 200
    c = states.production
    assert_unlicensed(c, production, reactivate=True)
    expect_error(c.scan(b"hello"), ErrorCode.SCAN_UNLICENSED)
    expect_error(c.deactivate(), ErrorCode.NOT_ACTIVE)


@pytest.mark.parametrize("freed_by", ["core-deactivation", "activation-server"])
def test_nomination_takes_a_free_slot_when_the_production_holds_none(fleet3: RunningFleet, freed_by: str) -> None:
    states = States(fleet3, production="c")
    production = states.production_deployment()
    a = states.put("a", BON)
    if freed_by == "core-deactivation":
        expect(states.production.deactivate(), 200, OK)
    else:
        assert activation(fleet3).release(fleet3.key, production).status_code == 200
    assert holders(fleet3) == set()

    expect(a.nominate(), 200, NOMINATED)

    assert holders(fleet3) == {a.deployment()}
    assert_licensed(a, a.deployment(), online=True, backup=False)
    assert_unlicensed(states.production, production, reactivate=True)


def test_nomination_without_a_free_slot(make_fleet: FleetFactory) -> None:
    running = make_fleet(keys=(KeySpec(KEY_1, slots=1),))
    states = States(running, production="c")
    a = states.put("a", BON)
    expect(states.production.deactivate(), 200, OK)
    states.put("b", A)
    before = running.snapshot()

    expect_error(a.nominate(), ErrorCode.NO_SLOT)

    assert running.snapshot() == before
    assert observe(a) is BON


def test_a_second_backup_of_the_same_production_stays_a_backup(fleet3: RunningFleet) -> None:
    states = States(fleet3, production="c")
    production = states.production_deployment()
    a = states.put("a", BON)
    b = states.put("b", BON)

    expect(a.nominate(), 200, NOMINATED)

    assert observe(b) is BON
    assert_licensed(b, b.deployment(), online=True, backup=True)
    assert_unlicensed(states.production, production, reactivate=True)
    # Nominated in its turn, the production holds no slot any more, so it takes the key's free one.
    expect(b.nominate(), 200, NOMINATED)
    assert holders(fleet3) == {a.deployment(), b.deployment()}
    assert observe(a) is A


def test_nomination_moves_the_production_slot_even_when_the_backup_holds_a_stale_one(fleet3: RunningFleet) -> None:
    """docs/behaviour.md, Transitions: if the production still holds a slot, that slot moves to the backup and the
    production loses its
    licence. Here the backup's deployment still holds an old slot of its own (offline activation, deactivated,
    never freed at /deactivation: the drift of docs/decisions.md, "Slots"); nomination must still fail the production
    over."""
    states = States(fleet3, production="c")
    production = states.production_deployment()
    a, _ = states.activate_offline("a")
    expect(a.deactivate(), 200, OK)
    assert holders(fleet3) == {production, a.deployment()}
    expect(a.register_online(fleet3.key, production), 200, BACKUP_REGISTERED)

    expect(a.nominate(), 200, NOMINATED)

    assert_licensed(a, a.deployment(), online=True, backup=False)
    assert production not in holders(fleet3)
    assert a.deployment() in holders(fleet3)
    assert_unlicensed(states.production, production, reactivate=True)


def test_nomination_away_from_an_offline_production_leaves_it_its_licence(fleet3: RunningFleet) -> None:
    """An offline-activated production keeps its local licence when its slot is moved (drift; docs/decisions.md)."""
    states = States(fleet3)
    c, _ = states.activate_offline("c")
    a = core(fleet3, "a")
    expect(a.register_online(fleet3.key, c.deployment()), 200, BACKUP_REGISTERED)

    expect(a.nominate(), 200, NOMINATED)

    assert holders(fleet3) == {a.deployment()}
    assert_licensed(a, a.deployment(), online=True, backup=False)
    assert_licensed(c, c.deployment(), online=False, backup=False)


# ---------------------------------------------------------------------------------------------------------------
# 3. The clarifications of docs/decisions.md
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["activated", "nominated"])
def test_online_instance_loses_its_licence_when_freed_at_the_activation_server(fleet3: RunningFleet, how: str) -> None:
    states = States(fleet3, production="c")
    if how == "activated":
        a = states.put("a", A)
    else:
        a = states.put("a", BON)
        expect(a.nominate(), 200, NOMINATED)
    deployment = a.deployment()
    assert_licensed(a, deployment, online=True, backup=False)

    response = activation(fleet3).release(fleet3.key, deployment)
    assert response.status_code == 200
    assert "success" in yaml.safe_load(response.text)

    assert_unlicensed(a, deployment, reactivate=True)
    expect_error(a.scan(b"hello"), ErrorCode.SCAN_UNLICENSED)
    verbose = a.readyz(verbose=True)
    assert (verbose.status_code, verbose.json()["license"]) == (503, {"status": "invalid"})
    # It holds the key still, so it can reactivate on it.
    expect(a.activate(fleet3.key), 200, OK)
    assert_licensed(a, deployment, online=True, backup=False)


def test_offline_production_keeps_its_licence_when_its_slot_is_freed(fleet3: RunningFleet) -> None:
    a, _ = States(fleet3).activate_offline("a")
    deployment = a.deployment()

    assert activation(fleet3).release(fleet3.key, deployment).status_code == 200

    assert holders(fleet3) == set()
    assert_licensed(a, deployment, online=False, backup=False)
    assert a.scan(b"hello").status_code == 200
    expect(a.readyz(), 200, {})


def test_a_licence_file_can_be_uploaded_again_after_its_slot_was_freed(fleet3: RunningFleet) -> None:
    a, body = States(fleet3).activate_offline("a")
    deployment = a.deployment()
    expect(a.deactivate(), 200, OK)
    assert activation(fleet3).release(fleet3.key, deployment).status_code == 200
    assert holders(fleet3) == set()

    expect(a.upload(body), 200, OK)

    assert_licensed(a, deployment, online=False, backup=False)
    # Only activation takes a slot (docs/decisions.md, Slots): the upload does not.
    assert holders(fleet3) == set()


def test_offline_deactivation_keeps_the_slot_until_the_activation_server_frees_it(make_fleet: FleetFactory) -> None:
    running = make_fleet(keys=(KeySpec(KEY_1, slots=1),))
    a, _ = States(running).activate_offline("a")
    deployment = a.deployment()

    expect(a.deactivate(), 200, OK)

    assert_unlicensed(a, deployment, reactivate=False)
    assert holders(running) == {deployment}
    b = core(running, "b")
    expect_error(b.activate(KEY_1), ErrorCode.NO_SLOT)
    assert activation(running).release(KEY_1, deployment).status_code == 200
    assert holders(running) == set()
    expect(b.activate(KEY_1), 200, OK)


def test_online_deactivation_frees_the_slot_at_once(make_fleet: FleetFactory) -> None:
    running = make_fleet(keys=(KeySpec(KEY_1, slots=1),))
    a = States(running).put("a", A)
    deployment = a.deployment()

    expect(a.deactivate(), 200, OK)

    assert_unlicensed(a, deployment, reactivate=True)
    assert holders(running) == set()
    # Nothing left to free at the activation server.
    assert activation(running).release(KEY_1, deployment).status_code == 404
    expect(core(running, "b").activate(KEY_1), 200, OK)


@pytest.mark.parametrize("state", [BON, BOFF])
def test_unregistering_drops_the_key(fleet3: RunningFleet, state: LicenceState) -> None:
    """Even an instance that held a key before (online deactivation: reactivate true) holds none after."""
    states = States(fleet3, production="c")
    states.production_deployment()
    a = states.put("a", A)
    expect(a.deactivate(), 200, OK)
    assert_unlicensed(a, a.deployment(), reactivate=True)
    states.put("a", state)

    expect(a.unregister(), 200, BACKUP_REMOVED)

    assert_unlicensed(a, a.deployment(), reactivate=False)


@pytest.mark.parametrize("state", [BON, BOFF])
def test_backup_licence_view(fleet3: RunningFleet, state: LicenceState) -> None:
    states = States(fleet3, production="c")
    states.production_deployment()
    a = states.put("a", state)

    doc = assert_licensed(a, a.deployment(), online=state is BON, backup=True)

    production_doc = states.production.licence().json()
    assert doc["deployment"] != production_doc["deployment"]
    for field in ("days_left", "expiration", "licensed_engines", "licensed_to", "max_node_count", "product_id"):
        assert doc[field] == production_doc[field], field
    assert doc["product_name"] == production_doc["product_name"]
    expect(a.readyz(), 200, {})
    assert a.readyz(verbose=True).json()["license"] == {"status": "ok"}
    expect_error(a.scan(b"hello"), ErrorCode.SCAN_BACKUP)


def _licensed_in(running: RunningFleet, how: str) -> CoreClient:
    states = States(running, production="c")
    if how == "active-online":
        return states.put("a", A)
    if how == "active-offline":
        client, _ = states.activate_offline("a")
        return client
    return states.put("a", BON if how == "backup-online" else BOFF)


EXPIRY_CASES = ["active-online", "active-offline", "backup-online", "backup-offline"]


@pytest.mark.parametrize("how", EXPIRY_CASES)
def test_expiry_through_the_fleet_clock(make_fleet: FleetFactory, how: str) -> None:
    running = make_fleet(keys=(KeySpec(KEY_1, slots=2, days=30),))
    a = _licensed_in(running, how)
    assert a.licence().json()["days_left"] == 30

    running.fleet.advance_clock(timedelta(days=31))

    doc = a.licence().json()
    assert doc["days_left"] == 0
    assert observe(a) is {"active-online": A, "active-offline": A, "backup-online": BON, "backup-offline": BOFF}[how]
    expect(a.readyz(), 503, {})
    verbose = a.readyz(verbose=True)
    assert verbose.status_code == 503
    assert verbose.json()["license"] == {"status": "expired"}
    if how.startswith("active"):
        expect(a.scan(b"hello"), 500, {"err": "License is expired"})


def test_licence_is_valid_through_its_expiration_date(make_fleet: FleetFactory) -> None:
    running = make_fleet(keys=(KeySpec(KEY_1, slots=2, days=30),))
    running.fleet.freeze_clock()
    a = States(running).put("a", A)

    running.fleet.advance_clock(timedelta(days=30))

    assert a.licence().json()["days_left"] == 0
    expect(a.readyz(), 200, {})
    assert a.scan(b"hello").status_code == 200
    running.fleet.advance_clock(timedelta(days=1))
    expect(a.scan(b"hello"), 500, {"err": "License is expired"})


def test_full_offline_failover(make_fleet: FleetFactory) -> None:
    """The offline failover (docs/behaviour.md, Transitions), end to end on a key with a single slot."""
    running = make_fleet(instances=("prod", "backup"), keys=(KeySpec(KEY_1, slots=1),))
    prod, backup, server = core(running, "prod"), core(running, "backup"), activation(running)
    prod_dep = prod.deployment()

    # The production is activated offline with a file obtained by hand.
    prod_file = licence_file(server, KEY_1, prod_dep)
    expect(prod.upload(prod_file), 200, OK)
    assert_licensed(prod, prod_dep, online=False, backup=False)
    # The backup is registered offline with the production's file.
    expect(backup.register_offline(prod_file), 200, BACKUP_REGISTERED)
    assert observe(backup) is BOFF
    expect_error(backup.scan(b"hello"), ErrorCode.SCAN_BACKUP)
    # It cannot be nominated.
    before = running.snapshot()
    expect_error(backup.nominate(), ErrorCode.NOMINATE_OFFLINE)
    assert running.snapshot() == before

    # Read the backup's deployment id; free the production; obtain the backup's own file.
    backup_dep = backup.licence().json()["deployment"]
    assert backup_dep != prod_dep
    assert activation_error(server.obtain(KEY_1, backup_dep)) != ""  # the one slot is the production's
    assert server.release(KEY_1, prod_dep).status_code == 200
    backup_file = licence_file(server, KEY_1, backup_dep)
    assert holders(running) == {backup_dep}
    # Unregister the backup and upload its file.
    expect_error(backup.upload(backup_file), ErrorCode.ACTIVATE_BACKUP)
    expect(backup.unregister(), 200, BACKUP_REMOVED)
    assert_unlicensed(backup, backup_dep, reactivate=False)
    expect(backup.upload(backup_file), 200, OK)

    assert_licensed(backup, backup_dep, online=False, backup=False)
    scan = backup.scan(b"hello")
    assert scan.status_code == 200 and len(scan.json()["data_id"]) == 32
    expect(backup.readyz(), 200, {})
    assert holders(running) == {backup_dep}
    # The offline production never learns that its slot is gone (the drift of docs/decisions.md).
    assert_licensed(prod, prod_dep, online=False, backup=False)
