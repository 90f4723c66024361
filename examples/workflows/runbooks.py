"""A correct workflow client: the five licence runbooks of MetaDefender Core, as an operator would script them.

Used two ways:

    mockcore-contracts workflows --adapter examples/workflows/runbooks.py:Runbooks
    mockcore-contracts workflows --command 'python3 examples/workflows/runbooks.py' [--persistent]

As a command it reads request objects (protocol `mockcore-contracts-client/2`), one per line, and prints one outcome
per line: the same loop serves one request per process and the persistent mode.

The runbooks read before they act (the licence view gives the deployment ids and the node count), and after a
request whose answer never came (or a 503) they read again to learn whether it happened before sending it again.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
import yaml

try:
    from contracts.client import Failure, Instance, Success
except ImportError:  # run as a command without the suite installed: plain stand-ins with the same fields

    @dataclass(frozen=True)
    class Instance:  # type: ignore[no-redef]
        name: str
        url: str
        apikey: str
        ca_path: str | None = None

    @dataclass(frozen=True)
    class Success:  # type: ignore[no-redef]
        result: dict[str, Any]

    @dataclass(frozen=True)
    class Failure:  # type: ignore[no-redef]
        status: int | None
        error: str


TIMEOUT = 10.0
PAUSE = 0.05


class Stop(Exception):
    """The runbook cannot go on: the status of the answer that stopped it (None: no answer) and why."""

    def __init__(self, status: int | None, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class Runbooks:
    """The workflows of protocol version 2; each returns Success or Failure, never raises."""

    def __init__(self) -> None:
        self.http = requests.Session()
        self.http.trust_env = False

    # HTTP

    def send(self, method: str, url: str, verify: bool | str = True, **kwargs: Any) -> requests.Response | None:
        """One request; None when no answer came."""
        try:
            return self.http.request(method, url, timeout=TIMEOUT, verify=verify, **kwargs)
        except (requests.ConnectionError, requests.Timeout):
            return None

    @staticmethod
    def err(answer: requests.Response) -> str:
        try:
            body = answer.json()
        except ValueError:
            return answer.text
        return str(body.get("err", answer.text)) if isinstance(body, dict) else answer.text

    def core(self, instance: Instance, method: str, path: str, **kwargs: Any) -> requests.Response | None:
        headers = {"apikey": instance.apikey, **kwargs.pop("headers", {})}
        return self.send(method, instance.url.rstrip("/") + path, instance.ca_path or True, headers=headers, **kwargs)

    def read(self, instance: Instance, path: str) -> dict[str, Any]:
        for _ in range(3):
            answer = self.core(instance, "GET", path)
            if answer is not None and answer.status_code != 503:
                break
            time.sleep(PAUSE)
        if answer is None:
            raise Stop(None, f"no answer to GET {path} on {instance.name}")
        if answer.status_code != 200:
            raise Stop(answer.status_code, self.err(answer))
        body = answer.json()
        if not isinstance(body, dict):
            raise Stop(answer.status_code, f"GET {path} on {instance.name}: not a JSON object")
        return body

    def view(self, instance: Instance) -> dict[str, Any]:
        return self.read(instance, "/admin/license")

    def is_backup(self, instance: Instance) -> bool:
        return self.read(instance, "/admin/license/backup").get("is_backup") is True

    def change(self, instance: Instance, method: str, path: str, done: Callable[[], bool], **kwargs: Any) -> None:
        """A change, sent at most twice: after no answer or a 503, `done()` (a read) says whether it happened."""
        for attempt in (1, 2):
            answer = self.core(instance, method, path, **kwargs)
            if answer is not None and answer.status_code != 503:
                if not 200 <= answer.status_code < 300:
                    raise Stop(answer.status_code, self.err(answer))
                try:
                    body = answer.json()
                except ValueError:
                    body = None
                if not isinstance(body, dict) or body.get("success") in (None, False):
                    raise Stop(answer.status_code, f"{method} {path}: unexpected answer {answer.text[:200]}")
                return
            time.sleep(PAUSE)
            if done():
                return
            if attempt == 2:
                raise Stop(
                    None if answer is None else 503,
                    f"{method} {path} on {instance.name}: " + ("no answer" if answer is None else self.err(answer)),
                )

    # The activation server

    def obtain(self, server: str, key: str, deployment: str, quantity: object) -> bytes:
        """A licence file; asking again for the same deployment takes no new slot, so a lost answer is re-asked."""
        params = {"key": key, "deployment": deployment, "quantity": str(quantity)}
        for attempt in (1, 2):
            answer = self.send("GET", server.rstrip("/") + "/activation", params=params)
            if answer is not None and answer.status_code == 200:
                try:
                    doc = yaml.safe_load(answer.content)
                except yaml.YAMLError:
                    doc = None
                if not isinstance(doc, dict) or "error" in doc or "signature" not in doc:
                    error = doc.get("error") if isinstance(doc, dict) else answer.text[:200]
                    raise Stop(200, f"the activation server refused: {answer.reason}: {error}")
                return answer.content
            if (answer is not None and answer.status_code != 503) or attempt == 2:
                raise Stop(
                    None if answer is None else answer.status_code,
                    "GET /activation: " + ("no answer" if answer is None else answer.text[:200]),
                )
            time.sleep(PAUSE)
        raise AssertionError("unreachable")

    def free(self, server: str, key: str, deployment: str) -> None:
        """Free the deployment's slot; 404 (it holds none) is fine: freeing twice is harmless."""
        params = {"key": key, "deployment": deployment}
        for attempt in (1, 2):
            answer = self.send("GET", server.rstrip("/") + "/deactivation", params=params)
            if answer is not None and answer.status_code in (200, 404):
                return
            if attempt == 2:
                raise Stop(
                    None if answer is None else answer.status_code,
                    "GET /deactivation: " + ("no answer" if answer is None else answer.text[:200]),
                )
            time.sleep(PAUSE)

    # Helpers on views

    @staticmethod
    def licensed(view: dict[str, Any]) -> bool:
        return "days_left" in view

    def serving(self, instance: Instance) -> bool:
        return self.licensed(self.view(instance)) and not self.is_backup(instance)

    def upload(self, instance: Instance, licence: bytes) -> None:
        self.change(
            instance,
            "POST",
            "/admin/license",
            lambda: self.serving(instance),
            data=licence,
            headers={"Content-Type": "application/octet-stream"},
        )

    def retire(self, instance: Instance) -> None:
        """Deactivate an instance still licensed as a production (an offline licence survives its slot)."""
        if self.licensed(self.view(instance)) and not self.is_backup(instance):
            self.change(instance, "POST", "/admin/license/deactivation", lambda: not self.licensed(self.view(instance)))

    # The workflows

    def run(self, body: Callable[[], dict[str, Any]]) -> Success | Failure:
        try:
            return Success(body())
        except Stop as stop:
            return Failure(stop.status, stop.error)
        except (requests.RequestException, ValueError) as exc:
            return Failure(None, f"{type(exc).__name__}: {exc}")

    def online_failover(self, production: Instance, backup: Instance, key: str) -> Success | Failure:
        def body() -> dict[str, Any]:
            deployment = self.view(production)["deployment"]
            if self.is_backup(backup) and self.view(backup).get("online_activated") is False:
                # an offline backup cannot be nominated: register it again, online
                self.change(backup, "DELETE", "/admin/license/backup", lambda: not self.is_backup(backup))
            if not self.is_backup(backup):
                headers = {"activation-key": key, "active-deployment-id": deployment}
                self.change(backup, "POST", "/admin/license/backup", lambda: self.is_backup(backup), headers=headers)
            self.change(backup, "POST", "/admin/license/backup/nomination", lambda: self.serving(backup))
            self.retire(production)
            if not self.serving(backup):
                raise Stop(None, f"{backup.name} does not serve after its nomination")
            return {"production": backup.name}

        return self.run(body)

    def offline_failover(
        self, production: Instance, backup: Instance, key: str, activation_server: str
    ) -> Success | Failure:
        def body() -> dict[str, Any]:
            old = self.view(production)
            nodes = old.get("max_node_count") or "1"
            target = self.view(backup)["deployment"]
            self.retire(production)
            self.free(activation_server, key, old["deployment"])
            licence = self.obtain(activation_server, key, target, nodes)
            if self.is_backup(backup):
                self.change(backup, "DELETE", "/admin/license/backup", lambda: not self.is_backup(backup))
            self.upload(backup, licence)
            return {"production": backup.name}

        return self.run(body)

    def provision(self, instance: Instance, key: str, quantity: int, activation_server: str) -> Success | Failure:
        def body() -> dict[str, Any]:
            try:
                self.change(
                    instance,
                    "POST",
                    "/admin/license/activation",
                    lambda: self.licensed(self.view(instance)),
                    json={"activationKey": key, "quantity": quantity},
                )
                return {"mode": "online"}
            except Stop as stop:
                if stop.status != 500:
                    raise
            # the instance cannot reach the activation server: activate it with a file obtained from here
            licence = self.obtain(activation_server, key, self.view(instance)["deployment"], quantity)
            self.upload(instance, licence)
            return {"mode": "offline"}

        return self.run(body)

    def decommission(self, instance: Instance, key: str, activation_server: str) -> Success | Failure:
        def body() -> dict[str, Any]:
            view = self.view(instance)
            if self.is_backup(instance):
                self.change(instance, "DELETE", "/admin/license/backup", lambda: not self.is_backup(instance))
                return {"unregistered": instance.name}
            self.retire(instance)
            if self.licensed(view) and not view.get("online_activated"):
                # an offline licence keeps its slot until the activation server frees it
                self.free(activation_server, key, view["deployment"])
            return {"freed": view["deployment"]}

        return self.run(body)

    def renew(self, instance: Instance, key: str, activation_server: str) -> Success | Failure:
        def body() -> dict[str, Any]:
            before = self.view(instance)
            if not self.licensed(before):
                raise Stop(None, f"{instance.name} is not licensed: nothing to renew")
            nodes = before.get("max_node_count") or "1"

            def renewed() -> bool:
                now = self.view(instance)
                return self.licensed(now) and now["days_left"] > before["days_left"]

            if before.get("online_activated"):
                try:
                    self.change(
                        instance,
                        "POST",
                        "/admin/license/activation",
                        renewed,
                        json={"activationKey": key, "quantity": int(nodes)},
                    )
                except Stop as stop:
                    if stop.status != 500:
                        raise
                    self.upload(instance, self.obtain(activation_server, key, before["deployment"], nodes))
            else:
                self.upload(instance, self.obtain(activation_server, key, before["deployment"], nodes))
            if not renewed():
                raise Stop(None, f"{instance.name}'s licence was not refreshed")
            return {"days_left": self.view(instance)["days_left"]}

        return self.run(body)


# The command adapter: JSON lines on stdin and stdout


def answer(client: Runbooks, request: dict[str, Any]) -> dict[str, Any]:
    if request.get("protocol") != "mockcore-contracts-client/2" or "workflow" not in request:
        return {"protocol": "mockcore-contracts-client/2", "ok": False, "status": None, "error": "not a workflow"}
    instances = {role: Instance(**doc) for role, doc in request["instances"].items()}
    outcome = getattr(client, request["workflow"])(**instances, **request["arguments"])
    if isinstance(outcome, Success):
        return {"ok": True, "result": dict(outcome.result)}
    return {"ok": False, "status": outcome.status, "error": outcome.error}


def main() -> None:
    client = Runbooks()
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(answer(client, json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
