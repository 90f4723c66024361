"""Fixed sequences, for targets the state machine must not roam: a read-only check (any target, nothing changed)
and a short destructive failover (a real Core, with `--allow-destructive`), also used to record parity snapshots.
"""

from __future__ import annotations

from typing import Any

from contracts.checks import EXPIRATION, LICENSED_FIELDS, UNKNOWN_APIKEY, Checker, broken
from contracts.exchange import Exchange
from contracts.target import TargetError


def read_only(checker: Checker) -> None:
    """Reads and refusals that change nothing on a conforming server, whatever state each instance is in:
    authentication, the licence view's shape, and that the backup flag, `/readyz` and the licence agree."""
    for name in checker.names:
        step = checker.begin(f"read the licence of {name}")
        licence = checker.get(name, "/admin/license")
        flag = checker.get(name, "/admin/license/backup")
        ready = checker.conn.request("GET", checker.url(name, "/readyz?verbose=true"))
        step.exchanges = checker.conn.recorder.take()
        body = checker.json_of(licence, "view.deployment")
        profile = checker.model.profile
        lacking = checker.model.absent("/admin/license/backup")
        if lacking is not None:  # no backups on this line of Core: the flag's path is the generic 404
            checker.exercised(*checker.compare(lacking, flag))
            is_backup = False
        else:
            is_backup = checker.json_of(flag, "view.backup-flag").get("is_backup")
        if not isinstance(is_backup, bool):
            raise broken("view.backup-flag", f"is_backup must be a boolean, got {is_backup!r}")
        licensed = "days_left" in body
        if not licensed:
            expected = {"deployment", "deployment_id"} | ({"reactivate"} if "reactivate" in body else set())
            if (
                set(body) != expected
                or body["deployment"] != body["deployment_id"]
                or body.get("reactivate", True) is not True
            ):
                raise broken("view.unlicensed", f"{name}: an unlicensed view is deployment + deployment_id, got {body}")
            if is_backup:
                raise broken("view.backup-flag", f"{name} is unlicensed yet says it is a backup")
        else:
            for field_name, kind in LICENSED_FIELDS.items():
                value = body.get(field_name)
                if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                    raise broken(f"view.{field_name}", f"{name}: {field_name} is a {kind.__name__}, got {body}")
            if not EXPIRATION.fullmatch(str(body.get("expiration"))):
                raise broken("view.expiration", f"{name}: expiration is MM/DD/YYYY, got {body}")
            if profile.deployment_id_in_view:
                if body.get("deployment_id") != body.get("deployment"):
                    raise broken("view.deployment_id", f"{name}: deployment_id is the deployment, got {body}")
                checker.exercised("view.deployment_id")
        readiness_lacking = checker.model.absent("/readyz")
        if readiness_lacking is not None:
            checker.exercised(*checker.compare(readiness_lacking, ready))
            checker.exercised("view.unlicensed" if not licensed else "view.deployment")
        else:
            check_readiness(checker, name, ready, licensed, body)

        for missing in (True, False):
            headers = {} if missing else {"apikey": UNKNOWN_APIKEY}
            answer = checker.send_step(
                f"read the licence of {name} {'without an apikey' if missing else 'with an unknown one'}",
                lambda h=headers, n=name: checker.conn.request("GET", checker.url(n, "/admin/license"), headers=h),
            )
            code = "E_ACCESS_MISSING" if missing else "E_ACCESS"
            outcome = checker.model.error(code, "auth.missing-apikey" if missing else "auth.unknown-apikey")
            checker.compare(outcome, answer)
            checker.exercised(*outcome.rules)

        # Refusals that change nothing: only where the state is beyond doubt. An unlicensed view is unambiguous;
        # a licensed one may be a production or a backup, and the flag may be the very thing that is wrong, so a
        # licensed instance only gets a scan when it says it is a backup (harmless in either state).
        refusals = REFUSALS_OF_BACKUP if is_backup else () if licensed else REFUSALS_OF_UNLICENSED
        for method, path, code, rule in refusals:
            if profile.lacks(path):
                code, rule = "E_NOT_FOUND", "profile.absent-endpoints"
            body_sent = b"sample" if path == "/file" else None
            checker.refused(
                name,
                f"{method} {path} on {name} (refused in its state)",
                code,
                (rule,),
                lambda m=method, p=path, b=body_sent, n=name: checker.conn.request(
                    m, checker.url(n, p), headers=checker.auth(n), body=b
                ),
                kind="",
            )


