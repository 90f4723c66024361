"""Parity evidence: each step's answers, normalised (ids, dates, hosts and keys masked), written to a snapshot, and a
later run compared with it. Record the failover sequence against a real Core, compare a run against the mock (or
the other way round), and every difference in status, body shape or error text shows, step by step.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from contracts.checks import Step
from contracts.exchange import Exchange

FORMAT = "mockcore-contracts-parity/1"
DEPLOYMENT = re.compile(r"MSCL[0-9a-f]{32}")
DATA_ID = re.compile(r"\b[0-9a-f]{32}\b")
DATE = re.compile(r"\b\d{2}/\d{2}/\d{4}\b")
KEY = re.compile(r"\b[0-9A-Za-z]{4}(?:-[0-9A-Za-z]{4}){6}\b")


class SnapshotError(Exception):
    """The snapshot file is missing, unreadable or not a parity snapshot."""


@dataclass
class Masks:
    """What differs between two targets by nature: their hosts, deployment ids and keys, named by position."""

    hosts: dict[str, str]  # base URL -> "<instance N>" / "<activation server>"
    deployments: dict[str, str]
    keys: dict[str, str]

    def text(self, text: str) -> str:
        for base, label in self.hosts.items():
            text = text.replace(base, label)
        text = DEPLOYMENT.sub(lambda m: self.deployments.get(m.group(0), "<deployment>"), text)
        text = KEY.sub(lambda m: self.keys.get(m.group(0), "<key>"), text)
        text = DATA_ID.sub("<data_id>", text)
        return DATE.sub("<date>", text)

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ("<days>" if k == "days_left" else self.value(v)) for k, v in sorted(value.items())}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def masks_for(
    instances: dict[str, str], activation_url: str | None, deployments: dict[str, str], keys: list[str]
) -> Masks:
    hosts = {url: f"<instance {i + 1}>" for i, url in enumerate(instances.values())}
    if activation_url:
        hosts[activation_url] = "<activation server>"
    return Masks(
        hosts,
        {dep: f"<deployment of instance {list(instances).index(name) + 1}>" for name, dep in deployments.items()},
        {key: f"<key {i + 1}>" for i, key in enumerate(keys)},
    )


def normalise(exchange: Exchange, masks: Masks) -> dict[str, Any]:
    parts = urlsplit(exchange.url)
    base = f"{parts.scheme}://{parts.netloc}"
    query = [(k, masks.text(v)) for k, v in parse_qsl(parts.query)]
    request = f"{exchange.method} {masks.hosts.get(base, '<host>')}{parts.path}"
    if query:
        request += "?" + "&".join(f"{k}={v}" for k, v in query)
    headers = {k: masks.text(v) for k, v in exchange.request_headers.items() if k.lower() != "apikey"}
    answer: dict[str, Any] = {"request": request, "status": exchange.status}
    if headers:
        answer["headers"] = dict(sorted(headers.items()))
    content_type = exchange.response_headers.get("Content-Type", "")
    if "json" in content_type:
        try:
            answer["body"] = masks.value(json.loads(exchange.response_body))
        except ValueError:
            answer["body"] = "<not JSON>"
    elif exchange.response_body:
        # The activation server's YAML: a licence file (vendor format unknown) or an error; keep the reason.
        answer["reason"] = exchange.reason
        answer["body"] = "<error>" if exchange.response_body.lstrip().startswith(b"error:") else "<licence file>"
    return answer


def snapshot(steps: list[Step], masks: Masks) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "steps": [
            {"title": masks.text(step.title), "answers": [normalise(e, masks) for e in step.exchanges]}
            for step in steps
        ],
    }


def write(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def read(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SnapshotError(f"cannot read the parity snapshot {path}: {exc}") from exc
    if (
        not isinstance(document, dict)
        or document.get("format") != FORMAT
        or not isinstance(document.get("steps"), list)
    ):
        raise SnapshotError(f"{path} is not a parity snapshot ({FORMAT})")
    return document


def compare(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Every difference, step by step: answers compared in order; titles shown, not compared."""
    differences = []
    old_steps, new_steps = recorded["steps"], current["steps"]
    for index in range(max(len(old_steps), len(new_steps))):
        if index >= len(old_steps) or index >= len(new_steps):
            missing = "recorded run" if index >= len(old_steps) else "this run"
            differences.append(f"step {index + 1}: absent from the {missing}")
            continue
        old, new = old_steps[index], new_steps[index]
        old_answers, new_answers = old.get("answers", []), new.get("answers", [])
        if len(old_answers) != len(new_answers):
            differences.append(
                f"step {index + 1} ({new['title']}): {len(old_answers)} exchanges recorded, {len(new_answers)} now"
            )
        for a, b in zip(old_answers, new_answers, strict=False):
            if a != b:
                fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                changes = "; ".join(f"{k}: recorded {a.get(k)!r}, now {b.get(k)!r}" for k in fields)
                differences.append(f"step {index + 1} ({new['title']}): {b.get('request')}: {changes}")
    return differences
