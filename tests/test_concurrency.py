"""Eight clients hammer one fleet at once; every answer stays well-formed and the fleet stays consistent.

Eight threads, each with its own `requests.Session` and its own seeded `random.Random`, run random operations for
about three seconds against one in-process fleet (four instances; key 1 with one slot, key 2 with two): online
activation, obtaining a file at `/activation` and uploading it, online and offline backup registration (valid and
invalid), unregister, nominate, deactivate, `/deactivation` at the activation server, scans and their results,
licence, backup-flag, readiness and engine reads. The clock never moves, so no licence expires and no 5xx is
documented for any of these: none may occur.

While running, each answer is checked on its own: status below 500; a Core answer is JSON (`{"err": <str>}` when
it is an error); an activation server answer is YAML (a licence file, or `error:` / `success:`); a licence read
names the instance's own deployment; a scan's result can be fetched right after it.

Afterwards, the checks are exactly as strong as concurrency allows. Which operation won a race is unknown, so the
final state cannot be predicted; what must hold whatever the interleaving:

1. no key has more slot holders than slots, and no deployment holds two slots on one key;
2. every slot holder is a deployment for which some thread saw a slot being *taken*: a 2xx online activation, a
   2xx nomination, or a `200 OK` licence file from `/activation` (docs/decisions.md, "Slots": only those take a
   slot). Hence a backup that was never activated, never nominated and never given a file by hand holds no slot:
   registration never consumes one, whatever ran beside it;
3. every instance that, once read again (an online instance learns of a freed slot on its next request), is
   active online and not a backup holds a slot on its key (told apart by the licence's `expiration`);
4. the backup flag agrees with the licence read: an unlicensed instance is never a backup;
5. every scan that was accepted can still be fetched from its instance;
6. the fleet still answers (no lock left held, no face stopped).

The seed is printed and in every failure message; `MOCKCORE_CONCURRENCY_SEED=<n>` replays the same operation
sequences (thread interleaving itself cannot be replayed).
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import requests
import yaml

from mockcore.fleet import KeySpec
from mockcore.server import ACTIVATION
from tests.conftest import FleetFactory, RunningFleet
from tests.states import LICENSED_FIELDS

THREADS = 8
DURATION = 3.0
MIN_OPERATIONS = 10  # per client thread, whatever the machine's speed
HARD_LIMIT = 120.0  # seconds: a run never goes past this, however slow the machine
NAMES = ("a", "b", "c", "d")
KEYS = (KeySpec(slots=1, days=365), KeySpec(slots=2, days=180))
UNKNOWN_KEY = "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
DATA_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Ledger:
    """What one thread saw; merged after every thread has stopped (no state shared while running)."""

    took_slot: set[str] = field(default_factory=set)  # deployments seen taking a slot
    scans: list[tuple[str, str]] = field(default_factory=list)  # (instance, data_id)
    files: list[bytes] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    operations: int = 0


@dataclass
class Worker:
    running: RunningFleet
    deployments: dict[str, str]
    rng: random.Random
    ledger: Ledger
    session: requests.Session = field(default_factory=requests.Session)

    # HTTP with per-answer checks

    def core(
        self,
        name: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        data: bytes | None = None,
        json_body: dict[str, str | int] | None = None,
    ) -> requests.Response:
        response = self.session.request(
            method,
            self.running.urls[name] + path,
            headers={"apikey": self.running.apikey, **(headers or {})},
            data=data,
            json=json_body,
            timeout=30,
        )
        where = f"{method} {name}{path} -> {response.status_code}: {response.text[:200]!r}"
        readiness = path.startswith("/readyz")  # 503 is /readyz's documented "not ready", with its own body
        self.expect(response.status_code < 500 or (readiness and response.status_code == 503), where)
        self.expect(response.headers.get("Content-Type", "").startswith("application/json"), where)
        try:
            body = response.json()
        except ValueError:
            self.expect(False, f"not JSON: {where}")
            return response
        if response.status_code >= 400 and not readiness:
            self.expect(isinstance(body, dict) and set(body) == {"err"} and isinstance(body["err"], str), where)
        return response

    def activation(self, path: str, params: dict[str, str | int]) -> requests.Response:
        response = self.session.get(self.running.urls[ACTIVATION] + path, params=params, timeout=30)
        where = f"GET {path} {params} -> {response.status_code} {response.reason}: {response.text[:200]!r}"
        self.expect(response.status_code < 500, where)
        try:
            body = yaml.safe_load(response.text)
        except yaml.YAMLError:
            self.expect(False, f"not YAML: {where}")
            return response
        if not isinstance(body, dict):
            self.expect(False, f"not a YAML mapping: {where}")
        elif response.status_code == 200 and response.reason == "OK" and path == "/activation":
            issued_for = (body.get("deployment"), body.get("activation_key"))
            self.expect(issued_for == (params["deployment"], params["key"]), f"file issued for {issued_for}: {where}")
        else:
            self.expect(set(body) in ({"error"}, {"success"}), where)
        return response

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            self.ledger.failures.append(message)

    # Choices

    def instance(self) -> str:
        return self.rng.choice(NAMES)

    def key(self) -> str:
        return self.rng.choice([*self.running.keys, *self.running.keys, UNKNOWN_KEY])

    def deployment(self) -> str:
        return self.deployments[self.instance()]

    # Operations

    def read_licence(self) -> None:
        name = self.instance()
        response = self.core(name, "GET", "/admin/license")
        self.expect(response.status_code == 200, f"licence read on {name}: {response.status_code}")
        body = response.json()
        self.expect(body.get("deployment") == self.deployments[name], f"licence of {name} names {body}")
        self.expect(
            set(body)
            in (LICENSED_FIELDS, {"deployment", "deployment_id"}, {"deployment", "deployment_id", "reactivate"}),
            f"licence shape {body}",
        )

    def read_backup_flag(self) -> None:
        response = self.core(self.instance(), "GET", "/admin/license/backup")
        self.expect(response.status_code == 200 and isinstance(response.json().get("is_backup"), bool), response.text)

    def read_misc(self) -> None:
        name = self.instance()
        path = self.rng.choice(["/readyz", "/readyz?verbose=true", "/stat/engines", "/version"])
        response = self.core(name, "GET", path)
        self.expect(response.status_code in (200, 503), f"{path} on {name}: {response.status_code}")

    def activate(self) -> None:
        name = self.instance()
        quantities: list[str | int] = [1, "1", 2, 0]
        quantity = self.rng.choice(quantities)
        body: dict[str, str | int] = {"activationKey": self.key(), "quantity": quantity, "comment": "concurrency"}
        if self.core(name, "POST", "/admin/license/activation", json_body=body).status_code == 200:
            self.ledger.took_slot.add(self.deployments[name])

    def obtain(self, deployment: str | None = None) -> bytes | None:
        deployment = deployment or self.deployment()
        params: dict[str, str | int] = {
            "key": self.key(),
            "deployment": deployment,
            "quantity": self.rng.choice([1, 1, 0]),
        }
        response = self.activation("/activation", params)
        if response.status_code == 200 and response.reason == "OK":
            self.ledger.took_slot.add(deployment)
            self.ledger.files.append(response.content)
            return response.content
        return None

    def obtain_any(self) -> None:
        self.obtain()

    def obtain_and_upload(self) -> None:
        name = self.instance()
        licence_file = self.obtain(self.deployments[name])
        if licence_file is not None:
            self.upload(name, licence_file)

    def upload(self, name: str | None = None, licence_file: bytes | None = None) -> None:
        name = name or self.instance()
        if licence_file is None:
            licence_file = self.rng.choice(self.ledger.files) if self.ledger.files else b"not a licence"
        self.core(
            name, "POST", "/admin/license", data=licence_file, headers={"Content-Type": "application/octet-stream"}
        )

    def register_online(self) -> None:
        headers = {"activation-key": self.key(), "active-deployment-id": self.deployment()}
        if self.rng.random() < 0.1:
            headers.pop(self.rng.choice(sorted(headers)))  # malformed: one header alone
        self.core(self.instance(), "POST", "/admin/license/backup", headers=headers)

    def register_offline(self) -> None:
        body = self.rng.choice(self.ledger.files) if self.ledger.files else b"garbage"
        if self.rng.random() < 0.1:
            body = body.replace(b"mockcore", b"forged")
        self.core(
            self.instance(),
            "POST",
            "/admin/license/backup",
            data=body,
            headers={"Content-Type": "application/octet-stream"},
        )

    def unregister(self) -> None:
        self.core(self.instance(), "DELETE", "/admin/license/backup")

    def nominate(self) -> None:
        name = self.instance()
        if self.core(name, "POST", "/admin/license/backup/nomination").status_code == 200:
            self.ledger.took_slot.add(self.deployments[name])

    def deactivate(self) -> None:
        self.core(self.instance(), "POST", "/admin/license/deactivation")

    def release(self) -> None:
        self.activation("/deactivation", {"key": self.key(), "deployment": self.deployment()})

    def scan(self) -> None:
        name = self.instance()
        body = self.rng.choice([b"hello", EICAR, self.rng.randbytes(64), b""])
        response = self.core(name, "POST", "/file", data=body, headers={"filename": "sample.bin"})
        if response.status_code != 200:
            self.expect(response.status_code in (403, 422), f"scan on {name}: {response.status_code} {response.text}")
            return
        data_id = response.json().get("data_id")
        self.expect(isinstance(data_id, str) and DATA_ID.fullmatch(data_id) is not None, f"data_id {data_id!r}")
        self.ledger.scans.append((name, str(data_id)))
        result = self.core(name, "GET", f"/file/{data_id}")
        self.expect(result.status_code == 200 and result.json().get("data_id") == data_id, result.text[:200])
        if result.status_code == 200:
            verdict = result.json()["scan_results"]["scan_all_result_i"]
            self.expect(verdict == (1 if body == EICAR else 0), f"verdict {verdict} for {body[:20]!r}")

    def run(self, deadline: float, hard_deadline: float) -> None:
        """Random operations until `deadline` and at least MIN_OPERATIONS of them (bounded by `hard_deadline`, so a
        slow machine does more of the run rather than a test that asserts on speed)."""
        operations: list[Callable[[], None]] = [
            self.read_licence,
            self.read_licence,
            self.read_backup_flag,
            self.read_misc,
            self.activate,
            self.activate,
            self.obtain_any,
            self.obtain_and_upload,
            self.upload,
            self.register_online,
            self.register_online,
            self.register_offline,
            self.unregister,
            self.nominate,
            self.nominate,
            self.deactivate,
            self.release,
            self.scan,
            self.scan,
        ]
        done = 0
        while (time.monotonic() < deadline or done < MIN_OPERATIONS) and time.monotonic() < hard_deadline:
            done += 1
            operation = self.rng.choice(operations)
            try:
                operation()
            except Exception:  # a dropped connection, a timeout, an unparseable answer
                self.ledger.failures.append(f"{operation.__name__}: {traceback.format_exc()}")
            self.ledger.operations += 1


def test_concurrent_clients_leave_a_consistent_fleet(make_fleet: FleetFactory) -> None:
    seed = int(os.environ.get("MOCKCORE_CONCURRENCY_SEED", random.SystemRandom().randrange(2**32)))
    print(f"MOCKCORE_CONCURRENCY_SEED={seed}")
    running = make_fleet(instances=NAMES, keys=KEYS)
    deployments = {name: running.core(name).deployment() for name in NAMES}
    ledgers = [Ledger() for _ in range(THREADS)]
    workers = [
        Worker(running, deployments, random.Random(f"{seed}:{index}"), ledger) for index, ledger in enumerate(ledgers)
    ]
    start = threading.Barrier(THREADS)

    def work(worker: Worker) -> None:
        start.wait()
        now = time.monotonic()
        worker.run(now + DURATION, now + HARD_LIMIT)

    threads = [threading.Thread(target=work, args=(worker,), name=f"client-{i}") for i, worker in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HARD_LIMIT + 60)
    seeded = f"(seed {seed})"
    assert not any(thread.is_alive() for thread in threads), f"a client thread hangs {seeded}"

    failures = [failure for ledger in ledgers for failure in ledger.failures]
    assert not failures, f"{len(failures)} bad answers {seeded}, first ones:\n" + "\n".join(failures[:10])
    counts = [ledger.operations for ledger in ledgers]
    assert min(counts) >= MIN_OPERATIONS, f"a client ran only {min(counts)} operations in {HARD_LIMIT} s {seeded}"

    # 1. Slots are never overcommitted.
    holders = running.fleet.slot_holders()
    slots = {key: spec.slots for key, spec in zip(running.keys, KEYS, strict=True)}
    for key, deps in holders.items():
        assert len(deps) <= slots[key], f"{key} has {deps} for {slots[key]} slots {seeded}"
        assert len(set(deps)) == len(deps), f"{key}: a deployment holds two slots: {deps} {seeded}"

    # 2. Every slot holder was seen taking a slot (activation, nomination or a file from /activation).
    took_slot = set().union(*(ledger.took_slot for ledger in ledgers))
    for key, deps in holders.items():
        assert set(deps) <= took_slot, f"{key}: {set(deps) - took_slot} hold a slot nobody took {seeded}"

    # 3 and 4. Read every instance again: an active online instance holds its slot; an unlicensed one is no backup.
    key_by_expiration = {
        (running.fleet.started.date() + timedelta(days=spec.days)).strftime("%m/%d/%Y"): key
        for key, spec in zip(running.keys, KEYS, strict=True)
    }
    holders = running.fleet.slot_holders()
    for name in NAMES:
        client = running.core(name)
        licence, flag = client.licence(), client.is_backup()
        assert licence.status_code == 200 and flag.status_code == 200, (licence.text, flag.text, seeded)
        info, is_backup = licence.json(), flag.json()["is_backup"]
        if "days_left" not in info:
            assert is_backup is False, f"{name} is unlicensed yet a backup {seeded}"
        elif info["online_activated"] is True and not is_backup:
            key = key_by_expiration[info["expiration"]]
            assert deployments[name] in holders[key], f"{name} is active online on {key} without a slot {seeded}"

    # 5. Every accepted scan can still be fetched.
    for name, data_id in (scan for ledger in ledgers for scan in ledger.scans):
        result = running.core(name).request("GET", f"/file/{data_id}")
        assert result.status_code == 200, f"scan {data_id} on {name} is gone: {result.text} {seeded}"
        assert json.loads(result.text)["data_id"] == data_id

    # 6. The fleet still answers (no lock left held: these requests would time out).
    assert running.core("a").licence().status_code == 200
    assert running.activation.release(UNKNOWN_KEY, deployments["a"]).status_code == 404
