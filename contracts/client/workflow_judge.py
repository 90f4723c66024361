"""How one workflow run is judged: every request the client sent (read back from the mock's journal) replayed on
the model, moment by moment, then the fleet at the end against the workflow's goal and the client's report.

Each property names the rules of the inventory (`contracts.rules`) it rests on. They are judged in the order of
`WORKFLOW_PROPERTIES`, so the most specific one is named.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import unquote

from contracts.checks import Violation
from contracts.client.adapter import Outcome, Success, describe_outcome
from contracts.client.fleetstate import differences
from contracts.client.journal import Record
from contracts.client.properties import check_requests
from contracts.client.workflow import (
    DECOMMISSION,
    OFFLINE_FAILOVER,
    ONLINE_FAILOVER,
    PROVISION,
    RENEW,
    WorkflowCall,
)
from contracts.model import ACTIVE, UNLICENSED, CatalogueEntry, InstanceModel, KeyModel, Model
from contracts.model import Outcome as Expected
from contracts.spec import ContractSpec


@dataclass(frozen=True)
class WorkflowProperty:
    text: str
    rules: tuple[str, ...]


# The properties a workflow run is judged by, in the order they are judged, with the rules each rests on.
WORKFLOW_PROPERTIES: dict[str, WorkflowProperty] = {
    "adapter-protocol": WorkflowProperty(
        "the adapter answered the workflow with one well-formed outcome (no crash, no timeout, JSON)", ()
    ),
    "request-well-formed": WorkflowProperty(
        "every request the client sent, extra reads included, keeps contracts/openapi.yaml",
        ("service.order-of-checks", "register.request-shape"),
    ),
    "workflow-arguments": WorkflowProperty(
        "every value a request carried is what the client was given or read: the key exactly (case included), the "
        "quantity (a renewal keeps the node count, a failover the production's), the production's deployment, "
        "file bytes the activation server issued, and the activation server's query (`key`, `deployment`, "
        "`quantity`, each once, percent-encoded)",
        ("activate.quantity", "view.max_node_count", "register-online.production-on-key", "file.signature"),
    ),
    "workflow-no-stray-step": WorkflowProperty(
        "no change the runbook had no business sending: only its own instances and the operations its goal needs, "
        "no nomination of an instance that is not an online backup (before registering, or an offline backup), no "
        "slot freed or taken at the activation server for a deployment the workflow is not about",
        (
            "transition.nominate.unlicensed",
            "transition.nominate.backup-offline",
            "transition.nominate.active",
            "deactivation.frees-slot",
            "activation.issues-file",
        ),
    ),
    "workflow-no-double-use": WorkflowProperty(
        "at no moment do more instances serve on a key than it has slots, and at the end no instance the workflow "
        "touched still serves offline on a slot it no longer holds (an old production left running)",
        ("slots.within-key", "offline.keeps-licence", "nominate.moves-slot", "deactivate.offline-keeps-slot"),
    ),
    "workflow-no-slot-leak": WorkflowProperty(
        "at the end every slot the workflow's deployments hold on the key is held by an instance serving on it (a "
        "slot taken for a lost answer, or an offline production's slot, is freed); excused only when the "
        "activation server went down and the client reported failure",
        ("slots.accounting", "deactivate.offline-keeps-slot", "deactivation.frees-slot", "activation.reissue"),
    ),
    "workflow-report-truthful": WorkflowProperty(
        "the client's report matches the fleet: success exactly when the goal is met (an HTTP 200 is not a "
        "success until its body says so), and a failure's status is null or one the client was answered in the run",
        ("activation.no-slot", "activation.unknown-key", "online.activation-server-down"),
    ),
    "workflow-reaches-goal": WorkflowProperty(
        "without faults, from a starting fleet where the goal can be reached, the workflow reaches it",
        ("slots.accounting",),
    ),
    "mock-agrees-with-model": WorkflowProperty(
        "the mock answered and changed as the model predicts (a failure here is the mock's or the harness's, not "
        "the client's)",
        ("slots.accounting", "refused.changes-nothing"),
    ),
}

ACTIVATE_PATH = "/admin/license/activation"
LICENCE_PATH = "/admin/license"
BACKUP_PATH = "/admin/license/backup"
NOMINATION_PATH = "/admin/license/backup/nomination"
DEACTIVATE_PATH = "/admin/license/deactivation"
# RFC 3986 unreserved characters, and percent-escapes: what an encoded query value consists of.
ENCODED = re.compile(r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})*")

# The changes each workflow may send, by role of the instance (activation server calls are judged apart).
ALLOWED: dict[str, dict[str, frozenset[str]]] = {
    ONLINE_FAILOVER: {
        "backup": frozenset({"register-online", "unregister", "nominate"}),
        "production": frozenset({"deactivate"}),
    },
    OFFLINE_FAILOVER: {
        "backup": frozenset({"unregister", "upload"}),
        "production": frozenset({"deactivate"}),
    },
    PROVISION: {"instance": frozenset({"activate", "upload"})},
    DECOMMISSION: {"instance": frozenset({"deactivate", "unregister"})},
    RENEW: {"instance": frozenset({"activate", "upload"})},
}
# Which role's deployment may be given a file at `/activation`, and freed at `/deactivation`.
OBTAIN_FOR = {OFFLINE_FAILOVER: "backup", PROVISION: "instance", RENEW: "instance"}
FREE_FOR = {OFFLINE_FAILOVER: "production", PROVISION: "instance", DECOMMISSION: "instance"}


@dataclass
class Given:
    """What the client was given and what the fleet was at the start: the basis of every judgement."""

    call: WorkflowCall
    names: dict[str, str]  # role -> instance name
    start: Model
    key: str
    reachable: bool  # whether the goal can be reached from this start without faults
    fault: str | None = None
    activation_down: bool = False  # the fault took the activation server down
    issued: list[bytes] = field(default_factory=list)  # licence files the activation server issued in this run
    passing: frozenset[str] = frozenset()  # fault rules that only delay a request (it is still carried out)

    def deployment(self, role: str) -> str:
        return self.start.instances[self.names[role]].deployment

    def nodes(self, role: str) -> str | None:
        """The node count of the role's licence at the start (None: unlicensed, or an online backup's key's)."""
        return self.start.instances[self.names[role]].nodes


