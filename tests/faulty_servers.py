"""Deliberately faulty servers: each is the emulator with ONE licence rule broken, served through the same HTTP face,
so the contract suite can show that it catches that rule (docs/guides/checking-a-server.md, "From pytest, and the
budgets").

A variant either subclasses `Fleet` (a rule of the licence state machine) or wraps a face's WSGI app (an answer
on the wire). Each names the contract rules a report may blame for it: the rule it breaks, seen from the suite.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import yaml

from contracts.target import Target
from mockcore.accounts import Accounts
from mockcore.activation import _FILE_FIELDS, ACTIVATION_FAILED, ActivationRefused, LicenceFile, NotActivated
from mockcore.catalogue import ErrorCode, LicenceError
from mockcore.fleet import Fleet, FleetConfig
from mockcore.identity import scan_id
from mockcore.inprocess import parse_key
from mockcore.lifecycle import Licence, LicenceState, Operation, allowed
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


# The activation server's own endpoints and the files they hand out (docs/activation-server.md).


class ReissueTakesSlot(Fleet):
    """`/activation` for a deployment already active on the key takes a second slot (or fails when none is free)."""

    def obtain_licence_file(self, key: object, deployment: object, quantity: object) -> bytes:
        with self.lock:
            found = self.activation.keys.get(key) if isinstance(key, str) else None
            again = found is not None and deployment in found.holders
            body = super().obtain_licence_file(key, deployment, quantity)
            if found is not None and again:
                if found.free <= 0:
                    raise ActivationRefused(ACTIVATION_FAILED, "The Activation Key has no free activation left.")
                found.holders.append(str(deployment))
            return body


class DeactivatesInactiveDeployment(Fleet):
    """`/deactivation` answers 200 for a deployment that is not active on the key."""

    def release_slot(self, key: str, deployment: str) -> None:
        with contextlib.suppress(NotActivated):
            super().release_slot(key, deployment)


class FileOutlivesKey(Fleet):
    """A licence file from `/activation` expires 365 days after it is issued, not on its key's expiry date."""

    def obtain_licence_file(self, key: object, deployment: object, quantity: object) -> bytes:
        with self.lock:
            licence = self.activation.obtain(key, deployment, quantity, self.clock.now())  # type: ignore[arg-type]
            terms = replace(licence.terms, expires=self.today() + timedelta(days=365))
            return self.activation.render(replace(licence, terms=terms))


# Licence-file validity at upload and offline registration (docs/behaviour.md, Transitions and Licence files).


class AcceptsExpiredFile(Fleet):
    """An expired licence file is accepted for upload and for offline registration."""

    def _usable_file(self, parsed: LicenceFile | None) -> LicenceFile:
        if parsed is None:
            raise LicenceError(ErrorCode.INVALID_LICENSE)
        return parsed


class AcceptsAnotherDeploymentsFile(Fleet):
    """An uploaded licence file issued for another deployment is accepted."""

    def upload_licence(self, name: str, body: bytes) -> None:
        parsed = self._parse_file(body)
        with self.lock:
            deployment = self.instances[name].deployment
            if parsed is not None and parsed.deployment != deployment:
                body = self.activation.render(replace(parsed, deployment=deployment))
            super().upload_licence(name, body)


class RegistersBackupOfItself(Fleet):
    """Offline backup registration accepts a licence file issued for the instance itself."""

    def register_backup_offline(self, name: str, body: bytes) -> None:
        parsed = self._parse_file(body)
        with self.lock:
            inst = self.instance(name)
            if parsed is None or parsed.deployment != inst.deployment:
                return super().register_backup_offline(name, body)
            allowed(Operation.REGISTER_OFFLINE, inst.licence.state)
            licence = self._usable_file(parsed)
            inst.licence = inst.licence.registered_backup(licence.terms, licence.deployment, online=False)


# Expiry boundaries (docs/behaviour.md, Licence states and Expiry).


class ExpiresOnLastDay(Fleet):
    """A licence counts as expired on its expiry date, its last valid day: scans refused, `/readyz` `expired`."""

    def _on_last_day(self, name: str) -> bool:
        lic = self.instance(name).licence
        return lic.state is not LicenceState.UNLICENSED and lic.terms is not None and self.today() == lic.terms.expires

    def scan(self, name: str, body: bytes, filename: str) -> str:
        with self.lock:
            if body and self.instance(name).licence.state is LicenceState.ACTIVE and self._on_last_day(name):
                raise LicenceError(ErrorCode.EXPIRED_SCAN)
            return super().scan(name, body, filename)

    def readiness(self, name: str) -> tuple[str, list[dict[str, object]]]:
        with self.lock:
            status, engines = super().readiness(name)
            return ("expired" if status == "ok" and self._on_last_day(name) else status), engines


