"""Acceptance: "Backups never consume a slot, whatever the sequence" (docs/behaviour.md, Keys and slots).

A Hypothesis state machine drives random operation sequences on a three-instance fleet with one or two keys
(one slot, two slots, or one of each) and checks, after every step, only through the public HTTP API (licence
reads, `/admin/license/backup`, the activation server) plus `running.fleet.slot_holders()` for slot counts:

(a) a backup registration or unregistration, accepted or refused, never changes any key's slot holders;
(b) an instance in a backup state never gains a slot while it is a backup. A deployment may hold a *stale* slot
    from before it became a backup (docs/decisions.md, "Slots": activated offline, deactivated, registered), and it
    may be given one *by hand* at the activation server's `/activation` (the offline failover of docs/behaviour.md,
    Transitions, obtains the
    backup's file before unregistering it): those are the operator's doing and are allowed; anything else is a
    leak;
(c) slots used <= slots on every key, and no deployment holds two slots on one key;
(d) every active online instance, once it has answered a request (an online instance learns of a freed slot
    on its next request, docs/decisions.md), holds a slot on its key: the key is told apart by the licence's
    `expiration`, the keys being given different lifetimes;
(e) every refused answer (non-2xx, or the activation server's `200 Invalid parameter` / `200 Activation failed`)
    leaves `running.snapshot()` unchanged; every instance's licence is read before the snapshot is taken, so a
    lazily refreshed online instance does not count as a change.

Budget: `max_examples=40, stateful_step_count=25` (well under 30 s); `MOCKCORE_HYPOTHESIS_PROFILE=long` runs a
larger search.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mockcore.fleet import Fleet, FleetConfig, KeySpec
from tests.client import ActivationClient, CoreClient
from tests.conftest import RunningFleet, serve_fleet

NAMES = ("p", "q", "r")
# Key lifetimes differ, so a licence read's `expiration` tells which key an instance is on.
LAYOUTS: Mapping[str, tuple[KeySpec, ...]] = {
    "one-key-one-slot": (KeySpec(slots=1, days=365),),
    "one-key-two-slots": (KeySpec(slots=2, days=365),),
    "two-keys": (KeySpec(slots=1, days=365), KeySpec(slots=2, days=180)),
}
UNKNOWN_KEY = "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ"
MALFORMED_KEY = "not-a-key"
UNKNOWN_DEPLOYMENT = "MSCL" + "f" * 32
MALFORMED_DEPLOYMENT = "MSCL-nope"
GARBAGE_FILE = b"product_id: nope\nsignature: forged\n"

PROFILES: Mapping[str, settings] = {
    "default": settings(
        max_examples=40,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    ),
    "long": settings(
        max_examples=500,
        stateful_step_count=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    ),
}

names = st.sampled_from(NAMES)
# 0 to 3: the fleet's keys (wrapping round with one key); 4 a well-formed unknown key, 5 a malformed one.
key_choices = st.integers(min_value=0, max_value=5)
# An instance's deployment, or a well-formed unknown one, or a malformed one.
targets = st.sampled_from([*NAMES, "unknown", "malformed"])
# Which licence file to send: one issued for the instance itself, one issued for another deployment (either
# picked among the files obtained so far, by index), a tampered one, or garbage.
file_choices = st.tuples(st.sampled_from(["own", "own", "other", "other", "tampered", "garbage"]), st.integers(0, 30))


def is_success(response: requests.Response) -> bool:
    """2xx, and not one of the activation server's failures that keep HTTP 200 with another reason phrase."""
    return 200 <= response.status_code < 300 and response.reason == "OK"


def describe(response: requests.Response) -> str:
    return (
        f"{response.request.method} {response.url} -> {response.status_code} {response.reason}: {response.text[:200]!r}"
    )


