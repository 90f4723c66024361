"""A fleet: Core instances, one activation server, one clock and one lock, and the only way into any of them.

Every licence operation is the same four steps, written once in `_operate`: take the lock, see each instance as
its next request would (an online licence whose slot is gone is lost), ask mockcore.rules for the decision, and
apply it; a refused operation changes nothing (beyond what every request does: an online licence whose slot is
gone is seen as lost). Every committed change is told to the listeners (persistence)
before the caller gets its answer. Readers get values (licences, keys, views), never the fleet's own objects.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from mockcore import snapshot, view
from mockcore.accounts import Accounts, User
from mockcore.activation import ActivationServer, InvalidLicenceFile
from mockcore.catalogue import Catalogue, ErrorCode, LicenceError
from mockcore.clock import FleetClock
from mockcore.config import DEFAULT_VERSION, FleetConfig, FleetSetup, KeySpec
from mockcore.faults import FaultRule, Faults
from mockcore.identity import deployment_id, licence_secret, scan_id
from mockcore.journal import DEFAULT_CAP as DEFAULT_JOURNAL_CAP
from mockcore.journal import MAX_CAP as MAX_JOURNAL_CAP
from mockcore.journal import Journal, JournalEntry
from mockcore.lifecycle import ActivationKey, Licence, LicenceFile, LicenceState, LicenceTerms
from mockcore.rules import PROFILES, RULES, Decision, Facts, LicenceRules, Profile
from mockcore.scanning import Progression, Scanning

__all__ = ["DEFAULT_VERSION", "ClockReading", "Fleet", "FleetConfig", "Keeper", "KeySpec", "StoreError", "Stored"]

Listener = Callable[[], None]


class StoreError(Exception):
    """A state store that refuses or cannot be used (a file, a database): the message is for the user. Raised by
    an operation whose write the store refused; the fleet is then as it was before the operation."""


@dataclass(frozen=True)
class Stored:
    """A fleet's document as a store holds it, and the wall time it was saved at."""

    document: Any
    saved_at: datetime


class Keeper(Protocol):
    """A store the fleet is kept in, shared with other processes (`Fleet.keep`). Every operation of the fleet is
    `begin`, then `write` if it changed something, then `finish`; `abandon` after any failure. The fleet calls
    them under its lock, so one keeper serves one fleet and sees one transaction at a time."""

    def begin(self) -> Stored | None:
        """Open a transaction that serialises with every other process's on this fleet (a row lock); answer
        the stored document if another process changed it since this keeper last read or wrote it, else None."""
        ...

    def write(self, document: dict[str, Any]) -> None:
        """Store the fleet's new document in the open transaction."""
        ...

    def finish(self) -> None:
        """Commit the transaction (a write is durable once this returns); raise if the commit fails, and then
        nothing of it is stored."""
        ...

    def abandon(self) -> None:
        """Roll back the open transaction, if any (idempotent, never raises)."""
        ...


@dataclass(frozen=True)
class ClockReading:
    now: datetime
    frozen: bool


@dataclass
class _Instance:
    deployment: str
    accounts: Accounts
    licence: Licence = field(default_factory=Licence)
    scanning: Scanning = field(default_factory=Scanning)


