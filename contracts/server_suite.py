"""The server suite: a Hypothesis state machine that drives a target fleet and compares it with the model.

Against a target with a control plane every example starts from a reset with the clock frozen, and the rules cover
every licence operation, the activation server, scans, `/readyz`, authentication and the clock. Against a target
without one (a real Core) the suite only reads, unless destructive steps are allowed; then it runs one short fixed
sequence (`contracts.sequences`) that leaves the instances unlicensed.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from hypothesis import Phase
from hypothesis import strategies as st
from hypothesis.errors import Flaky
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    multiple,
    rule,
    run_state_machine_as_test,
)

from contracts import parity
from contracts.checks import (
    EICAR,
    MALFORMED_DEPLOYMENT,
    MALFORMED_KEY,
    OUTSIDER,
    SAMPLE,
    UNKNOWN_KEY,
    Checker,
    Step,
    StepLog,
    Violation,
    broken,
)
from contracts.common import PHASES, edited, stateful_settings
from contracts.drills import DRILLS
from contracts.model import NOMINATION_PATH, PROFILES, LicenceFileModel
from contracts.sequences import failover, read_only
from contracts.target import Fleet, TargetError

MIN_INSTANCES = 3


@dataclass(frozen=True)
class SuiteSettings:
    examples: int = 20  # Hypothesis examples (each a fresh fleet and a sequence of steps)
    steps: int = 20  # at most this many steps per example
    derandomize: bool = False  # the same sequences on every run
    phases: tuple[Phase, ...] = PHASES


@dataclass
class Report:
    """What a run found: passed, or the broken rule with the (shrunk) sequence of steps that shows it."""

    mode: str
    passed: bool
    instances: list[str] = field(default_factory=list)
    rule: str | None = None
    detail: str = ""
    steps: list[Step] = field(default_factory=list)
    examples: int = 0
    total_steps: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    coverage: dict[str, int] = field(default_factory=dict)  # rule -> times its answer was seen and checked
    reads: int = 0  # requests sent only to read back what the steps changed
    drill: str = ""  # the drill that failed

    def render(self) -> str:
        """A readable report: the verdict, then for a failure each step with its HTTP exchanges."""
        head = f"mockcore-contracts server ({self.mode}) on {', '.join(self.instances) or 'no instances'}"
        lines = [head, ""]
        lines.extend(f"note: {note}" for note in self.notes)
        unit = "drill(s)" if self.mode == "drills" else "example(s)"
        stats = f"{self.examples} {unit}, {self.total_steps} step(s), {self.seconds:.1f} s"
        if self.passed:
            lines.append(f"PASSED: every rule held ({stats}).")
            return "\n".join(lines)
        lines.append(f"FAILED: rule `{self.rule}` is broken ({stats}).")
        lines.append(f"  {self.detail}")
        lines.append("")
        heading = (
            f"The failing drill, `{self.drill}`, from its last reset"
            if self.drill
            else "The smallest failing sequence found"
        )
        lines.append(f"{heading} ({len(self.steps)} steps):")
        for step in self.steps:
            lines.append("")
            lines.append(f"step {step.number}: {step.title}")
            if step.expected:
                lines.append(f"  expected: {step.expected}")
            lines.extend(exchange.render() for exchange in step.exchanges)
        lines.append("")
        lines.append(f"broken rule: {self.rule}: {self.detail}")
        return "\n".join(lines)

    def fail(self, found: Violation, log: StepLog) -> None:
        """The target broke `found.rule`; the steps that led there are the report's."""
        self.passed, self.rule, self.detail = False, found.rule, found.detail
        self.steps = list(log.steps)

    def unusable(self, problem: TargetError) -> None:
        """The target could not be used as described (no rule of the inventory is to blame)."""
        self.passed, self.rule, self.detail = False, "target-description", str(problem)

    def finish(self, log: StepLog, started: float) -> Report:
        """The run's figures: runs, steps, reads, the rules exercised and the time taken."""
        self.examples, self.total_steps, self.reads = log.runs, log.total_steps, log.reads
        self.coverage = dict(sorted(log.outcomes.items()))
        self.seconds = time.monotonic() - started
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "passed": self.passed,
            "rule": self.rule,
            "detail": self.detail,
            "examples": self.examples,
            "steps": self.total_steps,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
            "sequence": [
                {
                    "step": s.number,
                    "title": s.title,
                    "expected": s.expected,
                    "exchanges": [
                        {
                            "method": e.method,
                            "url": e.url,
                            "status": e.status,
                            "body": e.response_body.decode("utf-8", "replace"),
                        }
                        for e in s.exchanges
                    ],
                }
                for s in self.steps
            ],
        }