class BackupSlots(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.running: RunningFleet | None = None
        self.clients: dict[str, CoreClient] = {}
        self.activation: ActivationClient | None = None
        self.deployments: dict[str, str] = {}
        self.slots: dict[str, int] = {}
        self.key_by_expiration: dict[str, str] = {}
        self.files: list[tuple[str, bytes]] = []  # (deployment it was issued for, the file)
        # Per instance: None when it is not a backup, else the keys it may hold a slot on (stale or by hand).
        self.allowance: dict[str, set[str] | None] = dict.fromkeys(NAMES)
        self.online_backups: set[str] = set()  # the backups registered with headers, which may be nominated
        self.licences: dict[str, dict[str, object]] = {}
        self.before: tuple[object, ...] = ()

    # Setup

    @initialize(layout=st.sampled_from(sorted(LAYOUTS)))
    def start(self, layout: str) -> None:
        fleet = Fleet(FleetConfig(instances=NAMES, keys=LAYOUTS[layout]))
        self.running = serve_fleet(fleet)
        self.clients = {name: self.running.core(name) for name in NAMES}
        self.activation = self.running.activation
        self.deployments = {name: client.deployment() for name, client in self.clients.items()}
        # Fixed configuration, not state: which slot count and expiration each key was given.
        for key, spec in zip(self.running.keys, LAYOUTS[layout], strict=True):
            self.slots[key] = spec.slots
            expires = fleet.started.date() + timedelta(days=spec.days)
            self.key_by_expiration[expires.strftime("%m/%d/%Y")] = key
        self.refresh()

    def teardown(self) -> None:
        if self.running is not None:
            self.running.server.stop()

    # Choices

    @property
    def fleet_running(self) -> RunningFleet:
        assert self.running is not None
        return self.running

    def key(self, choice: int) -> str:
        keys = self.fleet_running.keys
        if choice <= 3:
            return keys[choice % len(keys)]
        return UNKNOWN_KEY if choice == 4 else MALFORMED_KEY

    def deployment(self, target: str) -> str:
        if target in self.deployments:
            return self.deployments[target]
        return UNKNOWN_DEPLOYMENT if target == "unknown" else MALFORMED_DEPLOYMENT

    def licence_file(self, name: str, choice: tuple[str, int]) -> bytes:
        kind, index = choice
        own = [body for dep, body in self.files if dep == self.deployments[name]]
        other = [body for dep, body in self.files if dep != self.deployments[name]]
        pool = {"own": own, "other": other, "tampered": own + other, "garbage": []}[kind]
        if not pool:
            return GARBAGE_FILE
        body = pool[index % len(pool)]
        return body.replace(b"licensed_to: mockcore", b"licensed_to: mockcorf") if kind == "tampered" else body

    def held_keys(self, name: str) -> set[str]:
        dep = self.deployments[name]
        return {key for key, holders in self.fleet_running.fleet.slot_holders().items() if dep in holders}

    # The check every step goes through

    def step(
        self, response: requests.Response, *, registration: bool = False, holders: dict[str, list[str]] | None = None
    ) -> bool:
        assert response.status_code < 500, describe(response)
        assert "Traceback" not in response.text, describe(response)
        success = is_success(response)
        if not success:
            assert self.fleet_running.snapshot() == self.before, (
                f"(e) a refused request changed state: {describe(response)}"
            )
        if registration:
            assert holders is not None
            assert self.fleet_running.fleet.slot_holders() == holders, f"(a) slot holders changed: {describe(response)}"
        return success

    def refresh(self, touched: str | None = None) -> None:
        """Read licences (public API), which brings online instances up to date, then snapshot.

        Read: the instance the step spoke to, and every instance whose last read said `online_activated` (only
        those consult the activation server, docs/decisions.md, so only those can change without being spoken to). The
        others' last read still stands."""
        stale = [
            name
            for name in NAMES
            if name == touched or name not in self.licences or self.licences[name].get("online_activated") is True
        ]
        for name in stale:
            response = self.clients[name].licence()
            assert response.status_code == 200, describe(response)
            self.licences[name] = response.json()
        self.before = self.fleet_running.snapshot()

    def check_backup_flag(self, name: str) -> None:
        response = self.clients[name].is_backup()
        assert response.status_code == 200, describe(response)
        assert response.json() == {"is_backup": self.allowance[name] is not None}, (name, self.allowance[name])

    # Core face operations

    @rule(name=names, key=key_choices, quantity=st.sampled_from([1, 1, "1", 3, 0, 1001, "x"]))
    def activate_online(self, name: str, key: int, quantity: object) -> None:
        if self.step(self.clients[name].activate(self.key(key), quantity)):
            self.allowance[name] = None
        self.refresh(name)
        self.check_backup_flag(name)

    @rule(name=names, key=key_choices)
    def obtain_and_upload(self, name: str, key: int) -> None:
        """Offline activation: obtain this instance's file at `/activation`, then upload it."""
        self.obtain_file(name, key, 1)
        if self.files and self.files[-1][0] == self.deployments[name]:
            self.upload(name, self.files[-1][1])

    @rule(name=names, choice=file_choices)
    def upload_file(self, name: str, choice: tuple[str, int]) -> None:
        self.upload(name, self.licence_file(name, choice))

    def upload(self, name: str, body: bytes) -> None:
        if self.step(self.clients[name].upload(body)):
            self.allowance[name] = None
        self.refresh(name)
        self.check_backup_flag(name)

    @rule(name=names, key=key_choices, production=targets)
    def register_online(self, name: str, key: int, production: str) -> None:
        self.register_online_with(name, self.key(key), self.deployment(production))

    def slot_pairs(self) -> list[tuple[str, str]]:
        return sorted((key, dep) for key, deps in self.fleet_running.fleet.slot_holders().items() for dep in deps)

    @precondition(lambda self: bool(self.slot_pairs()))
    @rule(name=names, data=st.data())
    def register_online_to_a_slot_holder(self, name: str, data: st.DataObject) -> None:
        """The likely-valid registration: a key and a deployment that holds a slot on it."""
        key, production = data.draw(st.sampled_from(self.slot_pairs()), label="key, production")
        self.register_online_with(name, key, production)

    def register_online_with(self, name: str, key: str, production: str) -> None:
        holders = self.fleet_running.fleet.slot_holders()
        response = self.clients[name].register_online(key, production)
        if self.step(response, registration=True, holders=holders):
            self.allowance[name] = self.held_keys(name)
            self.online_backups.add(name)
        self.refresh(name)
        self.check_backup_flag(name)

    @rule(name=names, choice=file_choices)
    def register_offline(self, name: str, choice: tuple[str, int]) -> None:
        holders = self.fleet_running.fleet.slot_holders()
        response = self.clients[name].register_offline(self.licence_file(name, choice))
        if self.step(response, registration=True, holders=holders):
            self.allowance[name] = self.held_keys(name)
            self.online_backups.discard(name)
        self.refresh(name)
        self.check_backup_flag(name)

    @precondition(lambda self: bool(self.files))
    @rule(name=names, index=st.integers(0, 30))
    def register_offline_with_another_file(self, name: str, index: int) -> None:
        """The likely-valid offline registration: a file issued for another deployment."""
        self.register_offline(name, ("other", index))

    @rule(name=names, variant=st.sampled_from(["both", "key-only", "deployment-only", "neither"]), choice=file_choices)
    def register_malformed(self, name: str, variant: str, choice: tuple[str, int]) -> None:
        holders = self.fleet_running.fleet.slot_holders()
        key, production = self.key(0), self.deployment("p")
        headers = {
            "both": {"activation-key": key, "active-deployment-id": production},
            "key-only": {"activation-key": key},
            "deployment-only": {"active-deployment-id": production},
            "neither": {},
        }[variant]
        body = b"" if variant == "neither" else self.licence_file(name, choice)
        response = self.clients[name].request("POST", "/admin/license/backup", headers=headers, data=body)
        assert not self.step(response, registration=True, holders=holders), describe(response)
        self.refresh(name)
        self.check_backup_flag(name)

    @rule(name=names)
    def unregister(self, name: str) -> None:
        holders = self.fleet_running.fleet.slot_holders()
        if self.step(self.clients[name].unregister(), registration=True, holders=holders):
            self.allowance[name] = None
        self.refresh(name)
        self.check_backup_flag(name)

    def nominable(self) -> list[str]:
        return sorted(name for name in self.online_backups if self.allowance[name] is not None)

    @precondition(lambda self: bool(self.nominable()))
    @rule(data=st.data())
    def nominate_an_online_backup(self, data: st.DataObject) -> None:
        """The likely-valid nomination: a backup registered online."""
        self.nominate(data.draw(st.sampled_from(self.nominable()), label="online backup"))

    @rule(name=names)
    def nominate(self, name: str) -> None:
        if self.step(self.clients[name].nominate()):
            self.allowance[name] = None
        self.refresh(name)
        self.check_backup_flag(name)

    @rule(name=names)
    def deactivate(self, name: str) -> None:
        self.step(self.clients[name].deactivate())
        self.refresh(name)
        self.check_backup_flag(name)

    # Activation server operations

    @rule(target_name=targets, key=key_choices, quantity=st.sampled_from([1, 1, 2, 0]))
    def obtain_file(self, target_name: str, key: int, quantity: int) -> None:
        assert self.activation is not None
        chosen = self.key(key)
        response = self.activation.obtain(chosen, self.deployment(target_name), quantity)
        if self.step(response):
            self.files.append((self.deployment(target_name), response.content))
            allowance = self.allowance.get(target_name)
            if allowance is not None:
                allowance.add(chosen)  # given by hand to a backup's deployment: the operator's doing
        self.refresh()

    @rule(target_name=targets, key=key_choices)
    def release_at_activation_server(self, target_name: str, key: int) -> None:
        assert self.activation is not None
        self.step(self.activation.release(self.key(key), self.deployment(target_name)))
        self.refresh()

    @rule(days=st.sampled_from([1, 1, 7, 30, 200]))
    def advance_clock(self, days: int) -> None:
        self.fleet_running.fleet.advance_clock(timedelta(days=days))
        self.refresh()

    # Properties after every step

    @invariant()
    def slots_are_never_overcommitted(self) -> None:
        for key, holders in self.fleet_running.fleet.slot_holders().items():
            assert len(holders) <= self.slots[key], f"(c) {key}: {holders} exceed {self.slots[key]} slots"
            assert len(set(holders)) == len(holders), f"(c) {key}: a deployment holds two slots: {holders}"

    @invariant()
    def backups_never_gain_a_slot(self) -> None:
        for name in NAMES:
            allowance = self.allowance[name]
            if allowance is None:
                continue
            held = self.held_keys(name)
            assert held <= allowance, f"(b) backup {name} gained a slot on {held - allowance}"
            self.allowance[name] = held  # a stale slot freed since is not allowed back, except by hand

    @invariant()
    def active_online_instances_hold_their_slot(self) -> None:
        for name in NAMES:
            licence = self.licences[name]
            if self.allowance[name] is not None or licence.get("online_activated") is not True:
                continue
            key = self.key_by_expiration[str(licence["expiration"])]
            holders = self.fleet_running.fleet.slot_holders()[key]
            assert self.deployments[name] in holders, f"(d) {name} is active online on {key} without a slot"


def test_backups_never_consume_a_slot() -> None:
    profile = os.environ.get("MOCKCORE_HYPOTHESIS_PROFILE", "default")
    assert profile in PROFILES, f"MOCKCORE_HYPOTHESIS_PROFILE must be one of {sorted(PROFILES)}, not {profile!r}"
    run_state_machine_as_test(BackupSlots, settings=PROFILES[profile])
