"""Deliberately faulty servers: each is the emulator with ONE licence rule broken, served through the same HTTP face,
so the contract suite can show that it catches that rule (README, "The suite can fail").

A variant either subclasses `Fleet` (a rule of the licence state machine) or wraps a face's WSGI app (an answer
on the wire). Each names the contract rules a report may blame for it: the rule it breaks, seen from the suite.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import yaml

from contracts.target import Target
from mockcore.activation import _FILE_FIELDS
from mockcore.catalogue import ErrorCode, LicenceError
from mockcore.fleet import Fleet, FleetConfig
from mockcore.identity import scan_id
from mockcore.inprocess import parse_key
from mockcore.lifecycle import Licence, LicenceState
from mockcore.server import ACTIVATION, FleetServer, ServeOptions

INSTANCES = ("a", "b", "c")
# A short-lived key so clock steps reach expiry, and a longer one with a single slot so slots run out.
KEYS = ("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG:2:30", "HHHH-IIII-JJJJ-KKKK-LLLL-MMMM-NNNN:1:400")

WsgiApp = Callable[..., Iterable[bytes]]


# Fleet variants: one licence rule broken each.


class NominatesOfflineBackup(Fleet):
    """A backup registered offline can be nominated."""

    def nominate(self, name: str) -> None:
        with self.lock:
            inst = self.instances[name]
            if inst.licence.state is LicenceState.BACKUP_OFFLINE:
                inst.licence = replace(inst.licence, state=LicenceState.BACKUP_ONLINE, online=True)
        super().nominate(name)


class BackupTakesSlot(Fleet):
    """An online backup registration takes a slot on the key."""

    def register_backup_online(self, name: str, key: str, production: str) -> None:
        super().register_backup_online(name, key, production)
        with self.lock:
            found = self.activation.keys[key]
            deployment = self.instances[name].deployment
            if deployment not in found.holders:
                found.holders.append(deployment)


class DeactivationKeepsSlot(Fleet):
    """Deactivating an online production leaves its slot taken."""

    def _free_online_slot(self, inst: Any) -> None:
        return None


class NominationKeepsProduction(Fleet):
    """Nomination gives the backup a slot but leaves the old production licensed."""

    def nominate(self, name: str) -> None:
        with self.lock:
            lic = self.instances[name].licence
            production, key = lic.production, lic.key
        super().nominate(name)
        with self.lock:
            if key is not None and production is not None:
                holders = self.activation.keys[key].holders
                if production not in holders:
                    holders.append(production)


class RefusedUnregisterDeactivates(Fleet):
    """A refused unregistration (the instance is not a backup) still deactivates the instance."""

    def unregister_backup(self, name: str) -> None:
        try:
            super().unregister_backup(name)
        except LicenceError as refused:
            with self.lock:
                inst = self.instance(name)
                if inst.licence.state is LicenceState.ACTIVE:
                    self._free_online_slot(inst)
                    inst.licence = Licence()
            raise refused from None


class ActivatesBackup(Fleet):
    """Online activation of a backup succeeds (the backup registration is silently dropped)."""

    def activate(self, name: str, key: str, quantity: int) -> None:
        with self.lock:
            inst = self.instances[name]
            if inst.licence.state.is_backup:
                inst.licence = Licence()
        super().activate(name, key, quantity)


class ScansWhenExpired(Fleet):
    """Scans succeed on an active instance whose licence has expired."""

    def scan(self, name: str, body: bytes, filename: str) -> str:
        try:
            return super().scan(name, body, filename)
        except LicenceError as refused:
            if refused.code is not ErrorCode.EXPIRED_SCAN:
                raise
            with self.lock:
                inst = self.instances[name]
                data_id = scan_id(self.config.seed, name, inst.scanning.counter)
                inst.scanning.submit(data_id, body, filename, self.clock.now())
                return data_id


class AcceptsEditedFile(Fleet):
    """A licence file whose content was edited is accepted (the signature is not checked)."""

    def _parse_file(self, body: bytes) -> Any:
        parsed = super()._parse_file(body)
        if parsed is not None:
            return parsed
        try:
            doc = yaml.safe_load(body)
            fields = {name: doc[name] for name in _FILE_FIELDS - {"signature"}}
        except (yaml.YAMLError, TypeError, KeyError):
            return None
        fields["signature"] = self.activation._signature(fields)
        return super()._parse_file(yaml.safe_dump(fields).encode())


class RegistersWithoutProduction(Fleet):
    """Online backup registration accepts a production that is not active on the key."""

    def register_backup_online(self, name: str, key: str, production: str) -> None:
        try:
            super().register_backup_online(name, key, production)
        except LicenceError as refused:
            if refused.code is not ErrorCode.BACKUP_PRODUCTION:
                raise
            with self.lock:
                inst = self.instance(name)
                found = self.activation.keys[key]
                inst.licence = inst.licence.registered_backup(found.terms, production, online=True)


# WSGI variants: an answer on the wire changed.


def _rewrite_json(app: WsgiApp, change: Callable[[dict[str, Any], Any], Any]) -> WsgiApp:
    """Wrap a face: `change(environ, body)` may return a new JSON body for a 2xx JSON answer."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = b"".join(app(environ, capture))
        status, headers = captured["status"], captured["headers"]
        if status.startswith("2") and chunks.startswith(b"{"):
            new = change(environ, json.loads(chunks))
            if new is not None:
                chunks = json.dumps(new).encode()
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(chunks))))
        start_response(status, headers)
        return [chunks]

    return wrapped


