"""One contract step = one request sent to the target over HTTP, its answer compared with the model's prediction.

`Checker` owns the model of the target's fleet and the step log. Every operation method sends the real request,
asks the model what a conforming server answers, and raises `Violation` (naming the broken rule of the inventory,
`contracts.rules`) when the target answers otherwise, field by field. After each operation it reads back what the
operation can have changed, and nothing more: the instance's licence view (and its backup flag after a successful
registration, unregistration or nomination), the activation server's slot holders when slots can have moved, and
any other instance whose online slot the model says is gone. `check_fleet` reads everything, at the start and end
of a run.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import yaml

from contracts.exchange import SHOWN_REQUEST_HEADERS, Exchange
from contracts.model import (
    DEPLOYMENT_FORMAT,
    SYNC_PATH,
    KeyModel,
    LicenceFileModel,
    Model,
    Outcome,
    Terms,
)
from contracts.rules import RULE_IDS
from contracts.target import Fleet, KeySpec, TargetError

UNKNOWN_KEY = "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ"  # well-formed, on no activation server
MALFORMED_KEY = "not-an-activation-key"
OUTSIDER = "MSCL" + "0123456789abcdef" * 2  # a well-formed deployment id of a machine outside the fleet
MALFORMED_DEPLOYMENT = "MSCL-not-a-deployment"
UNKNOWN_APIKEY = "0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f"  # 36 lowercase hex, the documented shape, known nowhere
SAMPLE = b"mockcore contract suite: a harmless sample file\n"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
DATA_ID = re.compile(r"[0-9a-f]{32}")
EXPIRATION = re.compile(r"\d{2}/\d{2}/\d{4}")
LICENCE_FILE_FIELDS = frozenset(
    {
        "product_id",
        "product_name",
        "activation_key",
        "deployment",
        "expiration",
        "licensed_engines",
        "licensed_to",
        "max_node_count",
        "online",
        "issued",
        "signature",
    }
)
# The licensed view's fields: each one's rule and type (`licensed_engines` is checked by value: the string "*").
LICENSED_FIELDS: dict[str, type] = {
    "days_left": int,
    "deployment": str,
    "expiration": str,
    "licensed_to": str,
    "max_node_count": str,
    "online_activated": bool,
    "product_id": str,
    "product_name": str,
    "licensed_engines": str,
}
TERM_FIELDS = ("product_id", "product_name", "licensed_to", "max_node_count", "licensed_engines")
# Operations whose success makes an instance a backup or ends it being one: the backup flag is read after them (and
# of every instance at the end of a run).
BACKUP_OPERATIONS = frozenset({"register", "unregister", "nominate"})
# Operations after which the activation server's slots can have changed (or, refused, must not have).
SLOT_OPERATIONS = frozenset({"activate", "upload", "register", "unregister", "nominate", "deactivate", "activation"})


KeyChooser = Callable[[date, list[dict[str, Any]]], list[dict[str, Any]]]
# A step's check: the answer against the prediction, on the model the prediction was made on (the step's copy, which
# the check may complete); returns the rules the answer showed held, or raises `Violation`.
Check = Callable[[Outcome, Exchange, Model], tuple[str, ...]]


class Violation(AssertionError):
    """The target broke a contract rule."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"[{rule}] {detail}")
        self.rule = rule
        self.detail = detail


def broken(rule: str, detail: str) -> Violation:
    """A violation of an inventory rule (an id missing from the inventory is a bug of the suite, said at once)."""
    if rule not in RULE_IDS:
        raise ValueError(f"the suite names a rule that is not in the inventory: {rule!r}")
    return Violation(rule, detail)


@dataclass
class Step:
    number: int
    title: str
    exchanges: list[Exchange] = field(default_factory=list)
    expected: str = ""


@dataclass
class StepLog:
    """The steps of the current run (a Hypothesis example, a drill, or a fixed sequence)."""

    steps: list[Step] = field(default_factory=list)
    runs: int = 0
    total_steps: int = 0
    reads: int = 0  # requests sent only to check what a step changed
    outcomes: Counter[str] = field(default_factory=Counter)  # rule id -> times it was exercised and held

    def start_run(self) -> None:
        self.steps = []
        self.runs += 1


def describe(outcome: Outcome) -> str:
    if outcome.error is not None:
        body = outcome.body if outcome.body is not None else '{"err": <server text>}'
        return f"{outcome.status} {outcome.error} {body}"
    return f"{outcome.status} {outcome.body}" if outcome.body is not None else str(outcome.status)


def terms_of(doc: Mapping[str, Any]) -> Terms:
    return Terms(*(doc.get(name) for name in TERM_FIELDS))  # type: ignore[arg-type]


