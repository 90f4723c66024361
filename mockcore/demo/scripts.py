"""The two narrated failovers, step by step: each step is one real HTTP call, what it is for, and the answer the
demo expects. The steps follow docs/behaviour.md, "Transitions" (the transitions, nomination, and the
offline failover).

A refusal is expected with the status and text of the default error catalogue (docs/errors.md): against a fleet started
with `--overrides` that change them, such a step counts as unexpected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mockcore import calls
from mockcore.calls import Answer, Call
from mockcore.catalogue import DEFAULT_ENTRIES, ErrorCode

SCANNED_CONTENT = b"mockcore demo: a harmless file to scan\n"
SCANNED_NAME = "demo.txt"
_DATA_ID = re.compile(r"[0-9a-f]{32}")
_DEPLOYMENT = re.compile(r"MSCL[0-9a-f]{32}")


@dataclass
class Context:
    """What a demo runs on, and what earlier answers taught it."""

    prod: str
    backup: str
    key: str
    values: dict[str, Any] = field(default_factory=dict)
    apikeys: dict[str, str] = field(default_factory=dict)  # instance -> apikey to send (a session id after login)


Check = Callable[[Answer, Context], str | None]  # None when the answer is right, else what is wrong


@dataclass(frozen=True)
class Expect:
    summary: str
    status: int = 200
    refused: ErrorCode | None = None
    check: Check | None = None

    def judge(self, answer: Answer, ctx: Context) -> str | None:
        """None when the answer is what the demo expects, else what differs."""
        if self.refused is not None:
            entry = DEFAULT_ENTRIES[self.refused]
            if answer.status != entry.status or answer.err != entry.text:
                return (
                    f"expected {entry.status} {{'err': {entry.text!r}}} ({self.refused}), "
                    f"got {answer.status} {answer.text[:200]!r}"
                )
            return None
        if answer.status != self.status:
            return f"expected status {self.status}, got {answer.status} {answer.reason}: {answer.text[:200]!r}"
        return self.check(answer, ctx) if self.check else None

    def public(self) -> dict[str, Any]:
        if self.refused is not None:
            entry = DEFAULT_ENTRIES[self.refused]
            return {"summary": self.summary, "status": entry.status, "err": entry.text, "error_code": str(self.refused)}
        return {"summary": self.summary, "status": self.status}


@dataclass(frozen=True)
class Step:
    id: str  # stable, for programs reading the JSON output
    title: str
    why: str
    call: Callable[[Context], Call]
    expect: Expect
    keep: Callable[[Context, Answer], None] | None = None
    proof: bool = False  # one of the closing steps that prove the outcome


@dataclass(frozen=True)
class Demo:
    name: str
    title: str
    description: str
    steps: Callable[[Context], list[Step]]


# Checks of answers


def _json_check(test: Callable[[Any], bool], wanted: str) -> Check:
    def check(answer: Answer, ctx: Context) -> str | None:
        return None if test(answer.json()) else f"expected {wanted}, got {answer.text[:200]!r}"

    return check


def _field(doc: Any, name: str) -> Any:
    return doc.get(name) if isinstance(doc, dict) else None


SUCCESS_TRUE = Expect('200 {"success": true}', check=_json_check(lambda d: d == {"success": True}, '{"success": true}'))
SUCCESS_TEXT = Expect(
    '200 {"success": "<sentence>"}',
    check=_json_check(lambda d: isinstance(_field(d, "success"), str), "a `success` sentence"),
)
SESSION = Expect(
    '200 {"session_id": ...}', check=_json_check(lambda d: isinstance(_field(d, "session_id"), str), "a session_id")
)
IS_BACKUP = Expect('200 {"is_backup": true}', check=_json_check(lambda d: d == {"is_backup": True}, "is_backup true"))
DATA_ID = Expect(
    '200 {"data_id": <32 hex>}',
    check=_json_check(lambda d: bool(_DATA_ID.fullmatch(str(_field(d, "data_id")))), "a data_id of 32 hex"),
)


def _licensed(online: bool) -> Expect:
    def test(doc: Any) -> bool:
        return (
            isinstance(_field(doc, "days_left"), int)
            and _field(doc, "online_activated") is online
            and bool(_DEPLOYMENT.fullmatch(str(_field(doc, "deployment"))))
        )

    kind = "online" if online else "offline"
    return Expect(
        f"200 licensed ({kind}): days_left, deployment",
        check=_json_check(test, f"the licensed shape with online_activated {str(online).lower()}"),
    )


UNLICENSED = Expect(
    "200 unlicensed: deployment, no days_left",
    check=_json_check(
        lambda d: "days_left" not in (d or {}) and bool(_DEPLOYMENT.fullmatch(str(_field(d, "deployment")))),
        "the unlicensed shape (a deployment, no days_left)",
    ),
)
LOST_LICENCE = Expect(
    '200 unlicensed with "reactivate": true',
    check=_json_check(
        lambda d: "days_left" not in (d or {}) and _field(d, "reactivate") is True,
        'the unlicensed shape with "reactivate": true',
    ),
)
LICENCE_FILE = Expect(
    "200 OK, a licence file (YAML)",
    check=lambda a, _: (
        None if calls.is_licence_file(a) else f"expected a licence file, got {a.reason}: {a.text[:200]!r}"
    ),
)
SLOT_FREED = Expect(
    '200 {"success": ...}: the slot is freed',
    check=_json_check(lambda d: isinstance(_field(d, "success"), str), "a `success` sentence"),
)


def _check_scan_result(answer: Answer, ctx: Context) -> str | None:
    doc, wanted = answer.json(), ctx.values["data_id"]
    if _field(doc, "data_id") == wanted and isinstance(_field(doc, "scan_results"), dict):
        return None
    return f"expected the result of {wanted}, got {answer.text[:200]!r}"


SCAN_RESULT = Expect("200 the scan's result (same data_id)", check=_check_scan_result)


# What steps keep


def _keep_session(face: Callable[[Context], str]) -> Callable[[Context, Answer], None]:
    def keep(ctx: Context, answer: Answer) -> None:
        ctx.apikeys[face(ctx)] = answer.json()["session_id"]

    return keep


def _keep_json(name: str, field_name: str) -> Callable[[Context, Answer], None]:
    def keep(ctx: Context, answer: Answer) -> None:
        ctx.values[name] = answer.json()[field_name]

    return keep


def _keep_body(name: str) -> Callable[[Context, Answer], None]:
    def keep(ctx: Context, answer: Answer) -> None:
        ctx.values[name] = answer.body

    return keep


def login_steps(user: str, password: str) -> list[Step]:
    return [
        Step(
            f"login-{which}",
            f"Log in to {which}",
            "POST /login answers a session id; the demo sends it as the `apikey` header from now on.",
            (lambda c, w=which: calls.login(getattr(c, w), user, password)),
            SESSION,
            keep=_keep_session(lambda c, w=which: getattr(c, w)),
        )
        for which in ("prod", "backup")
    ]


def _proof(ctx: Context) -> list[Step]:
    return [
        Step(
            "backup-scans",
            f"Prove it: {ctx.backup} scans a file",
            f"{ctx.backup} is the production now: POST /file answers a data_id.",
            lambda c: calls.scan(c.backup, SCANNED_CONTENT, SCANNED_NAME),
            DATA_ID,
            keep=_keep_json("data_id", "data_id"),
            proof=True,
        ),
        Step(
            "backup-scan-result",
            f"Prove it: {ctx.backup} has the scan's result",
            "GET /file/{data_id} answers the analysis of the file just sent.",
            lambda c: calls.scan_result(c.backup, c.values["data_id"]),
            SCAN_RESULT,
            proof=True,
        ),
        Step(
            "prod-refuses-scan",
            f"Prove it: {ctx.prod} refuses to scan",
            f"{ctx.prod} holds no licence any more, so it may not process files.",
            lambda c: calls.scan(c.prod, SCANNED_CONTENT, SCANNED_NAME),
            Expect("403 not licensed", refused=ErrorCode.SCAN_UNLICENSED),
            proof=True,
        ),
    ]


def online_failover(ctx: Context) -> list[Step]:
    p, b = ctx.prod, ctx.backup
    return [
        Step(
            "activate-prod",
            f"Activate {p} online",
            f"{p} asks the activation server for a licence on the key: it becomes the production and takes one of "
            "the key's slots.",
            lambda c: calls.activate(c.prod, c.key, "mockcore demo: the production"),
            SUCCESS_TRUE,
        ),
        Step(
            "read-prod-deployment",
            f"Read {p}'s deployment id",
            "The backup registration names the production by its deployment id.",
            lambda c: calls.licence(c.prod),
            _licensed(online=True),
            keep=_keep_json("prod_deployment", "deployment"),
        ),
        Step(
            "register-backup-online",
            f"Register {b} as {p}'s online hot backup",
            "The `activation-key` and `active-deployment-id` headers name the key and the production it stands in "
            "for. A backup uses no slot.",
            lambda c: calls.register_online(c.backup, c.key, c.values["prod_deployment"]),
            SUCCESS_TEXT,
        ),
        Step(
            "backup-flag",
            f"{b} says it is a backup",
            "GET /admin/license/backup answers the backup flag.",
            lambda c: calls.is_backup(c.backup),
            IS_BACKUP,
        ),
        Step(
            "backup-refuses-scan",
            f"{b} does not scan while it is a backup",
            "A hot backup keeps its engines up to date but may not process files.",
            lambda c: calls.scan(c.backup, SCANNED_CONTENT, SCANNED_NAME),
            Expect("403 a backup", refused=ErrorCode.SCAN_BACKUP),
        ),
        Step(
            "nominate-backup",
            f"Fail over: nominate {b}",
            f"The nomination moves {p}'s slot on the key to {b}: {b} becomes the production, {p} loses its licence "
            "(it learns so on its next request, as a real online Core does).",
            lambda c: calls.nominate(c.backup),
            SUCCESS_TEXT,
        ),
        Step(
            "prod-lost-licence",
            f"{p} has lost its licence",
            f"{p} is unlicensed, with `reactivate: true` as it still holds the key.",
            lambda c: calls.licence(c.prod),
            LOST_LICENCE,
        ),
        *_proof(ctx),
    ]


def offline_failover(ctx: Context) -> list[Step]:
    p, b = ctx.prod, ctx.backup
    return [
        Step(
            "read-prod-deployment",
            f"Read {p}'s deployment id",
            "Offline, a person carries the deployment id to the activation server by hand.",
            lambda c: calls.licence(c.prod),
            UNLICENSED,
            keep=_keep_json("prod_deployment", "deployment"),
        ),
        Step(
            "obtain-prod-file",
            f"Obtain {p}'s licence file at the activation server",
            "GET /activation with the key and the deployment id answers a licence file and takes a slot.",
            lambda c: calls.obtain_licence_file(c.key, c.values["prod_deployment"]),
            LICENCE_FILE,
            keep=_keep_body("prod_file"),
        ),
        Step(
            "upload-prod-file",
            f"Upload the licence file to {p}",
            f"{p} is activated offline: it becomes the production without ever calling the activation server.",
            lambda c: calls.upload(c.prod, c.values["prod_file"]),
            SUCCESS_TRUE,
        ),
        Step(
            "register-backup-offline",
            f"Register {b} as {p}'s offline hot backup",
            f"The body is {p}'s licence file: {b} becomes a backup without calling the activation server.",
            lambda c: calls.register_offline(c.backup, c.values["prod_file"]),
            SUCCESS_TEXT,
        ),
        Step(
            "nomination-refused",
            f"Nominating {b} is refused",
            "A backup registered offline cannot be nominated: the failover goes through the activation server, by "
            "hand.",
            lambda c: calls.nominate(c.backup),
            Expect("400 offline backups cannot be nominated", refused=ErrorCode.NOMINATE_OFFLINE),
        ),
        Step(
            "read-backup-deployment",
            f"Read {b}'s deployment id",
            f"{b}'s own licence file must be issued for its own deployment id.",
            lambda c: calls.licence(c.backup),
            _licensed(online=False),
            keep=_keep_json("backup_deployment", "deployment"),
        ),
        Step(
            "deactivate-prod",
            f"Step the old production {p} down",
            f"In a real failover {p} is down. Here it still runs, and an instance activated with a file keeps its "
            "local licence whatever the activation server does, so it is deactivated; its slot stays taken until "
            "the activation server is told.",
            lambda c: calls.deactivate(c.prod),
            SUCCESS_TRUE,
        ),
        Step(
            "free-prod-slot",
            f"Free {p}'s slot at the activation server",
            "GET /deactivation with the key and the old production's deployment id frees its slot.",
            lambda c: calls.free_slot(c.key, c.values["prod_deployment"]),
            SLOT_FREED,
        ),
        Step(
            "obtain-backup-file",
            f"Obtain {b}'s own licence file",
            "GET /activation for the backup's deployment id takes the freed slot.",
            lambda c: calls.obtain_licence_file(c.key, c.values["backup_deployment"]),
            LICENCE_FILE,
            keep=_keep_body("backup_file"),
        ),
        Step(
            "unregister-backup",
            f"Unregister {b} as a backup",
            "A backup cannot be activated: its backup registration goes first.",
            lambda c: calls.unregister(c.backup),
            SUCCESS_TEXT,
        ),
        Step(
            "upload-backup-file",
            f"Upload {b}'s licence file",
            f"{b} is activated offline with its own file: it is the production now.",
            lambda c: calls.upload(c.backup, c.values["backup_file"]),
            SUCCESS_TRUE,
        ),
        *_proof(ctx),
    ]


DEMOS: dict[str, Demo] = {
    "online-failover": Demo(
        "online-failover",
        "Online failover",
        "Activate the production online, register an online hot backup, nominate it; the backup scans, the old "
        "production refuses.",
        online_failover,
    ),
    "offline-failover": Demo(
        "offline-failover",
        "Offline failover",
        "Activate the production with a licence file, register an offline backup, see its nomination refused, "
        "then fail over by hand at the activation server; the backup scans, the old production refuses.",
        offline_failover,
    ),
}
