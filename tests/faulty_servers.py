"""Deliberately faulty servers: each is the emulator with ONE licence rule broken, served through the same HTTP face,
so the contract suite can show that it catches that rule (docs/guides/checking-a-server.md, "From pytest, and the
budgets").

A variant either subclasses `LicenceRules` (one decision of mockcore.rules broken, the rest asked of `super()`; the
emulator's own `Fleet` applies whatever it decides) or wraps a face's WSGI app (an answer on the wire, or what
reaches the face). Each names the contract rules a report may blame for it: the rule it breaks, seen from the suite.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from contracts.target import Target
from mockcore import safeyaml
from mockcore.accounts import Accounts, User
from mockcore.activation import FILE_FIELDS, MAX_LICENCE_BYTES, ActivationServer
from mockcore.catalogue import ErrorCode, LicenceError
from mockcore.config import FleetConfig, parse_key
from mockcore.fleet import Fleet
from mockcore.identity import licence_secret
from mockcore.lifecycle import EXPIRATION_FORMAT, Licence, LicenceFile, LicenceState, LicenceTerms, SlotChange
from mockcore.rules import (
    ACTIVATION_FAILED,
    NEEDS,
    RULES,
    ActivationRefused,
    Decision,
    Facts,
    LicenceRules,
    NotActivated,
)
from mockcore.server import ACTIVATION, FleetServer, ServeOptions

INSTANCES = ("a", "b", "c")
# A short-lived key so clock steps reach expiry, and a longer one with a single slot so slots run out.
KEYS = ("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG:2:30", "HHHH-IIII-JJJJ-KKKK-LLLL-MMMM-NNNN:1:400")

WsgiApp = Callable[..., Iterable[bytes]]
FleetFactory = Callable[[FleetConfig], Fleet]


# Rules variants: one licence decision broken each.


class NominatesOfflineBackup(LicenceRules):
    """A backup registered offline can be nominated."""

    def nominate(self, licence: Licence, deployment: str, facts: Facts, reachable: bool) -> Decision:
        if licence.state is LicenceState.BACKUP_OFFLINE:  # nominated as if it had registered online
            licence = Licence(LicenceState.BACKUP_ONLINE, licence.terms, online=True, production=licence.production)
        return super().nominate(licence, deployment, facts, reachable)


class BackupTakesSlot(LicenceRules):
    """An online backup registration takes a slot on the key."""

    def register_online(
        self, licence: Licence, deployment: str, key: str, production: str, facts: Facts, reachable: bool
    ) -> Decision:
        decision = super().register_online(licence, deployment, key, production, facts, reachable)
        if facts.holds_slot(key, deployment):
            return decision
        return Decision(decision.licence, (*decision.slots, SlotChange(key, take=deployment)))


class DeactivationKeepsSlot(LicenceRules):
    """Deactivating an online production leaves its slot taken."""

    def deactivate(self, licence: Licence, deployment: str, facts: Facts, reachable: bool) -> Decision:
        return Decision(super().deactivate(licence, deployment, facts, reachable).licence)


class NominationKeepsProduction(LicenceRules):
    """Nomination gives the backup a slot but leaves the old production licensed."""

    def nominate(self, licence: Licence, deployment: str, facts: Facts, reachable: bool) -> Decision:
        decision = super().nominate(licence, deployment, facts, reachable)
        key, production = licence.key, licence.production
        if key is None or production is None or not facts.holds_slot(key, production):
            return decision
        # The production's slot went to the backup; the production takes another one, beyond the key's count.
        return Decision(decision.licence, (*decision.slots, SlotChange(key, take=production)))


class ActivatesBackup(LicenceRules):
    """Online activation of a backup succeeds (the backup registration is silently dropped)."""

    def activate(
        self, licence: Licence, deployment: str, key: str, quantity: int, facts: Facts, reachable: bool
    ) -> Decision:
        if licence.state.is_backup:
            licence = Licence()
        return super().activate(licence, deployment, key, quantity, facts, reachable)


class ScansWhenExpired(LicenceRules):
    """Scans succeed on an active instance whose licence has expired."""

    def scan(self, licence: Licence, size: int, facts: Facts) -> None:
        try:
            super().scan(licence, size, facts)
        except LicenceError as refused:
            if refused.code is not ErrorCode.EXPIRED_SCAN:
                raise


class RegistersWithoutProduction(LicenceRules):
    """Online backup registration accepts a production that is not active on the key."""

    def register_online(
        self, licence: Licence, deployment: str, key: str, production: str, facts: Facts, reachable: bool
    ) -> Decision:
        try:
            return super().register_online(licence, deployment, key, production, facts, reachable)
        except LicenceError as refused:
            if refused.code is not ErrorCode.BACKUP_PRODUCTION:
                raise
            return Decision(licence.registered_backup(facts.keys[key].terms, production, online=True))


# The activation server's own endpoints and the files they hand out (docs/activation-server.md).


class _ActivationFaceOnly(LicenceRules):
    """A fault of the activation server's face only: a Core instance's own online activation is decided as the
    emulator decides it (its `obtain` included), so the variant breaks `/activation` and nothing else."""

    def activate(
        self, licence: Licence, deployment: str, key: str, quantity: int, facts: Facts, reachable: bool
    ) -> Decision:
        return RULES.activate(licence, deployment, key, quantity, facts, reachable)


class ReissueTakesSlot(_ActivationFaceOnly):
    """`/activation` for a deployment already active on the key takes a second slot (or fails when none is free)."""

    def obtain(
        self, key: object, deployment: object, quantity: object, facts: Facts
    ) -> tuple[LicenceFile, tuple[SlotChange, ...]]:
        issued, changes = super().obtain(key, deployment, quantity, facts)
        if changes:  # a first issue: the slot it takes is the right one
            return issued, changes
        found = facts.keys[issued.terms.activation_key]
        if found.free <= 0:
            raise ActivationRefused(ACTIVATION_FAILED, "The Activation Key has no free activation left.", no_slot=True)
        return issued, (SlotChange(found.key, take=issued.deployment),)


class DeactivatesInactiveDeployment(LicenceRules):
    """`/deactivation` answers 200 for a deployment that is not active on the key."""

    def release(self, key: str, deployment: str, facts: Facts) -> SlotChange:
        try:
            return super().release(key, deployment, facts)
        except NotActivated:
            # A change of nothing (neither released nor taken), on a key the activation server has.
            return SlotChange(key if key in facts.keys else next(iter(facts.keys)))


class FileOutlivesKey(_ActivationFaceOnly):
    """A licence file from `/activation` expires 365 days after it is issued, not on its key's expiry date."""

    def obtain(
        self, key: object, deployment: object, quantity: object, facts: Facts
    ) -> tuple[LicenceFile, tuple[SlotChange, ...]]:
        issued, changes = super().obtain(key, deployment, quantity, facts)
        terms = replace(issued.terms, expires=facts.today + timedelta(days=365))
        return replace(issued, terms=terms), changes


