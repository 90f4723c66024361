"""`mockcore serve --state FILE`: the fleet in an SQLite file, over real `mockcore serve` subprocesses.

(a) `kill -9` during a stream of transitions, then a restart on the same file: the fleet is the one after the
    last transition answered 2xx, or the one after the request that was in flight when the server died; the file
    passes SQLite's integrity check; slot accounting holds. Repeated at seeded moments.
(b) Refusals: every file mockcore cannot use stops start-up with exit 1 and a message, and stays as it was.
(c) Without --state nothing is written.
(d) Reset, PUT /_mock/state and the clock are persisted too.

The expected fleet comes from a reference fleet served in-process: every request of the stream goes to the server
under test and then to the reference, which must answer the same; the reference's dump after each 2xx answer is
what the file must hold. Fleets are compared as any request sees them ("effective"): an online production whose
slot moved to its backup loses its licence at the next request that touches it, and such a refresh during a
refused request or a read is not a change the server writes through (nor needs to: it is derived from the rest).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from mockcore.fleet import Fleet, FleetConfig, KeySpec
from mockcore.persistence import APPLICATION_ID, StateFileError, StateStore
from mockcore.scanning import EICAR
from tests.conftest import RunningFleet, serve_fleet
from tests.serving import Exited, MockcoreProcess, free_port, run_all

ROOT = Path(__file__).resolve().parent.parent
KEY_1 = "PERS-1STA-TE00-KEY1-AAAA-BBBB-CCCC"
KEY_2 = "PERS-1STA-TE00-KEY2-DDDD-EEEE-FFFF"
INSTANCES = ("a", "b", "c")
CONFIG = FleetConfig(instances=INSTANCES, keys=(KeySpec(KEY_1, 2, 365), KeySpec(KEY_2, 1, 365)))
SERVE_ARGS = [
    *("--instance", "a", "--instance", "b", "--instance", "c"),
    *("--key", f"{KEY_1}:2:365", "--key", f"{KEY_2}:1:365"),
]
APIKEY = CONFIG.resolved_apikey
KILLS = 4  # kill -9 moments in the stream test
STREAM_SEED = 20261125


# Helpers


@pytest.fixture
def processes() -> Iterator[list[MockcoreProcess]]:
    """Every server a test starts; all killed at teardown, whatever happened."""
    started: list[MockcoreProcess] = []
    yield started
    for process in started:
        process.kill()


def serve(processes: list[MockcoreProcess], workdir: Path, *args: str) -> MockcoreProcess:
    process = MockcoreProcess(workdir, [*SERVE_ARGS, *args])
    processes.append(process)
    process.start()
    process.wait_ready()
    return process


def control(server: MockcoreProcess, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, server.instances["a"] + "/_mock" + path, timeout=10, **kwargs)


def core(server: MockcoreProcess, name: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"apikey": APIKEY, **kwargs.pop("headers", {})}
    return requests.request(method, server.instances[name] + path, headers=headers, timeout=10, **kwargs)


def state_of(server: MockcoreProcess) -> dict[str, Any]:
    response = control(server, "GET", "/state")
    assert response.status_code == 200, response.text
    return dict(response.json())


def kill9(server: MockcoreProcess) -> None:
    assert server.process is not None
    server.process.kill()
    assert server.process.wait(10) == -signal.SIGKILL


def read_only(path: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True))


def integrity(path: Path) -> list[str]:
    with read_only(path) as db:
        return [row[0] for row in db.execute("PRAGMA integrity_check")]


def stored_document(path: Path) -> dict[str, Any]:
    with read_only(path) as db:
        return dict(json.loads(db.execute("SELECT document FROM state").fetchone()[0]))


def effective(document: dict[str, Any], config: FleetConfig = CONFIG) -> dict[str, Any]:
    """The fleet as any request sees it: loaded, every instance refreshed against the activation server."""
    fleet = Fleet(config)
    fleet.load(document)
    fleet.states()
    return fleet.dump()


def check_slot_accounting(document: dict[str, Any]) -> None:
    deployments = {inst["deployment"] for inst in document["instances"].values()}
    holders = {}
    for key in document["keys"]:
        assert len(key["holders"]) <= key["slots"], key
        assert len(set(key["holders"])) == len(key["holders"]), key
        assert set(key["holders"]) <= deployments, key
        holders[key["terms"]["activation_key"]] = set(key["holders"])
    for name, inst in document["instances"].items():
        licence = inst["licence"]
        if licence["state"] == "active" and licence["online"]:
            assert inst["deployment"] in holders[licence["terms"]["activation_key"]], (name, document["keys"])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# (a) kill -9 during a stream of transitions


@dataclass(frozen=True)
class Step:
    face: str  # an instance name, or "control"
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    json: Any = None

    def send(self, session: requests.Session, urls: dict[str, str]) -> requests.Response:
        if self.face == "control":
            base, headers = urls["a"] + "/_mock", dict(self.headers)
        else:
            base, headers = urls[self.face], {"apikey": APIKEY, **self.headers}
        return session.request(
            self.method, base + self.path, headers=headers, data=self.body, json=self.json, timeout=10
        )


class Stream:
    """Seeded random transitions over three instances and two keys: most are allowed in some state, so the stream
    mixes successes and refusals."""

    def __init__(self, rng: random.Random, deployments: dict[str, str]) -> None:
        self.rng = rng
        self.deployments = deployments
        # A fleet of the same seed signs files valid for the server and the reference; a fresh one per file, so
        # every key has a free slot.
        self.files = {
            (key, deployment): Fleet(CONFIG).obtain_licence_file(key, deployment, 1)
            for key in (KEY_1, KEY_2)
            for deployment in deployments.values()
        }
        self.operations: list[tuple[Callable[[], Step], int]] = [
            (self.activate, 4),
            (self.upload, 1),
            (self.register_online, 4),
            (self.register_offline, 1),
            (self.unregister, 1),
            (self.nominate, 3),
            (self.deactivate, 2),
            (self.scan, 2),
            (self.advance, 1),
        ]

    def _instance(self) -> str:
        return self.rng.choice(INSTANCES)

    def _key(self) -> str:
        return self.rng.choice((KEY_1, KEY_1, KEY_2))

    def _other(self, name: str) -> str:
        return self.deployments[self.rng.choice([n for n in INSTANCES if n != name])]

    def activate(self) -> Step:
        body = {"activationKey": self._key(), "quantity": 1, "comment": "stream"}
        return Step(self._instance(), "POST", "/admin/license/activation", json=body)

    def upload(self) -> Step:
        name = self._instance()
        file = self.files[(self._key(), self.deployments[name])]
        return Step(name, "POST", "/admin/license", {"Content-Type": "application/octet-stream"}, file)

    def register_online(self) -> Step:
        name = self._instance()
        headers = {"activation-key": self._key(), "active-deployment-id": self._other(name)}
        return Step(name, "POST", "/admin/license/backup", headers)

    def register_offline(self) -> Step:
        name = self._instance()
        file = self.files[(self._key(), self._other(name))]
        return Step(name, "POST", "/admin/license/backup", {"Content-Type": "application/octet-stream"}, file)

    def unregister(self) -> Step:
        return Step(self._instance(), "DELETE", "/admin/license/backup")

    def nominate(self) -> Step:
        return Step(self._instance(), "POST", "/admin/license/backup/nomination")

    def deactivate(self) -> Step:
        return Step(self._instance(), "POST", "/admin/license/deactivation")

    def scan(self) -> Step:
        body = EICAR if self.rng.random() < 0.2 else self.rng.randbytes(self.rng.randint(1, 64))
        return Step(self._instance(), "POST", "/file", {"filename": f"f{self.rng.randint(0, 999)}.bin"}, body)

    def advance(self) -> Step:
        return Step("control", "POST", "/clock/advance", json={"hours": self.rng.randint(1, 72)})

    def next(self) -> Step:
        makers = [maker for maker, _ in self.operations]
        weights = [weight for _, weight in self.operations]
        maker: Callable[[], Step] = self.rng.choices(makers, weights)[0]
        return maker()


@dataclass
class Round:
    answered: int  # transitions answered 2xx before the kill
    after_last_answered: dict[str, Any]  # the reference's fleet after the last of them
    after_in_flight: dict[str, Any]  # the reference's fleet after the request the kill interrupted


def stream_until_killed(
    server: MockcoreProcess, reference: RunningFleet, stream: Stream, delay: float
) -> tuple[Round, Step]:
    """Send the stream to the server and the reference until `kill -9` (after `delay` s) cuts the server off."""
    assert server.process is not None
    ref_urls = reference.urls
    killer = threading.Timer(delay, server.process.kill)
    answered, after_last = 0, reference.fleet.dump()
    deadline = time.monotonic() + delay + 20
    with requests.Session() as to_server, requests.Session() as to_reference:
        killer.start()
        try:
            while True:
                assert time.monotonic() < deadline, "the server was not killed"
                step = stream.next()
                try:
                    got = step.send(to_server, server.instances)
                except requests.RequestException:
                    break
                expected = step.send(to_reference, ref_urls)
                assert (got.status_code, got.content) == (expected.status_code, expected.content), step
                if got.ok:
                    answered += 1
                    after_last = reference.fleet.dump()
        finally:
            killer.cancel()
            killer.join()
        assert server.process.wait(10) == -signal.SIGKILL
        step.send(to_reference, ref_urls)  # the request in flight: it may or may not have been committed
    return Round(answered, after_last, reference.fleet.dump()), step


def test_kill_9_during_a_stream_keeps_every_answered_transition(
    processes: list[MockcoreProcess], tmp_path: Path
) -> None:
    rng = random.Random(STREAM_SEED)
    state = tmp_path / "fleet.db"
    server = serve(processes, tmp_path / "start", "--state", str(state))
    # A frozen clock makes the two fleets' documents comparable to the microsecond; the freeze is persisted too.
    assert control(server, "POST", "/clock/freeze").status_code == 200
    initial = state_of(server)
    reference_fleet = Fleet(CONFIG)
    reference_fleet.load(initial)
    reference = serve_fleet(reference_fleet)
    try:
        stream = Stream(rng, {name: inst["deployment"] for name, inst in initial["instances"].items()})
        outcomes = []
        for kill in range(KILLS):
            done, in_flight = stream_until_killed(server, reference, stream, rng.uniform(0.05, 0.9))
            assert integrity(state) == ["ok"], f"after kill {kill}"

            server = serve(processes, tmp_path / f"restart{kill}", "--state", str(state))
            restored = state_of(server)
            candidates = {
                "the last answered transition": effective(done.after_last_answered),
                f"the request in flight ({in_flight.method} {in_flight.path})": effective(done.after_in_flight),
            }
            seen = effective(restored)
            matches = [name for name, candidate in candidates.items() if candidate == seen]
            if len(matches) == 2:
                matches = ["either (the request in flight changed nothing)"]
            assert matches, (
                f"kill {kill} after {done.answered} answered transitions: the restarted fleet is neither the one "
                f"after the last answered transition nor the one after the request in flight\n"
                f"restored: {json.dumps(seen, indent=1)}\n"
                f"expected: {json.dumps(candidates, indent=1)}"
            )
            outcomes.append((done.answered, matches[0]))

            for name in INSTANCES:  # every instance seen by a request, as `effective` does
                assert core(server, name, "GET", "/admin/license").status_code == 200
            refreshed = state_of(server)
            assert refreshed == seen
            check_slot_accounting(refreshed)
            reference.fleet.load(restored)  # go on from where the server is

        # A clean stop folds the WAL into the file and removes the journal files.
        assert server.stop().returncode == 0
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("fleet.db")) == ["fleet.db"]
        assert integrity(state) == ["ok"]
        assert effective(stored_document(state)) == effective(reference.fleet.dump())
    finally:
        reference.server.stop()
    assert sum(answered for answered, _ in outcomes) > KILLS, outcomes  # the kills did land mid-stream
    print("kills (answered transitions, restored state):", outcomes)


# (b) Refusals


def _state_file(path: Path, config: FleetConfig = CONFIG) -> None:
    """A valid state file for `config`, holding an activated instance `a` (made in-process, as the CLI does)."""
    fleet = Fleet(config)
    fleet.activate(config.instances[0], config.resolved_keys()[0].key or "", 1)
    StateStore.open(path, fleet).close()


def _edit(path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        for sql, parameters in statements:
            db.execute(sql, parameters)
        db.commit()


def _tampered(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    _state_file(path)
    document = stored_document(path)
    change(document)
    _edit(path, ("UPDATE state SET document = ?", (json.dumps(document),)))


def _damaged(path: Path) -> None:
    _state_file(path)
    with read_only(path) as db:
        page = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'meta'").fetchone()[0]
    data = bytearray(path.read_bytes())
    start = (page - 1) * 4096
    data[start : start + 4096] = random.Random(1).randbytes(4096)
    path.write_bytes(bytes(data))


def _foreign_sqlite(path: Path) -> None:
    _edit(
        path, ("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)", ()), ("INSERT INTO notes VALUES (1, 'x')", ())
    )


def _set_holders(document: dict[str, Any]) -> None:
    document["keys"][0]["holders"] = ["nonsense"]


def _missing_directory(path: Path) -> None:
    path.parent.rmdir()  # the state file's directory does not exist


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(2).randbytes(5000))


def _text(path: Path) -> None:
    path.write_text("my notes\n")


def _not_json(path: Path) -> None:
    _state_file(path)
    _edit(path, ("UPDATE state SET document = '{not json'", ()))


def _newer_format(path: Path) -> None:
    _state_file(path)
    _edit(path, ("UPDATE meta SET value = '2' WHERE name = 'version'", ()), ("PRAGMA user_version = 2", ()))


def _for_config(config: FleetConfig) -> Callable[[Path], None]:
    return lambda path: _state_file(path, config)


REFUSALS: dict[str, tuple[Callable[[Path], None], str]] = {
    "garbage": (_garbage, "not a mockcore state file (not an SQLite database)"),
    "short text": (_text, "not a mockcore state file (not an SQLite database)"),
    "another program's SQLite": (_foreign_sqlite, "an SQLite database, but not a mockcore state file"),
    "other instance names": (
        _for_config(FleetConfig(instances=("x", "y"), keys=CONFIG.keys)),
        "written for another fleet configuration: --instance: the file is for instances x, y, this run has a, b, c",
    ),
    "other seed": (
        _for_config(FleetConfig(instances=INSTANCES, keys=CONFIG.keys, seed="7")),
        "--seed: the file is for seed '7', this run has '0'",
    ),
    "other keys": (
        _for_config(FleetConfig(instances=INSTANCES, keys=(KeySpec(KEY_1, 3, 365),))),
        f"--key: the file is for keys {KEY_1} (3 slots, 365 days), this run has {KEY_1} (2 slots, 365 days), "
        f"{KEY_2} (1 slot, 365 days)",
    ),
    "tampered document": (
        lambda p: _tampered(p, _set_holders),
        "holds an invalid fleet state: $.keys[0].holders[0]: not a deployment id",
    ),
    "document not JSON": (_not_json, "holds an invalid fleet state: the document is not UTF-8 JSON"),
    "newer format": (_newer_format, "a mockcore state file of format 2, written by a newer mockcore"),
    "damaged": (_damaged, "damaged"),
    "missing directory": (_missing_directory, "cannot open it for reading and writing: No such file or directory"),
}


@dataclass
class Refusal:
    file: Path
    before: str | None
    siblings: list[str] | None
    exited: Exited


def _contents(path: Path) -> str | None:
    return sha256(path) if path.exists() else None


def _siblings(path: Path) -> list[str] | None:
    return sorted(p.name for p in path.parent.iterdir()) if path.parent.exists() else None


@pytest.fixture(scope="module")
def refusals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Refusal]:
    """Every refused file, started against at once (start-ups overlap)."""
    root = tmp_path_factory.mktemp("refusals")
    prepared = {}
    for index, (name, (prepare, _)) in enumerate(REFUSALS.items()):
        folder = root / f"case{index}"
        folder.mkdir()
        file = folder / "state.db"
        prepare(file)
        prepared[name] = (file, _contents(file), _siblings(file))
    servers = [
        MockcoreProcess(root / f"run{i}", [*SERVE_ARGS, "--state", str(f)])
        for i, (f, _, _) in enumerate(prepared.values())
    ]
    exits = run_all(servers)
    return {
        name: Refusal(file, before, siblings, exited)
        for (name, (file, before, siblings)), exited in zip(prepared.items(), exits, strict=True)
    }


@pytest.mark.parametrize("case", list(REFUSALS))
def test_unusable_file_is_refused_and_left_unchanged(refusals: dict[str, Refusal], case: str) -> None:
    refusal = refusals[case]
    assert refusal.exited.returncode == 1, refusal.exited
    assert refusal.exited.stderr.startswith(f"Error: {refusal.file}: "), refusal.exited.stderr
    assert REFUSALS[case][1] in refusal.exited.stderr, refusal.exited.stderr
    assert "Traceback" not in refusal.exited.stderr
    assert refusal.exited.stdout == ""  # never ready
    assert _contents(refusal.file) == refusal.before
    assert _siblings(refusal.file) == refusal.siblings  # no journal files either


def test_a_second_server_on_the_same_file_is_refused_until_the_first_dies(
    processes: list[MockcoreProcess], tmp_path: Path
) -> None:
    state = tmp_path / "fleet.db"
    first = serve(processes, tmp_path / "first", "--state", str(state))
    assert core(first, "a", "POST", "/admin/license/activation", json={"activationKey": KEY_1}).status_code == 200
    [second] = run_all([MockcoreProcess(tmp_path / "second", [*SERVE_ARGS, "--state", str(state)])])
    assert second.returncode == 1
    assert f"Error: {state}: in use by another process" in second.stderr
    assert core(first, "a", "GET", "/admin/license").json()["online_activated"] is True  # undisturbed
    kill9(first)  # a killed server holds no lock
    third = serve(processes, tmp_path / "third", "--state", str(state))
    assert core(third, "a", "GET", "/admin/license").json()["online_activated"] is True


def test_an_empty_file_is_a_new_state_file(processes: list[MockcoreProcess], tmp_path: Path) -> None:
    """Zero bytes hold nothing to lose (`mktemp` makes such files): the file becomes a new state file."""
    state = tmp_path / "fleet.db"
    state.write_bytes(b"")
    server = serve(processes, tmp_path / "run", "--state", str(state))
    assert core(server, "b", "POST", "/admin/license/activation", json={"activationKey": KEY_2}).status_code == 200
    kill9(server)
    with read_only(state) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert stored_document(state)["keys"][1]["holders"] == [state_deployment(state, "b")]


def state_deployment(state: Path, name: str) -> str:
    return str(stored_document(state)["instances"][name]["deployment"])


# The store in-process


def test_store_skips_saves_that_change_nothing_and_refuses_a_second_opener(tmp_path: Path) -> None:
    state = tmp_path / "fleet.db"
    fleet = Fleet(CONFIG)
    fleet.freeze_clock()
    store = StateStore.open(state, fleet)
    try:
        with pytest.raises(StateFileError, match="in use by another process"):
            StateStore.open(state, Fleet(CONFIG))

        def generation() -> int:
            with read_only(state) as db:
                return int(db.execute("SELECT generation FROM state").fetchone()[0])

        store.save(fleet)
        assert generation() == 1
        fleet.activate("a", KEY_1, 1)
        store.save(fleet)
        store.save(fleet)
        assert generation() == 2
    finally:
        store.close()
    store.close()  # idempotent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet.db"]
    reopened = Fleet(CONFIG)
    with StateStore.open(state, reopened):
        assert reopened.dump() == fleet.dump()


def test_refused_file_leaves_the_fleet_as_it_was(tmp_path: Path) -> None:
    state = tmp_path / "fleet.db"
    _tampered(state, _set_holders)
    fleet = Fleet(CONFIG)
    fleet.freeze_clock()
    fleet.activate("c", KEY_2, 1)
    before = fleet.dump()
    with pytest.raises(StateFileError, match=r"\$\.keys\[0\]\.holders\[0\]"):
        StateStore.open(state, fleet)
    assert fleet.dump() == before


def test_an_sqlite_database_without_tables_is_new_but_a_marked_one_is_not(tmp_path: Path) -> None:
    empty, marked = tmp_path / "empty.db", tmp_path / "marked.db"
    _edit(empty, ("PRAGMA journal_mode=WAL", ()))  # what a server killed within its first start leaves
    _edit(marked, ("PRAGMA application_id = 1234", ()))
    with StateStore.open(empty, Fleet(CONFIG)):
        pass
    assert stored_document(empty)["format"] == "mockcore-fleet/1"
    before = sha256(marked)
    with pytest.raises(StateFileError, match="not a mockcore state file"):
        StateStore.open(marked, Fleet(CONFIG))
    assert sha256(marked) == before


# (c) The default stays in memory


def test_without_state_nothing_is_written(processes: list[MockcoreProcess], tmp_path: Path) -> None:
    server = serve(processes, tmp_path)  # cwd and TMPDIR are tmp_path
    assert core(server, "a", "POST", "/admin/license/activation", json={"activationKey": KEY_1}).status_code == 200
    assert control(server, "POST", "/clock/advance", json={"days": 1}).status_code == 200
    assert server.stop().returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ready.json", "stderr.txt", "stdout.txt"]


# (d) Reset, PUT /_mock/state and the clock


def test_reset_put_state_and_the_clock_survive_kill_9(processes: list[MockcoreProcess], tmp_path: Path) -> None:
    state = tmp_path / "fleet.db"
    server = serve(processes, tmp_path / "run0", "--state", str(state))
    assert core(server, "a", "POST", "/admin/license/activation", json={"activationKey": KEY_1}).status_code == 200
    assert control(server, "POST", "/clock/advance", json={"days": 10}).status_code == 200
    kill9(server)

    # A running clock keeps its offset from wall time across the restart.
    server = serve(processes, tmp_path / "run1", "--state", str(state))
    offset = datetime.fromisoformat(control(server, "GET", "/clock").json()["now"]) - datetime.now(UTC)
    assert abs(offset - timedelta(days=10)) < timedelta(minutes=1), offset
    assert core(server, "a", "GET", "/admin/license").json()["online_activated"] is True

    assert control(server, "POST", "/reset").status_code == 200
    kill9(server)
    server = serve(processes, tmp_path / "run2", "--state", str(state))
    restored = state_of(server)
    assert all(inst["licence"]["state"] == "unlicensed" for inst in restored["instances"].values())
    assert all(key["holders"] == [] for key in restored["keys"])
    assert restored["clock"]["frozen"] is False
    assert abs(datetime.fromisoformat(restored["clock"]["now"]) - datetime.now(UTC)) < timedelta(minutes=1)

    # PUT /_mock/state: a fleet with b active, c its online backup and a frozen clock.
    document = effective(restored)
    fresh = Fleet(CONFIG)
    fresh.load(document)
    fresh.set_clock(datetime(2027, 3, 1, 12, 0, tzinfo=UTC), frozen=True)
    fresh.activate("b", KEY_1, 1)
    fresh.register_backup_online("c", KEY_1, fresh.deployments()["b"])
    fresh.scan("b", b"hello", "hello.txt")
    put = fresh.dump()
    assert control(server, "PUT", "/state", json=put).status_code == 200
    kill9(server)
    server = serve(processes, tmp_path / "run3", "--state", str(state))
    assert state_of(server) == put
    check_slot_accounting(put)


# The example of docs/guides/test-double.md


def test_guides_persistence_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "guides" / "test-double.md").read_text()
    section = text[text.index("\n## Persistence\n") :]
    start = section.index("```sh\n") + len("```sh\n")
    block = section[start : section.index("```", start)]
    port, activation_port = free_port(), free_port()
    script = block.replace("127.0.0.1:8008", f"127.0.0.1:{port}").replace(
        "mockcore serve", f"mockcore serve --port {port} --activation-port {activation_port}"
    )
    (tmp_path / "example.sh").write_text(script)
    with (tmp_path / "out.txt").open("wb") as out:
        process = subprocess.Popen(
            ["bash", "example.sh"], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode = process.wait(30)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    output = (tmp_path / "out.txt").read_text()
    assert returncode == 0, output
    assert '{"success": true}' in output
    line = next(line for line in output.splitlines() if line.startswith('{"days_left"'))
    licence, _ = json.JSONDecoder().raw_decode(line)  # curl prints no newline: other output may follow
    assert licence["online_activated"] is True
    assert sorted(p.name for p in tmp_path.iterdir()) == ["example.sh", "fleet.db", "out.txt"]


def test_slots_taken_and_freed_by_hand_at_the_activation_server_survive_kill_9(
    processes: list[MockcoreProcess], tmp_path: Path
) -> None:
    """`GET /activation` and `GET /deactivation` change slots: written before their answer leaves, like a POST."""
    state = tmp_path / "fleet.db"
    server = serve(processes, tmp_path / "first", "--state", str(state))
    deployment = "MSCL" + "1" * 32
    taken = requests.get(
        server.activation_url + "/activation",
        params={"key": KEY_1, "deployment": deployment, "quantity": 1},
        timeout=10,
    )
    assert taken.status_code == 200 and taken.reason == "OK", taken.text
    kill9(server)
    restarted = serve(processes, tmp_path / "second", "--state", str(state))
    assert deployment in state_of(restarted)["keys"][0]["holders"]
    freed = requests.get(
        restarted.activation_url + "/deactivation", params={"key": KEY_1, "deployment": deployment}, timeout=10
    )
    assert freed.status_code == 200, freed.text
    kill9(restarted)
    again = serve(processes, tmp_path / "third", "--state", str(state))
    assert deployment not in state_of(again)["keys"][0]["holders"]