def model_from_state(doc: dict[str, Any], names: Sequence[str], catalogue: dict[str, CatalogueEntry]) -> Model:
    """The model of any fleet, from its state document: keys with their holders, each instance's licence."""
    deployments = {name: str(doc["instances"][name]["deployment"]) for name in names}
    keys = [
        KeyModel(
            k["terms"]["activation_key"],
            int(k["slots"]),
            date.fromisoformat(k["terms"]["expires"]),
            list(k.get("holders") or []),
        )
        for k in doc.get("keys", [])
    ]
    today = datetime.fromisoformat(doc["clock"]["now"]).date()
    model = Model(deployments, keys, today, catalogue)
    for name in names:
        licence = doc["instances"][name]["licence"]
        terms = licence.get("terms") or {}
        inst = model.instances[name]
        inst.state = licence["state"]
        inst.key = terms.get("activation_key")
        inst.online = bool(licence.get("online"))
        inst.production = licence.get("production")
        if inst.state != UNLICENSED:
            inst.expires = date.fromisoformat(terms["expires"])
            inst.nodes = terms.get("max_node_count")
    return model


@dataclass(frozen=True)
class Step:
    """A request of the client, as the judge reads it: which operation, on which instance (None: the activation
    server), with which values."""

    record: Record
    operation: str  # activate, upload, register-online, register-offline, unregister, nominate, deactivate,
    # obtain, free, or "read" / "other" (extra requests, judged for form only)
    name: str | None
    values: dict[str, Any]


def classify(record: Record) -> Step:
    method, path = record.method, record.path
    if record.face != "core":
        if method == "GET" and path in ("/activation", "/deactivation"):
            return Step(record, "obtain" if path == "/activation" else "free", None, {})
        return Step(record, "other", None, {})
    name = record.instance
    values: dict[str, Any] = {}
    if method == "GET":
        return Step(record, "read", name, values)
    if method == "POST" and path == ACTIVATE_PATH:
        try:
            body = json.loads(record.body or b"null")
        except ValueError:
            body = None
        if isinstance(body, dict):
            values = {"key": body.get("activationKey"), "quantity": body.get("quantity", 1)}
        return Step(record, "activate", name, values)
    if method == "POST" and path == LICENCE_PATH:
        return Step(record, "upload", name, {"licence": record.body})
    if method == "POST" and path == BACKUP_PATH:
        headers = record.headers
        if "activation-key" in headers or "active-deployment-id" in headers:
            values = {"key": headers.get("activation-key"), "production": headers.get("active-deployment-id")}
            return Step(record, "register-online", name, values)
        return Step(record, "register-offline", name, {"licence": record.body})
    if method == "DELETE" and path == BACKUP_PATH:
        return Step(record, "unregister", name, values)
    if method == "POST" and path == NOMINATION_PATH:
        return Step(record, "nominate", name, values)
    if method == "POST" and path == DEACTIVATE_PATH:
        return Step(record, "deactivate", name, values)
    return Step(record, "other", name, values)