# Licence-file validity at upload and offline registration (docs/behaviour.md, Transitions and Licence files).


class AcceptsExpiredFile(LicenceRules):
    """An expired licence file is accepted for upload and for offline registration."""

    @staticmethod
    def _usable(file: LicenceFile | None, facts: Facts) -> LicenceFile:
        if file is None:
            raise LicenceError(ErrorCode.INVALID_LICENSE)
        return file


class AcceptsAnotherDeploymentsFile(LicenceRules):
    """An uploaded licence file issued for another deployment is accepted."""

    def upload(self, licence: Licence, deployment: str, file: LicenceFile | None, facts: Facts) -> Decision:
        if file is not None and file.deployment != deployment:
            file = replace(file, deployment=deployment)
        return super().upload(licence, deployment, file, facts)


class RegistersBackupOfItself(LicenceRules):
    """Offline backup registration accepts a licence file issued for the instance itself."""

    def register_offline(self, licence: Licence, deployment: str, file: LicenceFile | None, facts: Facts) -> Decision:
        # The check "not a backup of itself" compares the file's deployment with none at all: it always passes.
        return super().register_offline(licence, "", file, facts)


# Expiry boundaries (docs/behaviour.md, Licence states and Expiry).


class ExpiresOnLastDay(LicenceRules):
    """A licence counts as expired on its expiry date, its last valid day: scans refused, `/readyz` `expired`."""

    @staticmethod
    def _on_last_day(licence: Licence, facts: Facts) -> bool:
        return licence.licensed and licence.terms is not None and facts.today == licence.terms.expires

    def scan(self, licence: Licence, size: int, facts: Facts) -> None:
        super().scan(licence, size, facts)  # an active licence, not yet expired, when it passes
        if self._on_last_day(licence, facts):
            raise LicenceError(ErrorCode.EXPIRED_SCAN)

    def readiness(self, licence: Licence, facts: Facts) -> str:
        status = super().readiness(licence, facts)
        return "expired" if status == "ok" and self._on_last_day(licence, facts) else status