def check_readiness(checker: Checker, name: str, ready: Exchange, licensed: bool, body: dict[str, Any]) -> None:
    """`/readyz` and the licence view agree (and the backup flag was read)."""
    status = checker.json_of(ready, "service.readyz").get("license")
    status = status.get("status") if isinstance(status, dict) else None
    if not licensed and (ready.status, status) != (503, "invalid"):
        raise broken("service.readyz", f"{name} is unlicensed: /readyz must be 503 invalid, got {status}")
    if licensed and body["days_left"] > 0 and (ready.status, status) != (200, "ok"):
        raise broken("service.readyz", f"{name} is licensed: /readyz must be 200 ok, got {status}")
    checker.exercised("view.unlicensed" if not licensed else "view.deployment", "view.backup-flag", "service.readyz")


# Refusals that change nothing on a conforming server, by the state the instance is in: (method, path, code, rule).
REFUSALS_OF_BACKUP = (("POST", "/file", "E_SCAN_BACKUP", "scan.refused-by-state"),)
REFUSALS_OF_UNLICENSED = (
    ("DELETE", "/admin/license/backup", "E_NOT_BACKUP_REMOVE", "transition.unregister.unlicensed"),
    ("POST", "/admin/license/backup/nomination", "E_NOT_BACKUP", "transition.nominate.unlicensed"),
    ("POST", "/admin/license/deactivation", "E_NOT_ACTIVE", "transition.deactivate.unlicensed"),
    ("POST", "/file", "E_SCAN_UNLICENSED", "scan.refused-by-state"),
)


def failover(checker: Checker) -> None:
    """The documented failovers, online then offline, each step checked against the model, ending with every
    instance it used unlicensed. Needs two unlicensed instances and a key with two free slots."""
    names = checker.names
    if len(names) < 2:
        raise TargetError("the failover sequence needs two instances")
    checker.start()
    checker.check_fleet()
    if not checker.keys:
        raise TargetError("the failover sequence needs an activation key (--key KEY:SLOTS)")
    prod, backup = names[0], names[1]
    key = checker.keys[0].key
    # Online failover: activate, register the backup with headers, nominate.
    checker.activate(prod, key, 1)
    prod_deployment = checker.model.instances[prod].deployment
    checker.register_online(backup, key, prod_deployment)
    checker.scan(backup)
    checker.activate(backup, key, 1)
    checker.nominate(backup)
    checker.scan(backup)
    checker.scan(prod)
    checker.readiness(prod)
    # Step down: the new production deactivates; both instances are unlicensed and hold no slot.
    checker.deactivate(backup)
    checker.deactivate(prod)
    if checker.fleet.activation_url is None:
        return
    # Offline failover: a licence file for the production, the backup registered with it, nomination refused,
    # then the documented way: free the production, a file for the backup, unregister, upload.
    issued = checker.obtain_file(key, prod_deployment)
    if issued is None:
        raise broken("activation.issues-file", "the activation server issued no file for the production")
    checker.upload(prod, issued.content, f"the licence file issued for {prod}")
    checker.register_offline(backup, issued.content, f"the licence file issued for {prod}")
    checker.nominate(backup)
    checker.free_slot(key, prod_deployment)
    own = checker.obtain_file(key, checker.model.instances[backup].deployment)
    if own is None:
        raise broken("activation.issues-file", "the activation server issued no file for the backup")
    checker.unregister(backup)
    checker.upload(backup, own.content, f"the licence file issued for {backup}")
    checker.scan(backup)
    # Clean up: the backup steps down and its slot is freed; the old production's local licence is dropped.
    checker.deactivate(backup)
    checker.free_slot(key, checker.model.instances[backup].deployment)
    checker.deactivate(prod)
    checker.check_fleet()