def _backup_success_is_boolean(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    def change(environ: dict[str, Any], body: Any) -> Any:
        if environ["PATH_INFO"] == "/admin/license/backup" and environ["REQUEST_METHOD"] == "POST":
            return {"success": True}
        return None

    return _rewrite_json(app, change)


def _backup_flag_always_false(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    def change(environ: dict[str, Any], body: Any) -> Any:
        if environ["PATH_INFO"] == "/admin/license/backup" and environ["REQUEST_METHOD"] == "GET":
            return {"is_backup": False}
        return None

    return _rewrite_json(app, change)


def _missing_apikey_accepted(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    """No apikey header: the request is served as if the admin's key had been sent."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "HTTP_APIKEY" not in environ and not environ["PATH_INFO"].startswith("/_mock/"):
            environ = {**environ, "HTTP_APIKEY": fleet.config.resolved_apikey}
        return app(environ, start_response)

    return wrapped


@dataclass(frozen=True)
class Variant:
    name: str
    breaks: str  # the rule, in words
    rules: tuple[str, ...]  # the contract rules a report may name for it
    fleet_class: type[Fleet] = Fleet
    wrap_core: Callable[[WsgiApp, Fleet], WsgiApp] | None = None


VARIANTS: tuple[Variant, ...] = (
    Variant(
        "nominates-offline-backup",
        "an offline backup can be nominated",
        ("no-nomination-of-offline-backup",),
        NominatesOfflineBackup,
    ),
    Variant("backup-takes-slot", "a backup uses a slot", ("backup-holds-no-slot",), BackupTakesSlot),
    Variant("deactivation-keeps-slot", "deactivation frees no slot", ("slot-accounting",), DeactivationKeepsSlot),
    Variant(
        "nomination-keeps-production",
        "nomination leaves the old production licensed",
        ("licence-view", "slot-accounting", "slots-within-key"),
        NominationKeepsProduction,
    ),
    Variant(
        "backup-success-boolean",
        "the backup registration answers `success: true` instead of the documented sentence",
        ("registration-online", "registration-offline"),
        wrap_core=_backup_success_is_boolean,
    ),
    Variant(
        "missing-apikey-accepted",
        "a request without an apikey gets 200",
        ("apikey-required",),
        wrap_core=_missing_apikey_accepted,
    ),
    Variant(
        "refused-operation-changes-state",
        "a refused operation (unregistering an active instance) changes state",
        ("refused-operation-changes-nothing",),
        RefusedUnregisterDeactivates,
    ),
    Variant("activates-backup", "activation succeeds on a backup", ("no-activation-on-backup",), ActivatesBackup),
    Variant("expiry-ignored", "scans succeed after the licence expired", ("no-scan-expired",), ScansWhenExpired),
    Variant(
        "accepts-edited-file",
        "an edited licence file is accepted",
        ("upload-needs-valid-own-file", "offline-registration-needs-another-deployments-file"),
        AcceptsEditedFile,
    ),
    Variant(
        "registers-without-production",
        "an online backup registration is accepted for a production not active on the key",
        ("registration-needs-active-production",),
        RegistersWithoutProduction,
    ),
    Variant(
        "backup-flag-false",
        "GET /admin/license/backup says false on a backup",
        ("backup-flag-agrees-with-licence",),
        wrap_core=_backup_flag_always_false,
    ),
)


def build_fleet(fleet_class: type[Fleet] = Fleet, keys: Iterable[str] = KEYS) -> Fleet:
    return fleet_class(FleetConfig(instances=INSTANCES, keys=tuple(parse_key(k) for k in keys)))


def inprocess_target(fleet: Fleet, wrap_core: Callable[[WsgiApp, Fleet], WsgiApp] | None = None) -> Target:
    """The fleet's faces as WSGI apps behind made-up base URLs: the suite drives them without sockets."""
    apps = FleetServer(fleet, ServeOptions()).wsgi_apps()
    urls = {name: f"http://{name}.core.invalid" for name in fleet.instances}
    activation_url = "http://activation.invalid"
    wsgi = {urls[name]: apps[name] for name in fleet.instances}
    if wrap_core is not None:
        wsgi = {url: wrap_core(app, fleet) for url, app in wsgi.items()}
    wsgi[activation_url] = apps[ACTIVATION]
    return Target(
        core_urls=urls,
        activation_url=activation_url,
        apikey=fleet.config.resolved_apikey,
        control=True,
        wsgi_apps=wsgi,
    )
