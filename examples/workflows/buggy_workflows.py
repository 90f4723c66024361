"""Buggy variants of the correct workflow client (`runbooks.Runbooks`), one runbook bug each, as people write
them. `mockcore-contracts workflows` catches each at its default budget, naming the property in `CAUGHT_BY`:

    mockcore-contracts workflows --adapter examples/workflows/buggy_workflows.py:KeepsOldProduction
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from runbooks import Failure, Instance, Runbooks, Stop, Success


class KeepsOldProduction(Runbooks):
    """Never deactivates the old production: a production licensed with a file keeps serving after its slot moved
    to the backup (or was freed)."""

    def retire(self, instance: Instance) -> None:
        pass


class NominatesBeforeRegistering(Runbooks):
    """Nominates the backup first and registers it only if that failed, then nominates again."""

    def online_failover(self, production: Instance, backup: Instance, key: str) -> Success | Failure:
        def body() -> dict[str, Any]:
            deployment = self.view(production)["deployment"]
            answer = self.core(backup, "POST", "/admin/license/backup/nomination")
            if answer is None or answer.status_code != 200:
                headers = {"activation-key": key, "active-deployment-id": deployment}
                self.change(backup, "POST", "/admin/license/backup", lambda: self.is_backup(backup), headers=headers)
                self.change(backup, "POST", "/admin/license/backup/nomination", lambda: self.serving(backup))
            self.retire(production)
            return {}

        return self.run(body)


class NominatesOfflineBackup(Runbooks):
    """Nominates whatever backup it finds, without asking whether it was registered offline."""

    def online_failover(self, production: Instance, backup: Instance, key: str) -> Success | Failure:
        def body() -> dict[str, Any]:
            deployment = self.view(production)["deployment"]
            if not self.is_backup(backup):
                headers = {"activation-key": key, "active-deployment-id": deployment}
                self.change(backup, "POST", "/admin/license/backup", lambda: self.is_backup(backup), headers=headers)
            self.change(backup, "POST", "/admin/license/backup/nomination", lambda: self.serving(backup))
            self.retire(production)
            return {}

        return self.run(body)


class DeactivatesWrongInstance(Runbooks):
    """After the nomination it deactivates "the instance that is licensed": the new production, not the old."""

    def online_failover(self, production: Instance, backup: Instance, key: str) -> Success | Failure:
        outcome = super().online_failover(production, backup, key)
        if isinstance(outcome, Success):
            self.retire(backup)
        return outcome


class FreesAnotherDeploymentsSlot(Runbooks):
    """In an offline failover it frees the backup's deployment at the activation server instead of the
    production's."""

    def free(self, server: str, key: str, deployment: str) -> None:
        pass  # the production's slot is never freed ...

    def obtain(self, server: str, key: str, deployment: str, quantity: object) -> bytes:
        Runbooks.free(self, server, key, deployment)  # ... the backup's is, just before it gets a file
        return super().obtain(server, key, deployment, quantity)


class FixedQuantity(Runbooks):
    """Always activates one node, whatever it was asked for."""

    def provision(self, instance: Instance, key: str, quantity: int, activation_server: str) -> Success | Failure:
        return super().provision(instance, key, 1, activation_server)


class UpperCasesKey(Runbooks):
    """Normalises the activation key to upper case (real keys mix cases: that is another key)."""

    def online_failover(self, production: Instance, backup: Instance, key: str) -> Success | Failure:
        return super().online_failover(production, backup, key.upper())

    def provision(self, instance: Instance, key: str, quantity: int, activation_server: str) -> Success | Failure:
        return super().provision(instance, key.upper(), quantity, activation_server)


class TrustsHttp200(Runbooks):
    """Takes the activation server's HTTP 200 as a licence file without reading the body (a refusal is a 200
    too) and uploads it."""

    def obtain(self, server: str, key: str, deployment: str, quantity: object) -> bytes:
        params = {"key": key, "deployment": deployment, "quantity": str(quantity)}
        answer = self.send("GET", server.rstrip("/") + "/activation", params=params)
        if answer is None or answer.status_code != 200:
            return super().obtain(server, key, deployment, quantity)
        return answer.content