# The licence view, by value and type (docs/responses.md, docs/decisions.md).


class UploadReportsOnline(LicenceRules):
    """`GET /admin/license` says `online_activated: true` for a production activated by an uploaded file."""

    def licence_view(self, licence: Licence, deployment: str, facts: Facts) -> dict[str, Any]:
        info = super().licence_view(licence, deployment, facts)
        if "online_activated" in info and licence.state is LicenceState.ACTIVE:
            info["online_activated"] = True
        return info


# Slot availability at nomination and re-activation (docs/behaviour.md, Transitions).


class NominationOverfillsKey(LicenceRules):
    """Nomination with neither the production's slot nor a free one left succeeds, beyond the key's slot count."""

    def nominate(self, licence: Licence, deployment: str, facts: Facts, reachable: bool) -> Decision:
        try:
            return super().nominate(licence, deployment, facts, reachable)
        except LicenceError as refused:
            if refused.code is not ErrorCode.NO_SLOT or licence.key is None:
                raise
            return Decision(licence.nominated(), (SlotChange(licence.key, take=deployment),))


class NominationNeedsFreeSlot(LicenceRules):
    """Nomination is refused with `E_NO_SLOT` when the key has no free slot, though the production's could move."""

    def nominate(self, licence: Licence, deployment: str, facts: Facts, reachable: bool) -> Decision:
        found = facts.keys.get(licence.key or "") if licence.state is LicenceState.BACKUP_ONLINE else None
        if found is not None and found.free <= 0 and not found.holds(deployment):
            raise LicenceError(ErrorCode.NO_SLOT)
        return super().nominate(licence, deployment, facts, reachable)


class ReactivationTakesSlot(LicenceRules):
    """Re-activating an active instance online on the key it already holds needs a free slot (`E_NO_SLOT`)."""

    def activate(
        self, licence: Licence, deployment: str, key: str, quantity: int, facts: Facts, reachable: bool
    ) -> Decision:
        found = facts.keys.get(key)
        same = licence.state is LicenceState.ACTIVE and licence.key == key
        if same and found is not None and found.free <= 0:
            raise LicenceError(ErrorCode.NO_SLOT)
        return super().activate(licence, deployment, key, quantity, facts, reachable)


# Engines (docs/behaviour.md, Scans and engines).


class EnginesChangeWhenUnlicensed(LicenceRules):
    """Enabling or disabling an engine on an unlicensed instance succeeds."""

    def change_engine(self, licence: Licence, known: bool) -> None:
        if licence.licensed or not known:
            super().change_engine(licence, known)


# Users, roles and rights (docs/behaviour.md, "Users, roles and rights").


class IgnoresRights(LicenceRules):
    """Any known key may do anything: the rights of the caller's roles are never checked (a user whose role grants
    `license: read` only activates, deactivates, switches engines and creates roles)."""

    def authorised(self, action: str, apikey: str | None, accounts: Accounts) -> User | None:
        return self.caller(apikey, accounts, required=NEEDS[action].required)


# The scan requests, the nodes and renewals (docs/behaviour.md, Scans and engines, Keys and slots; docs/responses.md).


