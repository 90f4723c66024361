"""The client's requests, read back from the mock's journal (`GET /_mock/journal`), as the harness judges them.

The journal records every request to a Core instance or the activation server with its headers (names in lower
case), its body (the first 16 KiB, as text) and the answer; a connection a fault dropped has `status: null`. The
harness empties it before each client call, so what it holds afterwards is exactly what the client sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from contracts.checks import Violation
from contracts.client.adapter import CallResult, Outcome, describe_outcome
from contracts.client.relay import IMPOSTORS, LOST, RELAY_HEADER
from contracts.client.report import ClientStep
from contracts.exchange import Exchange
from contracts.target import Fleet

SHOWN_HEADERS = ("apikey", "activation-key", "active-deployment-id", "content-type")


@dataclass(frozen=True)
class Record:
    """One journal entry: a request the client sent and what became of it."""

    entry: dict[str, Any]

    @property
    def id(self) -> int:
        return int(self.entry["id"])

    @property
    def face(self) -> str:
        return str(self.entry["face"])

    @property
    def instance(self) -> str | None:
        return self.entry.get("instance")

    @property
    def method(self) -> str:
        return str(self.entry["method"])

    @property
    def path(self) -> str:
        return str(self.entry["path"])

    @property
    def query(self) -> str:
        return str(self.entry.get("query") or "")

    @property
    def headers(self) -> dict[str, str]:
        return {k: v for k, v in dict(self.entry.get("request_headers") or {}).items() if k != RELAY_HEADER}

    @property
    def body(self) -> bytes:
        return str(self.entry.get("request_body") or "").encode("utf-8")

    @property
    def body_size(self) -> int:
        """The whole body's size in bytes (the journal keeps the first 16 KiB as text)."""
        return int(self.entry.get("request_body_size") or 0)

    @property
    def body_unknown(self) -> bool:
        """A connection a fault dropped before the body was read: the journal has the headers, not the body."""
        announced = str(self.entry.get("request_headers", {}).get("content-length") or "0")
        return self.status is None and not self.entry.get("request_body_size") and announced not in ("", "0")

    @property
    def status(self) -> int | None:
        status = self.entry.get("status")
        return None if status is None else int(status)

    @property
    def fault(self) -> str | None:
        return self.entry.get("fault")

    @property
    def answer_lost(self) -> bool:
        """The relay threw this answer away: the instance carried the request out, the client never heard."""
        return (self.entry.get("request_headers") or {}).get(RELAY_HEADER) == LOST

    @property
    def through_impostor(self) -> bool:
        """The request came through the harness's impostor (a certificate the client should have refused)."""
        return (self.entry.get("request_headers") or {}).get(RELAY_HEADER) in IMPOSTORS

    @property
    def received(self) -> bool:
        """The client got this answer (it was neither dropped by a fault nor lost by the relay)."""
        return self.status is not None and not self.answer_lost

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def response_text(self) -> str:
        return str(self.entry.get("response_body") or "")

    def response_json(self) -> Any:
        try:
            return json.loads(self.response_text)
        except ValueError:
            return None

    @property
    def err(self) -> str | None:
        body = self.response_json()
        value = body.get("err") if isinstance(body, dict) else None
        return value if isinstance(value, str) else None

    def target(self) -> str:
        where = self.instance if self.face == "core" else "activation server"
        return f"{self.method} {self.path}{'?' + self.query if self.query else ''} on {where}"

    def answer(self) -> str:
        """The answer as a report shows it."""
        if self.status is None:
            return "no answer (the connection was dropped by a fault)"
        text = self.response_text if len(self.response_text) <= 300 else self.response_text[:300] + "…"
        lost = " (answer lost on the way back: the client never got it)" if self.answer_lost else ""
        return f"{self.status} {text}{lost}"

    def exchange(self, base_urls: dict[str | None, str]) -> Exchange:
        """As a contracts Exchange, so a report renders it like the other suites' exchanges."""
        base = base_urls.get(self.instance if self.face == "core" else None, "")
        headers = {name: value for name, value in self.headers.items() if name in SHOWN_HEADERS}
        if self.status is None:
            reason = "(no answer: the connection was dropped by a fault)"
        elif self.answer_lost:
            reason = "(answered, but the relay lost the answer: the client never got it)"
        else:
            reason = _phrase(self.status)
        return Exchange(
            method=self.method,
            url=f"{base}{self.path}{'?' + self.query if self.query else ''}",
            request_headers=headers,
            request_body=self.body,
            status=self.status or 0,
            reason=reason,
            response_headers={"Content-Type": (self.entry.get("response_headers") or {}).get("content-type", "")}
            if self.status is not None
            else {},
            response_body=self.response_text.encode("utf-8"),
        )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def records(entries: list[dict[str, Any]]) -> list[Record]:
    return sorted((Record(e) for e in entries), key=lambda r: r.id)


def record_call(fleet: Fleet, step: ClientStep, described: str, result: CallResult) -> tuple[list[Record], Outcome]:
    """After a client call (the mock's journal emptied before it): the requests it sent, shown in `step` with what
    the client printed and reported; `adapter-protocol` when the client gave no outcome."""
    sent = records(fleet.control_request("GET", "journal")["entries"])
    base_urls: dict[str | None, str] = {**fleet.instances, None: fleet.activation_url or ""}
    step.exchanges = [record.exchange(base_urls) for record in sent]
    step.output = result.output
    if result.outcome is None:
        raise Violation("adapter-protocol", f"{described}: {result.problem}")
    step.reported = describe_outcome(result.outcome)
    return sent, result.outcome
