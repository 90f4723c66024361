"""Running a demo over real HTTP: find the fleet (a running `mockcore serve` at a URL, or one started in-process),
check it is where the demo starts, then send each step's call, judge the answer, read the fleet's state after it
and hand everything to the output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from mockcore.calls import ACTIVATION_SERVER, Answer, Call, Exchange
from mockcore.demo.scripts import Context, Demo, Step, login_steps
from mockcore.http.control_api import TOKEN_HEADER

TIMEOUT = 30.0
PROBLEM_EXIT = 3  # the fleet cannot run the demo (unreachable, too small, not at the start); 1 is an unexpected answer


class DemoProblem(Exception):
    """The demo cannot run on this fleet; the message says why and what to do."""


@dataclass(frozen=True)
class Credentials:
    user: str = "admin"
    password: str = "admin"
    apikey: str | None = None  # when given, no log-in


@dataclass(frozen=True)
class Options:
    prod: str | None = None
    backup: str | None = None
    key: str | None = None
    reset: bool = False
    credentials: Credentials = field(default_factory=Credentials)


@dataclass(frozen=True)
class StepRecord:
    index: int
    total: int
    step: Step
    exchange: Exchange
    problem: str | None
    state: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.problem is None

    def public(self) -> dict[str, Any]:
        return {
            "event": "step",
            "index": self.index,
            "total": self.total,
            "id": self.step.id,
            "title": self.step.title,
            "why": self.step.why,
            "proof": self.step.proof,
            **self.exchange.public(),
            "expected": self.step.expect.public(),
            "ok": self.ok,
            "problem": self.problem,
            "state": self.state,
        }


class Output(Protocol):
    def start(self, demo: Demo, fleet: RemoteFleet, ctx: Context, total: int) -> None: ...
    def step(self, record: StepRecord) -> None: ...
    def outcome(self, document: dict[str, Any]) -> None: ...
    def problem(self, text: str) -> None: ...


class RemoteFleet:
    """A running fleet reached over HTTP: every face's base URL and the control plane."""

    def __init__(self, url: str, control_token: str | None = None, verify: bool | str = True) -> None:
        self.session = requests.Session()
        self.verify = verify  # passed on each request: requests lets REQUESTS_CA_BUNDLE override a session's
        self.control_url = url.rstrip("/") + "/_mock"
        self.control_headers = {TOKEN_HEADER: control_token} if control_token else {}
        info = self.control("GET", "/info")
        if not isinstance(info, dict) or not isinstance(info.get("instances"), dict):
            raise DemoProblem(f"{url} answered /_mock/info without instances: is it a mockcore fleet?")
        self.instances: dict[str, str] = {str(k): str(v) for k, v in info["instances"].items()}
        self.activation_url = str(info.get("activation_server"))
        self.urls = {**self.instances, ACTIVATION_SERVER: self.activation_url}

    def close(self) -> None:
        self.session.close()

    def control(self, method: str, path: str) -> Any:
        url = self.control_url + path
        try:
            response = self.session.request(
                method, url, headers=self.control_headers, timeout=TIMEOUT, verify=self.verify
            )
        except requests.RequestException as exc:
            raise DemoProblem(f"cannot reach the fleet's control plane at {url}: {exc}") from exc
        if response.status_code in (401, 403):
            raise DemoProblem(
                f"{url}: {response.status_code} {response.text.strip()} (pass the fleet's control token with "
                "--control-token or MOCKCORE_CONTROL_TOKEN)"
            )
        if response.status_code >= 300:
            raise DemoProblem(f"{method} {url} answered {response.status_code}: {response.text.strip()[:300]}")
        try:
            return response.json()
        except ValueError as exc:
            raise DemoProblem(f"{url} did not answer JSON: is it a mockcore fleet?") from exc

    def summary(self) -> dict[str, Any]:
        return self.control("GET", "/view")

    def send(self, call: Call, apikey: str | None) -> Exchange:
        url = self.urls[call.face] + call.target
        headers = dict(call.headers)
        if apikey is not None:
            headers["apikey"] = apikey
        try:
            response = self.session.request(
                call.method, url, headers=headers, data=call.body, timeout=TIMEOUT, verify=self.verify
            )
        except requests.RequestException as exc:  # no answer at all: status 0, and the step fails
            return Exchange(call, url, apikey, Answer(0, "no answer", "text/plain", str(exc).encode()))
        answer = Answer(
            response.status_code,
            response.reason or "",
            response.headers.get("Content-Type", ""),
            response.content,
            dict(response.headers),
        )
        return Exchange(call, url, apikey, answer)