# The licence view, by value and type (docs/responses.md, docs/decisions.md).


class UploadReportsOnline(Fleet):
    """`GET /admin/license` says `online_activated: true` for a production activated by an uploaded file."""

    def licence_info(self, name: str) -> dict[str, object]:
        with self.lock:
            info = super().licence_info(name)
            if "online_activated" in info and self.instances[name].licence.state is LicenceState.ACTIVE:
                info["online_activated"] = True
            return info


# Slot availability at nomination and re-activation (docs/behaviour.md, Transitions).


class NominationOverfillsKey(Fleet):
    """Nomination with neither the production's slot nor a free one left succeeds, beyond the key's slot count."""

    def nominate(self, name: str) -> None:
        try:
            super().nominate(name)
        except LicenceError as refused:
            if refused.code is not ErrorCode.NO_SLOT:
                raise
            with self.lock:
                inst = self.instance(name)
                assert inst.licence.key is not None
                self.activation.keys[inst.licence.key].holders.append(inst.deployment)
                inst.licence = inst.licence.nominated()


class NominationNeedsFreeSlot(Fleet):
    """Nomination is refused with `E_NO_SLOT` when the key has no free slot, though the production's could move."""

    def nominate(self, name: str) -> None:
        with self.lock:
            inst = self.instance(name)
            lic = inst.licence
            found = self.activation.keys.get(lic.key or "") if lic.state is LicenceState.BACKUP_ONLINE else None
            if found is not None and found.free <= 0 and inst.deployment not in found.holders:
                raise LicenceError(ErrorCode.NO_SLOT)
        super().nominate(name)


class ReactivationTakesSlot(Fleet):
    """Re-activating an active instance online on the key it already holds needs a free slot (`E_NO_SLOT`)."""

    def activate(self, name: str, key: str, quantity: int) -> None:
        with self.lock:
            inst = self.instance(name)
            found = self.activation.keys.get(key)
            same = inst.licence.state is LicenceState.ACTIVE and inst.licence.key == key
            if same and found is not None and found.free <= 0:
                raise LicenceError(ErrorCode.NO_SLOT)
        super().activate(name, key, quantity)


# Authentication and sessions (docs/behaviour.md, Authentication and accounts).


class _KeepsSessions(Accounts):
    def logout(self, apikey: str) -> None:
        if apikey not in self.sessions:
            raise LicenceError(ErrorCode.LOGOUT)


class SessionSurvivesLogout(Fleet):
    """`/logout` answers success but the session id keeps working as an apikey."""

    def _fresh_accounts(self) -> Accounts:
        return _KeepsSessions(self.config.admin_user, self.config.admin_password, self.config.resolved_apikey)


class _AnyPassword(Accounts):
    def login(self, name: object, password: object) -> dict[str, str]:
        user = next((u for u in self.users.values() if u.name == name), None)
        return super().login(name, user.password if user is not None else password)


class WrongPasswordLogsIn(Fleet):
    """`/login` with a known user name and a wrong password succeeds."""

    def _fresh_accounts(self) -> Accounts:
        return _AnyPassword(self.config.admin_user, self.config.admin_password, self.config.resolved_apikey)


# Scans and engines (docs/behaviour.md, Scans and engines; docs/responses.md).


class EicarReportedClean(Fleet):
    """`GET /file/{data_id}` reports the EICAR test string as clean."""

    def scan_result(self, name: str, data_id: str) -> dict[str, Any]:
        result: dict[str, Any] = super().scan_result(name, data_id)
        verdict = result["scan_results"]
        if verdict["scan_all_result_i"] == 1:
            verdict["scan_all_result_i"], verdict["scan_all_result_a"] = 0, "No Threat Detected"
            result["process_info"]["result"] = "Allowed"
            for detail in verdict["scan_details"].values():
                detail["scan_result_i"], detail["threat_found"] = 0, ""
        return result


class EnginesChangeWhenUnlicensed(Fleet):
    """Enabling or disabling an engine on an unlicensed instance succeeds."""

    def set_engine(self, name: str, eng_id: str, enabled: bool) -> None:
        with self.lock:
            inst = self.instance(name)
            if inst.licence.state is LicenceState.UNLICENSED and inst.scanning.known_engine(eng_id):
                inst.scanning.set_enabled(eng_id, enabled)
                return
        super().set_engine(name, eng_id, enabled)


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


