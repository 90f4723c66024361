"""A fleet: Core instances, one activation server, one clock and one lock.

Every operation takes the lock, refreshes the instance against the activation server (SPEC §8: an online
instance consults it on each request), checks the transition table, then the semantic rules, and only then
changes anything: a refused operation changes nothing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from mockcore import snapshot
from mockcore.accounts import Accounts, User
from mockcore.activation import (
    ActivationKey,
    ActivationRefused,
    ActivationServer,
    InvalidLicenceFile,
    LicenceFile,
    format_expiration,
)
from mockcore.catalogue import Catalogue, ErrorCode, LicenceError
from mockcore.clock import FleetClock
from mockcore.faults import FaultRule, Faults
from mockcore.identity import activation_key, apikey, deployment_id, licence_secret, scan_id
from mockcore.journal import DEFAULT_CAP as DEFAULT_JOURNAL_CAP
from mockcore.journal import Journal
from mockcore.lifecycle import Licence, LicenceState, LicenceTerms, Operation, allowed
from mockcore.scanning import Progression, Scanning

DEFAULT_VERSION = "5.6.1"


@dataclass(frozen=True)
class KeySpec:
    key: str | None = None  # None: derived from the seed
    slots: int = 1
    days: int = 365


@dataclass(frozen=True)
class FleetConfig:
    instances: tuple[str, ...] = ("core",)
    keys: tuple[KeySpec, ...] = (KeySpec(),)
    seed: str = "0"
    apikey: str | None = None  # None: derived from the seed
    admin_user: str = "admin"
    admin_password: str = "admin"
    version: str = DEFAULT_VERSION

    @property
    def resolved_apikey(self) -> str:
        return self.apikey or apikey(self.seed)

    def resolved_keys(self) -> list[KeySpec]:
        return [
            KeySpec(spec.key or activation_key(self.seed, index), spec.slots, spec.days)
            for index, spec in enumerate(self.keys)
        ]


@dataclass
class Instance:
    name: str
    deployment: str
    accounts: Accounts
    licence: Licence = field(default_factory=Licence)
    scanning: Scanning = field(default_factory=Scanning)


class Fleet:
    def __init__(
        self,
        config: FleetConfig,
        clock: FleetClock | None = None,
        catalogue: Catalogue | None = None,
        journal_cap: int = DEFAULT_JOURNAL_CAP,
    ) -> None:
        self.config = config
        self.clock = clock or FleetClock()
        self.catalogue = catalogue or Catalogue()
        self.lock = threading.RLock()
        self.faults = Faults()
        self.journal = Journal(journal_cap)
        self.progression = Progression()
        self._initialise()

    def _initialise(self) -> None:
        """The start state: fresh instances, fresh keys expiring relative to the clock's now."""
        self.started = self.clock.now()
        self.activation = ActivationServer(
            [
                ActivationKey(LicenceTerms(spec.key or "", self.started.date() + timedelta(days=spec.days)), spec.slots)
                for spec in self.config.resolved_keys()
            ],
            licence_secret(self.config.seed),
        )
        self.instances: dict[str, Instance] = {
            name: Instance(name, deployment_id(self.config.seed, name), self._fresh_accounts())
            for name in self.config.instances
        }

    def _fresh_accounts(self) -> Accounts:
        return Accounts(self.config.admin_user, self.config.admin_password, self.config.resolved_apikey)

    def reset(self) -> None:
        """Back to the start state, atomically: clock, fault rules, journal and progression included."""
        with self.lock:
            self.clock.reset()
            self.faults.clear()
            self.journal.clear()
            self.progression = Progression()
            self._initialise()

    def _call_activation_server(self, path: str) -> FaultRule | None:
        """An online operation calls the activation server in-process, so its fault rules apply (SPEC §1). Called
        BEFORE the fleet lock is taken: a delay rule slows this request only, never the rest of the fleet. The
        rule that fired is judged under the lock by `_unreachable`, after the state rule."""
        rule = self.faults.fire("activation", None, "GET", path)
        if rule is not None and rule.delay:
            time.sleep(rule.delay)
        return rule

    @staticmethod
    def _unreachable(rule: FaultRule | None) -> None:
        if rule is not None and (rule.drop or rule.status is not None):
            raise LicenceError(ErrorCode.ACTIVATION_UNREACHABLE)

    def dump(self) -> dict[str, Any]:
        """The whole fleet as a JSON-ready document (see mockcore.snapshot)."""
        with self.lock:
            return snapshot.dump_fleet(self)

    def load(self, document: object) -> None:
        """Replace the whole fleet with a document; an invalid one raises InvalidSnapshot and changes nothing."""
        with self.lock:
            loaded = snapshot.parse_fleet(document, self.config)
            self.clock.restore(loaded.now, loaded.frozen)
            self.started = loaded.started
            self.activation = ActivationServer(loaded.keys, licence_secret(self.config.seed))
            self.instances = {
                name: Instance(name, state.deployment, state.accounts, state.licence, state.scanning)
                for name, state in loaded.instances.items()
            }

    # Helpers

    def today(self) -> date:
        return self.clock.now().date()

    def instance(self, name: str) -> Instance:
        """The instance, refreshed: an online licence whose slot is gone at the activation server is lost."""
        inst = self.instances[name]
        lic = inst.licence
        if (
            lic.state is LicenceState.ACTIVE
            and lic.online
            and lic.key is not None
            and not self.activation.holds_slot(lic.key, inst.deployment)
        ):
            inst.licence = lic.lost_slot()
        inst.scanning.observe_licence(inst.licence.state is not LicenceState.UNLICENSED, self.clock.now())
        return inst

    def _parse_file(self, body: bytes) -> LicenceFile | None:
        """Parse a licence file WITHOUT the lock (YAML parsing of a large body is slow and must not stall the
        fleet); None when it is not a valid file. The signing secret never changes, so no lock is needed."""
        try:
            return self.activation.parse(body)
        except InvalidLicenceFile:
            return None

    def _usable_file(self, parsed: LicenceFile | None) -> LicenceFile:
        """Under the lock, after the state rule: the parsed file, or E_INVALID_LICENSE (also when expired)."""
        if parsed is None or self.today() > parsed.terms.expires:
            raise LicenceError(ErrorCode.INVALID_LICENSE)
        return parsed

    def _free_online_slot(self, inst: Instance) -> None:
        """An online licence's slot is freed at the activation server (an offline one stays held, SPEC §8)."""
        lic = inst.licence
        if lic.online and lic.key and self.activation.holds_slot(lic.key, inst.deployment):
            self.activation.release(lic.key, inst.deployment)

    def _release_if_moving(self, inst: Instance, new_key: str) -> None:
        """Moving an online production to another key frees its old slot (SPEC §8, moving keys)."""
        if inst.licence.state is LicenceState.ACTIVE and inst.licence.key != new_key:
            self._free_online_slot(inst)

    # Authentication and accounts

    def authenticate(self, name: str, key: str | None, *, required: bool = True) -> User | None:
        with self.lock:
            return self.instances[name].accounts.user_for(key, required=required)

    # Licence operations (SPEC §3)

    def activate(self, name: str, key: str, quantity: int) -> None:
        rule = self._call_activation_server("/activation")
        with self.lock:
            inst = self.instance(name)
            allowed(Operation.ACTIVATE, inst.licence.state)
            self._unreachable(rule)
            try:
                licence = self.activation.obtain(key, inst.deployment, quantity, self.clock.now())
            except ActivationRefused as refused:
                code = ErrorCode.NO_SLOT if refused.no_slot else ErrorCode.ACTIVATION_FAILED
                raise LicenceError(code, None if refused.no_slot else refused.text) from refused
            self._release_if_moving(inst, key)
            inst.licence = inst.licence.activated(licence.terms, online=True)

    def upload_licence(self, name: str, body: bytes) -> None:
        parsed = self._parse_file(body)
        with self.lock:
            inst = self.instance(name)
            allowed(Operation.UPLOAD, inst.licence.state)
            licence = self._usable_file(parsed)
            if licence.deployment != inst.deployment:
                raise LicenceError(ErrorCode.INVALID_LICENSE)
            self._release_if_moving(inst, licence.terms.activation_key)
            inst.licence = inst.licence.activated(licence.terms, online=False)

    def register_backup_online(self, name: str, key: str, production: str) -> None:
        rule = self._call_activation_server("/activation")
        with self.lock:
            inst = self.instance(name)
            allowed(Operation.REGISTER_ONLINE, inst.licence.state)
            self._unreachable(rule)
            found = self.activation.keys.get(key)
            if found is None:
                raise LicenceError(ErrorCode.BACKUP_KEY)
            if production == inst.deployment or production not in found.holders:
                raise LicenceError(ErrorCode.BACKUP_PRODUCTION)
            inst.licence = inst.licence.registered_backup(found.terms, production, online=True)

    def register_backup_offline(self, name: str, body: bytes) -> None:
        parsed = self._parse_file(body)
        with self.lock:
            inst = self.instance(name)
            allowed(Operation.REGISTER_OFFLINE, inst.licence.state)
            licence = self._usable_file(parsed)
            if licence.deployment == inst.deployment:
                raise LicenceError(ErrorCode.INVALID_LICENSE)
            inst.licence = inst.licence.registered_backup(licence.terms, licence.deployment, online=False)

    def unregister_backup(self, name: str) -> None:
        with self.lock:
            inst = self.instance(name)
            allowed(Operation.UNREGISTER, inst.licence.state)
            inst.licence = inst.licence.unregistered()

    def nominate(self, name: str) -> None:
        rule = self._call_activation_server("/activation")
        with self.lock:
            inst = self.instance(name)
            allowed(Operation.NOMINATE, inst.licence.state)
            self._unreachable(rule)
            lic = inst.licence
            assert lic.key is not None and lic.production is not None
            if not self.activation.nominate_slot(lic.key, lic.production, inst.deployment):
                raise LicenceError(ErrorCode.NO_SLOT)
            inst.licence = lic.nominated()

    def deactivate(self, name: str) -> None:
        # Only an online deactivation calls the activation server; the read outside the lock only decides whether
        # to consult the fault rules, the state rule below is judged under the lock.
        online = self.instances[name].licence.online
        rule = self._call_activation_server("/deactivation") if online else None
        with self.lock:
            inst = self.instance(name)
            allowed(Operation.DEACTIVATE, inst.licence.state)
            lic = inst.licence
            if lic.online:
                self._unreachable(rule)
            self._free_online_slot(inst)
            inst.licence = lic.deactivated()

    # Reads

    def licence_info(self, name: str) -> dict[str, object]:
        with self.lock:
            inst = self.instance(name)
            lic = inst.licence
            if lic.state is LicenceState.UNLICENSED or lic.terms is None:
                info: dict[str, object] = {"deployment": inst.deployment, "deployment_id": inst.deployment}
                if lic.reactivate:
                    info["reactivate"] = True
                return info
            terms = lic.terms
            return {
                "days_left": lic.days_left(self.today()),
                "deployment": inst.deployment,
                "expiration": format_expiration(terms.expires),
                "licensed_engines": terms.licensed_engines,
                "licensed_to": terms.licensed_to,
                "max_node_count": terms.max_node_count,
                "online_activated": lic.online,
                "product_id": terms.product_id,
                "product_name": terms.product_name,
            }

    def is_backup(self, name: str) -> bool:
        with self.lock:
            return self.instance(name).licence.state.is_backup

    def readiness(self, name: str) -> tuple[str, list[dict[str, object]]]:
        """The licence status `/readyz` reports (`ok`, `expired` or `invalid`) and the engines, read together."""
        with self.lock:
            lic = self.instance(name).licence
            engines = self.engines(name, poll=False)
            if lic.state is LicenceState.UNLICENSED:
                return "invalid", engines
            return ("expired" if lic.expired(self.today()) else "ok"), engines

    # Engines and scans

    def engines(self, name: str, *, poll: bool = True) -> list[dict[str, object]]:
        """The engine list; `poll` counts this read as a client poll for the progression settings."""
        with self.lock:
            inst = self.instance(name)
            if inst.licence.state is LicenceState.UNLICENSED:
                return []
            return inst.scanning.engines(self.started, self.clock.now(), self.progression, poll=poll)

    def set_engine(self, name: str, eng_id: str, enabled: bool) -> None:
        with self.lock:
            inst = self.instance(name)
            if inst.licence.state is LicenceState.UNLICENSED:
                raise LicenceError(ErrorCode.ENGINES_UNLICENSED)
            if not inst.scanning.known_engine(eng_id):
                raise LicenceError(ErrorCode.NOT_FOUND)
            inst.scanning.set_enabled(eng_id, enabled)

    def scan(self, name: str, body: bytes, filename: str) -> str:
        if not body:
            raise LicenceError(ErrorCode.EMPTY_FILE)
        with self.lock:
            inst = self.instance(name)
            lic = inst.licence
            if lic.state.is_backup:
                raise LicenceError(ErrorCode.SCAN_BACKUP)
            if lic.state is LicenceState.UNLICENSED:
                raise LicenceError(ErrorCode.SCAN_UNLICENSED)
            if lic.expired(self.today()):
                raise LicenceError(ErrorCode.EXPIRED_SCAN)
            data_id = scan_id(self.config.seed, name, inst.scanning.counter)
            inst.scanning.submit(data_id, body, filename, self.clock.now())
            return data_id

    def scan_result(self, name: str, data_id: str) -> dict[str, object]:
        with self.lock:
            result = self.instances[name].scanning.result(data_id, self.clock.now(), self.progression)
        if result is None:
            raise LicenceError(ErrorCode.NOT_FOUND)
        return result

    # Activation server face (SPEC §5)

    def obtain_licence_file(self, key: object, deployment: object, quantity: object) -> bytes:
        with self.lock:
            licence = self.activation.obtain(key, deployment, quantity, self.clock.now())  # type: ignore[arg-type]
            return self.activation.render(licence)

    def release_slot(self, key: str, deployment: str) -> None:
        with self.lock:
            self.activation.release(key, deployment)

    # Views for tests and tools

    def slot_holders(self) -> dict[str, list[str]]:
        with self.lock:
            return {k: list(v.holders) for k, v in self.activation.keys.items()}

    def states(self) -> dict[str, LicenceState]:
        with self.lock:
            return {name: self.instance(name).licence.state for name in self.instances}