def query_values(record: Record, expected: Sequence[str]) -> dict[str, str]:
    """The activation server's query, strictly: each expected parameter once, nothing else, percent-encoded."""
    raw = record.query
    found: dict[str, str] = {}
    for part in raw.split("&") if raw else []:
        name, sep, value = part.partition("=")
        if not sep:
            raise Violation("workflow-arguments", f"{record.target()}: query part {part!r} has no `=`")
        if not ENCODED.fullmatch(name) or not ENCODED.fullmatch(value):
            raise Violation(
                "workflow-arguments",
                f"{record.target()}: {part!r} is not percent-encoded (reserved or unsafe characters sent as they are)",
            )
        name = unquote(name)
        if name in found:
            raise Violation("workflow-arguments", f"{record.target()}: the parameter {name!r} is sent twice")
        found[name] = unquote(value)
    if sorted(found) != sorted(expected):
        raise Violation(
            "workflow-arguments",
            f"{record.target()}: the query carries {sorted(found)}, the activation server takes {sorted(expected)}",
        )
    return found


class Judge:
    """Replays one run's requests on the model and judges them; `finish` judges the end."""

    def __init__(self, given: Given, contract: ContractSpec, label: Callable[[str], str] = str) -> None:
        self.given = given
        self.contract = contract
        self.model = given.start.copy()
        self.label = label
        self.roles = {name: role for role, name in given.names.items()}
        self.received: set[int] = set()  # the statuses the run's requests were answered with (the journal's)

    # Requests

    def requests(self, records: Sequence[Record]) -> None:
        check_requests(records, self.contract)
        self.received.update(record.status for record in records if record.status is not None)
        for record in records:
            step = classify(record)
            if step.operation in ("read", "other"):
                continue
            self._arguments(step)
            self._stray(step)
            self._replay(step)
            self._moment(step)

    def _arguments(self, step: Step) -> None:
        g = self.given
        record = step.record
        where = record.target()
        if step.operation in ("obtain", "free"):
            names = ("key", "deployment", "quantity") if step.operation == "obtain" else ("key", "deployment")
            step.values.update(query_values(record, names))
        key = step.values.get("key")
        if "key" in step.values and key != g.key:
            raise Violation("workflow-arguments", f"{where}: the key sent is {key!r}, the client was given {g.key!r}")
        if step.operation in ("activate", "obtain"):
            want = self._quantity()
            sent = step.values.get("quantity")
            if want is not None and str(sent) != str(want):
                raise Violation(
                    "workflow-arguments",
                    f"{where}: quantity {sent!r} sent, but the workflow needs {want} ({self._quantity_reason()})",
                )
        if step.operation == "register-online":
            production = g.deployment("production") if "production" in g.names else None
            if step.values.get("production") != production:
                raise Violation(
                    "workflow-arguments",
                    f"{where}: active-deployment-id {step.values.get('production')!r}, the production's deployment "
                    f"is {production}",
                )
        if step.operation in ("upload", "register-offline") and record.body not in g.issued:
            raise Violation(
                "workflow-arguments",
                f"{where}: the body ({len(record.body)} bytes: {record.body[:80]!r}) is not a licence file the "
                "activation server issued in this run (an answer taken for a file without reading it?)",
            )

    def _quantity(self) -> str | None:
        g = self.given
        if g.call.workflow == PROVISION:
            return str(g.call.arguments["quantity"])
        if g.call.workflow == RENEW:
            return g.nodes("instance")
        if g.call.workflow == OFFLINE_FAILOVER:
            return g.nodes("production")
        return None

    def _quantity_reason(self) -> str:
        return {
            PROVISION: "the quantity it was given",
            RENEW: "the node count the licence has: a renewal keeps it",
            OFFLINE_FAILOVER: "the production's node count: the backup takes its place",
        }[self.given.call.workflow]

    def _stray(self, step: Step) -> None:
        g = self.given
        workflow = g.call.workflow
        where = step.record.target()
        if step.name is not None:
            role = self.roles.get(step.name)
            allowed = ALLOWED[workflow].get(role or "", frozenset())
            if step.operation not in allowed:
                whose = f"the {role}" if role else f"{step.name}, an instance the workflow is not about"
                raise Violation(
                    "workflow-no-stray-step",
                    f"{where}: a {step.operation} of {whose} has no place in {workflow} (it may send "
                    + (", ".join(sorted(allowed)) or "nothing")
                    + " there)",
                )
            if step.operation == "nominate":
                inst = self.model.copy().refresh(step.name)
                if inst.state != "backup-online":
                    raise Violation(
                        "workflow-no-stray-step",
                        f"{where}: nominated {step.name} while it is {inst.state} (rule "
                        f"transition.nominate.{inst.state}): a nomination needs an online backup, registered first",
                    )
            return
        deployment = step.values.get("deployment")
        table = OBTAIN_FOR if step.operation == "obtain" else FREE_FOR
        role = table.get(workflow)
        mine = g.deployment(role) if role else None
        if deployment != mine:
            what = "obtained a licence file" if step.operation == "obtain" else "freed the slot"
            owner = self.label(str(deployment))
            raise Violation(
                "workflow-no-stray-step",
                f"{where}: {what} of {owner} at the activation server; {workflow} may do that only for "
                + (f"the {role}'s deployment" if role else "no deployment"),
            )

    def _replay(self, step: Step) -> None:
        """Apply the request to the model when the fleet carried it out."""
        record, model = step.record, self.model
        if record.status is None or (record.fault is not None and record.fault not in self.given.passing):
            return  # dropped or answered by an injected fault: nothing carried out
        trial = model.copy()
        expected = self._predict(trial, step)
        carried = self._carried(step)
        if carried and not expected.ok:
            raise Violation(
                "mock-agrees-with-model",
                f"{record.target()} was carried out ({record.answer()}), the model expected {expected.status} "
                f"{expected.error} (rule {expected.rule})",
            )
        if not carried:
            return
        self.model = trial
        if step.operation == "obtain":
            content = record.response_text.encode("utf-8")
            self.model.files[-1] = dataclasses.replace(self.model.files[-1], content=content)
            self.given.issued.append(content)

    def _predict(self, model: Model, step: Step) -> Expected:
        v, name = step.values, step.name or ""
        op = step.operation
        if op == "activate":
            return model.activate(name, str(v.get("key")), v.get("quantity", 1))
        if op == "upload":
            return model.upload(name, step.record.body)
        if op == "register-online":
            return model.register_online(name, str(v.get("key")), str(v.get("production")))
        if op == "register-offline":
            return model.register_offline(name, step.record.body)
        if op == "unregister":
            return model.unregister(name)
        if op == "nominate":
            return model.nominate(name)
        if op == "deactivate":
            return model.deactivate(name)
        quantity = str(v.get("quantity", ""))
        if op == "obtain":
            return model.obtain_file(
                str(v.get("key")), str(v.get("deployment")), int(quantity) if quantity.isdigit() else 0
            )
        return model.free_slot(str(v.get("key")), str(v.get("deployment")))

    @staticmethod
    def _carried(step: Step) -> bool:
        record = step.record
        if step.operation == "obtain":
            text = record.response_text
            return record.status == 200 and "signature" in text and not text.lstrip().startswith("error")
        return record.status is not None and 200 <= record.status < 300

    def _moment(self, step: Step) -> None:
        key = self.model.keys.get(self.given.key)
        if key is None:
            return
        serving = self._serving(self.model.copy())
        if len(serving) > key.slots:
            raise Violation(
                "workflow-no-double-use",
                f"after {step.record.target()} ({step.record.answer()}), {len(serving)} instances serve on key "
                f"{self.given.key}, which has {key.slots} slot(s): {', '.join(serving)}",
            )

    def _serving(self, model: Model) -> list[str]:
        return [
            name
            for name in model.instances
            if (inst := model.refresh(name)).state == ACTIVE and inst.key == self.given.key and not model.expired(inst)
        ]

    # The end

    def finish(self, outcome: Outcome, doc: dict[str, Any], names: list[str]) -> None:
        problems = differences(self.model, doc, names, self.label)
        if problems:
            raise Violation(
                "mock-agrees-with-model",
                "after the workflow the fleet is not where the model replaying the journal puts it: "
                + "; ".join(problems),
            )
        g = self.given
        end = self.model.copy()
        for name in end.instances:
            end.refresh(name)
        key = end.keys[g.key]
        start_key = g.start.keys[g.key]
        touched = set(g.names.values())
        for name in sorted(touched):
            inst = end.instances[name]
            if inst.state == ACTIVE and inst.key == g.key and not inst.online and inst.deployment not in key.holders:
                began = g.start.instances[name]
                if began.state == ACTIVE and began.deployment in start_key.holders:
                    raise Violation(
                        "workflow-no-double-use",
                        f"{name} still serves with its licence file on key {g.key}, but its slot was "
                        + ("moved to another instance" if key.holders else "freed")
                        + f" (the key's slots are held by {[self.label(d) for d in key.holders]}): the old "
                        "production was left running",
                    )
        failed = not isinstance(outcome, Success)
        if not (g.activation_down and failed):
            for name in sorted(touched):
                inst, began = end.instances[name], g.start.instances[name]
                idle = inst.deployment in key.holders and not (inst.state == ACTIVE and inst.key == g.key)
                was_idle = began.deployment in start_key.holders and not (began.state == ACTIVE and began.key == g.key)
                if idle and not was_idle:
                    raise Violation(
                        "workflow-no-slot-leak",
                        f"{name} is {inst.state} yet its deployment still holds a slot on key {g.key} after the "
                        f"workflow ({describe_outcome(outcome)}): a slot nobody serves on",
                    )
        met, why = goal_met(g, end)
        if isinstance(outcome, Success) and not met:
            raise Violation("workflow-report-truthful", f"the client reported {describe_outcome(outcome)}, but {why}")
        if failed and met:
            raise Violation(
                "workflow-report-truthful",
                f"the client reported {describe_outcome(outcome)}, but {why}",
            )
        status = getattr(outcome, "status", None)
        if failed and status is not None and status not in self.received:
            answered = ", ".join(str(s) for s in sorted(self.received)) or "none"
            raise Violation(
                "workflow-report-truthful",
                f"the client reported {describe_outcome(outcome)}, but no request of the run was answered {status} "
                f"(the statuses it received: {answered}); a failure's status is one the client was answered, or "
                "null when no answer came",
            )
        if g.fault is None and g.reachable and not met:
            raise Violation(
                "workflow-reaches-goal",
                f"without faults the goal can be reached from this fleet, yet {why} (the client reported "
                f"{describe_outcome(outcome)})",
            )


