"""A small, correct client of MetaDefender Core's licence and hot-backup API (what a user's own library looks like).

It raises `CoreError(status, err)` with the server's own status and `err` text when the server refuses, and
`NoAnswer` when no answer came (connection closed, timeout): after `NoAnswer` the operation may or may not have
happened, so it is never retried blindly. The only retry is after a `503`, which means the request was not
carried out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

# docs/responses.md: the backup endpoints answer `success` with a sentence, the others with `true`.
RETRY_503_PAUSE = 0.05


class CoreError(Exception):
    """The server refused: its HTTP status and `err` text, verbatim."""

    def __init__(self, status: int, err: str) -> None:
        super().__init__(f"{status} {err}")
        self.status = status
        self.err = err


class NoAnswer(Exception):
    """No answer came (connection closed, timeout): the operation may or may not have happened."""


@dataclass(frozen=True)
class LicenceInfo:
    licensed: bool
    deployment: str
    reactivate: bool = False
    days_left: int | None = None
    expiration: str | None = None
    online_activated: bool | None = None


class LicenceClient:
    """One Core instance: its base URL and the `apikey` header to send; over HTTPS, `ca_path` is the CA file its
    certificate is verified with (None: the system's CAs)."""

    def __init__(
        self,
        base_url: str,
        apikey: str,
        *,
        timeout: float = 10.0,
        session: Any = None,
        ca_path: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.apikey = apikey
        self.timeout = timeout
        self.session = session or requests.Session()
        self.verify: bool | str = ca_path or True  # per request: REQUESTS_CA_BUNDLE would override a session's

    # HTTP

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"apikey": self.apikey, **(extra or {})}

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send once (twice after a 503); a refusal raises CoreError, no answer raises NoAnswer."""
        for attempt in (1, 2):
            try:
                answer = self.session.request(
                    method, self.base_url + path, timeout=self.timeout, verify=self.verify, **kwargs
                )
            except (requests.ConnectionError, requests.Timeout) as exc:  # an SSLError (a refused certificate) too
                raise NoAnswer(f"no answer to {method} {path}: {type(exc).__name__}") from exc
            if answer.status_code == 503 and attempt == 1:
                time.sleep(RETRY_503_PAUSE)  # 503: not carried out, safe to send again
                continue
            break
        if not 200 <= answer.status_code < 300:
            raise CoreError(answer.status_code, self.error_text(answer))
        return answer

    @staticmethod
    def error_text(answer: requests.Response) -> str:
        try:
            body = answer.json()
        except ValueError:
            return answer.text
        return str(body.get("err", answer.text)) if isinstance(body, dict) else answer.text

    def body(self, answer: requests.Response) -> dict[str, Any]:
        try:
            body = answer.json()
        except ValueError as exc:
            raise CoreError(answer.status_code, f"the answer is not JSON: {answer.text[:200]}") from exc
        if not isinstance(body, dict):
            raise CoreError(answer.status_code, f"the answer is not a JSON object: {body!r}")
        return body

    def expect_true(self, answer: requests.Response) -> None:
        if self.body(answer).get("success") is not True:
            raise CoreError(answer.status_code, f"unexpected answer: {answer.text[:200]}")

    def expect_sentence(self, answer: requests.Response) -> str:
        success = self.body(answer).get("success")
        if not isinstance(success, str):
            raise CoreError(answer.status_code, f"unexpected answer: {answer.text[:200]}")
        return success

    # Licence operations

    def activate(self, key: str, quantity: int = 1, comment: str = "") -> None:
        doc = {"activationKey": key, "quantity": quantity, "comment": comment}
        self.expect_true(self.send("POST", "/admin/license/activation", json=doc, headers=self.headers()))

    def upload_licence(self, licence: bytes) -> None:
        headers = self.headers({"Content-Type": "application/octet-stream"})
        self.expect_true(self.send("POST", "/admin/license", data=licence, headers=headers))

    def register_backup_online(self, key: str, production_deployment: str) -> str:
        headers = self.headers({"activation-key": key, "active-deployment-id": production_deployment})
        return self.expect_sentence(self.send("POST", "/admin/license/backup", headers=headers))

    def register_backup_offline(self, licence: bytes) -> str:
        headers = self.headers({"Content-Type": "application/octet-stream"})
        return self.expect_sentence(self.send("POST", "/admin/license/backup", data=licence, headers=headers))

    def unregister_backup(self) -> str:
        return self.expect_sentence(self.send("DELETE", "/admin/license/backup", headers=self.headers()))

    def nominate(self) -> str:
        return self.expect_sentence(self.send("POST", "/admin/license/backup/nomination", headers=self.headers()))

    def deactivate(self) -> None:
        self.expect_true(self.send("POST", "/admin/license/deactivation", headers=self.headers()))

    def licence(self) -> LicenceInfo:
        body = self.body(self.send("GET", "/admin/license", headers=self.headers()))
        deployment = str(body.get("deployment") or body.get("deployment_id") or "")
        if "days_left" not in body:
            return LicenceInfo(False, deployment, reactivate=body.get("reactivate") is True)
        return LicenceInfo(
            True,
            deployment,
            days_left=int(body["days_left"]),
            expiration=str(body.get("expiration")),
            online_activated=bool(body.get("online_activated")),
        )

    def is_backup(self) -> bool:
        return bool(self.body(self.send("GET", "/admin/license/backup", headers=self.headers())).get("is_backup"))