class AcceptsChunkedScan(LicenceRules):
    """A scan body sent chunked, without its length, is scanned as if its length had been given."""

    def scan_request(self, length_given: bool, callback: str | None, *, sync: bool) -> None:
        super().scan_request(True, callback, sync=sync)


class CallbackUnchecked(LicenceRules):
    """`POST /file` takes any `callbackurl` (its format is not checked); `/file/sync` still refuses one."""

    def scan_request(self, length_given: bool, callback: str | None, *, sync: bool) -> None:
        super().scan_request(length_given, callback if sync else None, sync=sync)


class SyncScanTakesCallback(LicenceRules):
    """`POST /file/sync` takes a well-formed `callbackurl` as `POST /file` does, instead of E_CALLBACK_UNSUPPORTED."""

    def scan_request(self, length_given: bool, callback: str | None, *, sync: bool) -> None:
        super().scan_request(length_given, callback, sync=False)


class NodesIgnoreQuantity(LicenceRules):
    """`GET /stat/nodes` says one node for any licence, whatever the quantity it was activated with."""

    def node_count(self, licence: Licence) -> int:
        return min(super().node_count(licence), 1)


class ScanIgnoresRights(LicenceRules):
    """Scans never ask for the caller's `scan` rights: any known key submits and reads results."""

    def authorised(self, action: str, apikey: str | None, accounts: Accounts) -> User | None:
        if action in ("scan", "scan-result"):
            return self.caller(apikey, accounts, required=NEEDS[action].required)
        return super().authorised(action, apikey, accounts)


class NodesIgnoreRights(LicenceRules):
    """`GET /stat/nodes` answers any known key, without `agents: read`."""

    def authorised(self, action: str, apikey: str | None, accounts: Accounts) -> User | None:
        if action == "nodes":
            return self.caller(apikey, accounts, required=True)
        return super().authorised(action, apikey, accounts)


class RenewalKeepsExpiry(LicenceRules):
    """Re-activating on the key already held keeps the licence's old expiry (a key renewed at the vendor renews
    nothing)."""

    def activate(
        self, licence: Licence, deployment: str, key: str, quantity: int, facts: Facts, reachable: bool
    ) -> Decision:
        decision = super().activate(licence, deployment, key, quantity, facts, reachable)
        if licence.state is not LicenceState.ACTIVE or licence.key != key or licence.terms is None:
            return decision
        assert decision.licence.terms is not None
        terms = replace(decision.licence.terms, expires=licence.terms.expires)
        return Decision(replace(decision.licence, terms=terms), decision.slots)


class _ScansWhateverTheState(LicenceRules):
    """The twin fleet of `_sync_scan_ignores_state`: it scans whatever the licence (an empty file is still
    refused)."""

    def scan(self, licence: Licence, size: int, facts: Facts) -> None:
        self.scan_body(size)


# WSGI variants: an answer on the wire changed, or what reaches the face. Each wrapper takes the face's app and the
# fleet, and answers the wrapped app.


@dataclass(frozen=True)
class _Answer:
    status: str
    headers: list[tuple[str, str]]
    body: bytes


def _request_body(environ: dict[str, Any]) -> bytes:
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    return stream.read(int(length)) if length else stream.read()