@contextmanager
def fresh_fleet(credentials: Credentials) -> Iterator[str]:
    """A fleet of its own, in-process on free ports: instances prod and backup, one key with two slots; yields
    the URL of prod (its control plane answers for the whole fleet)."""
    from mockcore.inprocess import DEFAULT_KEYS, MockFleet

    admin = (credentials.user, credentials.password)
    try:
        mock = MockFleet(instances=("prod", "backup"), keys=DEFAULT_KEYS, apikey=credentials.apikey, admin=admin)
    except ValueError as exc:
        raise DemoProblem(str(exc)) from exc
    with mock:
        yield mock.urls["prod"]


def prepare(fleet: RemoteFleet, options: Options) -> Context:
    """The demo's context, once the fleet is known to be at the start: two unlicensed instances and a key with a
    free slot. With `reset`, the fleet is reset first."""
    names = list(fleet.instances)
    prod = options.prod or (names[0] if names else None)
    backup = options.backup or next((n for n in names if n != prod), None)
    if prod is None or backup is None or prod == backup:
        raise DemoProblem(
            f"the demo needs two instances; the fleet has {', '.join(names) or 'none'} "
            "(start it with `mockcore serve --instance prod --instance backup`)"
        )
    for name in (prod, backup):
        if name not in fleet.instances:
            raise DemoProblem(f"no instance {name!r}; the fleet has {', '.join(names)}")
    if options.reset:
        fleet.control("POST", "/reset")
    summary = fleet.summary()
    busy = {
        n: summary["instances"][n]["state"] for n in (prod, backup) if summary["instances"][n]["state"] != "unlicensed"
    }
    hint = "pass --reset to reset the fleet first (it discards the fleet's state), or POST /_mock/reset"
    if busy:
        states = ", ".join(f"{name} is {state}" for name, state in busy.items())
        raise DemoProblem(f"the demo starts from two unlicensed instances, but {states}: {hint}")
    keys = summary["keys"]
    if options.key is not None:
        chosen = next((k for k in keys if k["key"] == options.key), None)
        if chosen is None:
            raise DemoProblem(f"the fleet has no key {options.key}; it has {', '.join(k['key'] for k in keys)}")
    else:
        chosen = next((k for k in keys if k["free"] > 0 and k["expires"] >= summary["today"]), None)
    if chosen is None or chosen["free"] == 0 or chosen["expires"] < summary["today"]:
        raise DemoProblem(f"the demo needs an unexpired activation key with a free slot: {hint}")
    ctx = Context(prod=prod, backup=backup, key=chosen["key"])
    if options.credentials.apikey is not None:
        ctx.apikeys = {prod: options.credentials.apikey, backup: options.credentials.apikey}
    return ctx


def steps_of(demo: Demo, ctx: Context, credentials: Credentials) -> list[Step]:
    logins = [] if credentials.apikey is not None else login_steps(credentials.user, credentials.password)
    return [*logins, *demo.steps(ctx)]


def run(
    demo: Demo, fleet: RemoteFleet, options: Options, output: Output, pause: Callable[[], None] | None = None
) -> bool:
    """Run the demo; True when every answer was the expected one. A DemoProblem means it could not start."""
    ctx = prepare(fleet, options)
    steps = steps_of(demo, ctx, options.credentials)
    output.start(demo, fleet, ctx, len(steps))
    records: list[StepRecord] = []
    for index, step in enumerate(steps, start=1):
        if pause is not None and index > 1:
            pause()
        call = step.call(ctx)
        exchange = fleet.send(
            call, None if call.face == ACTIVATION_SERVER or not call.auth else ctx.apikeys.get(call.face)
        )
        problem = step.expect.judge(exchange.answer, ctx)
        if problem is None and step.keep is not None:
            step.keep(ctx, exchange.answer)
        record = StepRecord(index, len(steps), step, exchange, problem, fleet.summary())
        records.append(record)
        output.step(record)
        if problem is not None:
            break
    ok = len(records) == len(steps) and all(r.ok for r in records)
    output.outcome(outcome(demo, ctx, records, ok))
    return ok


def outcome(demo: Demo, ctx: Context, records: list[StepRecord], ok: bool) -> dict[str, Any]:
    last = records[-1] if records else None
    document: dict[str, Any] = {
        "event": "outcome",
        "demo": demo.name,
        "ok": ok,
        "steps_run": len(records),
        "steps": last.total if last else 0,
        "states": {name: inst["state"] for name, inst in last.state["instances"].items()} if last else {},
    }
    if ok:
        document["proved"] = {
            "new_production": ctx.backup,
            "old_production": ctx.prod,
            "scanned_data_id": ctx.values.get("data_id"),
            "refusal": next(
                (
                    {"instance": r.exchange.call.face, "status": r.exchange.answer.status, "err": r.exchange.answer.err}
                    for r in reversed(records)
                    if r.step.proof and r.exchange.answer.status >= 400
                ),
                None,
            ),
        }
    elif last is not None:
        document["failed_step"] = {
            "index": last.index,
            "id": last.step.id,
            "title": last.step.title,
            "problem": last.problem,
        }
    return document
