"""A thin HTTP client of the emulator for the project's own tests: one method per Core or activation call."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests


@dataclass
class CoreClient:
    base_url: str
    apikey: str | None
    verify: str | bool = True
    session: requests.Session = field(default_factory=requests.Session)

    def request(self, method: str, path: str, **kwargs: object) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[call-overload]
        if self.apikey is not None:
            headers.setdefault("apikey", self.apikey)
        return self.session.request(
            method, self.base_url + path, headers=headers, verify=self.verify, timeout=30, **kwargs
        )

    def licence(self) -> requests.Response:
        return self.request("GET", "/admin/license")

    def deployment(self) -> str:
        return self.licence().json()["deployment"]

    def activate(self, key: str, quantity: object = 1, comment: str = "test") -> requests.Response:
        return self.request(
            "POST", "/admin/license/activation", json={"activationKey": key, "quantity": quantity, "comment": comment}
        )

    def upload(self, licence_file: bytes) -> requests.Response:
        return self.request(
            "POST", "/admin/license", data=licence_file, headers={"Content-Type": "application/octet-stream"}
        )

    def register_online(self, key: str, production: str) -> requests.Response:
        return self.request(
            "POST", "/admin/license/backup", headers={"activation-key": key, "active-deployment-id": production}
        )

    def register_offline(self, licence_file: bytes) -> requests.Response:
        return self.request(
            "POST", "/admin/license/backup", data=licence_file, headers={"Content-Type": "application/octet-stream"}
        )

    def unregister(self) -> requests.Response:
        return self.request("DELETE", "/admin/license/backup")

    def nominate(self) -> requests.Response:
        return self.request("POST", "/admin/license/backup/nomination")

    def deactivate(self) -> requests.Response:
        return self.request("POST", "/admin/license/deactivation")

    def is_backup(self) -> requests.Response:
        return self.request("GET", "/admin/license/backup")

    def scan(self, body: bytes, filename: str = "sample.txt") -> requests.Response:
        return self.request("POST", "/file", data=body, headers={"filename": filename})

    def readyz(self, verbose: bool = False) -> requests.Response:
        return self.request("GET", "/readyz" + ("?verbose=true" if verbose else ""))


@dataclass
class ActivationClient:
    base_url: str
    verify: str | bool = True
    session: requests.Session = field(default_factory=requests.Session)

    def obtain(self, key: str, deployment: str, quantity: object = 1) -> requests.Response:
        params = {"key": key, "deployment": deployment, "quantity": quantity}
        return self.session.get(self.base_url + "/activation", params=params, verify=self.verify, timeout=30)

    def release(self, key: str, deployment: str) -> requests.Response:
        params = {"key": key, "deployment": deployment}
        return self.session.get(self.base_url + "/deactivation", params=params, verify=self.verify, timeout=30)