def _quantities() -> st.SearchStrategy[object]:
    valid = st.one_of(st.just(1), st.integers(1, 1000), st.integers(1, 1000).map(str))
    invalid = st.sampled_from([0, 1001, -1, "many", 1.5, None, True, [1]])
    return st.one_of(valid, valid, valid, valid, valid, invalid)


def guarded(step: Callable[..., Any]) -> Callable[..., Any]:
    """A state-machine rule that marks its machine failed when it raises, so teardown does not bury the failure."""

    @functools.wraps(step)
    def run(machine: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return step(machine, *args, **kwargs)
        except BaseException:
            machine.failed = True
            raise

    return run


def machine_for(fleet: Fleet, log: StepLog) -> type[RuleBasedStateMachine]:
    """A state machine class bound to this target (a class per run: no module-level state)."""
    names = list(fleet.instances)

    def keys_strategy(checker: Checker, odd: bool = True) -> st.SearchStrategy[str]:
        real = [k.key for k in checker.keys]
        return st.sampled_from(real * 3 + [UNKNOWN_KEY, MALFORMED_KEY] if odd else real)

    def instance(machine: RuleBasedStateMachine, data: st.DataObject) -> str:
        """Any instance, with backups and active ones drawn more often (the refusals of the transition table are
        per state, so every state is asked for often)."""
        model = machine.checker.model  # type: ignore[attr-defined]
        backups = [n for n, i in model.instances.items() if i.is_backup] or names
        actives = [n for n, i in model.instances.items() if i.state == "active"] or names
        return data.draw(st.sampled_from([*names, *backups, *actives]), "on")

    class ServerContract(RuleBasedStateMachine):
        files = Bundle("files")
        scans = Bundle("scans")

        def __init__(self) -> None:
            super().__init__()
            self.failed = False
            self.checker = Checker(fleet, log)
            self.checker.start()

        @initialize(start=st.sampled_from(STARTS))
        @guarded
        def starting_point(self, start: str) -> None:
            """Where the example starts: a fresh fleet, or one already walked (through checked steps) to a
            production with or without a backup, so short examples reach nominations and failovers too."""
            walk_to(self.checker, start)

        def on(self, data: st.DataObject) -> str:
            return instance(self, data)

        def deployment_of(self, who: str | None) -> str:
            """An instance's deployment id; None: an outside machine's; "malformed": one of the wrong format."""
            if who is None:
                return OUTSIDER
            if who == "malformed":
                return MALFORMED_DEPLOYMENT
            return self.checker.model.instances[who].deployment

        @rule(data=st.data(), quantity=_quantities())
        @guarded
        def activate(self, data: st.DataObject, quantity: object) -> None:
            self.checker.activate(self.on(data), data.draw(keys_strategy(self.checker), "key"), quantity)

        @rule(
            data=st.data(),
            file=files,
            edit=st.sampled_from(["as issued", "as issued", "edited"]),
            to_owner=st.booleans(),
        )
        @guarded
        def upload(self, data: st.DataObject, file: LicenceFileModel, edit: str, to_owner: bool) -> None:
            """Upload a file, half the time to the instance it was issued for (the one that may accept it)."""
            content, label = _maybe_edited(file, edit, self.checker)
            owner = self.checker.model.deployments().get(file.deployment)
            self.checker.upload(owner if to_owner and owner else self.on(data), content, label)

        @rule(data=st.data(), production=st.sampled_from([*names, None, "own"]))
        @guarded
        def register_online(self, data: st.DataObject, production: str | None) -> None:
            name = self.on(data)
            deployment = self.deployment_of(name if production == "own" else production)
            self.checker.register_online(name, data.draw(keys_strategy(self.checker), "key"), deployment)

        @rule(data=st.data(), production=st.sampled_from(names))
        @guarded
        def register_online_with_production_key(self, data: st.DataObject, production: str) -> None:
            """The request a runbook sends: the production's own key and deployment (most likely to succeed)."""
            held = self.checker.model.instances[production]
            key = held.key or self.checker.keys[0].key
            self.checker.register_online(self.on(data), key, held.deployment)

        @rule(data=st.data(), file=files, edit=st.sampled_from(["as issued", "as issued", "edited"]))
        @guarded
        def register_offline(self, data: st.DataObject, file: LicenceFileModel, edit: str) -> None:
            content, label = _maybe_edited(file, edit, self.checker)
            self.checker.register_offline(self.on(data), content, label)

        @rule(data=st.data())
        @guarded
        def unregister(self, data: st.DataObject) -> None:
            self.checker.unregister(self.on(data))

        @rule(data=st.data())
        @guarded
        def nominate(self, data: st.DataObject) -> None:
            self.checker.nominate(self.on(data))

        @rule(data=st.data())
        @guarded
        def deactivate(self, data: st.DataObject) -> None:
            self.checker.deactivate(self.on(data))

        @rule(
            target=files,
            data=st.data(),
            owner=st.sampled_from([*names, None, "malformed"]),
            quantity=st.one_of(st.just(1), st.just(1), st.sampled_from([0, 1001])),
        )
        @guarded
        def obtain_file(self, data: st.DataObject, owner: str | None, quantity: int) -> object:
            deployment = self.deployment_of(owner)
            issued = self.checker.obtain_file(data.draw(keys_strategy(self.checker), "key"), deployment, quantity)
            return multiple() if issued is None else issued

        @rule(data=st.data(), owner=st.sampled_from([*names, None]))
        @guarded
        def free_slot(self, data: st.DataObject, owner: str | None) -> None:
            self.checker.free_slot(data.draw(keys_strategy(self.checker), "key"), self.deployment_of(owner))

        @rule(data=st.data())
        @guarded
        def readiness(self, data: st.DataObject) -> None:
            self.checker.readiness(self.on(data))

        @rule(data=st.data(), verbose=st.booleans())
        @guarded
        def readiness_plain(self, data: st.DataObject, verbose: bool) -> None:
            self.checker.readiness(self.on(data), verbose=verbose)

        @rule(data=st.data(), missing=st.booleans())
        @guarded
        def unauthenticated(self, data: st.DataObject, missing: bool) -> None:
            self.checker.unauthenticated(self.on(data), missing)

        @rule(days=st.sampled_from([1, 7, 30]))
        @guarded
        def advance_clock(self, days: int) -> None:
            self.checker.advance_clock(days)

        @rule(data=st.data(), edge=st.sampled_from([-1, 0, 1]))
        @guarded
        def clock_to_expiry(self, data: st.DataObject, edge: int) -> None:
            """The clock to a key's expiry date (the last valid day), the day before, or the first expired day."""
            expires = self.checker.model.keys[data.draw(keys_strategy(self.checker, odd=False), "key")].expires
            if expires != date.max:
                self.checker.set_date(expires + timedelta(days=edge))

        @rule(target=scans, data=st.data(), infected=st.booleans())
        @guarded
        def scan(self, data: st.DataObject, infected: bool) -> object:
            name = self.on(data)
            content, label = (EICAR, "the EICAR test file") if infected else (SAMPLE, "a file")
            data_id = self.checker.scan(name, content, label)
            return multiple() if data_id is None else (name, data_id, infected)

        @rule(scan=scans)
        @guarded
        def scan_result(self, scan: tuple[str, str, bool]) -> None:
            self.checker.scan_result(*scan)

        @rule(data=st.data(), enable=st.booleans())
        @guarded
        def toggle_engine(self, data: st.DataObject, enable: bool) -> None:
            name = self.on(data)
            engines = self.checker.engines(name)
            self.checker.toggle_engine(name, engines[0] if engines else "clamav_1_linux", enable)

        def teardown(self) -> None:
            """Everything, at the end of an example that did not already fail (a failure is the report's)."""
            if not self.failed:
                self.checker.check_fleet()

    if not fleet.control:
        del ServerContract.advance_clock  # type: ignore[attr-defined]
    return ServerContract


STARTS = ("fresh", "production", "production and online backup", "production and offline backup")


def walk_to(checker: Checker, start: str) -> None:
    """Walk a fresh fleet to a starting point with ordinary, checked steps (first instance production, second
    backup, first key)."""
    names = list(checker.fleet.instances)
    if start == "fresh" or not checker.keys:
        return
    key, production = checker.keys[0].key, names[0]
    if start == "production and offline backup":
        issued = checker.obtain_file(key, checker.model.instances[production].deployment)
        if issued is None:
            return
        checker.upload(production, issued.content, f"the licence file issued for {production}")
        if len(names) > 1:
            checker.register_offline(names[1], issued.content, f"the licence file issued for {production}")
    else:
        checker.activate(production, key, 1)
        if start == "production and online backup" and len(names) > 1:
            checker.register_online(names[1], key, checker.model.instances[production].deployment)


def _maybe_edited(file: LicenceFileModel, edit: str, checker: Checker) -> tuple[bytes, str]:
    owner = checker.model.deployments().get(file.deployment, "an outside machine")
    label = f"the licence file issued for {owner}" if owner != "an outside machine" else "an outside machine's file"
    if edit == "as issued":
        return file.content, label
    return edited(file.content), f"{label}, edited"


def run_state_machine(fleet: Fleet, suite: SuiteSettings) -> Report:
    """Explore the target with the state machine (targets with a control plane)."""
    log = StepLog()
    machine = machine_for(fleet, log)
    report = Report(mode="explore", passed=True, instances=list(fleet.instances))
    if len(fleet.instances) < MIN_INSTANCES:
        report.notes.append(
            f"the target has {len(fleet.instances)} instance(s); backups and nominations are explored best with "
            f"{MIN_INSTANCES} or more (mockcore serve --instance a --instance b --instance c)"
        )
    hypothesis_settings = stateful_settings(suite.examples, suite.steps, suite.derandomize, suite.phases)
    started = time.monotonic()
    try:
        run_state_machine_as_test(machine, settings=hypothesis_settings)
    except Violation as found:
        report.fail(found, log)
    except Flaky as flaky:
        report.fail(broken("service.answers", f"the same sequence gave different answers on a replay: {flaky}"), log)
    except TargetError as exc:
        report.unusable(exc)
    return report.finish(log, started)


def run_drills(fleet: Fleet) -> Report:
    """Every drill, in order, each from a reset fleet with the suite's keys: each rule driven to its edges on
    purpose, so one broken rule is reported by every run whatever the seed."""
    log = StepLog()
    checker = Checker(fleet, log)
    report = Report(mode="drills", passed=True, instances=list(fleet.instances))
    started = time.monotonic()
    for drill in DRILLS:
        if len(fleet.instances) < drill.instances:
            report.notes.append(f"drill `{drill.name}` needs {drill.instances} instances: not run")
            continue
        lacking = drill.steps_aside(checker.model.profile)
        if lacking:
            report.notes.append(
                f"drill `{drill.name}` needs {', '.join(lacking)}, which the {fleet.profile} profile lacks: not run"
            )
            continue
        log.start_run()
        try:
            drill.run(checker)
        except Violation as found:
            report.fail(found, log)
            report.drill = drill.name
            break
        except TargetError as exc:
            report.unusable(exc)
            break
    return report.finish(log, started)


def run_checked(mode: str, fleet: Fleet, body: Callable[[Checker], None]) -> Report:
    """Run a fixed sequence through a Checker, turning a violation into a report."""
    log = StepLog()
    checker = Checker(fleet, log)
    report = Report(mode=mode, passed=True, instances=list(fleet.instances))
    started = time.monotonic()
    log.start_run()
    try:
        body(checker)
    except Violation as found:
        report.fail(found, log)
    except TargetError as exc:
        report.unusable(exc)
    return report.finish(log, started)


@dataclass
class ServerRun:
    """Everything `mockcore-contracts server` did: the reports of each part, and the parity comparison."""

    reports: list[Report] = field(default_factory=list)
    parity: list[str] = field(default_factory=list)  # differences from the recorded snapshot
    snapshot: dict[str, Any] | None = None  # what this run recorded (the failover sequence's answers)
    skipped: list[str] = field(default_factory=list)  # parts not run, and why

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reports) and not self.parity