class Fleet:
    def __init__(
        self,
        config: FleetConfig | None = None,
        clock: FleetClock | None = None,
        catalogue: Catalogue | None = None,
        journal_cap: int = DEFAULT_JOURNAL_CAP,
        rules: LicenceRules = RULES,
        journal_ceiling: int = MAX_JOURNAL_CAP,
    ) -> None:
        self.config = config or FleetConfig()
        self.catalogue = catalogue or Catalogue()
        self._rules = rules
        self._clock = clock or FleetClock()
        self._lock = threading.RLock()
        self._faults = Faults()
        self._journal = Journal(journal_cap, journal_ceiling)
        self._progression = Progression()
        self._listeners: list[Listener] = []
        self._keeper: Keeper | None = None
        self._depth = 0  # how deep the owner of the lock is in transactions (0: none open)
        self._seen_undo: list[tuple[_Instance, Licence]] = []  # licences `_seen` changed in this transaction
        self._revision = 0
        self._initialise()

    @classmethod
    def build(
        cls,
        setup: FleetSetup,
        *,
        rules: LicenceRules = RULES,
        clock: FleetClock | None = None,
        journal_ceiling: int = MAX_JOURNAL_CAP,
    ) -> Fleet:
        """The fleet a parsed configuration describes (mockcore.config.parse_fleet): the CLI's and MockFleet's.
        `journal_ceiling`: the largest journal cap `set_journal_cap` takes (a tenant's is lower)."""
        return cls(setup.config, clock, setup.catalogue, setup.journal_cap, rules, journal_ceiling)

    def _initialise(self) -> None:
        """The start state: fresh instances, fresh keys expiring relative to the clock's now."""
        self._started = self._clock.now()
        self._activation = ActivationServer(
            [
                ActivationKey(
                    LicenceTerms(spec.key or "", self._started.date() + timedelta(days=spec.days)), spec.slots
                )
                for spec in self.config.resolved_keys()
            ],
            licence_secret(self.config.seed),
        )
        self._instances: dict[str, _Instance] = {
            name: _Instance(deployment_id(self.config.seed, name), self._fresh_accounts())
            for name in self.config.instances
        }

    def _fresh_accounts(self) -> Accounts:
        return Accounts(self.config.admin_user, self.config.admin_password, self.config.resolved_apikey)

    # Committed changes, their listeners and the keeper

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` under the lock at the end of every transaction that committed a change, before the
        change is answered. An exception it raises reaches the caller, and the fleet is restored as it was before
        the transaction (its document and revision): a write refused by a store changes nothing. Persistence
        writes the fleet through here."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> tuple[int, dict[str, Any]]:
        """Stop telling `listener`; answers the revision and document it has been told of last, read together."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)
            return self.committed()

    def keep(self, keeper: Keeper | None) -> None:
        """Keep the fleet in a store shared with other processes (`Keeper`; None: in memory again). From now on
        every operation, reads included, runs in one of the keeper's transactions: the fleet takes the stored
        document when another process changed it, decides, and the keeper writes the change and commits before
        the operation answers."""
        with self._lock:
            self._keeper = keeper

    @property
    def revision(self) -> int:
        """How many changes the fleet has committed; a listener compares it to skip a save of nothing."""
        return self._revision

    def _commit_if(self, changed: bool) -> None:
        if changed:
            self._commit()

    def _commit(self) -> None:
        """Mark a change; the listeners and the keeper hear of it at the end of the outermost transaction."""
        self._revision += 1

    def _reading(self) -> AbstractContextManager[None]:
        """A transaction of a read: no snapshot is taken first, as a read changes nothing but what `_seen`
        records (an online licence seen lost), which is undone if the store refuses it."""
        return self._transaction(snapshot_first=False)

    @contextmanager
    def _transaction(self, snapshot_first: bool = True) -> Iterator[None]:
        """The lock, and at the outermost level one transaction: take the keeper's document when another process
        changed it, run the operation, then (if it committed a change) tell the listeners and have the keeper
        write it, and commit. If a listener or the keeper refuses, the fleet is restored as it was before the
        operation (document, revision and the clock's setting) and the store's error reaches the caller; an error
        of the operation itself (a refused request) still saves what it committed (a licence seen lost)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            keeper = self._keeper
            if keeper is not None:
                stored = keeper.begin()
                try:
                    if stored is not None:
                        self._adopt(stored)
                except BaseException:
                    keeper.abandon()
                    raise
            persisted = keeper is not None or bool(self._listeners)
            revision, setting = self._revision, self._clock.setting()
            before = self._document() if persisted and snapshot_first else None
            self._depth, self._seen_undo = 1, []
            try:
                try:
                    yield
                finally:
                    changed = self._revision != revision
                    try:
                        if changed:
                            for listener in list(self._listeners):
                                listener()
                        if keeper is not None:
                            if changed:
                                keeper.write(self._document())
                            keeper.finish()
                    except BaseException:
                        if changed:
                            self._undo(before, revision, setting)
                        raise
            except BaseException:
                if keeper is not None:
                    keeper.abandon()
                raise
            finally:
                self._depth, self._seen_undo = 0, []

    def _undo(self, before: dict[str, Any] | None, revision: int, setting: tuple[datetime | None, timedelta]) -> None:
        """Back to the fleet as it was when the transaction began."""
        if before is not None:
            self._restore(before)
            if setting[0] is None and not self._clock.frozen:  # a running clock: its offset exactly, not the
                self._clock.advance(setting[1] - self._clock.setting()[1])  # reading of the snapshot's moment
        else:
            for inst, licence in reversed(self._seen_undo):
                inst.licence = licence
        self._revision = revision

    def _adopt(self, stored: Stored) -> None:
        """Take the document another process stored (not a change of this process: the revision stays). A running
        clock keeps its offset from wall time: it has run since the document was saved."""
        self._restore(stored.document)
        if not self._clock.frozen:
            with suppress(ValueError, OverflowError):
                self._clock.advance(datetime.now(UTC) - stored.saved_at)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Several changes as one: on an exception the fleet's state document (licences, slots, accounts, scans,
        the clock's reading) and its revision are restored as they were, and the listeners hear of the changes
        once, at the end."""
        with self._transaction():
            before, revision = self._document(), self._revision
            try:
                yield
            except BaseException:
                self._restore(before)
                self._revision = revision
                raise
            self._commit()

    # The whole state

    def reset(self) -> None:
        """Back to the start state, atomically: clock, fault rules, journal and progression included (these three
        are cleared once the reset is saved: a reset the store refuses changes nothing)."""
        with self._lock:
            with self._transaction():
                self._clock.reset()
                self._initialise()
                self._commit()
            self._faults.clear()
            self._journal.clear()
            self._progression = Progression()

    def dump(self) -> dict[str, Any]:
        """The whole fleet as a JSON-ready document (see mockcore.snapshot)."""
        with self._reading():
            return self._document()

    def _document(self) -> dict[str, Any]:
        return snapshot.dump_fleet(
            self._clock.now(),
            self._clock.frozen,
            self._started,
            self._activation.keys.values(),
            {
                name: snapshot.dump_instance(inst.deployment, inst.licence, inst.accounts, inst.scanning)
                for name, inst in self._instances.items()
            },
        )

    def committed(self) -> tuple[int, dict[str, Any]]:
        """The revision and the document, read together."""
        with self._reading():
            return self._revision, self._document()

    def load(self, document: object) -> None:
        """Replace the whole fleet with a document; an invalid one raises InvalidSnapshot and changes nothing."""
        with self._transaction():
            self._restore(document)
            self._commit()

    def _restore(self, document: object) -> None:
        loaded = snapshot.parse_fleet(document, self.config)
        self._clock.restore(loaded.now, loaded.frozen)
        self._started = loaded.started
        self._activation = ActivationServer(loaded.keys, licence_secret(self.config.seed))
        self._instances = {
            name: _Instance(state.deployment, state.accounts, state.licence, state.scanning)
            for name, state in loaded.instances.items()
        }

    # Reads

    @property
    def rules(self) -> LicenceRules:
        """The decisions this fleet applies (stateless; the HTTP layer asks the request-shape ones)."""
        return self._rules

    @property
    def profile(self) -> Profile:
        """The line of Core this fleet emulates."""
        return PROFILES[self.config.profile]

    @property
    def names(self) -> tuple[str, ...]:
        return self.config.instances

    @property
    def started(self) -> datetime:
        """When the fleet was last reset (keys expire relative to it)."""
        with self._reading():
            return self._started

    def now(self) -> datetime:
        """The clock's reading as this process last saw it, without a store's transaction (the journal's
        timestamps: a journal is per process, and its entry is written whatever the store says)."""
        return self._clock.now()

    def deployments(self) -> dict[str, str]:
        """Instance name -> deployment id (stable for a name and seed)."""
        with self._reading():
            return {name: inst.deployment for name, inst in self._instances.items()}

    def activation_keys(self) -> tuple[ActivationKey, ...]:
        """The activation server's keys as values: terms, slots and holders."""
        with self._reading():
            return tuple(self._activation.keys.values())

    def slot_holders(self) -> dict[str, list[str]]:
        with self._reading():
            return {k: list(v.holders) for k, v in self._activation.keys.items()}

    def licences(self) -> dict[str, Licence]:
        """Instance name -> licence as each instance's next request sees it."""
        with self._reading():
            return {name: self._seen(name).licence for name in self._instances}

    def states(self) -> dict[str, LicenceState]:
        return {name: licence.state for name, licence in self.licences().items()}

    def view(self) -> dict[str, Any]:
        """The fleet as people look at it (mockcore.view): what the dashboard and the demos show."""
        with self._reading():
            facts = self._facts()
            return view.fleet_view(
                ClockReading(facts.now, self._clock.frozen),
                facts,
                {name: (inst.deployment, inst.licence) for name, inst in self._instances.items()},
                self._rules,
            )

    # The clock

    def clock(self) -> ClockReading:
        with self._reading():
            return ClockReading(self._clock.now(), self._clock.frozen)

    def set_clock(self, now: datetime | None = None, frozen: bool | None = None) -> ClockReading:
        """Freeze or unfreeze (when `frozen` is given), then move to `now` (when given); ClockOutOfRange (a
        ValueError) past the calendar's ends, and then nothing changes."""
        with self._transaction():
            self._clock.check(now)
            before = self._clock.setting()
            if frozen is True:
                self._clock.freeze()
            elif frozen is False:
                self._clock.unfreeze()
            if now is not None:
                self._clock.set(now)
            self._commit_if(self._clock.setting() != before)
            return self.clock()

    def advance_clock(self, delta: timedelta) -> ClockReading:
        with self._transaction():
            self._clock.advance(delta)
            self._commit_if(bool(delta))
            return self.clock()

    def freeze_clock(self) -> ClockReading:
        return self.set_clock(frozen=True)

    def unfreeze_clock(self) -> ClockReading:
        return self.set_clock(frozen=False)

    # Fault rules, the journal, progression (not part of the state document)

    def fault_rules(self) -> list[FaultRule]:
        return self._faults.rules()

    def add_fault(self, document: object) -> FaultRule:
        """A rule from its JSON document; InvalidFault when it is malformed."""
        return self._faults.add(document)

    def remove_fault(self, rule_id: str) -> bool:
        return self._faults.remove(rule_id)

    def clear_faults(self) -> None:
        self._faults.clear()

    def fire_fault(self, face: str, instance: str | None, method: str, path: str) -> FaultRule | None:
        """The fault rule that fires for this request, counted (the middleware and online operations ask)."""
        return self._faults.fire(face, instance, method, path)

    @property
    def journal_cap(self) -> int:
        return self._journal.cap

    @property
    def journal_ceiling(self) -> int:
        """The largest cap `set_journal_cap` takes."""
        return self._journal.ceiling

    def set_journal_cap(self, cap: int) -> None:
        """ValueError (and the cap unchanged) outside 0..journal_ceiling."""
        self._journal.set_cap(cap)

    def record(self, entry: JournalEntry) -> None:
        self._journal.record(entry)

    def journal(self, **filters: Any) -> list[dict[str, Any]]:
        """Journal entries, oldest first; filters as mockcore.journal.Journal.entries takes them."""
        return self._journal.entries(**filters)

    def clear_journal(self) -> None:
        self._journal.clear()

    @property
    def progression(self) -> Progression:
        return self._progression

    def set_progression(self, progression: Progression) -> None:
        with self._lock:
            self._progression = progression

    # Accounts (docs/behaviour.md, "Authentication and accounts")

    def authenticate(self, name: str, key: str | None, *, required: bool = True) -> User | None:
        """A copy of the user the key stands for (None when no key was sent and none is required)."""
        with self._reading():
            user = self._rules.caller(key, self._instances[name].accounts, required=required)
            return None if user is None else replace(user, roles=list(user.roles))

    def authorise(self, name: str, action: str, key: str | None) -> User | None:
        """A copy of the caller of a Core request, once `key` is known and holds the right `action` needs
        (mockcore.rules.NEEDS); None when no key was sent and none is required."""
        with self._reading():
            user = self._rules.authorised(action, key, self._instances[name].accounts)
            return None if user is None else replace(user, roles=list(user.roles))

    def create_user(self, name: str, key: str | None, doc: Mapping[str, Any]) -> dict[str, object]:
        """`POST /admin/user` as the caller `key` stands for (who needs `users: write`)."""
        with self._transaction():
            accounts = self._instances[name].accounts
            self._rules.authorised("create-user", key, accounts)
            user = accounts.add_user(*self._rules.new_user(doc, accounts))
            self._commit()
            return user.public()

    def create_role(self, name: str, key: str | None, doc: Mapping[str, Any]) -> dict[str, object]:
        """`POST /admin/role` as the caller `key` stands for (who needs `users: write`)."""
        with self._transaction():
            accounts = self._instances[name].accounts
            self._rules.authorised("create-role", key, accounts)
            role = accounts.add_role(*self._rules.new_role(doc, accounts))
            self._commit()
            return role.public()

    def login(self, name: str, user: object, password: object) -> dict[str, str]:
        with self._transaction():
            accounts = self._instances[name].accounts
            session = accounts.open_session(self._rules.login(user, password, accounts))
            self._commit()
            return session

    def logout(self, name: str, key: str) -> None:
        with self._transaction():
            accounts = self._instances[name].accounts
            self._rules.logout(key, accounts)
            accounts.close_session(key)
            self._commit()

    def change_password(self, name: str, key: str | None, old: object, new: object) -> None:
        """The password of the user `key` stands for."""
        with self._transaction():
            user = self._rules.caller(key, self._instances[name].accounts, required=True)
            assert user is not None
            password = self._rules.new_password(user, old, new)
            changed = password != user.password
            user.password = password
            self._commit_if(changed)

    def set_apikey(self, name: str, key: str | None, user_id: int, api_key: object) -> dict[str, object]:
        """As the user `key` stands for, set user `user_id`'s own API key; answers that user's public view."""
        with self._transaction():
            accounts = self._instances[name].accounts
            self._rules.authorised("set-user-apikey", key, accounts)
            user, chosen = self._rules.apikey_change(user_id, api_key, accounts)
            changed = chosen != user.api_key
            user.api_key = chosen
            self._commit_if(changed)
            return user.public()

    # Licence operations (docs/behaviour.md, "Transitions")

    def _facts(self) -> Facts:
        return Facts(self._clock.now(), self._activation.keys)

    def _seen(self, name: str) -> _Instance:
        """The instance as its request sees it: an online licence whose slot is gone is lost (and stays so)."""
        inst = self._instances[name]
        seen = self._rules.seen(inst.licence, inst.deployment, self._facts())
        if seen != inst.licence:  # committed: a store shared by several processes keeps it lost for all
            self._seen_undo.append((inst, inst.licence))
            inst.licence = seen
            self._commit()
        inst.scanning.observe_licence(inst.licence.licensed, self._clock.now())
        return inst

    def _reachable(self, path: str | None) -> bool:
        """An online operation calls the activation server in-process, so its fault rules apply. Called BEFORE
        the lock is taken: a delay rule slows this request only, never the rest of the fleet. Whether the server
        was reachable is judged by the rules, after the state rule."""
        if path is None:
            return True
        rule = self._faults.fire("activation", None, "GET", path)
        if rule is not None and rule.delay:
            time.sleep(rule.delay)
        return rule is None or not (rule.drop or rule.status is not None)

    def _operate(
        self, name: str, decide: Callable[[Licence, str, Facts, bool], Decision], calls: str | None = None
    ) -> None:
        """Lock, see, decide, apply, commit: every licence operation. `calls`: the activation server path an
        online operation calls (None: offline)."""
        reachable = self._reachable(calls)
        with self._transaction():
            inst = self._seen(name)
            decision = decide(inst.licence, inst.deployment, self._facts(), reachable)
            moved = self._activation.apply(decision.slots)
            changed = moved or decision.licence != inst.licence
            inst.licence = decision.licence
            self._commit_if(changed)

    def _parse_file(self, body: bytes) -> LicenceFile | None:
        """Parse a licence file WITHOUT the lock (YAML parsing of a large body is slow and must not stall the
        fleet); None when it is not a valid file. The signing secret never changes, so no lock is needed."""
        try:
            return self._activation.parse(body)
        except InvalidLicenceFile:
            return None

    def activate(self, name: str, key: str, quantity: int) -> None:
        self._operate(
            name, lambda lic, dep, facts, ok: self._rules.activate(lic, dep, key, quantity, facts, ok), "/activation"
        )

    def upload_licence(self, name: str, body: bytes) -> None:
        parsed = self._parse_file(body)
        self._operate(name, lambda lic, dep, facts, _: self._rules.upload(lic, dep, parsed, facts))

    def register_backup_online(self, name: str, key: str, production: str) -> None:
        self._operate(
            name,
            lambda lic, dep, facts, ok: self._rules.register_online(lic, dep, key, production, facts, ok),
            "/activation",
        )

    def register_backup_offline(self, name: str, body: bytes) -> None:
        parsed = self._parse_file(body)
        self._operate(name, lambda lic, dep, facts, _: self._rules.register_offline(lic, dep, parsed, facts))

    def unregister_backup(self, name: str) -> None:
        self._operate(name, lambda lic, dep, facts, _: self._rules.unregister(lic))

    def nominate(self, name: str) -> None:
        self._operate(name, lambda lic, dep, facts, ok: self._rules.nominate(lic, dep, facts, ok), "/activation")

    def deactivate(self, name: str) -> None:
        # Only an online deactivation calls the activation server. This read outside the lock only decides whether
        # to consult the fault rules; the decision is taken under the lock.
        online = self._instances[name].licence.online
        self._operate(
            name,
            lambda lic, dep, facts, ok: self._rules.deactivate(lic, dep, facts, ok),
            "/deactivation" if online else None,
        )

    def licence_info(self, name: str) -> dict[str, object]:
        with self._reading():
            inst = self._seen(name)
            view = self._rules.licence_view(inst.licence, inst.deployment, self._facts())
            return self._rules.profile_view(view, self.profile)

    def is_backup(self, name: str) -> bool:
        with self._reading():
            return self._seen(name).licence.state.is_backup

    def readiness(self, name: str) -> tuple[str, list[dict[str, object]]]:
        """The licence status `/readyz` reports (`ok`, `expired` or `invalid`) and the engines, read together."""
        with self._reading():
            licence = self._seen(name).licence
            return self._rules.readiness(licence, self._facts()), self.engines(name, poll=False)

    # Engines and scans (docs/behaviour.md, "Scans and engines")

    def engines(self, name: str, *, poll: bool = True) -> list[dict[str, object]]:
        """The engine list; `poll` counts this read as a client poll for the progression settings."""
        with self._reading():
            inst = self._seen(name)
            if not self._rules.engines_listed(inst.licence):
                return []
            return inst.scanning.engines(self._started, self._clock.now(), self._progression, poll=poll)

    def nodes(self, name: str) -> list[dict[str, object]]:
        """`GET /stat/nodes`: the instance's one local node, its engines and the licence's node count."""
        with self._reading():
            inst = self._seen(name)
            engines = self.engines(name, poll=False)
            return [
                {
                    "external_nodes_allowed": False,
                    "max_node_count": self._rules.node_count(inst.licence),
                    "statuses": [
                        {
                            "address": "",
                            "id": ":1",
                            "version": self.config.version,
                            "os": "Linux (mockcore)",
                            "cpu_cores": 2,
                            "total_memory": 8192,
                            "free_disk_space": 100 * 1024**3,
                            "load": 0,
                            "scan_queue": 0,
                            "issues": [],
                            "engines": [
                                {
                                    "id": e["eng_id"],
                                    "eng_name": e["eng_name"],
                                    "eng_ver": e["eng_ver"],
                                    "engine_type": e["engine_type"],
                                    "db_ver": "1",
                                    "def_time": e["def_time"],
                                    "active": e["active"],
                                }
                                for e in engines
                            ],
                        }
                    ],
                }
            ]

    def set_engine(self, name: str, eng_id: str, enabled: bool) -> None:
        with self._transaction():
            inst = self._seen(name)
            self._rules.change_engine(inst.licence, inst.scanning.known_engine(eng_id))
            before = set(inst.scanning.disabled)
            inst.scanning.set_enabled(eng_id, enabled)
            self._commit_if(inst.scanning.disabled != before)

    def scan(self, name: str, body: bytes, filename: str, user_agent: str = "", username: str = "") -> str:
        """`POST /file`: the new scan's data_id. `username`: the submitting user's name ("" when anonymous)."""
        self._rules.scan_body(len(body))
        upload = Scanning.inspect(body, filename, user_agent, username)  # hashing: outside the lock
        with self._transaction():
            inst = self._seen(name)
            self._rules.scan(inst.licence, upload.size, self._facts())
            data_id = scan_id(self.config.seed, name, inst.scanning.counter)
            inst.scanning.submit(data_id, upload, self._clock.now())
            self._commit()
            return data_id

    def scan_sync(
        self, name: str, body: bytes, filename: str, user_agent: str = "", username: str = ""
    ) -> tuple[str, dict[str, object] | None]:
        """`POST /file/sync`: `scan`, then its result if it is finished at once; None while the progression holds
        it back (the client polls `GET /file/{data_id}` then, as after `POST /file`)."""
        data_id = self.scan(name, body, filename, user_agent, username)
        with self._reading():
            scanning = self._instances[name].scanning
            return data_id, scanning.finished_result(data_id, self._started, self._clock.now(), self._progression)

    def scan_result(self, name: str, data_id: str) -> dict[str, object]:
        with self._reading():
            scanning = self._instances[name].scanning
            result = scanning.result(data_id, self._started, self._clock.now(), self._progression)
        if result is None:
            raise LicenceError(ErrorCode.NOT_FOUND)
        return result

    # The activation server's face (docs/activation-server.md)

    def obtain_licence_file(self, key: object, deployment: object, quantity: object) -> bytes:
        """A licence file, or ActivationRefused."""
        with self._transaction():
            issued, changes = self._rules.obtain(key, deployment, quantity, self._facts())
            self._commit_if(self._activation.apply(changes))
            return self._activation.render(issued)

    def release_slot(self, key: str, deployment: str) -> None:
        """Free a deployment's slot, or NotActivated."""
        with self._transaction():
            self._activation.apply([self._rules.release(key, deployment, self._facts())])
            self._commit()
