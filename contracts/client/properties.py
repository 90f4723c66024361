"""The properties one client call is judged by, from what the client reported and what the journal shows it sent.

Each check raises `Violation(rule, detail)` naming the property (see `contracts.client.report.PROPERTIES`); they
run in the order of that table, so the most specific property is the one named.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from contracts.checks import Violation, describe
from contracts.client.adapter import (
    ACTIVATE,
    BACKUP_FLAG,
    LICENCE_INFO,
    REGISTER_OFFLINE,
    REGISTER_ONLINE,
    UPLOAD_LICENCE,
    Call,
    Failure,
    OperationSpec,
    Outcome,
    Success,
    describe_outcome,
)
from contracts.client.journal import Record
from contracts.model import Outcome as Expected
from contracts.spec import ContractSpec

BODY_KEPT = 16 * 1024  # the journal keeps the first 16 KiB of a request body, as text
DEFAULT_QUANTITY = 1  # the activation's `quantity` when the body has none (contracts/openapi.yaml)


def check_requests(records: Sequence[Record], contract: ContractSpec) -> None:
    """`request-well-formed`: every request the client sent, as the journal recorded it, keeps the contract."""
    for record in records:
        problems = contract.validate_request(
            record.method, record.path, query=record.query, headers=record.headers, body=record.body
        )
        if record.body_unknown:  # dropped before its body was read: judge the request line and headers only
            problems = [p for p in problems if "body" not in p]
        if problems:
            raise Violation("request-well-formed", f"{record.target()}: " + "; ".join(problems))


def relevant(records: Sequence[Record], spec: OperationSpec, instance: str) -> list[Record]:
    """The requests that carry the operation: its method and path, on the instance asked about."""
    return [
        r
        for r in records
        if r.face == "core" and r.instance == instance and r.method == spec.method and r.path == spec.path
    ]


def _sent(records: Sequence[Record]) -> str:
    return "; ".join(r.target() for r in records) or "nothing"


def check_outcome(call: Call, spec: OperationSpec, outcome: Outcome, records: Sequence[Record]) -> list[Record]:
    """The client's outcome against the server's answers to the operation's requests; returns those requests."""
    name = call.instance.name
    carried = relevant(records, spec, name)
    if not carried:
        if not records and call.instance.ca_path and isinstance(outcome, Failure) and outcome.status is None:
            raise Violation(
                "verifies-tls",
                f"the client was asked to {spec.summary} on {name} over HTTPS ({call.instance.url}) and reported that "
                f"no answer came ({outcome.error!r}), but no request reached the instance: it does not trust the "
                f"fleet's certificate, signed by the CA the instance's `ca_path` names ({call.instance.ca_path})",
            )
        raise Violation(
            "sends-the-operation",
            f"the client was asked to {spec.summary} on {name} ({spec.method} {spec.path}) but sent {_sent(records)}",
        )
    check_arguments(call, carried)
    received = [r for r in carried if r.received]
    applied = [r for r in carried if r.succeeded]
    last = carried[-1]
    last_received = received[-1] if received else None
    if isinstance(outcome, Success):
        if not applied:
            raise Violation(
                "no-false-success",
                f"the client reported success, but the server never answered success to {spec.method} {spec.path}: "
                f"the answer was {last.answer()}",
            )
        if spec.name in (LICENCE_INFO, BACKUP_FLAG):
            views = [r for r in applied if r.received]
            if not views:
                raise Violation(
                    "no-false-success",
                    f"the client reported a {spec.name} view, but no answer to {spec.method} {spec.path} reached it "
                    f"({last.answer()})",
                )
            _check_view(spec.name, outcome, views[-1])
        return carried
    assert isinstance(outcome, Failure)
    if outcome.status is None:
        if last.received:
            raise Violation(
                "surfaces-server-error",
                f"the client reported that no answer came ({outcome.error!r}), but the server answered {last.answer()}",
            )
        return carried
    if last_received is None:
        raise Violation(
            "surfaces-server-error",
            f"the client reported {outcome.status} {outcome.error!r}, but no answer reached it: {last.answer()}",
        )
    if last_received.succeeded:
        raise Violation(
            "reports-server-success",
            f"the server answered {last_received.answer()}, yet the client reported {describe_outcome(outcome)}",
        )
    earlier = [r for r in applied if r.id < last_received.id]
    if earlier:
        first = carried.index(earlier[0])
        raise Violation(
            "no-double-apply",
            f"request #{first + 1} of {len(carried)} was carried out ({earlier[0].answer()}); the client sent the "
            f"operation again {len(carried) - first - 1} time(s), the last answered {last_received.answer()}, and "
            f"reported that as the outcome ({describe_outcome(outcome)}): the operation had happened",
        )
    server_err = last_received.err
    if outcome.status != last_received.status or (
        server_err is not None and outcome.error.strip() != server_err.strip()
    ):
        holds = (
            f"`error` holds the answer's `err` text ({server_err!r})"
            if server_err is not None
            else "the answer has no `err` text (not a JSON object with `err`), so `error` may hold anything (the "
            "answer's body is best); only the status is compared"
        )
        raise Violation(
            "surfaces-server-error",
            f"the server answered {last_received.answer()}, the client reported {describe_outcome(outcome)}: the "
            f"status must be the server's ({last_received.status}), and {holds}",
        )
    return carried


def check_arguments(call: Call, carried: Sequence[Record]) -> None:
    """`sends-given-arguments`: every request that carries the operation carries exactly the values the client was
    given (key, quantity, production deployment, licence file bytes)."""
    for number, record in enumerate(carried, 1):
        problems = argument_problems(call.operation, call.arguments, record)
        if problems:
            which = f" (request {number} of {len(carried)})" if len(carried) > 1 else ""
            raise Violation(
                "sends-given-arguments",
                f"the client was asked to {call.describe()}; {record.target()}{which} carries other values: "
                + "; ".join(problems),
            )