def run_server_suite(
    fleet: Fleet, suite: SuiteSettings, *, recording: bool = False, recorded: dict[str, Any] | None = None
) -> ServerRun:
    """What the suite runs on a target, by what the target can do:

    - control plane: the state machine (or, to record or compare parity, the fixed failover sequence);
    - no control plane: the read-only checks; with destructive steps allowed, then the failover sequence.
    """
    run = ServerRun()
    wants_parity = recording or recorded is not None
    if not fleet.control:
        run.reports.append(run_checked("read-only", fleet, read_only))
        if not fleet.target.allow_destructive:
            run.skipped.append(
                "destructive steps: the target has no control plane (a real Core?); pass --allow-destructive to run "
                "the short failover sequence, which activates, registers, nominates and deactivates the first two "
                "instances and leaves them unlicensed"
            )
            return run
    if fleet.control and not wants_parity:
        drills = run_drills(fleet)
        run.reports.append(drills)
        if drills.passed:
            run.reports.append(run_state_machine(fleet, suite))
        return run
    if PROFILES[fleet.profile].lacks(NOMINATION_PATH):
        run.skipped.append(
            f"the failover sequence: the {fleet.profile} profile has no backups, nominations or deactivation"
        )
        return run
    log_holder: list[Checker] = []

    def sequence(checker: Checker) -> None:
        log_holder.append(checker)
        failover(checker)

    report = run_checked("failover sequence", fleet, sequence)
    run.reports.append(report)
    if log_holder and wants_parity:
        checker = log_holder[0]
        masks = parity.masks_for(
            fleet.instances, fleet.activation_url, fleet.deployments, [k.key for k in checker.keys]
        )
        run.snapshot = parity.snapshot(checker.log.steps, masks)
        if recorded is not None:
            run.parity = parity.compare(recorded, run.snapshot)
    return run