class LeaksSlotOnLostAnswer(Runbooks):
    """Gives up when the activation server's answer is lost, leaving the slot it took behind."""

    def obtain(self, server: str, key: str, deployment: str, quantity: object) -> bytes:
        params = {"key": key, "deployment": deployment, "quantity": str(quantity)}
        answer = self.send("GET", server.rstrip("/") + "/activation", params=params)
        if answer is None:
            raise Stop(None, "GET /activation: no answer")
        return super().obtain(server, key, deployment, quantity)


class ReportsSuccessBlindly(Runbooks):
    """Renews with an online activation and reports success without looking at the answer."""

    def renew(self, instance: Instance, key: str, activation_server: str) -> Success | Failure:
        try:
            nodes = self.view(instance).get("max_node_count") or "1"
            self.core(
                instance, "POST", "/admin/license/activation", json={"activationKey": key, "quantity": int(nodes)}
            )
        except (Stop, requests.RequestException):
            pass
        return Success({"renewed": True})


class ReadsOneNode(Runbooks):
    """(A helper of RenewsForOneNode: every licence read as one for one node.)"""

    def view(self, instance: Instance) -> dict[str, Any]:
        return {**super().view(instance), "max_node_count": "1"}


class OneNodeFiles(Runbooks):
    """(A helper of OfflineFailoverForOneNode: every licence file for one node.)"""

    def obtain(self, server: str, key: str, deployment: str, quantity: object) -> bytes:
        return super().obtain(server, key, deployment, 1)


class RenewsForOneNode(Runbooks):
    """Renews for one node, whatever the licence had."""

    def renew(self, instance: Instance, key: str, activation_server: str) -> Success | Failure:
        return ReadsOneNode().renew(instance, key, activation_server)


class OfflineFailoverForOneNode(Runbooks):
    """Obtains the backup's licence file for one node in an offline failover, whatever the production had."""

    def offline_failover(
        self, production: Instance, backup: Instance, key: str, activation_server: str
    ) -> Success | Failure:
        return OneNodeFiles().offline_failover(production, backup, key, activation_server)


class HardcodesDocKey(Runbooks):
    """Ignores the key it is given and uses the example key printed in the docs."""

    DOC_KEY = "k3Fq-8ZtA-mW2x-Pq7R-c9Lh-4VnB-tY6d"

    def online_failover(self, production: Instance, backup: Instance, key: str) -> Success | Failure:
        return super().online_failover(production, backup, self.DOC_KEY)

    def provision(self, instance: Instance, key: str, quantity: int, activation_server: str) -> Success | Failure:
        return super().provision(instance, self.DOC_KEY, quantity, activation_server)


class SwapsApikeys(Runbooks):
    """Sends the production's apikey to every instance of a failover."""

    def online_failover(self, production: Instance, backup: Instance, key: str) -> Success | Failure:
        backup = Instance(backup.name, backup.url, production.apikey, backup.ca_path)
        return super().online_failover(production, backup, key)


class InventsFailureStatus(Runbooks):
    """Reports every failure as 418 with a text of its own, whatever the servers answered."""

    def run(self, body: Callable[[], dict[str, Any]]) -> Success | Failure:
        outcome = super().run(body)
        return outcome if isinstance(outcome, Success) else Failure(418, "something went wrong")


# Each variant and the property that catches it.
CAUGHT_BY: dict[type[Runbooks], str] = {
    KeepsOldProduction: "workflow-no-double-use",
    NominatesBeforeRegistering: "workflow-no-stray-step",
    NominatesOfflineBackup: "workflow-no-stray-step",
    DeactivatesWrongInstance: "workflow-no-stray-step",
    FreesAnotherDeploymentsSlot: "workflow-no-stray-step",
    FixedQuantity: "workflow-arguments",
    UpperCasesKey: "workflow-arguments",
    TrustsHttp200: "workflow-arguments",
    LeaksSlotOnLostAnswer: "workflow-no-slot-leak",
    ReportsSuccessBlindly: "workflow-report-truthful",
    RenewsForOneNode: "workflow-arguments",
    OfflineFailoverForOneNode: "workflow-arguments",
    HardcodesDocKey: "workflow-arguments",
    SwapsApikeys: "workflow-reaches-goal",
    InventsFailureStatus: "workflow-report-truthful",
}