class Checker:
    def __init__(self, fleet: Fleet, log: StepLog, *, know_clock: bool | None = None) -> None:
        self.fleet = fleet
        self.log = log
        self.conn = fleet.connection
        self.names = list(fleet.instances)
        self.know_clock = fleet.control if know_clock is None else know_clock
        self.model: Model = Model({}, [], date.today(), fleet.target.catalogue, fleet.profile)
        self.keys: list[KeySpec] = []
        self.refused_last = False  # the last operation was refused: nothing may have changed
        self.last_rule = ""  # the rule of the last operation, blamed when what it changed reads wrong
        self.verify_after = True  # read back what each operation changed (the client harness does its own)
        self.engine_types: dict[str, tuple[str, str]] = {}  # eng_id -> (eng_name, engine_type), as listed
        self.disabled: dict[str, set[str]] = {}  # instance -> the engines switched off

    # Setting up

    def start(self, keys: KeyChooser | None = None, *, new_run: bool = True) -> None:
        """With a control plane: reset the target (then load the keys `keys` chooses, as state-document entries,
        from today's date and the target's own entries), freeze its clock, and build the model from what it
        shows."""
        if new_run:
            self.log.start_run()
        else:
            self.log.steps = []  # a drill's report shows its steps from its last reset
        if self.fleet.control:
            self.fleet.control_request("POST", "reset")
            if keys is not None:
                document = self.fleet.state_document()
                today = datetime.fromisoformat(document["clock"]["now"]).date()
                document["keys"] = keys(today, document.get("keys", []))
                self.fleet.control_request("PUT", "state", document)
            self.fleet.log_in_again()
            self.fleet.control_request("PUT", "clock", {"frozen": True})
        document = self.fleet.state_document() if self.fleet.control else None
        self.keys = self.fleet.keys(document)
        today = self.fleet.today(document) or datetime.now().date()
        deployments = {}
        for name in self.names:
            step = self.begin(f"read the starting licence of {name}")
            exchange = self.get(name, "/admin/license")
            step.exchanges = self.conn.recorder.take()
            body = self.json_of(exchange, "state.starts-unlicensed")
            if exchange.status != 200 or set(body) - {"deployment", "deployment_id"} or "deployment" not in body:
                raise broken(
                    "state.starts-unlicensed",
                    f"{name} must be unlicensed at the start (after a reset where the target has a control plane); "
                    f"GET /admin/license answered {exchange.status} {body}",
                )
            deployment = str(body["deployment"])
            if not DEPLOYMENT_FORMAT.fullmatch(deployment) or body.get("deployment_id", deployment) != deployment:
                raise broken("state.deployment-id", f"{name}'s deployment id is MSCL + 32 lowercase hex: {body}")
            known_before = self.fleet.deployments.get(name)
            if known_before is not None and known_before != deployment:
                raise broken("state.deployment-id", f"{name}'s deployment changed from {known_before} to {deployment}")
            deployments[name] = deployment
            self.exercised("state.starts-unlicensed", "state.deployment-id")
        self.fleet.deployments = deployments
        terms = self.fleet.key_terms(document)
        models = [
            KeyModel(k.key, k.slots, k.expires or date.max, terms=terms_of(terms[k.key]) if k.key in terms else None)
            for k in self.keys
        ]
        if self.fleet.control:
            for key, holders in self.fleet.holders(document).items():
                if holders:
                    raise broken("state.starts-unlicensed", f"key {key} has slots held at the start: {holders}")
        self.model = Model(deployments, models, today, self.fleet.target.catalogue, self.fleet.profile)
        self.refused_last, self.last_rule = False, ""
        if self.fleet.control:
            self.disabled = {name: set() for name in self.names}  # a reset switches every engine back on

    # HTTP

    def url(self, name: str, path: str) -> str:
        return self.fleet.instances[name] + path

    def auth(self, name: str) -> dict[str, str]:
        return {"apikey": self.fleet.apikeys[name]}

    def get(self, name: str, path: str, headers: Mapping[str, str] | None = None) -> Exchange:
        return self.conn.request("GET", self.url(name, path), headers={**self.auth(name), **(headers or {})})

    def post(self, name: str, path: str, **kwargs: Any) -> Exchange:
        headers = {**self.auth(name), **kwargs.pop("headers", {})}
        return self.conn.request("POST", self.url(name, path), headers=headers, **kwargs)

    def begin(self, title: str) -> Step:
        step = Step(len(self.log.steps) + 1, title)
        self.log.steps.append(step)
        self.log.total_steps += 1
        return step

    def exercised(self, *rules: str) -> None:
        self.log.outcomes.update(rules)

    @staticmethod
    def json_of(exchange: Exchange, rule: str) -> dict[str, Any]:
        try:
            body = exchange.json()
        except ValueError as exc:
            raise broken(rule, f"the answer is not JSON: {exchange.response_body[:200]!r}") from exc
        if not isinstance(body, dict):
            raise broken(rule, f"the answer is not a JSON object: {body!r}")
        return body

    def send_step(self, title: str, send: Callable[[], Exchange], expected: str = "") -> Exchange:
        """Send one request as a step of the report; a request with no HTTP answer breaks `service.answers`."""
        step = self.begin(title)
        step.expected = expected
        try:
            answer = send()
            self.exercised("service.answers")
            return answer
        except OSError as exc:  # requests' connection errors, a dropped connection
            raise broken("service.answers", f"no HTTP answer: {exc}") from exc
        finally:
            step.exchanges = self.conn.recorder.take()

    def step(
        self,
        title: str,
        predict: Callable[[Model], Outcome],
        send: Callable[[], Exchange],
        check: Check | None = None,
        expected: Callable[[Outcome], str] = describe,
    ) -> tuple[Outcome, Exchange]:
        """The checked step: predict on a copy of the model, send (the step's `expected` line says the prediction),
        check the answer against the prediction (`check`, by default `compare`), then count the rules the check
        says held and make the copy the model."""
        model = self.model.copy()
        outcome = predict(model)
        exchange = self.send_step(title, send, expected(outcome))
        held = self.compare(outcome, exchange) if check is None else check(outcome, exchange, model)
        self.exercised(*held)
        self.model = model
        return outcome, exchange

    def run(
        self,
        title: str,
        predict: Callable[[Model], Outcome],
        send: Callable[[], Exchange],
        *,
        on: str | None = None,
        kind: str = "",
        check: Check | None = None,
        expected: Callable[[Outcome], str] = describe,
    ) -> tuple[Outcome, Exchange]:
        """An operation: a checked step (`step`) that becomes the last operation (blamed when what it changed reads
        wrong); then what it (`kind`, on instance `on`) can have changed is read back."""
        outcome, exchange = self.step(title, predict, send, check, expected)
        self.refused_last = outcome.error is not None
        self.last_rule = outcome.rule
        if self.verify_after and kind:
            self.verify(on, kind, changed=outcome.ok)
        return outcome, exchange

    def compare(self, outcome: Outcome, exchange: Exchange) -> tuple[str, ...]:
        """The answer against the prediction: a different status or kind of answer breaks the operation's rule; the
        right refusal with another text breaks its catalogue entry. Returns the rules that held: the outcome's."""
        rule = outcome.rule
        if exchange.status != outcome.status:
            raise broken(rule, f"expected {describe(outcome)}, got {exchange.status} {exchange.response_body[:200]!r}")
        body = self.json_of(exchange, rule)
        if outcome.error is not None:
            err = body.get("err")
            entry = f"error.{outcome.error}"
            if set(body) != {"err"} or not isinstance(err, str) or not err:
                raise broken(entry, f'expected {{"err": <text>}} for {outcome.error}, got {body}')
            if outcome.body is not None and body != outcome.body:
                # Another refusal's text is another decision (the operation's rule); any other text is this
                # refusal's catalogue entry.
                others = {e.text for code, e in self.model.catalogue.items() if code != outcome.error}
                blame = rule if err in others else entry
                raise broken(blame, f"expected {outcome.error} {outcome.body}, got {body}")
            return outcome.rules
        expected = outcome.body
        if isinstance(expected, dict) and expected.get("data_id") == "<32 hex>":
            if set(body) != {"data_id"} or not DATA_ID.fullmatch(str(body["data_id"])):
                raise broken(rule, f'expected {{"data_id": <32 hex>}}, got {body}')
            return outcome.rules
        if body != expected:
            sentence = next((r for r in outcome.rules if r.endswith("success-sentence")), rule)
            raise broken(sentence if set(body) == set(expected or {}) else rule, f"expected {expected}, got {body}")
        return outcome.rules

    # Licence operations

    def activate(self, name: str, key: str, quantity: object, body: object = None) -> Exchange:
        doc = body if body is not None else {"activationKey": key, "quantity": quantity, "comment": "contract suite"}
        return self.run(
            f"activate {name} online with key {self.key_label(key)}, quantity {quantity!r}",
            lambda m: m.activate(name, key, quantity),
            lambda: self.post(name, "/admin/license/activation", json_body=doc),
            on=name,
            kind="activate",
        )[1]

    def upload(self, name: str, content: bytes, label: str) -> None:
        self.run(
            f"upload {label} to {name}",
            lambda m: m.upload(name, content),
            lambda: self.post(name, "/admin/license", body=content),
            on=name,
            kind="upload",
        )

    def register_online(self, name: str, key: str, production: str) -> None:
        headers = {"activation-key": key, "active-deployment-id": production}
        self.run(
            f"register {name} as an online backup of {self.deployment_label(production)} on key {self.key_label(key)}",
            lambda m: m.register_online(name, key, production),
            lambda: self.post(name, "/admin/license/backup", headers=headers),
            on=name,
            kind="register",
        )

    def register_offline(self, name: str, content: bytes, label: str) -> None:
        self.run(
            f"register {name} as an offline backup with {label}",
            lambda m: m.register_offline(name, content),
            lambda: self.post(name, "/admin/license/backup", body=content),
            on=name,
            kind="register",
        )

    def unregister(self, name: str) -> None:
        self.run(
            f"unregister the backup {name}",
            lambda m: m.unregister(name),
            lambda: self.conn.request("DELETE", self.url(name, "/admin/license/backup"), headers=self.auth(name)),
            on=name,
            kind="unregister",
        )

    def nominate(self, name: str) -> None:
        self.run(
            f"nominate {name}",
            lambda m: m.nominate(name),
            lambda: self.post(name, "/admin/license/backup/nomination"),
            on=name,
            kind="nominate",
        )

    def deactivate(self, name: str) -> None:
        self.run(
            f"deactivate {name}",
            lambda m: m.deactivate(name),
            lambda: self.post(name, "/admin/license/deactivation"),
            on=name,
            kind="deactivate",
        )

    def refused(
        self,
        name: str,
        title: str,
        code: str,
        rules: tuple[str, ...],
        send: Callable[[], Exchange],
        kind: str = "register",
    ) -> None:
        """A request a conforming server refuses with `code` whatever the instance's state, changing nothing."""
        self.run(title, lambda m: m.error(code, *rules), send, on=name, kind=kind)

    # Scans

    def scan(
        self,
        name: str,
        content: bytes = SAMPLE,
        label: str = "a file",
        *,
        sync: bool = False,
        framed: bool = True,
        callback: str | None = None,
        headers: Mapping[str, str] | None = None,
        who: str = "",
    ) -> str | None:
        """`POST /file` (`sync`: `/file/sync`, whose answer is the finished result, checked by value) of `content`,
        sent with its length or (`framed` false) chunked, with a `callbackurl` if given, with `headers` for the
        instance's apikey. A scan request the plain `POST /file` does not show (sync, unframed, a callback, another
        caller) that is refused must leave the instance's scans as they were (read from the control plane's state
        document). Returns the new scan's data_id, None when refused."""
        path = SYNC_PATH if sync else "/file"
        sent = {**self.auth(name), **(headers or {}), **({"callbackurl": callback} if callback is not None else {})}
        url = self.url(name, path)
        shown = ""
        if callback is not None:
            cut = f"... ({len(callback)} characters)" if len(callback) > 60 else ""
            shown = f" with callbackurl {callback[:60]!r}{cut}"
        title = (
            f"scan {label} on {name}"
            + (" (sync)" if sync else "")
            + ("" if framed else " sent chunked, without its length")
            + shown
            + (f" as {who}" if who else "")
        )
        tracked = sync or not framed or callback is not None or headers is not None
        before = self.scan_count(name) if tracked else None
        infected = content == EICAR
        outcome, exchange = self.run(
            title,
            lambda m: m.scan(name, sync=sync, framed=framed, callback=callback),
            lambda: (
                self.conn.request("POST", url, headers=sent, body=content)
                if framed
                else self.unframed(url, sent, content)
            ),
            check=lambda o, e, m: self.check_sync_result(name, o, e, infected) if sync and o.ok else self.compare(o, e),
        )
        if outcome.error is not None and before is not None and self.scan_count(name) != before:
            raise broken(outcome.rule, f"the scan was refused {outcome.error}, yet {name} kept a new scan")
        return str(exchange.json()["data_id"]) if exchange.status == 200 else None

    def unframed(self, url: str, headers: Mapping[str, str], body: bytes) -> Exchange:
        """A POST whose body is sent chunked (`Transfer-Encoding: chunked`, no Content-Length), recorded as any
        exchange: over HTTP, requests chunks an iterator; in-process, the WSGI environ says chunked and the input is
        terminated (as a server that has de-chunked the body gives it)."""
        sent = {**headers, "Content-Type": "application/octet-stream"}
        base = next((b for b in self.conn.clients if url.startswith(b + "/")), None)
        if base is not None:
            answer = self.conn.clients[base].open(
                path=urlsplit(url).path,
                method="POST",
                headers={**sent, "Transfer-Encoding": "chunked"},
                data=body,
                base_url=base,
                environ_overrides={"wsgi.input_terminated": True},
            )
            status, reason = answer.status_code, answer.status.split(" ", 1)[1] if " " in answer.status else ""
            answered, content = dict(answer.headers.items()), answer.get_data()
        else:
            response = self.conn.session.request(
                "POST",
                url,
                headers=sent,
                data=iter([body]),
                timeout=self.conn.timeout,
                allow_redirects=False,
                verify=self.conn.verify,
            )
            status, reason, answered, content = (
                response.status_code,
                response.reason or "",
                dict(response.headers),
                response.content,
            )
        exchange = Exchange(
            method="POST",
            url=url,
            request_headers={
                **{k: v for k, v in sent.items() if k.lower() in (*SHOWN_REQUEST_HEADERS, "callbackurl")},
                "Transfer-Encoding": "chunked",
            },
            request_body=body,
            status=status,
            reason=reason,
            response_headers=answered,
            response_body=content,
        )
        self.conn.recorder.exchanges.append(exchange)
        return exchange

    def scan_count(self, name: str) -> int | None:
        """How many scans the instance keeps, from the control plane's state document (None: not told)."""
        if not self.fleet.control:
            return None
        scans = self.fleet.state_document().get("instances", {}).get(name, {}).get("scans")
        self.conn.recorder.take()
        return len(scans) if isinstance(scans, list) else None

    def check_sync_result(self, name: str, outcome: Outcome, exchange: Exchange, infected: bool) -> tuple[str, ...]:
        """`POST /file/sync`'s answer: 200 with the finished result, by the same fields and verdict as
        `GET /file/{data_id}` (`check_result`)."""
        if exchange.status != 200:
            raise broken(
                "scan.sync",
                f"expected 200 with the finished result, got {exchange.status} {exchange.response_body[:200]!r}",
            )
        body = self.json_of(exchange, "scan.sync")
        data_id = body.get("data_id")
        if not isinstance(data_id, str) or not DATA_ID.fullmatch(data_id):
            raise broken("scan.sync", f"the result's data_id is 32 hex: {body}")
        self.check_result(name, body, data_id, infected, "scan.sync")
        return (*outcome.rules, "scan.eicar" if infected else "scan.clean")

    def scan_result(
        self,
        name: str,
        data_id: str,
        infected: bool,
        *,
        apikey: bool = True,
        rule: str = "scan.result",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """`GET /file/{data_id}` (the apikey is optional there; `headers` replace the instance's): the finished
        result, and its verdict, engine by engine where the engines' types are known. `rule` is blamed for what is
        not the finished result (`scan.sync` when the scan came from `/file/sync`)."""
        verdict = "scan.eicar" if infected else "scan.clean"
        sent = dict(headers) if headers is not None else self.auth(name) if apikey else {}
        exchange = self.send_step(
            f"read the result of scan {data_id} on {name}" + ("" if apikey else " without an apikey"),
            lambda: self.conn.request("GET", self.url(name, f"/file/{data_id}"), headers=sent),
            f"200 with data_id, file_info, process_info and scan_results ({'infected' if infected else 'clean'})",
        )
        if exchange.status != 200:
            raise broken(rule, f"GET /file/{data_id} answered {exchange.status} {exchange.response_body[:200]!r}")
        self.check_result(name, self.json_of(exchange, rule), data_id, infected, rule)
        self.exercised(rule, verdict, *(() if apikey else ("auth.optional-apikey",)))

    def check_result(self, name: str, body: dict[str, Any], data_id: str, infected: bool, rule: str) -> None:
        """A finished scan result: its documented fields, 100 % done, `Blocked` if infected else `Allowed`, and the
        verdict (`scan.eicar` / `scan.clean`) overall and engine by engine."""
        verdict = "scan.eicar" if infected else "scan.clean"
        results, process = body.get("scan_results"), body.get("process_info")
        if (
            body.get("data_id") != data_id
            or not isinstance(body.get("file_info"), dict)
            or not isinstance(process, dict)
            or process.get("progress_percentage") != 100
            or not isinstance(results, dict)
            or not isinstance(results.get("scan_details"), dict)
        ):
            raise broken(rule, f"the result lacks a documented field: {body}")
        wanted = (1, "Infected") if infected else (0, "No Threat Detected")
        got = (results.get("scan_all_result_i"), results.get("scan_all_result_a"))
        if got != wanted or isinstance(got[0], bool):
            raise broken(verdict, f"expected scan_all_result_i/_a {wanted}, got {got}")
        self.check_engine_verdicts(name, results["scan_details"], infected, verdict)
        if results.get("progress_percentage") != 100 or process.get("result") != ("Blocked" if infected else "Allowed"):
            raise broken(rule, f"a finished scan is 100 % done, Blocked if infected else Allowed: {body}")

    def nodes(self, name: str, headers: Mapping[str, str] | None = None, who: str = "") -> int | None:
        """`GET /stat/nodes` (with `headers` for the instance's apikey): a list of nodes, each with `max_node_count`
        the licence's node count as an integer (what the model says, where it knows the key's terms). Returns it."""
        sent = dict(headers) if headers is not None else self.auth(name)
        found: list[int] = []

        def check(outcome: Outcome, exchange: Exchange, model: Model) -> tuple[str, ...]:
            if outcome.error is not None:
                return self.compare(outcome, exchange)
            rule = outcome.rule
            try:
                listed = exchange.json()
            except ValueError:
                listed = None
            if exchange.status != 200 or not isinstance(listed, list) or not listed:
                raise broken(
                    rule, f"expected 200 with a list of nodes, got {exchange.status} {exchange.response_body[:200]!r}"
                )
            counts = [node.get("max_node_count") if isinstance(node, dict) else None for node in listed]
            if not all(isinstance(n, int) and not isinstance(n, bool) for n in counts):
                raise broken(rule, f"every node's max_node_count is an integer: {counts}")
            if outcome.body is not None and set(counts) != {outcome.body}:
                raise broken(rule, f"max_node_count should be {outcome.body} (the licence's node count), is {counts}")
            found.append(counts[0])
            return outcome.rules

        self.step(
            f"list the nodes of {name}" + (f" as {who}" if who else ""),
            lambda m: m.node_count(name),
            lambda: self.conn.request("GET", self.url(name, "/stat/nodes"), headers=sent),
            check,
            lambda o: f"200, max_node_count {o.body}" if o.ok else describe(o),
        )
        return found[0] if found else None

    def check_engine_verdicts(self, name: str, details: dict[str, Any], infected: bool, rule: str) -> None:
        """Every active engine reports: an AV engine the verdict (and the threat's name when infected), any other
        engine 0 and no threat."""
        if not self.engine_types or name not in self.disabled:
            return
        active = {n: kind for eng_id, (n, kind) in self.engine_types.items() if eng_id not in self.disabled[name]}
        if set(details) != set(active):
            raise broken(rule, f"scan_details should name the active engines {sorted(active)}, names {sorted(details)}")
        for engine_name, kind in active.items():
            detail = details[engine_name]
            av = kind == "av"
            wanted = (1 if infected and av else 0, bool(infected and av))
            got = (detail.get("scan_result_i"), bool(detail.get("threat_found")))
            if not isinstance(detail, dict) or got != wanted:
                raise broken(
                    rule, f"{engine_name} ({kind}) should report scan_result_i and a threat {wanted}: {detail}"
                )

    def poll_unfinished_scan(self, name: str, data_id: str, above: int, exactly: int | None = None) -> int:
        """`GET /file/{data_id}` of a scan still running: progress below 100 and above the last poll's (`exactly`
        this, where the progression's formula tells), `In Progress`. Returns the progress."""
        exchange = self.send_step(
            f"poll the unfinished scan {data_id} on {name}",
            lambda: self.get(name, f"/file/{data_id}"),
            f"200, progress between {above} and 100, In Progress",
        )
        body = self.json_of(exchange, "scan.progress")
        process, results = body.get("process_info") or {}, body.get("scan_results") or {}
        done = process.get("progress_percentage")
        if (
            exchange.status != 200
            or not isinstance(done, int)
            or isinstance(done, bool)
            or not above < done < 100
            or (exactly is not None and done != exactly)
            or results.get("progress_percentage") != done
            or results.get("scan_all_result_a") != "In Progress"
        ):
            raise broken("scan.progress", f"expected progress between {above} and 100, In Progress: {body}")
        self.exercised("scan.progress")
        return done

    def poll_downloading_engines(self, name: str, above: int, exactly: int | None = None) -> int:
        """`GET /stat/engines` while definitions download: every engine `downloading`, progress below 100 and
        above the last poll's. Returns the progress."""
        exchange = self.send_step(
            f"poll the downloading engines of {name}",
            lambda: self.get(name, "/stat/engines"),
            f"200, every engine downloading, progress between {above} and 100",
        )
        listed = exchange.json() if exchange.status == 200 else None
        progress = {e.get("download_progress") for e in listed} if isinstance(listed, list) and listed else set()
        states = {e.get("state") for e in listed} if isinstance(listed, list) and listed else set()
        done = next(iter(progress)) if len(progress) == 1 else None
        if (
            states != {"downloading"}
            or not isinstance(done, int)
            or not above < done < 100
            or (exactly is not None and done != exactly)
        ):
            raise broken("engines.progress", f"expected every engine downloading, between {above} and 100: {listed}")
        self.exercised("engines.progress")
        return done

    # Engines

    def engines(self, name: str) -> list[str]:
        """`GET /stat/engines`: empty while unlicensed, the engines with their documented fields once licensed;
        `active` false exactly for the ones switched off (where the suite knows them: after a reset). Returns the
        engine ids."""
        licensed = self.model.engines_licensed(name)
        disabled = self.disabled.get(name)
        exchange = self.send_step(
            f"list the engines of {name}",
            lambda: self.get(name, "/stat/engines"),
            "200 with the engines" if licensed else "200 []",
        )
        try:
            listed = exchange.json()
        except ValueError:
            listed = None
        if exchange.status != 200 or not isinstance(listed, list):
            raise broken("engines.listed", f"GET /stat/engines answered {exchange.status} {listed!r}")
        if not licensed:
            if listed:
                raise broken("engines.listed", f"{name} is unlicensed: no engines, got {listed}")
            self.exercised("engines.listed")
            return []
        ids = []
        for engine in listed:
            if not isinstance(engine, dict) or not all(
                isinstance(engine.get(f), str) for f in ("eng_id", "eng_name", "engine_type", "state")
            ):
                raise broken("engines.listed", f"an engine lacks eng_id, eng_name, engine_type or state: {engine}")
            if not isinstance(engine.get("active"), bool):
                raise broken("engines.listed", f"an engine's `active` is a boolean: {engine}")
            if engine["state"] != "production" or engine.get("download_progress") != 100:
                raise broken("engines.listed", f"a ready engine is in production at 100 %: {engine}")
            self.engine_types[engine["eng_id"]] = (engine["eng_name"], engine["engine_type"])
            if disabled is not None and engine["active"] == (engine["eng_id"] in disabled):
                raise broken(
                    "engines.toggle", f"{engine['eng_id']} should be active={engine['eng_id'] not in disabled}"
                )
            ids.append(engine["eng_id"])
        if not ids:
            raise broken("engines.listed", f"{name} is licensed: its engines are listed, got []")
        self.exercised("engines.listed")
        return ids

    def toggle_engine(self, name: str, eng_id: str, enable: bool) -> None:
        verb = "enable" if enable else "disable"
        text = "Engine is enabled" if enable else "Engine is disabled"
        self.run(
            f"{verb} engine {eng_id} on {name}",
            lambda m: (
                m.success({"result": text}, "engines.toggle")
                if m.engines_licensed(name)
                else m.error("E_ENGINES_UNLICENSED", "engines.toggle-unlicensed")
            ),
            lambda: self.post(name, f"/admin/engine/{eng_id}/{verb}"),
        )
        if not self.refused_last and name in self.disabled:
            (self.disabled[name].discard if enable else self.disabled[name].add)(eng_id)

    # Reads

    def readiness(self, name: str, verbose: bool = True) -> None:
        path = "/readyz?verbose=true" if verbose else "/readyz"
        self.step(
            f"read {path} of {name}",
            lambda m: m.readiness(name),
            lambda: self.conn.request("GET", self.url(name, path)),
            lambda outcome, exchange, model: self.check_readiness(name, verbose, outcome, exchange, model),
        )

    def check_readiness(
        self, name: str, verbose: bool, outcome: Outcome, exchange: Exchange, model: Model
    ) -> tuple[str, ...]:
        """`/readyz`: the predicted status; verbose, the licence's status and the rest (`check_readiness_details`);
        plain, an empty object (the only rule it shows held)."""
        if outcome.error is not None:  # the profile has no `/readyz`: the generic 404
            return self.compare(outcome, exchange)
        rule = outcome.rule if outcome.rule != "service.readyz" or verbose else "service.readyz-plain"
        if exchange.status != outcome.status:
            raise broken(rule, f"expected {describe(outcome)}, got {exchange.status}")
        body = self.json_of(exchange, rule)
        assert isinstance(outcome.body, dict)
        if not verbose:
            if body != {}:
                raise broken("service.readyz-plain", f"/readyz without verbose answers {{}}, got {body}")
            return ("service.readyz-plain",)
        licence = body.get("license")
        status = licence.get("status") if isinstance(licence, dict) else None
        if status != outcome.body["status"]:
            raise broken(rule, f"expected license.status {outcome.body['status']!r}, got {licence!r}")
        self.check_readiness_details(name, body, model)
        return outcome.rules

    def check_readiness_details(self, name: str, body: dict[str, Any], model: Model) -> None:
        """The rest of a verbose `/readyz`: the database is up, and the active AV engines and each engine's status
        agree with what was switched on and off (known once the engines were listed)."""
        database, av = body.get("database"), body.get("number_active_av_engines")
        if not isinstance(database, dict) or database.get("status") is not True or not isinstance(av, dict):
            raise broken(
                "service.readyz-verbose", f"expected database.status true and number_active_av_engines: {body}"
            )
        if not self.engine_types or name not in self.disabled:
            return
        licensed = model.engines_licensed(name)
        active = {e: licensed and e not in self.disabled[name] for e in self.engine_types}
        threshold = av.get("threshold")
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 0:
            raise broken("service.readyz-verbose", f"number_active_av_engines.threshold is a count: {av}")
        any_av = sum(on and self.engine_types[e][1] == "av" for e, on in active.items()) >= threshold
        engines = body.get("engines")
        listed = {e.get("engine_id"): e.get("status") for e in engines} if isinstance(engines, list) else None
        if av.get("status") is not any_av or listed != (active if licensed else {}):
            raise broken(
                "service.readyz-verbose",
                f"expected number_active_av_engines.status {any_av} and engines {active if licensed else {}}: {body}",
            )
        self.exercised("service.readyz-verbose")

    def unauthenticated(self, name: str, missing: bool) -> None:
        """A protected operation without an apikey (400) or with an unknown one (403); nothing may change."""
        code = "E_ACCESS_MISSING" if missing else "E_ACCESS"
        headers = {} if missing else {"apikey": UNKNOWN_APIKEY}
        doc = {"activationKey": self.keys[0].key if self.keys else UNKNOWN_KEY, "quantity": 1}
        self.run(
            f"activate {name} {'without an apikey' if missing else 'with an unknown apikey'}",
            lambda m: m.error(code, "auth.missing-apikey" if missing else "auth.unknown-apikey"),
            lambda: self.conn.request(
                "POST", self.url(name, "/admin/license/activation"), headers=headers, json_body=doc
            ),
            on=name,
            kind="activate",
        )

    # The activation server

    def obtain_file(self, key: str, deployment: str, quantity: int = 1) -> LicenceFileModel | None:
        """`GET /activation`: the licence file it issues, known to the model from now on, or None."""
        outcome, _ = self.run(
            f"obtain a licence file for {self.deployment_label(deployment)} on key {self.key_label(key)}"
            + (f", quantity {quantity}" if quantity != 1 else ""),
            lambda m: m.obtain_file(key, deployment, quantity),
            lambda: self.conn.request(
                "GET",
                f"{self.activation_url()}/activation",
                params={"key": key, "deployment": deployment, "quantity": str(quantity)},
            ),
            kind="activation",
            check=self.check_issued,
            expected=lambda o: f"200 {o.body}" + (f" ({o.error})" if o.error else " with a licence file"),
        )
        return None if outcome.error is not None else self.model.files[-1]  # the file `check_issued` completed

    def check_issued(self, outcome: Outcome, exchange: Exchange, model: Model) -> tuple[str, ...]:
        """`GET /activation`'s answer: HTTP 200 either way; a refusal's reason phrase and documented sentence, or a
        licence file, whose fields are checked and whose text completes the file the model issued."""
        rule = outcome.rule
        if exchange.status != 200:
            raise broken(rule, f"the activation server answers HTTP 200 either way, got {exchange.status}")
        try:
            doc = yaml.safe_load(exchange.response_body)
        except yaml.YAMLError as exc:
            raise broken(rule, f"the answer is not YAML: {exc}") from exc
        failed = isinstance(doc, dict) and set(doc) == {"error"} and isinstance(doc["error"], str)
        if outcome.error is not None:
            if not failed or exchange.reason != outcome.body:
                raise broken(
                    rule,
                    f"expected 200 {outcome.body} with error: <text>, got {exchange.status} {exchange.reason} {doc!r}",
                )
            sentence = ACTIVATION_SENTENCES.get(outcome.error)
            if sentence is not None and not doc["error"].startswith(sentence):
                raise broken(rule, f"expected the documented sentence {sentence!r}..., got {doc['error']!r}")
            return outcome.rules
        if failed or not isinstance(doc, dict):
            raise broken(rule, f"expected a licence file, got {exchange.reason} {doc!r}")
        issued = model.files.pop()
        issued = LicenceFileModel(issued.key, issued.deployment, issued.expires, exchange.response_body, issued.nodes)
        self.check_file(doc, issued, model)
        model.files.append(issued)
        return ("file.fields", *outcome.rules)

    def check_file(self, doc: dict[str, Any], issued: LicenceFileModel, model: Model) -> None:
        """A licence file's fields, by name and value."""
        if set(doc) != LICENCE_FILE_FIELDS:
            missing, extra = LICENCE_FILE_FIELDS - set(doc), set(doc) - LICENCE_FILE_FIELDS
            raise broken("file.fields", f"the licence file lacks {sorted(missing)} / has {sorted(extra)}")
        key = model.keys[issued.key]
        wanted: dict[str, object] = {
            "activation_key": issued.key,
            "deployment": issued.deployment,
            "online": False,
        }
        if key.expires != date.max:
            wanted["expiration"] = issued.expires.strftime("%m/%d/%Y")
        learn_terms(key, doc, "file.values", carries_quantity=issued.nodes is not None)
        assert key.terms is not None
        wanted.update({name: getattr(key.terms, name) for name in TERM_FIELDS if getattr(key.terms, name) is not None})
        if issued.nodes is not None:
            wanted["max_node_count"] = issued.nodes  # the quantity the file was asked for
        for name, value in wanted.items():
            if doc.get(name) != value or type(doc.get(name)) is not type(value):
                raise broken("file.values", f"the licence file's {name} should be {value!r}, is {doc.get(name)!r}")
        if not isinstance(doc.get("signature"), str) or not doc["signature"]:
            raise broken("file.fields", "the licence file carries a signature")

    def free_slot(self, key: str, deployment: str) -> None:
        """`GET /deactivation`: the slot of `deployment` on `key` freed at the activation server."""
        self.run(
            f"free the slot of {self.deployment_label(deployment)} on key {self.key_label(key)}",
            lambda m: m.free_slot(key, deployment),
            lambda: self.conn.request(
                "GET", f"{self.activation_url()}/deactivation", params={"key": key, "deployment": deployment}
            ),
            kind="activation",
            check=self.check_freed,
            expected=lambda o: str(o.status) + (" with a JSON body" if o.ok else ""),
        )

    @staticmethod
    def check_freed(outcome: Outcome, exchange: Exchange, model: Model) -> tuple[str, ...]:
        """`GET /deactivation`'s answer: the predicted status, with a JSON body when the slot was freed."""
        if exchange.status != outcome.status:
            raise broken(outcome.rule, f"expected {outcome.status}, got {exchange.status}")
        if outcome.ok:
            try:
                exchange.json()
            except ValueError as exc:
                raise broken(outcome.rule, f"the answer is not JSON: {exchange.response_body[:200]!r}") from exc
        return outcome.rules

    def activation_url(self) -> str:
        if self.fleet.activation_url is None:
            raise TargetError("the target has no activation server URL (--activation-url)")
        return self.fleet.activation_url

    # The clock (targets with a control plane)

    def advance_clock(self, days: int) -> None:
        step = self.begin(f"advance the fleet clock by {days} days")
        doc = self.fleet.control_request("POST", "clock/advance", {"days": days})
        step.exchanges = self.conn.recorder.take()
        self.model.today = datetime.fromisoformat(doc["now"]).date()

    def set_date(self, day: date) -> None:
        step = self.begin(f"set the fleet clock to {day.isoformat()} (frozen)")
        doc = self.fleet.control_request("PUT", "clock", {"now": f"{day.isoformat()}T12:00:00+00:00", "frozen": True})
        step.exchanges = self.conn.recorder.take()
        self.model.today = datetime.fromisoformat(doc["now"]).date()

    # Reading back

    def verify(self, name: str | None, kind: str, *, changed: bool) -> None:
        """After an operation: the instance it was sent to, the slots where they can have moved, and every instance
        whose online slot the model says is gone; one read of each at most."""
        try:
            if name is not None:
                self.check_licence_view(name)
                if changed and kind in BACKUP_OPERATIONS:
                    self.check_backup_flag(name)
            if self.fleet.control and kind in SLOT_OPERATIONS:
                self.check_slots()
            for other in self.names:
                if other != name and self.model.slot_lost(other):
                    self.check_licence_view(other)
            if self.refused_last:
                self.exercised("refused.changes-nothing")
        except Violation as found:
            if self.refused_last and found.rule != "refused.changes-nothing":
                raise broken(
                    "refused.changes-nothing",
                    f"the last operation was refused, yet the fleet changed: [{found.rule}] {found.detail}",
                ) from found
            raise
        finally:
            self.conn.recorder.take()

    def check_fleet(self) -> None:
        """Every instance's licence view and backup flag, and the slots, against the model."""
        try:
            for name in self.names:
                self.check_licence_view(name)
                self.check_backup_flag(name)
            if self.fleet.control:
                self.check_slots()
        finally:
            self.conn.recorder.take()

    def check_licence_view(self, name: str) -> None:
        expected = self.model.licence_info(name)
        exchange = self.get(name, "/admin/license")
        self.log.reads += 1
        if exchange.status != 200:
            raise broken("view.deployment", f"GET /admin/license of {name} answered {exchange.status}")
        body = self.json_of(exchange, "view.deployment")
        assert isinstance(expected.body, dict)
        got_licensed = bool(set(body) - {"deployment", "deployment_id", "reactivate"})
        wants_licensed = expected.rule != "view.unlicensed"
        blame = self.last_rule or "view.deployment"
        if got_licensed != wants_licensed:
            wanted = "licensed" if wants_licensed else "unlicensed"
            raise broken(blame, f"{name} should be {wanted} ({expected.body}), shows {body}")
        if not wants_licensed:
            if body.get("reactivate", False) != expected.body.get("reactivate", False):
                raise broken(
                    "view.reactivate" if not self.last_rule else blame,
                    f"{name} should show {expected.body}, shows {body}",
                )
            if body != expected.body:
                raise broken("view.unlicensed", f"{name} should show {expected.body}, shows {body}")
            self.exercised("view.unlicensed", *(("view.reactivate",) if "reactivate" in body else ()))
            return
        self.check_licensed_fields(name, body, expected.body)
        self.exercised(*expected.rules)

    def check_licensed_fields(self, name: str, body: dict[str, Any], expected: dict[str, Any]) -> None:
        """Each field of a licensed view by name, type and value."""
        inst = self.model.instances[name]
        key = self.model.keys.get(inst.key or "")
        if key is not None and learn_terms(key, body, "view.product_id", carries_quantity=inst.nodes is not None):
            expected = self.model.licence_info(name).body  # type: ignore[assignment]
        wanted = dict(expected)
        if not self.know_clock or inst.expires in (None, date.max):
            wanted.pop("days_left")
            wanted.pop("expiration")
        for field_name, kind in LICENSED_FIELDS.items():
            value = body.get(field_name)
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                raise broken(
                    f"view.{field_name}", f"{name}'s licence view lacks {field_name} of type {kind.__name__}: {body}"
                )
        if not EXPIRATION.fullmatch(body["expiration"]):
            raise broken("view.expiration", f"expiration is MM/DD/YYYY, got {body['expiration']!r}")
        for field_name, value in wanted.items():
            if body.get(field_name) != value:
                rule = f"view.{field_name}"
                if field_name == "online_activated" and self.last_rule:
                    rule = self.last_rule
                if inst.is_backup and field_name == "deployment":
                    rule = "view.backup"
                raise broken(rule, f"{name}'s {field_name} should be {value!r}, shows {body.get(field_name)!r}")
            self.exercised(f"view.{field_name}")

    def check_backup_flag(self, name: str) -> None:
        flag = self.model.backup_flag(name)
        exchange = self.get(name, "/admin/license/backup")
        self.log.reads += 1
        if flag.error is not None:  # the profile has no backup flag: the generic 404
            self.exercised(*self.compare(flag, exchange))
            return
        if exchange.status != 200 or self.json_of(exchange, "view.backup-flag") != flag.body:
            raise broken(
                "view.backup-flag",
                f"GET /admin/license/backup of {name} should answer {flag.body}, answered {exchange.status} "
                f"{exchange.response_body[:200]!r}",
            )
        self.exercised("view.backup-flag")

    def check_slots(self) -> None:
        actual = self.fleet.holders()
        self.log.reads += 1
        expected = self.model.holders()
        backups = {i.deployment: n for n, i in self.model.instances.items() if i.is_backup}
        for key, holders in actual.items():
            model_key = self.model.keys.get(key)
            if model_key is None:
                continue
            for deployment in holders:
                if deployment in backups and deployment not in expected.get(key, []):
                    raise broken(
                        "slots.backup-holds-none", f"the backup {backups[deployment]} holds a slot on key {key}"
                    )
            if len(holders) > model_key.slots:
                raise broken("slots.within-key", f"key {key} has {len(holders)} slots in use out of {model_key.slots}")
            if holders != expected.get(key, []):
                raise broken(
                    "slots.accounting",
                    f"after `{self.last_rule}`: key {key}: slots held by {self._labels(holders)}, the rules give "
                    f"{self._labels(expected[key])}",
                )
        self.exercised("slots.accounting", "slots.within-key", "slots.backup-holds-none")

    # Labels for reports

    def _labels(self, deployments: list[str]) -> list[str]:
        return [self.deployment_label(d) for d in deployments]

    def deployment_label(self, deployment: str) -> str:
        owners = self.model.deployments()
        if deployment in owners:
            return f"{owners[deployment]}'s deployment"
        if deployment == OUTSIDER:
            return "an outside machine"
        if deployment.startswith("MSCL") and deployment[4:].startswith("0000"):
            return f"outside machine {deployment}"
        if not DEPLOYMENT_FORMAT.fullmatch(deployment):
            return f"the malformed deployment {deployment!r}"
        return deployment

    def key_label(self, key: str) -> str:
        for i, spec in enumerate(self.keys):
            if spec.key == key:
                return f"#{i + 1} ({key})"
        return {UNKNOWN_KEY: "(unknown)", MALFORMED_KEY: "(malformed)"}.get(key, key)


# The activation server's documented refusal sentences, by the model's refusal name.
ACTIVATION_SENTENCES = {
    "invalid-key": "Could not activate your product because the Activation Key you provided is invalid.",
    "invalid-deployment": "Could not activate your product because the Deployment ID you provided is invalid.",
    "invalid-quantity": "Could not activate your product because the quantity you provided is invalid.",
}


def learn_terms(key: KeyModel, doc: Mapping[str, Any], rule: str, *, carries_quantity: bool) -> bool:
    """A target without a control plane: the first view or file of a key tells its terms; later ones must agree.
    A source that carries an activation's quantity (a view of an instance activated with one, a file asked for
    one) shows that quantity as `max_node_count`, not the key's own: the key's stays unknown until a source
    without one shows it. True when something was learnt."""
    if key.terms is not None and (key.terms.max_node_count is not None or carries_quantity):
        return False
    for name in TERM_FIELDS:
        if not isinstance(doc.get(name), str):
            raise broken(rule if name != "licensed_engines" else "view.licensed_engines", f"{name} is a string: {doc}")
    shown = terms_of(doc)
    if key.terms is not None:  # only the node count was unknown
        key.terms = replace(key.terms, max_node_count=shown.max_node_count)
    else:
        key.terms = replace(shown, max_node_count=None) if carries_quantity else shown
    return True


def outsider(number: int) -> str:
    """The deployment id of outside machine `number` (well-formed, in no instance of the fleet)."""
    return "MSCL" + f"{number:032x}"
