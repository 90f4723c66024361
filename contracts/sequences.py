"""Fixed sequences, for targets the state machine must not roam: a read-only check (any target, nothing changed)
and a short destructive failover (a real Core, with `--allow-destructive`), also used to record parity snapshots.
"""

from __future__ import annotations

from contracts.checks import EXPIRATION, UNKNOWN_APIKEY, Checker, Violation


def read_only(checker: Checker) -> None:
    """Reads and refusals that change nothing on a conforming server, whatever state each instance is in:
    authentication, the licence view's shape, and that the backup flag, `/readyz` and the licence agree."""
    for name in checker.names:
        step = checker._begin(f"read the licence of {name}")
        licence = checker._get(name, "/admin/license")
        flag = checker._get(name, "/admin/license/backup")
        ready = checker.conn.request("GET", checker._url(name, "/readyz?verbose=true"))
        step.exchanges = checker.conn.recorder.take()
        body = checker._json(licence, "licence-view")
        is_backup = checker._json(flag, "backup-flag-agrees-with-licence").get("is_backup")
        if not isinstance(is_backup, bool):
            raise Violation("backup-flag-agrees-with-licence", f"is_backup must be a boolean, got {is_backup!r}")
        licensed = "days_left" in body
        if not licensed:
            expected = {"deployment", "deployment_id"} | ({"reactivate"} if "reactivate" in body else set())
            if set(body) != expected or body["deployment"] != body["deployment_id"]:
                raise Violation("licence-view", f"{name}: an unlicensed view is deployment + deployment_id, got {body}")
            if is_backup:
                raise Violation("backup-flag-agrees-with-licence", f"{name} is unlicensed yet says it is a backup")
        elif not EXPIRATION.fullmatch(str(body.get("expiration"))) or not isinstance(body.get("days_left"), int):
            raise Violation("licence-view-shape", f"{name}: expiration MM/DD/YYYY and an int days_left, got {body}")
        status = checker._json(ready, "readyz").get("license")
        status = status.get("status") if isinstance(status, dict) else None
        if not licensed and (ready.status, status) != (503, "invalid"):
            raise Violation("readyz-unlicensed", f"{name} is unlicensed: /readyz must be 503 invalid, got {status}")
        if licensed and body["days_left"] > 0 and (ready.status, status) != (200, "ok"):
            raise Violation("readyz-licensed", f"{name} is licensed: /readyz must be 200 ok, got {status}")
        checker.log.outcomes["read-only-licence"] += 1

        for missing in (True, False):
            step = checker._begin(
                f"read the licence of {name} {'without an apikey' if missing else 'with an unknown one'}"
            )
            headers = {} if missing else {"apikey": UNKNOWN_APIKEY}
            answer = checker.conn.request("GET", checker._url(name, "/admin/license"), headers=headers)
            step.exchanges = checker.conn.recorder.take()
            code = "E_ACCESS_MISSING" if missing else "E_ACCESS"
            checker._compare(
                checker.model.error(code, "apikey-required" if missing else "apikey-must-be-known"), answer
            )

        # Refusals that change nothing: only where the state is beyond doubt. An unlicensed view is unambiguous;
        # a licensed one may be a production or a backup, and the flag may be the very thing that is wrong, so a
        # licensed instance only gets a scan when it says it is a backup (harmless in either state).
        refusals = REFUSALS_OF_BACKUP if is_backup else () if licensed else REFUSALS_OF_UNLICENSED
        for method, path, code, rule in refusals:
            _refused(checker, name, method, path, code, rule, b"sample" if path == "/file" else None)


# Refusals that change nothing on a conforming server, by the state the instance is in: (method, path, code, rule).
REFUSALS_OF_BACKUP = (("POST", "/file", "E_SCAN_BACKUP", "no-scan-on-backup"),)
REFUSALS_OF_UNLICENSED = (
    ("DELETE", "/admin/license/backup", "E_NOT_BACKUP_REMOVE", "unregister-needs-backup"),
    ("POST", "/admin/license/backup/nomination", "E_NOT_BACKUP", "nomination-needs-backup"),
    ("POST", "/admin/license/deactivation", "E_NOT_ACTIVE", "deactivation-needs-active"),
    ("POST", "/file", "E_SCAN_UNLICENSED", "no-scan-unlicensed"),
)


def _refused(
    checker: Checker, name: str, method: str, path: str, code: str, rule: str, body: bytes | None = None
) -> None:
    checker._run(
        f"{method} {path} on {name} (refused in its state)",
        lambda m: m.error(code, rule),
        lambda: checker.conn.request(method, checker._url(name, path), headers=checker._auth(name), body=body),
    )


def failover(checker: Checker) -> None:
    """The documented failovers, online then offline, each step checked against the model, ending with every
    instance it used unlicensed. Needs two unlicensed instances and a key with two free slots."""
    names = checker.names
    if len(names) < 2:
        raise Violation("target-description", "the failover sequence needs two instances")
    checker.start()
    if not checker.keys:
        raise Violation("target-description", "the failover sequence needs an activation key (--key KEY:SLOTS)")
    prod, backup = names[0], names[1]
    key = checker.keys[0].key
    checker.check_fleet()
    # Online failover: activate, register the backup with headers, nominate.
    checker.activate(prod, key, 1)
    checker.check_fleet()
    prod_deployment = checker.model.instances[prod].deployment
    checker.register_online(backup, key, prod_deployment)
    checker.check_fleet()
    checker.scan(backup)
    checker.activate(backup, key, 1)
    checker.nominate(backup)
    checker.check_fleet()
    checker.scan(backup)
    checker.scan(prod)
    checker.readiness(prod)
    # Step down: the new production deactivates; both instances are unlicensed and hold no slot.
    checker.deactivate(backup)
    checker.check_fleet()
    checker.deactivate(prod)
    if checker.fleet.activation_url is None:
        return
    # Offline failover: a licence file for the production, the backup registered with it, nomination refused,
    # then the documented way: free the production, a file for the backup, unregister, upload.
    issued = checker.obtain_file(key, prod_deployment)
    if issued is None:
        raise Violation("activation-server-issues-file", "the activation server issued no file for the production")
    checker.upload(prod, issued.content, f"the licence file issued for {prod}")
    checker.check_fleet()
    checker.register_offline(backup, issued.content, f"the licence file issued for {prod}")
    checker.check_fleet()
    checker.nominate(backup)
    checker.free_slot(key, prod_deployment)
    own = checker.obtain_file(key, checker.model.instances[backup].deployment)
    if own is None:
        raise Violation("activation-server-issues-file", "the activation server issued no file for the backup")
    checker.unregister(backup)
    checker.upload(backup, own.content, f"the licence file issued for {backup}")
    checker.check_fleet()
    checker.scan(backup)
    # Clean up: the backup steps down and its slot is freed; the old production's local licence is dropped.
    checker.deactivate(backup)
    checker.free_slot(key, checker.model.instances[backup].deployment)
    checker.deactivate(prod)
    checker.check_fleet()