def _with_body(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    return {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}


def _call(
    app: WsgiApp,
    environ: dict[str, Any],
    *,
    method: str | None = None,
    path: str | None = None,
    body: bytes | None = None,
) -> _Answer:
    """Ask the face as the request in `environ` does (the same headers: the same caller), with its own body or
    `body`, and when given another method and path."""
    request = environ if body is None else _with_body(environ, body)
    if method is not None:
        request = {**request, "REQUEST_METHOD": method}
    if path is not None:
        request = {**request, "PATH_INFO": path, "QUERY_STRING": ""}
    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    answer = app(request, capture)
    try:
        chunks = b"".join(answer)
    finally:
        close = getattr(answer, "close", None)
        if close is not None:
            close()
    return _Answer(captured["status"], captured["headers"], chunks)


def _reply(start_response: Callable[..., Any], answer: _Answer) -> Iterable[bytes]:
    headers = [(k, v) for k, v in answer.headers if k.lower() != "content-length"]
    start_response(answer.status, [*headers, ("Content-Length", str(len(answer.body)))])
    return [answer.body]


def _json_answer(body: Any) -> _Answer:
    return _Answer("200 OK", [("Content-Type", "application/json")], json.dumps(body).encode())


def _is(environ: dict[str, Any], method: str, path: str) -> bool:
    return environ["REQUEST_METHOD"] == method and environ["PATH_INFO"] == path


def _rewrite_json(app: WsgiApp, change: Callable[[dict[str, Any], Any], Any]) -> WsgiApp:
    """Wrap a face: `change(environ, body)` may return a new JSON body for a 2xx JSON answer."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        answer = _call(app, environ)
        if answer.status.startswith("2") and answer.body.startswith(b"{"):
            new = change(environ, json.loads(answer.body))
            if new is not None:
                answer = replace(answer, body=json.dumps(new).encode())
        return _reply(start_response, answer)

    return wrapped


def _refused_unregister_deactivates(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    """A refused unregistration (the instance is not a backup) still deactivates the instance: after the refusal,
    the face is asked to deactivate, by the same caller, and the refusal is answered. (A refused decision of
    mockcore.rules changes nothing, so this fault cannot be a rules variant.)"""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not _is(environ, "DELETE", "/admin/license/backup"):
            return app(environ, start_response)
        answer = _call(app, environ)
        if answer.status.startswith("400"):  # E_NOT_BACKUP_REMOVE; an unlicensed instance refuses this in turn
            _call(app, environ, method="POST", path="/admin/license/deactivation", body=b"")
        return _reply(start_response, answer)

    return wrapped


def _signed_again(body: bytes, signer: ActivationServer) -> bytes:
    """A body shaped as a licence file, signed afresh as it reads now (edits included); any other body as it is."""
    try:
        doc = safeyaml.load(body, MAX_LICENCE_BYTES)
        fields = {name: doc[name] for name in FILE_FIELDS if name != "signature"}
        terms = LicenceTerms(
            activation_key=fields["activation_key"],
            expires=datetime.strptime(fields["expiration"], EXPIRATION_FORMAT).date(),
            product_id=fields["product_id"],
            product_name=fields["product_name"],
            licensed_to=fields["licensed_to"],
            max_node_count=fields["max_node_count"],
            licensed_engines=fields["licensed_engines"],
        )
    except (TypeError, KeyError, ValueError):  # safeyaml.UnsafeYAML is a ValueError
        return body
    return signer.render(LicenceFile(terms, fields["deployment"], fields["issued"]))


def _accepts_edited_file(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    """A licence file whose content was edited is accepted (the signature is not checked): a licence file sent for
    upload or offline registration is signed again, with the fleet's secret, before the face reads it."""
    signer = ActivationServer((), licence_secret(fleet.config.seed))

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if _is(environ, "POST", "/admin/license") or _is(environ, "POST", "/admin/license/backup"):
            body = _signed_again(_request_body(environ), signer)
            environ = _with_body(environ, body)
        return app(environ, start_response)

    return wrapped


# Authentication and sessions (docs/behaviour.md, Authentication and accounts).


def _session_survives_logout(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    """`/logout` answers success but the session id keeps working as an apikey: a `/logout` with a session (a key
    that `GET /user` accepts and is neither the configured API key nor the user's own) is answered without being
    forwarded; any other `/logout` reaches the face."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        key = environ.get("HTTP_APIKEY")
        if key and _is(environ, "POST", "/logout"):
            user = _call(app, environ, method="GET", path="/user", body=b"")
            accepted = user.status.startswith("200") and key != fleet.config.resolved_apikey
            if accepted and key != json.loads(user.body).get("api_key"):
                return _reply(start_response, _json_answer({"response": "Logout success"}))
        return app(environ, start_response)

    return wrapped


def _wrong_password_logs_in(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    """`/login` with a known user name and a wrong password succeeds: a refused login as the admin is tried again
    with the admin's configured password."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not _is(environ, "POST", "/login"):
            return app(environ, start_response)
        body = _request_body(environ)
        answer = _call(app, environ, body=body)
        if answer.status.startswith("403"):
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            if isinstance(doc, dict) and doc.get("user") == fleet.config.admin_user:
                again = {**doc, "password": fleet.config.admin_password}
                answer = _call(app, environ, body=json.dumps(again).encode())
        return _reply(start_response, answer)

    return wrapped


# Scans (docs/behaviour.md, Scans and engines; docs/responses.md).


def _eicar_reported_clean(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    """`GET /file/{data_id}` reports the EICAR test string as clean."""

    def change(environ: dict[str, Any], result: Any) -> Any:
        if environ["REQUEST_METHOD"] != "GET" or not environ["PATH_INFO"].startswith("/file/"):
            return None
        verdict = result.get("scan_results")
        if not isinstance(verdict, dict) or verdict.get("scan_all_result_i") != 1:
            return None
        verdict["scan_all_result_i"], verdict["scan_all_result_a"] = 0, "No Threat Detected"
        result["process_info"]["result"] = "Allowed"
        for detail in verdict["scan_details"].values():
            detail["scan_result_i"], detail["threat_found"] = 0, ""
        return result

    return _rewrite_json(app, change)


def _sync_scan_ignores_state(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    """`POST /file/sync` scans whatever the licence's state: a sync scan the face refuses for the instance's state
    (unlicensed, a backup, expired) is scanned by a twin fleet whose licence rule lets every scan through, and its
    finished result answered."""
    twin = Fleet(fleet.config, rules=_ScansWhateverTheState())
    twin_app = FleetServer(twin, ServeOptions()).wsgi_apps()[twin.names[0]]
    refusals = {ErrorCode.SCAN_BACKUP, ErrorCode.SCAN_UNLICENSED, ErrorCode.EXPIRED_SCAN}
    texts = {fleet.catalogue.entry(code).text for code in refusals}

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not _is(environ, "POST", "/file/sync"):
            return app(environ, start_response)
        body = _request_body(environ)
        answer = _call(app, environ, body=body)
        try:
            refused = json.loads(answer.body).get("err") in texts
        except (ValueError, AttributeError):
            refused = False
        if refused:
            answer = _call(twin_app, environ, body=body)
        return _reply(start_response, answer)

    return wrapped


# Answers on the wire.


def _backup_success_is_boolean(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    def change(environ: dict[str, Any], body: Any) -> Any:
        return {"success": True} if _is(environ, "POST", "/admin/license/backup") else None

    return _rewrite_json(app, change)


def _backup_flag_always_false(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    def change(environ: dict[str, Any], body: Any) -> Any:
        return {"is_backup": False} if _is(environ, "GET", "/admin/license/backup") else None

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
        if _is(environ, "GET", "/admin/license") and "licensed_engines" in body:
            return {**body, "licensed_engines": ["*"]}
        return None

    return _rewrite_json(app, change)


def _serves_backup_endpoints(app: WsgiApp, fleet: Fleet) -> WsgiApp:
    """A 4.18 Core that still serves the backup endpoints: `/admin/license/backup*` goes to a 5.6 fleet's face."""
    newer = Fleet(replace(fleet.config, profile="5.6"))
    newer_app = FleetServer(newer, ServeOptions()).wsgi_apps()[newer.names[0]]

    def wrapped(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        if str(environ.get("PATH_INFO", "")).startswith("/admin/license/backup"):
            return newer_app(environ, start)
        return app(environ, start)

    return wrapped


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
    licence_rules: type[LicenceRules] = LicenceRules  # the decisions its fleet applies
    wrap_core: Callable[[WsgiApp, Fleet], WsgiApp] | None = None
    wrap_activation: Callable[[WsgiApp, Fleet], WsgiApp] | None = None
    profile: str = "5.6"  # the line of Core its fleet emulates

    @property
    def fleet_class(self) -> FleetFactory:
        """What `build_fleet` makes this variant's fleet with: the emulator's `Fleet`, applying the variant's rules,
        under the variant's profile."""
        rules = self.licence_rules()
        return lambda config: Fleet(replace(config, profile=self.profile), rules=rules)

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
        wrap_core=_refused_unregister_deactivates,
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
        wrap_core=_accepts_edited_file,
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
        wrap_core=_session_survives_logout,
    ),
    Variant(
        "wrong-password-logs-in",
        "`/login` with a wrong password succeeds",
        ("auth.login-refused",),
        wrap_core=_wrong_password_logs_in,
    ),
    Variant(
        "eicar-reported-clean",
        "the EICAR test string is reported clean by `GET /file/{data_id}`",
        ("scan.eicar",),
        wrap_core=_eicar_reported_clean,
    ),
    Variant(
        "engines-change-when-unlicensed",
        "engine enable/disable succeeds on an unlicensed instance",
        ("engines.toggle-unlicensed",),
        EnginesChangeWhenUnlicensed,
    ),
    Variant(
        "ignores-rights",
        "a user whose role grants `license: read` only changes the licence (rights are not checked)",
        ("auth.role-rights",),
        IgnoresRights,
    ),
    Variant(
        "sync-scan-ignores-state",
        "`POST /file/sync` scans on an unlicensed instance, a backup and past expiry",
        ("scan.sync-refused-by-state",),
        wrap_core=_sync_scan_ignores_state,
    ),
    Variant(
        "accepts-chunked-scan",
        "a scan body sent chunked, without its length, is scanned instead of E_LENGTH_REQUIRED",
        ("scan.length-required",),
        AcceptsChunkedScan,
    ),
    Variant(
        "callback-unchecked",
        "`POST /file` takes any `callbackurl`, malformed or past 2048 characters",
        ("scan.callback-invalid",),
        CallbackUnchecked,
    ),
    Variant(
        "sync-scan-takes-callback",
        "`POST /file/sync` takes a well-formed `callbackurl` instead of E_CALLBACK_UNSUPPORTED",
        ("scan.sync-callback",),
        SyncScanTakesCallback,
    ),
    Variant(
        "nodes-ignore-quantity",
        "`GET /stat/nodes` says one node whatever quantity the licence was activated with",
        ("nodes.max-node-count",),
        NodesIgnoreQuantity,
    ),
    Variant(
        "scan-ignores-rights",
        "scans ask no `scan` right: a user without one submits and reads results",
        ("auth.scan-rights",),
        ScanIgnoresRights,
    ),
    Variant(
        "nodes-ignore-rights",
        "`GET /stat/nodes` answers a user without `agents: read`",
        ("auth.nodes-rights",),
        NodesIgnoreRights,
    ),
    Variant(
        "renewal-keeps-expiry",
        "re-activating on the key already held keeps the old expiry after the vendor renewed the key",
        ("activate.renews",),
        RenewalKeepsExpiry,
    ),
    Variant(
        "4.18-serves-backups",
        "a 4.18 Core answers the backup endpoints it does not have (as 5.6 does) instead of the generic 404",
        ("profile.absent-endpoints",),
        wrap_core=_serves_backup_endpoints,
        profile="4.18",
    ),
)


def build_fleet(fleet_class: FleetFactory = Fleet, keys: Iterable[str] = KEYS, profile: str = "5.6") -> Fleet:
    """The three instances and the two test keys, built by `fleet_class` (a variant's `fleet_class`, or `Fleet`),
    under `profile` (a variant's `fleet_class` applies its own)."""
    return fleet_class(FleetConfig(instances=INSTANCES, keys=tuple(parse_key(k) for k in keys), profile=profile))


def inprocess_target(
    fleet: Fleet,
    wrap_core: Callable[[WsgiApp, Fleet], WsgiApp] | None = None,
    wrap_activation: Callable[[WsgiApp, Fleet], WsgiApp] | None = None,
) -> Target:
    """The fleet's faces as WSGI apps behind made-up base URLs: the suite drives them without sockets. `wrap_core`
    wraps every Core instance's face, `wrap_activation` the activation server's."""
    apps = FleetServer(fleet, ServeOptions()).wsgi_apps()
    urls = {name: f"http://{name}.core.invalid" for name in fleet.names}
    activation_url = "http://activation.invalid"
    wsgi = {urls[name]: apps[name] for name in fleet.names}
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
