"""Workflows: the adapter protocol's version 2. A client is asked to run a whole runbook, not one call.

A workflow gets only what an operator has: the instances it is about (`Instance`: name, base URL, apikey), the
activation key, and where needed the activation server's base URL and a quantity. It returns one `Outcome` for the
whole runbook: `Success(result)` when the client says the goal is met, `Failure(status, error)` when it says it is
not (`status` the HTTP status of the answer that stopped it, or None when none came; `error` what went wrong).

    online_failover(production, backup, key)                     the backup serves as production (online), the old
                                                                 production no longer does, slot use unchanged
    offline_failover(production, backup, key, activation_server) the same with licence files: the backup active
                                                                 with its own file, the production's slot freed
    provision(instance, key, quantity, activation_server)        an unlicensed instance ends active on the key with
                                                                 `quantity` nodes (online, or offline with a file
                                                                 when the instance cannot reach the activation
                                                                 server)
    decommission(instance, key, activation_server)               the instance no longer licensed and its slot free
                                                                 again, whichever way it was licensed
    renew(instance, key, activation_server)                      the licence refreshed to the key's current expiry
                                                                 before it expires, its node count kept

Python clients implement the methods they support on any class (`WorkflowAdapter`); any other language uses the
command adapter (`contracts.client.command`), which carries the same calls as JSON (protocol
`mockcore-contracts-client/2`). Version 1 (one operation per call, `contracts.client.adapter`) is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from contracts.client.adapter import AdapterError, CallResult, Instance, Outcome, ThreadedAdapter

ONLINE_FAILOVER = "online_failover"
OFFLINE_FAILOVER = "offline_failover"
PROVISION = "provision"
DECOMMISSION = "decommission"
RENEW = "renew"


@dataclass(frozen=True)
class WorkflowSpec:
    """One workflow: the instances it is about (by role), its other arguments, its goal, and the rules of the
    inventory (`contracts.rules`) the goal and the judgement rest on."""

    name: str
    roles: tuple[str, ...]
    arguments: tuple[str, ...]
    goal: str
    rules: tuple[str, ...]


WORKFLOWS: dict[str, WorkflowSpec] = {
    spec.name: spec
    for spec in (
        WorkflowSpec(
            ONLINE_FAILOVER,
            ("production", "backup"),
            ("key",),
            "the backup is active online on the key, the old production is not active, and the key's slots are "
            "held as before with the backup in the production's place",
            (
                "transition.register-online.unlicensed",
                "register-online.production-on-key",
                "transition.unregister.backup-offline",
                "transition.nominate.backup-online",
                "transition.nominate.backup-offline",
                "transition.nominate.unlicensed",
                "nominate.moves-slot",
                "online.slot-lost",
                "offline.keeps-licence",
                "transition.deactivate.active",
                "deactivate.offline-keeps-slot",
                "online.activation-server-down",
                "slots.accounting",
            ),
        ),
        WorkflowSpec(
            OFFLINE_FAILOVER,
            ("production", "backup"),
            ("key", "activation_server"),
            "the backup is active on the key with a licence file issued for it, the old production is not active "
            "and its slot is free, every other slot as before",
            (
                "activation.issues-file",
                "activation.reissue",
                "activation.no-slot",
                "deactivation.frees-slot",
                "deactivation.not-activated",
                "transition.unregister.backup-offline",
                "transition.unregister.backup-online",
                "transition.nominate.backup-offline",
                "upload.own-deployment",
                "upload.sets-offline",
                "file.values",
                "offline.keeps-licence",
                "deactivate.offline-keeps-slot",
                "online.slot-lost",
                "slots.accounting",
            ),
        ),
        WorkflowSpec(
            PROVISION,
            ("instance",),
            ("key", "quantity", "activation_server"),
            "the instance is active on the key with `quantity` nodes and holds one slot on it, every other slot as "
            "before",
            (
                "transition.activate.unlicensed",
                "activate.quantity",
                "activate.no-slot",
                "activation.issues-file",
                "activation.reissue",
                "activation.no-slot",
                "upload.own-deployment",
                "upload.sets-offline",
                "view.max_node_count",
                "online.activation-server-down",
                "slots.accounting",
                "slots.within-key",
            ),
        ),
        WorkflowSpec(
            DECOMMISSION,
            ("instance",),
            ("key", "activation_server"),
            "the instance is not licensed and its deployment holds no slot on the key, every other slot as before",
            (
                "transition.deactivate.active",
                "transition.deactivate.unlicensed",
                "transition.unregister.backup-online",
                "deactivate.online-frees-slot",
                "deactivate.offline-keeps-slot",
                "deactivation.frees-slot",
                "deactivation.not-activated",
                "online.activation-server-down",
                "slots.accounting",
            ),
        ),
        WorkflowSpec(
            RENEW,
            ("instance",),
            ("key", "activation_server"),
            "the instance is active on the key until the key's current expiry date, with the node count it had, "
            "and the key's slots are held as before",
            (
                "activate.same-key-no-new-slot",
                "activate.quantity",
                "activation.reissue",
                "upload.takes-files-key",
                "file.values",
                "view.max_node_count",
                "view.days_left",
                "expiry.last-valid-day",
                "online.activation-server-down",
                "slots.accounting",
            ),
        ),
    )
}


@dataclass(frozen=True)
class WorkflowCall:
    """One workflow the harness asks of the client: the instances by role, and the arguments."""

    workflow: str
    instances: Mapping[str, Instance]
    arguments: Mapping[str, Any] = field(default_factory=dict)  # key, quantity, activation_server

    def describe(self) -> str:
        shown = [f"{role}={instance.name}" for role, instance in self.instances.items()]
        shown += [f"{name}={value!r}" for name, value in self.arguments.items()]
        return f"{self.workflow}({', '.join(shown)})"


class WorkflowAdapter(Protocol):
    """What a Python workflow client implements: the workflows it supports, each returning an `Outcome` (it should
    not raise; an exception is reported as a broken adapter). An optional `close()` is called once at the end."""

    def online_failover(self, production: Instance, backup: Instance, key: str) -> Outcome: ...

    def offline_failover(self, production: Instance, backup: Instance, key: str, activation_server: str) -> Outcome: ...

    def provision(self, instance: Instance, key: str, quantity: int, activation_server: str) -> Outcome: ...

    def decommission(self, instance: Instance, key: str, activation_server: str) -> Outcome: ...

    def renew(self, instance: Instance, key: str, activation_server: str) -> Outcome: ...


class WorkflowDriver(Protocol):
    """How the workflow harness reaches a client: `PythonWorkflows`, or a command (`contracts.client.command`)."""

    kind: str

    def describe(self) -> str: ...

    def run(self, call: WorkflowCall) -> CallResult: ...

    def close(self) -> None: ...


class PythonWorkflows(ThreadedAdapter):
    """Drives a Python workflow adapter: each workflow runs in a worker thread (see `ThreadedAdapter`)."""

    def __init__(self, adapter: Any, *, timeout: float = 60.0, name: str | None = None) -> None:
        if not any(callable(getattr(adapter, workflow, None)) for workflow in WORKFLOWS):
            raise AdapterError(f"{type(adapter).__name__} has none of the workflow methods {', '.join(WORKFLOWS)}")
        super().__init__(adapter, timeout=timeout, name=name)

    def supports(self, workflow: str) -> bool:
        return callable(getattr(self.adapter, workflow, None))

    def describe(self) -> str:
        return f"Python workflow adapter {self.name}"

    def run(self, call: WorkflowCall) -> CallResult:
        return self.invoke(call.workflow, **call.instances, **call.arguments)
