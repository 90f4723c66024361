"""What a client run found, readable: the verdict, the broken property, and the (shrunk) sequence of steps, each
client call with the fault the harness injected, the model's expectation, what the client reported and every HTTP
exchange the client had with the fleet (read back from the mock's journal)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hypothesis.errors import Flaky

from contracts.checks import Step, Violation
from contracts.exchange import Exchange

# The properties a client is checked for, in the order they are judged; a report names the first one broken.
PROPERTIES: dict[str, str] = {
    "adapter-protocol": "the adapter answered every call with a well-formed outcome (no crash, no timeout, JSON)",
    "request-well-formed": "every request the client sent keeps contracts/openapi.yaml (method, path, apikey, "
    "headers, body types, content types)",
    "verifies-tls": "over HTTPS the client verifies the fleet's certificate with the CA `ca_path` names: it trusts "
    "that CA, and refuses a certificate another CA signed or one for another host (no request, no answer reported)",
    "sends-the-operation": "the client sent the operation's request to the instance it was asked about",
    "sends-given-arguments": "every request carrying the operation carries the values the client was given: the key "
    "(its case too), the quantity (a string of digits counts as its number), the production's deployment, the "
    "licence file's exact bytes",
    "no-false-success": "the client reported success only when the server answered success",
    "no-double-apply": "a retrying client does not apply an operation twice, nor report the refusal of a resend as "
    "the outcome of an operation the server had carried out (its answer lost)",
    "reports-server-success": "the client reported failure only when the server did not answer success",
    "surfaces-server-error": "a failure carries the server's own status and `err` text (or says no answer came "
    "when none did): nothing invented, nothing swallowed",
    "client-view": "the client's view of the licence / backup flag is the server's answer",
    "outcome-agrees-with-model": "without faults, the client's outcome is the one the model predicts for the "
    "operation asked for (success or the catalogue error)",
    "fleet-matches-model": "after each call the fleet (licences, backup flags, slots) is where the model says",
}


# The rules of the inventory (contracts/rules.py) each property rests on: what the server does that the client must
# take into account. `adapter-protocol`, `sends-the-operation` and `verifies-tls` are about the client alone.
PROPERTY_RULES: dict[str, tuple[str, ...]] = {
    "adapter-protocol": (),
    "request-well-formed": ("service.order-of-checks", "register.request-shape", "auth.missing-apikey"),
    "verifies-tls": (),
    "sends-the-operation": (),
    "sends-given-arguments": (
        "activate.quantity",
        "view.max_node_count",
        "activate.unknown-key",
        "register-online.production-on-key",
        "file.signature",
    ),
    "no-false-success": ("refused.changes-nothing",),
    "no-double-apply": ("nominate.moves-slot", "refused.changes-nothing"),
    "reports-server-success": (
        "register.success-sentence",
        "unregister.success-sentence",
        "nominate.success-sentence",
    ),
    "surfaces-server-error": ("online.activation-server-down", "service.answers"),
    "client-view": (
        "view.deployment",
        "view.reactivate",
        "view.days_left",
        "view.expiration",
        "view.online_activated",
        "view.backup-flag",
    ),
    "outcome-agrees-with-model": ("refused.changes-nothing", "slots.accounting"),
    "fleet-matches-model": ("slots.accounting", "slots.within-key", "refused.changes-nothing"),
}

# Wording that composed messages can produce and a reader should not see: a location named twice ("body the body")
# and a small word doubled ("the the"); quoted text ("..." and '...': server answers, client errors) is left as it is.
_REPEATS = (
    (re.compile(r"\bbody the body\b"), "the body"),
    (re.compile(r"\b(the|a|an|of|to|is|was|and|in|on|by) \1\b"), r"\1"),
)
# A quoted span: double quotes (backslash escapes inside), or single quotes that open and close outside a word (so
# the apostrophe of "client's" opens nothing).
_QUOTED = re.compile(r"(\"(?:[^\"\\]|\\.)*\"|(?<!\w)'(?:[^'\\]|\\.)*'(?!\w))")


def plain(text: str) -> str:
    """`text` without the repeated words composed messages can have, outside quoted spans."""
    parts = _QUOTED.split(text)
    for i in range(0, len(parts), 2):  # the even parts lie outside quotes
        for pattern, replacement in _REPEATS:
            parts[i] = pattern.sub(replacement, parts[i])
    return "".join(parts)


@dataclass
class ClientStep(Step):
    """A call of the client (`kind` "client") or a step the harness took itself (`kind` "harness")."""

    kind: str = "harness"
    call: str = ""
    fault: str = ""
    reported: str = ""
    output: str = ""  # what the client printed besides its outcome


@dataclass
class ClientReport:
    client: str
    passed: bool
    instances: list[str] = field(default_factory=list)
    rule: str | None = None
    detail: str = ""
    phase: str = ""  # "drill <name>" or "exploration"
    steps: list[Step] = field(default_factory=list)
    drills: int = 0
    examples: int = 0
    calls: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    coverage: dict[str, int] = field(default_factory=dict)  # "operation: outcome" -> count
    command: str = "client"  # the `mockcore-contracts` command that ran
    generated: str = "sequence"  # what a generated example is: a sequence of calls, or a workflow case
    property_text: str = ""  # the broken property in words, when it is not one of PROPERTIES
    property_rules: tuple[str, ...] = ()

    @property
    def sequences(self) -> int:
        return self.drills + self.examples

    def render(self, *, harness_exchanges: bool = False) -> str:
        lines = [
            f"mockcore-contracts {self.command}: {self.client}",
            f"fleet: {', '.join(self.instances) or '?'}",
            "",
        ]
        lines.extend(f"note: {note}" for note in self.notes)
        stats = (
            f"{self.drills} drill(s) and {self.examples} generated {self.generated}(s), {self.calls} client call(s), "
            f"{self.seconds:.1f} s"
        )
        if self.passed:
            lines.append(f"PASSED: every property held ({stats}).")
            return "\n".join(lines)
        detail = plain(self.detail)
        lines.append(f"FAILED: property `{self.rule}` is broken ({self.phase}; {stats}).")
        text = self.property_text or PROPERTIES.get(self.rule or "", "")
        rules = self.property_rules or PROPERTY_RULES.get(self.rule or "", ())
        if text:
            lines.append(f"  the property: {text}")
        if rules:
            lines.append(f"  the rules it rests on: {', '.join(rules)} (docs/rules.md)")
        lines.append(f"  what happened: {detail}")
        lines.append("")
        lines.append(f"{self.sequence_heading()} ({len(self.steps)} steps):")
        for step in self.steps:
            lines.append("")
            lines.extend(_render_step(step, harness_exchanges))
        lines.append("")
        lines.append(f"broken property: {self.rule}: {detail}")
        return "\n".join(lines)

    def sequence_heading(self) -> str:
        """Only a generated sequence is shrunk; a drill is shown as it ran, up to the step that broke."""
        if self.phase.startswith("drill"):
            return f"The {self.phase}, up to the step that broke the property"
        if any("not deterministic" in note for note in self.notes):
            return f"The last failing {self.generated} (not shrunk: the failure did not happen again)"
        return f"The smallest failing {self.generated} found"

    def as_dict(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "passed": self.passed,
            "rule": self.rule,
            "detail": plain(self.detail),
            "phase": self.phase,
            "drills": self.drills,
            "examples": self.examples,
            "calls": self.calls,
            "seconds": round(self.seconds, 3),
            "notes": self.notes,
            "coverage": self.coverage,
            "sequence": [_step_dict(step) for step in self.steps],
        }


@dataclass
class Failed:
    """The first broken property of a run, and the steps that led to it (what the report shows)."""

    violation: Violation
    steps: list[Any] = field(default_factory=list)


def replay_failure(flaky: Flaky, failed: Failed | None, report: ClientReport, shown: str) -> Violation:
    """What Hypothesis's Flaky means for a client: without a failure of its own, the client answered a replay
    differently (`adapter-protocol`); with one, that failure (its `shown` case or sequence, noted as the last one
    that failed, since the replay did not fail again)."""
    if failed is None:
        return Violation("adapter-protocol", f"the client behaved differently on a replay: {flaky}")
    report.notes.append(
        "the failure did not happen again on Hypothesis's last replay: the client is not "
        f"deterministic (timing?); the {shown} shown is the last one that failed"
    )
    return failed.violation


def _render_step(step: Step, harness_exchanges: bool) -> list[str]:
    if not isinstance(step, ClientStep) or step.kind != "client":
        lines = [f"step {step.number} [harness]: {step.title}"]
        if harness_exchanges:
            lines.extend(exchange.render() for exchange in step.exchanges)
        return lines
    lines = [f"step {step.number} [client]: {step.title}", f"  call: {step.call}"]
    lines.append(f"  fault: {step.fault or 'none'}")
    if step.expected:
        lines.append(f"  the model expects: {step.expected}")
    if step.reported:
        lines.append(f"  the client reported: {step.reported}")
    if step.output:
        lines.extend(f"  | {line}" for line in step.output.splitlines()[:20])
    if not step.exchanges:
        lines.append("  (the client sent no request)")
    lines.extend(_render_exchange(exchange) for exchange in step.exchanges)
    return lines


def _render_exchange(exchange: Exchange) -> str:
    text = exchange.render()
    if exchange.status == 0:  # no answer reached anyone: the journal's `status: null`
        text = text.replace("  < 0 (", "  < (", 1)
    return text


def _step_dict(step: Step) -> dict[str, Any]:
    doc: dict[str, Any] = {"step": step.number, "title": step.title, "expected": step.expected}
    if isinstance(step, ClientStep):
        doc.update(kind=step.kind, call=step.call, fault=step.fault, reported=step.reported, output=step.output)
    else:
        doc["kind"] = "harness"
    doc["exchanges"] = [
        {
            "method": e.method,
            "url": e.url,
            "request_headers": {k: v for k, v in e.request_headers.items() if k.lower() != "apikey"},
            "request_body": e.request_body.decode("utf-8", "replace"),
            "status": e.status or None,
            "note": e.reason if e.reason.startswith("(") else "",
            "body": e.response_body.decode("utf-8", "replace"),
        }
        for e in step.exchanges
    ]
    return doc
