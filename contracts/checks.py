"""One contract step = one operation sent to the target over HTTP, its answer compared with the model's prediction.

`Checker` owns the model of the target's fleet and the step log. Every operation method sends the real request,
asks the model what a conforming server answers, and raises `Violation` (naming the broken rule) when the target
answers otherwise; `check_fleet` compares every instance's licence view and the activation server's slots with the
model after each step.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

import yaml

from contracts.exchange import Exchange
from contracts.model import (
    DEPLOYMENT_FORMAT,
    KeyModel,
    LicenceFileModel,
    Model,
    Outcome,
)
from contracts.target import Fleet, KeySpec

UNKNOWN_KEY = "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ"  # well-formed, on no activation server
MALFORMED_KEY = "not-an-activation-key"
OUTSIDER = "MSCL" + "0123456789abcdef" * 2  # a well-formed deployment id of a machine outside the fleet
MALFORMED_DEPLOYMENT = "MSCL-not-a-deployment"
UNKNOWN_APIKEY = "0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f"  # 36 lowercase hex, the documented shape, known nowhere
SAMPLE = b"mockcore contract suite: a harmless sample file\n"
DATA_ID = re.compile(r"[0-9a-f]{32}")
EXPIRATION = re.compile(r"\d{2}/\d{2}/\d{4}")

# SPEC §4: the licensed shape of GET /admin/license and each field's type.
LICENSED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "days_left": int,
    "deployment": str,
    "expiration": str,
    "licensed_engines": (str, list),
    "licensed_to": str,
    "max_node_count": str,
    "online_activated": bool,
    "product_id": str,
    "product_name": str,
}


class Violation(AssertionError):
    """The target broke a contract rule."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"[{rule}] {detail}")
        self.rule = rule
        self.detail = detail


@dataclass
class Step:
    number: int
    title: str
    exchanges: list[Exchange] = field(default_factory=list)
    expected: str = ""


@dataclass
class StepLog:
    """The steps of the current run (a Hypothesis example, or a fixed sequence)."""

    steps: list[Step] = field(default_factory=list)
    runs: int = 0
    total_steps: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # how often each rule's answer was seen

    def start_run(self) -> None:
        self.steps = []
        self.runs += 1


def describe(outcome: Outcome) -> str:
    if outcome.error is not None:
        body = outcome.body if outcome.body is not None else '{"err": <server text>}'
        return f"{outcome.status} {outcome.error} {body}"
    return f"{outcome.status} {outcome.body}" if outcome.body is not None else str(outcome.status)


