"""A made-up licence-automation client for MetaDefender Core: the kind of runbook code mockcore is for.

It knows nothing of mockcore; it speaks the vendor's REST API with requests. Its tests (test_failover.py) run it
against the fleet of mockcore's pytest plugin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

TIMEOUT = 30.0


class LicenceAutomationError(Exception):
    """Core (or the activation server) refused a step; `status` and `text` are its answer."""

    def __init__(self, step: str, status: int, text: str) -> None:
        super().__init__(f"{step}: {status} {text}")
        self.step = step
        self.status = status
        self.text = text


@dataclass(frozen=True)
class LicenceStatus:
    deployment: str
    licensed: bool
    is_backup: bool
    online: bool | None = None
    days_left: int | None = None
    expiration: str | None = None
    reactivate: bool = False

    @property
    def expired(self) -> bool:
        return self.licensed and self.days_left == 0


def _call(step: str, method: str, url: str, apikey: str, **kwargs: Any) -> Any:
    headers = {"apikey": apikey, **kwargs.pop("headers", {})}
    response = requests.request(method, url, headers=headers, timeout=TIMEOUT, **kwargs)
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        text = body.get("err", response.text) if isinstance(body, dict) else response.text
        raise LicenceAutomationError(step, response.status_code, text)
    return body


def licence_status(url: str, apikey: str) -> LicenceStatus:
    """What the instance at `url` says about its licence and whether it is a backup."""
    info = _call("licence status", "GET", f"{url}/admin/license", apikey)
    backup = _call("backup status", "GET", f"{url}/admin/license/backup", apikey)
    return LicenceStatus(
        deployment=info["deployment"],
        licensed="days_left" in info,
        is_backup=bool(backup["is_backup"]),
        online=info.get("online_activated"),
        days_left=info.get("days_left"),
        expiration=info.get("expiration"),
        reactivate=bool(info.get("reactivate", False)),
    )


def activate(url: str, apikey: str, key: str, comment: str = "made-up client") -> LicenceStatus:
    """Activate the instance online with `key` (one slot) and answer its new status."""
    body = {"activationKey": key, "quantity": 1, "comment": comment}
    _call("activate", "POST", f"{url}/admin/license/activation", apikey, json=body)
    return licence_status(url, apikey)


def activate_offline(url: str, activation_url: str, apikey: str, key: str) -> LicenceStatus:
    """The offline way: fetch a licence file for the instance's deployment from the activation server, upload it."""
    deployment = licence_status(url, apikey).deployment
    params: dict[str, str | int] = {"key": key, "deployment": deployment, "quantity": 1}
    answer = requests.get(f"{activation_url}/activation", params=params, timeout=TIMEOUT)
    if answer.status_code != 200 or answer.reason != "OK":  # failures are 200 with another reason phrase
        raise LicenceAutomationError("obtain licence file", answer.status_code, f"{answer.reason}: {answer.text}")
    headers = {"Content-Type": "application/octet-stream"}
    _call("upload licence", "POST", f"{url}/admin/license", apikey, data=answer.content, headers=headers)
    return licence_status(url, apikey)


def register_backup(backup_url: str, apikey: str, key: str, production_deployment: str) -> None:
    headers = {"activation-key": key, "active-deployment-id": production_deployment}
    _call("register backup", "POST", f"{backup_url}/admin/license/backup", apikey, headers=headers)


def promote_backup(prod_url: str, backup_url: str, apikey: str, key: str) -> tuple[LicenceStatus, LicenceStatus]:
    """The failover runbook: make sure the backup is registered for the production, nominate it, then check the
    result. Answers (old production, new production)."""
    production = licence_status(prod_url, apikey)
    backup = licence_status(backup_url, apikey)
    if not backup.is_backup:
        register_backup(backup_url, apikey, key, production.deployment)
    _call("nominate", "POST", f"{backup_url}/admin/license/backup/nomination", apikey)
    promoted = licence_status(backup_url, apikey)
    if not promoted.licensed or promoted.is_backup:
        raise LicenceAutomationError("check promotion", 200, f"the backup did not become the production: {promoted}")
    return licence_status(prod_url, apikey), promoted


def step_down(url: str, apikey: str) -> LicenceStatus:
    """Deactivate the instance (an online one frees its slot at once)."""
    _call("deactivate", "POST", f"{url}/admin/license/deactivation", apikey)
    return licence_status(url, apikey)


def needs_renewal(url: str, apikey: str, within_days: int = 30) -> bool:
    """True when the licence expires within `within_days` days (or has expired, or there is none)."""
    status = licence_status(url, apikey)
    return status.days_left is None or status.days_left <= within_days