def _differs(what: str, sent: object, given: str) -> str:
    case = " (the same key in another case: keys are case-sensitive)" if str(sent).lower() == given.lower() else ""
    return f"{what} is {sent!r}, the client was given {given!r}{case}"


def argument_problems(operation: str, arguments: Mapping[str, Any], record: Record) -> list[str]:
    """How one request's values differ from the call's arguments (nothing to say of a part the journal lacks)."""
    problems: list[str] = []
    if operation == ACTIVATE and not record.body_unknown:
        try:
            body = json.loads(record.body)
        except ValueError:
            return []  # not JSON: request-well-formed says so
        if not isinstance(body, dict):
            return []
        if body.get("activationKey") != arguments["key"]:
            problems.append(_differs("`activationKey`", body.get("activationKey"), arguments["key"]))
        sent = body.get("quantity", DEFAULT_QUANTITY)
        value = int(sent) if isinstance(sent, str) and sent.isdigit() else sent
        if isinstance(value, bool) or value != arguments["quantity"]:
            shown = "absent (the server takes 1)" if "quantity" not in body else repr(sent)
            problems.append(f"`quantity` is {shown}, the client was given {arguments['quantity']!r}")
    elif operation == REGISTER_ONLINE:
        headers = record.headers
        for header, name in (("activation-key", "key"), ("active-deployment-id", "production_deployment")):
            if headers.get(header) != arguments[name]:
                problems.append(_differs(f"the `{header}` header", headers.get(header), arguments[name]))
    elif operation in (UPLOAD_LICENCE, REGISTER_OFFLINE) and not record.body_unknown:
        given: bytes = arguments["licence"]
        kept = given[:BODY_KEPT].decode("utf-8", errors="replace")
        sent_text = record.body.decode("utf-8")
        if record.body_size != len(given) or sent_text != kept:
            at = next((i for i, (a, b) in enumerate(zip(sent_text, kept, strict=False)) if a != b), None)
            where = f", first different at character {at}" if at is not None else ""
            if record.body_size != len(given):
                size = f"the body is {record.body_size} bytes, not the {len(given)} bytes of the licence file given"
            else:
                size = f"the body differs from the {len(given)} bytes of the licence file given"
            problems.append(f"{size}{where} (send the file's bytes exactly as issued)")
    return problems


def check_refuses_impostor(call: Call, outcome: Outcome, records: Sequence[Record], certificate: str) -> None:
    """`verifies-tls`: given an URL whose certificate is `certificate` (another CA's, or another host's), the client
    refuses the handshake (no request gets through) and reports that no answer came."""
    through = [r for r in records if r.through_impostor]
    if through:
        raise Violation(
            "verifies-tls",
            f"the client was given {call.instance.url} for {call.instance.name}, served with {certificate}; it "
            f"should have refused the handshake, yet it sent {_sent(through)} (does it disable verification, or "
            "ignore the CA the instance's `ca_path` names?)",
        )
    if not (isinstance(outcome, Failure) and outcome.status is None):
        raise Violation(
            "verifies-tls",
            f"the client refused {certificate} (no request got through), but reported {describe_outcome(outcome)} "
            "instead of a failure with no answer (`status` null)",
        )


def _check_view(operation: str, outcome: Success, record: Record) -> None:
    body = record.response_json()
    if not isinstance(body, dict):
        return  # not the client's concern: the server suite checks the server's answers
    result = outcome.result
    if operation == BACKUP_FLAG:
        expected: dict[str, object] = {"is_backup": body.get("is_backup")}
    else:
        licensed = "days_left" in body
        expected = {
            "licensed": licensed,
            "deployment": body.get("deployment"),
            "reactivate": bool(body.get("reactivate", False)),
        }
        if licensed:
            expected["days_left"] = body.get("days_left")
            expected["online_activated"] = body.get("online_activated")
        if "expiration" in result and licensed:
            expected["expiration"] = body.get("expiration")
    differs = {k: (result.get(k), v) for k, v in expected.items() if result.get(k) != v}
    if differs:
        shown = ", ".join(f"{k}: client {got!r}, server {want!r}" for k, (got, want) in differs.items())
        raise Violation(
            "client-view", f"the client's {operation} view differs from the server's answer {body}: {shown}"
        )


def check_against_model(call: Call, outcome: Outcome, expected: Expected, carried: Sequence[Record]) -> None:
    """`outcome-agrees-with-model`, for calls without a fault: success exactly when the model predicts it, and
    the predicted error otherwise. A difference left after the checks above means the client's request was not
    the operation asked for (another key, deployment, form...)."""
    answered = carried[-1].answer() if carried else "nothing"
    if isinstance(outcome, Success) != expected.ok:
        raise Violation(
            "outcome-agrees-with-model",
            f"the model expects {describe(expected)} (rule {expected.rule}) for {call.describe()}; the client "
            f"reported {describe_outcome(outcome)} (the server answered {answered}): the request the client sent "
            "is not the operation it was asked for",
        )
    if isinstance(outcome, Failure) and outcome.status is not None and expected.error is not None:
        text = expected.body.get("err") if isinstance(expected.body, dict) else None
        if outcome.status != expected.status or (text is not None and outcome.error.strip() != str(text).strip()):
            raise Violation(
                "outcome-agrees-with-model",
                f"the model expects {describe(expected)} (rule {expected.rule}) for {call.describe()}; the client "
                f"reported {describe_outcome(outcome)} (the server answered {answered})",
            )
