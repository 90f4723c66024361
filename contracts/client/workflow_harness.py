"""The workflow harness: run a client's runbooks (protocol version 2) from starting fleets, under faults, and judge
each run against the model (`contracts.client.workflow_judge`).

A *case* is one workflow from one starting fleet under at most one fault. The harness sets the fleet up through
the mock's control plane (a scenario, then the state document edited where a start needs it: an outside machine
holding the key's last slot, a key renewed at the vendor), freezes the clock, empties the journal, arms the fault,
asks the client, and judges every request it sent and the fleet it left.

Two phases, as in the one-call harness: *drills*, every workflow from every starting fleet it has, then from its
main start under every fault at every step it can hit; then *generated* cases (Hypothesis: workflow, start, fault,
where it strikes, the quantity), shrunk to the smallest failing one.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from contracts.checks import OUTSIDER, Violation
from contracts.client.adapter import AdapterError, Instance
from contracts.client.journal import record_call
from contracts.client.relay import Relay
from contracts.client.report import ClientReport, ClientStep, Failed, replay_failure
from contracts.client.workflow import (
    DECOMMISSION,
    OFFLINE_FAILOVER,
    ONLINE_FAILOVER,
    PROVISION,
    RENEW,
    WORKFLOWS,
    WorkflowCall,
    WorkflowDriver,
)
from contracts.client.workflow_judge import (
    ACTIVATE_PATH,
    BACKUP_PATH,
    DEACTIVATE_PATH,
    LICENCE_PATH,
    NOMINATION_PATH,
    WORKFLOW_PROPERTIES,
    Given,
    Judge,
    model_from_state,
)
from contracts.common import PHASES, stateful_settings
from contracts.spec import ContractSpec
from contracts.target import Fleet, TargetError

# Starting fleets
CLEAN = "clean"
PRODUCTION = "production"
ONLINE_BACKUP = "production and online backup"
OFFLINE_BACKUP = "production and offline backup"
NEAR_EXPIRY = "near expiry"
NEAR_EXPIRY_OFFLINE = "near expiry, licensed offline"
EXHAUSTED = "slots exhausted"

# Faults
ACTIVATION_DOWN = "activation-down"
ANSWER_LOST = "answer-lost"
CORE_503 = "503"
CUT_OFF = "cut-off"
FAULTS = (ACTIVATION_DOWN, ANSWER_LOST, CORE_503, CUT_OFF)
ACTIVATION = "activation server"
INJECTED_503 = "Service temporarily unavailable"
DOWN_TEXT = "The activation server is down (injected)"
RENEWED_DAYS = 365
NEAR_DAYS = 7


@dataclass(frozen=True)
class Plan:
    """A workflow as the harness runs it: its starting fleets (the first is the main one; those where the goal
    cannot be reached are listed apart), the steps a fault may strike (role or ACTIVATION, method, path), and
    which faults apply."""

    starts: tuple[str, ...]
    unreachable: tuple[str, ...]
    strikes: tuple[tuple[str, str, str], ...]
    faults: tuple[str, ...] = (ACTIVATION_DOWN, ANSWER_LOST, CORE_503)


PLANS: dict[str, Plan] = {
    ONLINE_FAILOVER: Plan(
        (ONLINE_BACKUP, PRODUCTION, OFFLINE_BACKUP, EXHAUSTED),
        (),
        (("backup", "POST", NOMINATION_PATH), ("backup", "POST", BACKUP_PATH), ("production", "POST", DEACTIVATE_PATH)),
    ),
    OFFLINE_FAILOVER: Plan(
        (OFFLINE_BACKUP, ONLINE_BACKUP, EXHAUSTED),
        (),
        (
            (ACTIVATION, "GET", "/activation"),
            (ACTIVATION, "GET", "/deactivation"),
            ("backup", "POST", LICENCE_PATH),
            ("production", "POST", DEACTIVATE_PATH),
        ),
    ),
    PROVISION: Plan(
        (CLEAN, PRODUCTION, EXHAUSTED),
        (EXHAUSTED,),
        (("instance", "POST", ACTIVATE_PATH), (ACTIVATION, "GET", "/activation"), ("instance", "POST", LICENCE_PATH)),
        (ACTIVATION_DOWN, ANSWER_LOST, CORE_503, CUT_OFF),
    ),
    DECOMMISSION: Plan(
        (PRODUCTION, OFFLINE_BACKUP, CLEAN, NEAR_EXPIRY),
        (),
        (("instance", "POST", DEACTIVATE_PATH), (ACTIVATION, "GET", "/deactivation")),
    ),
    RENEW: Plan(
        (NEAR_EXPIRY, NEAR_EXPIRY_OFFLINE),
        (),
        (("instance", "POST", ACTIVATE_PATH), (ACTIVATION, "GET", "/activation"), ("instance", "POST", LICENCE_PATH)),
        (ACTIVATION_DOWN, ANSWER_LOST, CORE_503, CUT_OFF),
    ),
}


@dataclass(frozen=True)
class Case:
    workflow: str
    start: str
    fault: str | None = None
    at: int = 0  # the strike (ANSWER_LOST, CORE_503), or how many activation-server calls pass (ACTIVATION_DOWN)
    quantity: int = 3  # the node count: provision's argument, the starting licences' otherwise
    key: int = 0  # which of the fleet's keys (provision only)

    def describe(self) -> str:
        text = f"{self.workflow} from {self.start}"
        return text + (f", fault {self.fault} #{self.at}" if self.fault else "")


@dataclass(frozen=True)
class WorkflowSettings:
    examples: int = 15  # generated cases (Hypothesis examples) after the drills
    drills: bool = True
    derandomize: bool = False
    workflows: tuple[str, ...] = tuple(WORKFLOWS)


class WorkflowHarness:
    """One workflow client against one fleet."""

    def __init__(self, client: WorkflowDriver, fleet: Fleet, settings: WorkflowSettings) -> None:
        if not fleet.control:
            raise TargetError("the workflow harness needs a mock with a control plane (/_mock/)")
        if fleet.activation_url is None:
            raise TargetError("the workflow harness needs the mock's activation server")
        self.client = client
        self.fleet = fleet
        self.settings = settings
        self.names = list(fleet.instances)
        self.contract = ContractSpec()
        self.steps: list[ClientStep] = []
        self.failed: Failed | None = None
        self.calls = 0
        self.coverage: Counter[str] = Counter()

    def roles(self, workflow: str) -> dict[str, str]:
        prod, backup = self.names[0], self.names[1]
        if workflow in (ONLINE_FAILOVER, OFFLINE_FAILOVER):
            return {"production": prod, "backup": backup}
        if workflow == PROVISION:
            return {"instance": self.names[2] if len(self.names) > 2 else backup}
        return {"instance": prod}

    def step(self, title: str, kind: str = "harness") -> ClientStep:
        found = ClientStep(len(self.steps) + 1, title, kind=kind)
        self.steps.append(found)
        return found

    # Starting fleets

    def begin(self, start: str, quantity: int = 1) -> dict[str, Any]:
        """Set the fleet up as `start` says, the clock frozen, every licence the start has for `quantity` nodes;
        its state document."""
        control = self.fleet.control_request
        self.steps = []
        scenario = {
            CLEAN: None,
            PRODUCTION: "production-only",
            ONLINE_BACKUP: "production-with-online-backup",
            OFFLINE_BACKUP: "production-with-offline-backup",
            NEAR_EXPIRY: "expiring-soon",
            NEAR_EXPIRY_OFFLINE: "production-with-offline-backup",
            EXHAUSTED: "production-with-online-backup",
        }[start]
        if scenario is None:
            control("POST", "reset")
            self.step("reset the fleet: every instance unlicensed, every slot free")
        else:
            control("POST", f"scenarios/{scenario}")
            self.step(f"mock scenario {scenario}")
        self.fleet.log_in_again()
        control("PUT", "clock", {"frozen": True})
        doc = self.fleet.state_document()
        first = doc["keys"][0]
        if start == EXHAUSTED:
            free = int(first["slots"]) - len(first["holders"])
            outsiders = [OUTSIDER[:-2] + f"{i:02x}" for i in range(free)]
            first["holders"] = [*first["holders"], *outsiders]
            self._load(doc)
            self.step(f"outside machine(s) {', '.join(outsiders)} take the last slot(s) of key #1")
        if start in (NEAR_EXPIRY, NEAR_EXPIRY_OFFLINE):
            expires = date.fromisoformat(first["terms"]["expires"])
            if start == NEAR_EXPIRY_OFFLINE:
                now = datetime.combine(expires - timedelta(days=NEAR_DAYS), datetime.min.time()).isoformat()
                control("PUT", "clock", {"now": now + "+00:00", "frozen": True})
                doc = self.fleet.state_document()
                first = doc["keys"][0]
            first["terms"]["expires"] = (expires + timedelta(days=RENEWED_DAYS)).isoformat()
            self._load(doc)
            self.step(
                f"the clock {NEAR_DAYS} days before the licence expires; the vendor renews key #1 until "
                f"{first['terms']['expires']} (the instances' licences still say {expires})"
            )
        licensed = [
            name for name, inst in doc["instances"].items() if (inst.get("licence") or {}).get("terms") is not None
        ]
        if licensed and quantity != 1:
            for name in licensed:
                doc["instances"][name]["licence"]["terms"]["max_node_count"] = str(quantity)
            self._load(doc)
            self.step(f"the licences of {', '.join(licensed)} are for {quantity} nodes")
        return self.fleet.state_document()

    def _load(self, doc: dict[str, Any]) -> None:
        self.fleet.control_request("PUT", "state", doc)
        self.fleet.log_in_again()

    # Faults

    def arm(self, case: Case, call_urls: dict[str, str]) -> tuple[list[str], Relay | None, str]:
        """Arm the case's fault: the fault rules' ids (the first, with ACTIVATION_DOWN after calls that pass, only
        delays), the relay that loses an answer, and the fault in words."""
        plan = PLANS[case.workflow]
        control = self.fleet.control_request
        roles = self.roles(case.workflow)
        if case.fault == ACTIVATION_DOWN:
            ids = []
            if case.at:
                ids.append(control("POST", "faults", {"face": "activation", "delay": 0.001, "times": case.at})["id"])
            ids.append(control("POST", "faults", {"face": "activation", "status": 503, "err": DOWN_TEXT})["id"])
            return (
                ids,
                None,
                (
                    f"the activation server goes down after {case.at} call(s) to it (its own and the instances' online "
                    "operations): it answers 503 from then on"
                ),
            )
        if case.fault == CUT_OFF:
            name = roles["instance"]
            entry = self.fleet.target.catalogue["E_ACTIVATION_UNREACHABLE"]
            rule = {
                "face": "core",
                "instance": name,
                "method": "POST",
                "path": ACTIVATE_PATH,
                "status": entry.status,
                "err": entry.text,
            }
            return (
                [control("POST", "faults", rule)["id"]],
                None,
                (
                    f"{name} cannot reach the activation server: every online activation answers {entry.status} "
                    f"{entry.text!r} (the operator's machine still reaches it)"
                ),
            )
        role, method, path = plan.strikes[case.at % len(plan.strikes)]
        if case.fault == ANSWER_LOST:
            upstream = self.fleet.activation_url if role == ACTIVATION else self.fleet.instances[roles[role]]
            assert upstream is not None
            relay = Relay(upstream)
            relay.arm(method, path)
            call_urls[role if role == ACTIVATION else roles[role]] = relay.url
            where = "the activation server" if role == ACTIVATION else roles[role]
            return (
                [],
                relay,
                (
                    f"answer lost: the first {method} {path} to {where} goes through the harness's relay, is carried "
                    "out, and its answer is thrown away (the connection closed)"
                ),
            )
        if role == ACTIVATION:
            rule = {"face": "activation", "path": path, "status": 503, "err": INJECTED_503, "times": 1}
            where = "the activation server"
        else:
            rule = {
                "face": "core",
                "instance": roles[role],
                "method": method,
                "path": path,
                "status": 503,
                "err": INJECTED_503,
                "times": 1,
            }
            where = roles[role]
        return (
            [control("POST", "faults", rule)["id"]],
            None,
            (
                f"503 once: the first {method} {path} to {where} is answered 503 {{'err': '{INJECTED_503}'}} "
                "(nothing carried out)"
            ),
        )

    def fired(self, ids: list[str], relay: Relay | None) -> bool:
        if relay is not None:
            return not relay.disarm()
        if not ids:
            return False
        listed = self.fleet.control_request("GET", "faults")
        rules = listed.get("rules", listed) if isinstance(listed, dict) else listed
        left = {r.get("id"): r for r in rules}
        return any(i not in left or left[i].get("matched") for i in ids)

    # One case

    def run(self, case: Case) -> None:
        try:
            self._run(case)
        except Violation as broken:
            self.failed = Failed(broken, list(self.steps))
            raise

    def _run(self, case: Case) -> None:
        workflow, plan = case.workflow, PLANS[case.workflow]
        doc = self.begin(case.start, case.quantity)
        catalogue = self.fleet.target.catalogue
        start = model_from_state(doc, self.names, catalogue)
        keys = [k["terms"]["activation_key"] for k in doc["keys"]]
        key = keys[case.key % len(keys)] if workflow == PROVISION else keys[0]
        roles = self.roles(workflow)
        call_urls: dict[str, str] = {**self.fleet.instances, ACTIVATION: self.fleet.activation_url or ""}
        self.fleet.control_request("DELETE", "faults")
        ids, relay, fault_text = self.arm(case, call_urls) if case.fault else ([], None, "")
        arguments: dict[str, Any] = {"key": key}
        if workflow == PROVISION:
            arguments["quantity"] = case.quantity
        if "activation_server" in WORKFLOWS[workflow].arguments:
            arguments["activation_server"] = call_urls[ACTIVATION]
        call = WorkflowCall(
            workflow,
            {role: Instance(name, call_urls[name], self.fleet.apikeys[name]) for role, name in roles.items()},
            arguments,
        )
        given_ = Given(
            call,
            roles,
            start,
            key,
            reachable=case.start not in plan.unreachable,
            fault=case.fault,
            activation_down=case.fault == ACTIVATION_DOWN,
            passing=frozenset(ids[:1] if case.fault == ACTIVATION_DOWN and case.at else ()),
        )
        step = self.step(WORKFLOWS[workflow].goal, kind="client")
        step.title = f"{workflow}: {WORKFLOWS[workflow].goal}"
        step.call = call.describe()
        step.fault = fault_text
        self.fleet.control_request("DELETE", "journal")
        self.calls += 1
        try:
            result = self.client.run(call)
        finally:
            fired = self.fired(ids, relay) if case.fault else False
            if ids:
                self.fleet.control_request("DELETE", "faults")
            if relay is not None:
                relay.close()
        if case.fault and not fired:
            step.fault += " [never fired: the client sent no such request]"
            given_.fault = None if case.fault in (ANSWER_LOST, CORE_503) else case.fault
        sent, outcome = record_call(self.fleet, step, call.describe(), result)
        judge = Judge(given_, self.contract, self._label(start.deployments()))
        judge.requests(sent)
        judge.finish(outcome, self.fleet.state_document(), self.names)
        kind = "success" if outcome.__class__.__name__ == "Success" else "failure"
        self.coverage[f"{workflow}: {kind}"] += 1

    @staticmethod
    def _label(owners: dict[str, str]) -> Callable[[str], str]:
        def label(deployment: str) -> str:
            return f"{owners[deployment]}'s deployment" if deployment in owners else f"outside machine {deployment}"

        return label


def drills(workflows: tuple[str, ...]) -> list[Case]:
    """Every workflow from each of its starts without faults, then from its main start under every fault at every
    step it can strike (the activation server going down before its first and its second call)."""
    found = [Case(w, start, quantity=3) for w in workflows for start in PLANS[w].starts]
    for w in workflows:
        plan = PLANS[w]
        main = plan.starts[0]
        for fault in plan.faults:
            if fault == ACTIVATION_DOWN:
                found += [Case(w, main, fault, at) for at in (0, 1)]
            elif fault == CUT_OFF:
                found.append(Case(w, main, fault, quantity=5))
                if w == PROVISION:  # the offline path, under each fault of its activation server
                    found.append(Case(w, EXHAUSTED, fault, quantity=2))
            else:
                found += [Case(w, main, fault, at, quantity=2) for at in range(len(plan.strikes))]
    return found


def cases(workflows: tuple[str, ...]) -> st.SearchStrategy[Case]:
    @st.composite
    def draw(data: st.DrawFn) -> Case:
        workflow = data(st.sampled_from(workflows))
        plan = PLANS[workflow]
        start = data(st.sampled_from(plan.starts))
        fault = data(st.one_of(st.none(), st.sampled_from(plan.faults)))
        at = data(st.integers(0, max(len(plan.strikes) - 1, 1)))
        quantity = data(st.one_of(st.just(1), st.integers(2, 1000)))
        return Case(workflow, start, fault, at, quantity, data(st.integers(0, 1)))

    return draw()


def run_workflows(client: WorkflowDriver, fleet: Fleet, settings: WorkflowSettings | None = None) -> ClientReport:
    """Drills, then generated cases; the report of the first broken property, or PASSED."""
    settings = settings or WorkflowSettings()
    supported = tuple(w for w in settings.workflows if getattr(client, "supports", lambda _: True)(w))
    h = WorkflowHarness(client, fleet, settings)
    report = ClientReport(
        client=client.describe(), passed=True, instances=list(fleet.instances), command="workflows", generated="case"
    )
    skipped = [w for w in settings.workflows if w not in supported]
    if not supported:
        raise AdapterError(
            f"the client implements none of the workflows asked for ({', '.join(settings.workflows)}): nothing to check"
        )
    if skipped:
        report.notes.append(f"the client implements no {', '.join(skipped)}: not checked")
    started = time.monotonic()
    try:
        if settings.drills:
            for case in drills(supported):
                report.phase = f"drill `{case.describe()}`"
                report.drills += 1
                h.run(case)
        if settings.examples > 0 and supported:
            report.phase = "generated cases (Hypothesis, shrunk)"
            _explore(h, settings, supported, report)
    except Violation as broken:
        failed = h.failed or Failed(broken, list(h.steps))
        report.passed = False
        report.rule, report.detail, report.steps = failed.violation.rule, failed.violation.detail, failed.steps
        prop = WORKFLOW_PROPERTIES.get(report.rule or "")
        if prop is not None:
            report.property_text, report.property_rules = prop.text, prop.rules
    report.calls = h.calls
    report.coverage = dict(sorted(h.coverage.items()))
    report.seconds = time.monotonic() - started
    return report


def _explore(h: WorkflowHarness, settings: WorkflowSettings, workflows: tuple[str, ...], report: ClientReport) -> None:
    hypothesis_settings = stateful_settings(settings.examples, 1, settings.derandomize, PHASES)
    counted = [0]

    @hypothesis_settings
    @given(case=cases(workflows))
    def explore(case: Case) -> None:
        counted[0] += 1
        report.phase = f"generated case `{case.describe()}` (Hypothesis, shrunk)"
        h.run(case)

    try:
        explore()
    except Flaky as flaky:
        raise replay_failure(flaky, h.failed, report, "case") from flaky
    finally:
        report.examples = counted[0]