def goal_met(g: Given, end: Model) -> tuple[bool, str]:
    """Whether the workflow's goal holds in the (refreshed) model at the end, and the fleet in words."""
    workflow = g.call.workflow
    key, start_key = end.keys[g.key], g.start.keys[g.key]
    holders, before = set(key.holders), set(start_key.holders)

    def inst(role: str) -> InstanceModel:
        return end.instances[g.names[role]]

    def shown(i: InstanceModel) -> str:
        online = "" if i.state == UNLICENSED else (" online" if i.online else " offline")
        on = f" on {i.key}" if i.key and i.state != UNLICENSED else ""
        return f"{i.name} is {i.state}{online}{on}"

    if workflow in (ONLINE_FAILOVER, OFFLINE_FAILOVER):
        prod, backup = inst("production"), inst("backup")
        want = (before - {prod.deployment}) | {backup.deployment}
        ok = backup.state == ACTIVE and backup.key == g.key and prod.state != ACTIVE and holders == want
        if workflow == ONLINE_FAILOVER:
            ok = ok and backup.online
        state = f"{shown(backup)}, {shown(prod)}, slots held by {sorted(holders)}"
        return ok, ("the goal is met: " if ok else "the goal is not met: ") + state
    instance = inst("instance")
    state = f"{shown(instance)}, slots held by {sorted(holders)}"
    if workflow == PROVISION:
        quantity = str(g.call.arguments["quantity"])
        ok = (
            instance.state == ACTIVE
            and instance.key == g.key
            and instance.nodes == quantity
            and holders == before | {instance.deployment}
        )
        state += f", node count {instance.nodes}"
    elif workflow == DECOMMISSION:
        ok = instance.state == UNLICENSED and holders == before - {instance.deployment}
    else:
        ok = (
            instance.state == ACTIVE
            and instance.key == g.key
            and instance.expires == key.expires
            and instance.nodes == g.nodes("instance")
            and holders == before
        )
        state += f", expires {instance.expires} (the key: {key.expires}), node count {instance.nodes}"
    return ok, ("the goal is met: " if ok else "the goal is not met: ") + state