class Checker:
    def __init__(self, fleet: Fleet, log: StepLog, *, know_clock: bool | None = None) -> None:
        self.fleet = fleet
        self.log = log
        self.conn = fleet.connection
        self.names = list(fleet.instances)
        self.know_clock = fleet.control if know_clock is None else know_clock
        self.model: Model = Model({}, [], date.today(), fleet.target.catalogue)
        self.keys: list[KeySpec] = []
        self.refused_last = False  # the last operation was refused: nothing may have changed

    # Setting up

    def start(self) -> None:
        """With a control plane: reset the target, freeze its clock, and build the model from what it shows."""
        self.log.start_run()
        if self.fleet.control:
            self.fleet.control_request("POST", "reset")
            self.fleet.log_in_again()
            self.fleet.control_request("PUT", "clock", {"frozen": True})
        self.keys = self.fleet.keys()
        today = self.fleet.today() or datetime.now().date()
        deployments = {}
        for name in self.names:
            step = self._begin(f"read the starting licence of {name}")
            exchange = self._get(name, "/admin/license")
            body = self._json(exchange, "licence-view")
            if exchange.status != 200 or set(body) - {"deployment", "deployment_id"} or "deployment" not in body:
                raise Violation(
                    "starts-unlicensed",
                    f"{name} must be unlicensed at the start (after a reset where the target has a control plane); "
                    f"GET /admin/license answered {exchange.status} {body}",
                )
            step.exchanges = self.conn.recorder.take()
            deployments[name] = str(body["deployment"])
        self.fleet.deployments = deployments
        keys = [KeyModel(k.key, k.slots, k.expires or date.max) for k in self.keys]
        if self.fleet.control:
            for key, holders in self.fleet.holders().items():
                if holders:
                    raise Violation("starts-with-free-slots", f"key {key} has slots held at the start: {holders}")
        self.model = Model(deployments, keys, today, self.fleet.target.catalogue)

    # HTTP

    def _url(self, name: str, path: str) -> str:
        return self.fleet.instances[name] + path

    def _auth(self, name: str) -> dict[str, str]:
        return {"apikey": self.fleet.apikeys[name]}

    def _get(self, name: str, path: str) -> Exchange:
        return self.conn.request("GET", self._url(name, path), headers=self._auth(name))

    def _post(self, name: str, path: str, **kwargs: object) -> Exchange:
        headers = {**self._auth(name), **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return self.conn.request("POST", self._url(name, path), headers=headers, **kwargs)  # type: ignore[arg-type]

    def _begin(self, title: str) -> Step:
        step = Step(len(self.log.steps) + 1, title)
        self.log.steps.append(step)
        self.log.total_steps += 1
        return step

    @staticmethod
    def _json(exchange: Exchange, rule: str) -> dict[str, object]:
        try:
            body = exchange.json()
        except ValueError as exc:
            raise Violation(rule, f"the answer is not JSON: {exchange.response_body[:200]!r}") from exc
        if not isinstance(body, dict):
            raise Violation(rule, f"the answer is not a JSON object: {body!r}")
        return body

    def _run(self, title: str, predict: object, send: object) -> tuple[Outcome, Exchange]:
        """Predict on a copy of the model, send, compare; the copy becomes the model when the target agrees."""
        step = self._begin(title)
        model = self.model.copy()
        outcome: Outcome = predict(model)  # type: ignore[operator]
        step.expected = describe(outcome)
        try:
            exchange: Exchange = send()  # type: ignore[operator]
        except OSError as exc:  # requests' connection errors, a dropped connection
            raise Violation("answers-every-request", f"no HTTP answer: {exc}") from exc
        finally:
            step.exchanges = self.conn.recorder.take()
        self._compare(outcome, exchange)
        self.log.outcomes[outcome.rule] += 1
        self.model = model
        self.refused_last = outcome.error is not None
        return outcome, exchange

    def _compare(self, outcome: Outcome, exchange: Exchange) -> None:
        if exchange.status != outcome.status:
            raise Violation(outcome.rule, f"expected {describe(outcome)}, got {exchange.status}")
        body = self._json(exchange, outcome.rule)
        if outcome.error is not None:
            err = body.get("err")
            if outcome.body is None:
                if set(body) != {"err"} or not isinstance(err, str) or not err:
                    raise Violation(outcome.rule, f'expected {{"err": <text>}} for {outcome.error}, got {body}')
            elif body != outcome.body:
                raise Violation(outcome.rule, f"expected {outcome.error} {outcome.body}, got {body}")
            return
        expected = outcome.body
        if isinstance(expected, dict) and expected.get("data_id") == "<32 hex>":
            if set(body) != {"data_id"} or not DATA_ID.fullmatch(str(body["data_id"])):
                raise Violation(outcome.rule, f'expected {{"data_id": <32 hex>}}, got {body}')
            return
        if body != expected:
            raise Violation(outcome.rule, f"expected {expected}, got {body}")

    # Licence operations (SPEC §3)

    def activate(self, name: str, key: str, quantity: object) -> None:
        doc = {"activationKey": key, "quantity": quantity, "comment": "contract suite"}
        self._run(
            f"activate {name} online with key {self.key_label(key)}, quantity {quantity!r}",
            lambda m: m.activate(name, key, quantity),
            lambda: self._post(name, "/admin/license/activation", json_body=doc),
        )

    def upload(self, name: str, content: bytes, label: str) -> None:
        self._run(
            f"upload {label} to {name}",
            lambda m: m.upload(name, content),
            lambda: self._post(name, "/admin/license", body=content),
        )

    def register_online(self, name: str, key: str, production: str) -> None:
        headers = {"activation-key": key, "active-deployment-id": production}
        self._run(
            f"register {name} as an online backup of {self.deployment_label(production)} on key {self.key_label(key)}",
            lambda m: m.register_online(name, key, production),
            lambda: self._post(name, "/admin/license/backup", headers=headers),
        )

    def register_offline(self, name: str, content: bytes, label: str) -> None:
        self._run(
            f"register {name} as an offline backup with {label}",
            lambda m: m.register_offline(name, content),
            lambda: self._post(name, "/admin/license/backup", body=content),
        )

    def unregister(self, name: str) -> None:
        self._run(
            f"unregister the backup {name}",
            lambda m: m.unregister(name),
            lambda: self.conn.request("DELETE", self._url(name, "/admin/license/backup"), headers=self._auth(name)),
        )

    def nominate(self, name: str) -> None:
        self._run(
            f"nominate {name}",
            lambda m: m.nominate(name),
            lambda: self._post(name, "/admin/license/backup/nomination"),
        )

    def deactivate(self, name: str) -> None:
        self._run(
            f"deactivate {name}",
            lambda m: m.deactivate(name),
            lambda: self._post(name, "/admin/license/deactivation"),
        )

    def scan(self, name: str) -> str | None:
        _, exchange = self._run(
            f"scan a file on {name}", lambda m: m.scan(name), lambda: self._post(name, "/file", body=SAMPLE)
        )
        return str(exchange.json()["data_id"]) if exchange.status == 200 else None

    def readiness(self, name: str) -> None:
        step = self._begin(f"read /readyz?verbose=true of {name}")
        model = self.model.copy()
        outcome = model.readiness(name)
        step.expected = describe(outcome)
        exchange = self.conn.request("GET", self._url(name, "/readyz?verbose=true"))
        step.exchanges = self.conn.recorder.take()
        if exchange.status != outcome.status:
            raise Violation(outcome.rule, f"expected {describe(outcome)}, got {exchange.status}")
        body = self._json(exchange, outcome.rule)
        licence = body.get("license")
        status = licence.get("status") if isinstance(licence, dict) else None
        assert isinstance(outcome.body, dict)
        if status != outcome.body["status"]:
            raise Violation(outcome.rule, f"expected license.status {outcome.body['status']!r}, got {licence!r}")
        self.log.outcomes[outcome.rule] += 1
        self.model = model

    def unauthenticated(self, name: str, missing: bool) -> None:
        """A protected operation without an apikey (400) or with an unknown one (403); nothing may change."""
        code = "E_ACCESS_MISSING" if missing else "E_ACCESS"
        headers = {} if missing else {"apikey": UNKNOWN_APIKEY}
        doc = {"activationKey": self.keys[0].key if self.keys else UNKNOWN_KEY, "quantity": 1}
        self._run(
            f"activate {name} {'without an apikey' if missing else 'with an unknown apikey'}",
            lambda m: m.error(code, "apikey-required" if missing else "apikey-must-be-known"),
            lambda: self.conn.request(
                "POST", self._url(name, "/admin/license/activation"), headers=headers, json_body=doc
            ),
        )

    # The activation server (SPEC §5)

    def obtain_file(self, key: str, deployment: str, quantity: int = 1) -> LicenceFileModel | None:
        """`GET /activation`: the licence file it issues, known to the model from now on, or None."""
        step = self._begin(
            f"obtain a licence file for {self.deployment_label(deployment)} on key {self.key_label(key)}"
        )
        model = self.model.copy()
        outcome = model.obtain_file(key, deployment, quantity)
        step.expected = f"200 {outcome.body}" + (f" ({outcome.error})" if outcome.error else " with a licence file")
        exchange = self.conn.request(
            "GET",
            f"{self._activation_url()}/activation",
            params={"key": key, "deployment": deployment, "quantity": str(quantity)},
        )
        step.exchanges = self.conn.recorder.take()
        if exchange.status != 200:
            raise Violation(outcome.rule, f"the activation server answers HTTP 200 either way, got {exchange.status}")
        try:
            doc = yaml.safe_load(exchange.response_body)
        except yaml.YAMLError as exc:
            raise Violation(outcome.rule, f"the answer is not YAML: {exc}") from exc
        failed = isinstance(doc, dict) and set(doc) == {"error"}
        if outcome.error is not None:
            if not failed or exchange.reason != outcome.body:
                raise Violation(
                    outcome.rule,
                    f"expected 200 {outcome.body} with error: <text>, got {exchange.status} {exchange.reason} {doc!r}",
                )
            self.model = model
            return None
        if failed or not exchange.response_body:
            raise Violation(outcome.rule, f"expected a licence file, got {exchange.reason} {doc!r}")
        issued = model.files.pop()
        issued = LicenceFileModel(issued.key, issued.deployment, issued.expires, exchange.response_body)
        model.files.append(issued)
        self.model = model
        return issued

    def free_slot(self, key: str, deployment: str) -> None:
        step = self._begin(f"free the slot of {self.deployment_label(deployment)} on key {self.key_label(key)}")
        model = self.model.copy()
        outcome = model.free_slot(key, deployment)
        step.expected = str(outcome.status)
        exchange = self.conn.request(
            "GET", f"{self._activation_url()}/deactivation", params={"key": key, "deployment": deployment}
        )
        step.exchanges = self.conn.recorder.take()
        if exchange.status != outcome.status:
            raise Violation(outcome.rule, f"expected {outcome.status}, got {exchange.status}")
        self.model = model

    def _activation_url(self) -> str:
        if self.fleet.activation_url is None:
            raise Violation("target-description", "the target has no activation server URL")
        return self.fleet.activation_url

    # The clock (targets with a control plane)

    def advance_clock(self, days: int) -> None:
        step = self._begin(f"advance the fleet clock by {days} days")
        doc = self.fleet.control_request("POST", "clock/advance", {"days": days})
        step.exchanges = self.conn.recorder.take()
        self.model.today = datetime.fromisoformat(doc["now"]).date()

    # Invariants

    def check_fleet(self) -> None:
        """After each step: every instance's licence view and backup flag, and the slots, agree with the model."""
        try:
            self._check_fleet()
        except Violation as broken:
            if self.refused_last:
                raise Violation(
                    "refused-operation-changes-nothing",
                    f"the last operation was refused, yet the fleet changed: [{broken.rule}] {broken.detail}",
                ) from broken
            raise
        finally:
            self.conn.recorder.take()

    def _check_fleet(self) -> None:
        for name in self.names:
            self._check_licence_view(name)
        if self.fleet.control:
            self._check_slots()

    def _check_licence_view(self, name: str) -> None:
        expected = self.model.licence_info(name)
        exchange = self._get(name, "/admin/license")
        if exchange.status != 200:
            raise Violation("licence-view", f"GET /admin/license of {name} answered {exchange.status}")
        body = self._json(exchange, "licence-view")
        assert isinstance(expected.body, dict)
        if expected.rule == "licence-info-unlicensed":
            if body != expected.body:
                raise Violation("licence-view", f"{name} should be unlicensed with {expected.body}, shows {body}")
        else:
            for field_name, kind in LICENSED_FIELDS.items():
                value = body.get(field_name)
                if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                    raise Violation(
                        "licence-view-shape", f"{name}'s licence view lacks {field_name} of type {kind}: {body}"
                    )
            if not EXPIRATION.fullmatch(str(body["expiration"])):
                raise Violation("licence-view-shape", f"expiration is MM/DD/YYYY, got {body['expiration']!r}")
            wanted = dict(expected.body)
            if not self.know_clock:
                wanted.pop("days_left")
                wanted.pop("expiration")
            got = {k: body.get(k) for k in wanted}
            if got != wanted:
                raise Violation("licence-view", f"{name} should show {wanted}, shows {got}")
        flag = self.model.backup_flag(name)
        exchange = self._get(name, "/admin/license/backup")
        if exchange.status != 200 or self._json(exchange, "backup-flag") != flag.body:
            raise Violation(
                "backup-flag-agrees-with-licence",
                f"GET /admin/license/backup of {name} should answer {flag.body}, answered {exchange.status} "
                f"{exchange.response_body[:200]!r}",
            )

    def _check_slots(self) -> None:
        actual = self.fleet.holders()
        expected = self.model.holders()
        backups = {i.deployment: n for n, i in self.model.instances.items() if i.is_backup}
        for key, holders in actual.items():
            model_key = self.model.keys.get(key)
            if model_key is None:
                continue
            for deployment in holders:
                if deployment in backups and deployment not in expected.get(key, []):
                    raise Violation(
                        "backup-holds-no-slot", f"the backup {backups[deployment]} holds a slot on key {key}"
                    )
            if len(holders) > model_key.slots:
                raise Violation(
                    "slots-within-key", f"key {key} has {len(holders)} slots in use out of {model_key.slots}"
                )
            if holders != expected.get(key, []):
                raise Violation(
                    "slot-accounting",
                    f"key {key}: slots held by {self._labels(holders)}, the rules give {self._labels(expected[key])}",
                )

    # Labels for reports

    def _labels(self, deployments: list[str]) -> list[str]:
        return [self.deployment_label(d) for d in deployments]

    def deployment_label(self, deployment: str) -> str:
        owners = self.model.deployments()
        if deployment in owners:
            return f"{owners[deployment]}'s deployment"
        if deployment == OUTSIDER:
            return "an outside machine"
        if not DEPLOYMENT_FORMAT.fullmatch(deployment):
            return f"the malformed deployment {deployment!r}"
        return deployment

    def key_label(self, key: str) -> str:
        for i, spec in enumerate(self.keys):
            if spec.key == key:
                return f"#{i + 1} ({key})"
        return {UNKNOWN_KEY: "(unknown)", MALFORMED_KEY: "(malformed)"}.get(key, key)