def _licensed_engines_as_list(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    """`GET /admin/license` serves `licensed_engines` as the schema's array `["*"]`, not the string `"*"`."""

    def change(environ: dict[str, Any], body: Any) -> Any:
        licence_read = environ["PATH_INFO"] == "/admin/license" and environ["REQUEST_METHOD"] == "GET"
        if licence_read and "licensed_engines" in body:
            return {**body, "licensed_engines": ["*"]}
        return None

    return _rewrite_json(app, change)


def _activation_refusal_is_400(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    """The activation server answers its refusals with HTTP 400, not 200 with the reason phrase."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if environ["PATH_INFO"] == "/activation" and status.startswith("200 ") and status != "200 OK":
                status = "400 BAD REQUEST"
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


@dataclass(frozen=True)
class Variant:
    name: str
    breaks: str  # the rule, in words
    rules: tuple[str, ...]  # the contract rules a report may name for it
    fleet_class: type[Fleet] = Fleet
    wrap_core: Callable[[WsgiApp, Fleet], WsgiApp] | None = None
    wrap_activation: Callable[[WsgiApp, Fleet], WsgiApp] | None = None

    def target(self) -> Target:
        """A fresh fleet of this variant, served in-process with both of its wrappers."""
        return inprocess_target(build_fleet(self.fleet_class), self.wrap_core, self.wrap_activation)


VARIANTS: tuple[Variant, ...] = (
    Variant(
        "nominates-offline-backup",
        "an offline backup can be nominated",
        ("transition.nominate.backup-offline",),
        NominatesOfflineBackup,
    ),
    Variant("backup-takes-slot", "a backup uses a slot", ("slots.backup-holds-none",), BackupTakesSlot),
    Variant(
        "deactivation-keeps-slot",
        "deactivation frees no slot",
        ("slots.accounting", "deactivate.online-frees-slot"),
        DeactivationKeepsSlot,
    ),
    Variant(
        "nomination-keeps-production",
        "nomination leaves the old production licensed",
        ("slots.accounting", "slots.within-key", "nominate.moves-slot"),
        NominationKeepsProduction,
    ),
    Variant(
        "backup-success-boolean",
        "the backup registration answers `success: true` instead of the documented sentence",
        ("register.success-sentence",),
        wrap_core=_backup_success_is_boolean,
    ),
    Variant(
        "missing-apikey-accepted",
        "a request without an apikey gets 200",
        ("auth.missing-apikey",),
        wrap_core=_missing_apikey_accepted,
    ),
    Variant(
        "refused-operation-changes-state",
        "a refused operation (unregistering an active instance) changes state",
        ("refused.changes-nothing",),
        RefusedUnregisterDeactivates,
    ),
    Variant(
        "activates-backup",
        "activation succeeds on a backup",
        ("transition.activate.backup-online", "transition.activate.backup-offline"),
        ActivatesBackup,
    ),
    Variant(
        "expiry-ignored", "scans succeed after the licence expired", ("expiry.first-expired-day",), ScansWhenExpired
    ),
    Variant(
        "accepts-edited-file",
        "an edited licence file is accepted",
        ("file.signature",),
        AcceptsEditedFile,
    ),
    Variant(
        "registers-without-production",
        "an online backup registration is accepted for a production not active on the key",
        ("register-online.production-on-key", "register-online.not-itself"),
        RegistersWithoutProduction,
    ),
    Variant(
        "backup-flag-false",
        "GET /admin/license/backup says false on a backup",
        ("view.backup-flag",),
        wrap_core=_backup_flag_always_false,
    ),
    # The variants below name rule ids of contracts/rules.py (the rewritten suite's inventory, as it stood then).
    Variant(
        "reissue-takes-slot",
        "`/activation` asked again for a deployment already active on the key takes a second slot",
        ("activation.reissue", "slots.accounting", "activation.issues-file"),
        ReissueTakesSlot,
    ),
    Variant(
        "deactivation-of-inactive-deployment",
        "`/deactivation` answers 200 (not 404) for a deployment not active on the key",
        ("deactivation.not-activated",),
        DeactivatesInactiveDeployment,
    ),
    Variant(
        "licence-file-outlives-key",
        "a licence file's `expiration` is not its key's expiry date",
        ("file.values", "upload.takes-files-key", "view.expiration"),
        FileOutlivesKey,
    ),
    Variant(
        "activation-refusal-400",
        "the activation server refuses with HTTP 400 instead of 200 and the reason phrase",
        (
            "activation.invalid-key",
            "activation.invalid-deployment",
            "activation.invalid-quantity",
            "activation.unknown-key",
            "activation.no-slot",
        ),
        wrap_activation=_activation_refusal_is_400,
    ),
    Variant(
        "accepts-expired-file",
        "an expired licence file is accepted for upload and offline registration",
        ("file.expired", "transition.upload.unlicensed", "transition.register-offline.unlicensed"),
        AcceptsExpiredFile,
    ),
    Variant(
        "accepts-another-deployments-file",
        "an uploaded licence file issued for another deployment is accepted",
        ("upload.own-deployment", "transition.upload.unlicensed"),
        AcceptsAnotherDeploymentsFile,
    ),
    Variant(
        "registers-backup-of-itself",
        "offline registration accepts the instance's own licence file",
        ("register-offline.another-deployment", "transition.register-offline.unlicensed"),
        RegistersBackupOfItself,
    ),
    Variant(
        "expires-on-last-day",
        "a licence counts as expired on its expiry date itself (scans refused, `/readyz` expired)",
        ("expiry.last-valid-day", "scan.active", "service.readyz"),
        ExpiresOnLastDay,
    ),
    Variant(
        "licensed-engines-list",
        '`licensed_engines` is served as `["*"]` instead of the string `"*"`',
        ("view.licensed_engines",),
        wrap_core=_licensed_engines_as_list,
    ),
    Variant(
        "upload-reports-online",
        "`online_activated` is true for a production activated by an uploaded file",
        ("upload.sets-offline", "view.online_activated"),
        UploadReportsOnline,
    ),
    Variant(
        "nomination-overfills-key",
        "nomination with no slot left succeeds, taking a slot beyond the key's count",
        ("nominate.no-slot", "slots.within-key", "slots.accounting"),
        NominationOverfillsKey,
    ),
    Variant(
        "nomination-needs-free-slot",
        "nomination is refused `E_NO_SLOT` on a full key although the production's slot could move",
        ("nominate.moves-slot", "transition.nominate.backup-online"),
        NominationNeedsFreeSlot,
    ),
    Variant(
        "reactivation-takes-slot",
        "re-activating online on the key already held needs a free slot",
        ("activate.same-key-no-new-slot", "transition.activate.active"),
        ReactivationTakesSlot,
    ),
    Variant(
        "session-survives-logout",
        "a session id still works as an apikey after `/logout`",
        ("auth.logout",),
        SessionSurvivesLogout,
    ),
    Variant(
        "wrong-password-logs-in",
        "`/login` with a wrong password succeeds",
        ("auth.login-refused",),
        WrongPasswordLogsIn,
    ),
    Variant(
        "eicar-reported-clean",
        "the EICAR test string is reported clean by `GET /file/{data_id}`",
        ("scan.eicar",),
        EicarReportedClean,
    ),
    Variant(
        "engines-change-when-unlicensed",
        "engine enable/disable succeeds on an unlicensed instance",
        ("engines.toggle-unlicensed",),
        EnginesChangeWhenUnlicensed,
    ),
)


def build_fleet(fleet_class: type[Fleet] = Fleet, keys: Iterable[str] = KEYS) -> Fleet:
    return fleet_class(FleetConfig(instances=INSTANCES, keys=tuple(parse_key(k) for k in keys)))


def inprocess_target(
    fleet: Fleet,
    wrap_core: Callable[[WsgiApp, Fleet], WsgiApp] | None = None,
    wrap_activation: Callable[[WsgiApp, Fleet], WsgiApp] | None = None,
) -> Target:
    """The fleet's faces as WSGI apps behind made-up base URLs: the suite drives them without sockets. `wrap_core`
    wraps every Core instance's face, `wrap_activation` the activation server's."""
    apps = FleetServer(fleet, ServeOptions()).wsgi_apps()
    urls = {name: f"http://{name}.core.invalid" for name in fleet.instances}
    activation_url = "http://activation.invalid"
    wsgi = {urls[name]: apps[name] for name in fleet.instances}
    if wrap_core is not None:
        wsgi = {url: wrap_core(app, fleet) for url, app in wsgi.items()}
    activation = apps[ACTIVATION]
    wsgi[activation_url] = wrap_activation(activation, fleet) if wrap_activation is not None else activation
    return Target(
        core_urls=urls,
        activation_url=activation_url,
        apikey=fleet.config.resolved_apikey,
        control=True,
        wsgi_apps=wsgi,
    )
