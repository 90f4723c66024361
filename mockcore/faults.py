"""Fault rules: make chosen requests fail, slow down or lose their connection, for the next N matches or with a
seeded probability. A rule matches a face (`core`, `activation` or `any`), optionally one instance, a method and a
path glob. Rules on the activation server also hit the fleet's in-process online operations
(docs/guides/test-double.md and docs/reference/control-plane.md)."""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass, field
from typing import Any

FACES = ("core", "activation", "any")
MAX_DELAY_SECONDS = 60.0
MAX_RULES = 1000


class InvalidFault(ValueError):
    """The rule document is malformed; the message names the field."""


@dataclass
class FaultRule:
    id: str
    face: str = "any"
    instance: str | None = None
    method: str = "*"
    path: str = "*"
    times: int | None = None  # remaining matches; None: every match
    probability: float | None = None
    seed: int | None = None
    status: int | None = None
    err: str | None = None
    delay: float = 0.0
    drop: bool = False
    matched: int = 0
    _random: random.Random = field(default_factory=random.Random, repr=False)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "face": self.face,
            "instance": self.instance,
            "method": self.method,
            "path": self.path,
            "times": self.times,
            "probability": self.probability,
            "seed": self.seed,
            "status": self.status,
            "err": self.err,
            "delay": self.delay,
            "drop": self.drop,
            "matched": self.matched,
        }

    def applies(self, face: str, instance: str | None, method: str, path: str) -> bool:
        return (
            self.face in ("any", face)
            and (self.instance is None or self.instance == instance)
            and (self.method == "*" or self.method == method)
            and fnmatch.fnmatchcase(path, self.path)
        )


def _field(doc: dict[str, Any], name: str, kinds: type | tuple[type, ...], default: Any) -> Any:
    value = doc.get(name, default)
    if value is default:
        return value
    if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
        raise InvalidFault(f"`{name}` has the wrong type")
    if not isinstance(value, kinds):
        raise InvalidFault(f"`{name}` has the wrong type")
    return value


def parse_rule(doc: Any, rule_id: str) -> FaultRule:
    if not isinstance(doc, dict):
        raise InvalidFault("a fault rule is a JSON object")
    known = {"face", "instance", "method", "path", "times", "probability", "seed", "status", "err", "delay", "drop"}
    unknown = set(doc) - known
    if unknown:
        raise InvalidFault(f"unknown fields: {', '.join(sorted(map(str, unknown)))}")
    face = _field(doc, "face", str, "any")
    if face not in FACES:
        raise InvalidFault(f"`face` is one of {', '.join(FACES)}")
    method = _field(doc, "method", str, "*").upper()
    path = _field(doc, "path", str, "*")
    if not path.startswith("/") and path != "*":
        raise InvalidFault("`path` is a path glob starting with '/', e.g. /admin/license/*")
    times = _field(doc, "times", int, None)
    if times is not None and times < 1:
        raise InvalidFault("`times` is at least 1 (leave it out for every match)")
    probability = _field(doc, "probability", (int, float), None)
    if probability is not None and not 0 <= probability <= 1:
        raise InvalidFault("`probability` is from 0 to 1")
    seed = _field(doc, "seed", int, None)
    status = _field(doc, "status", int, None)
    if status is not None and not 100 <= status <= 599:
        raise InvalidFault("`status` is an HTTP status from 100 to 599")
    err = _field(doc, "err", str, None)
    delay = float(_field(doc, "delay", (int, float), 0.0))
    if not 0 <= delay <= MAX_DELAY_SECONDS:
        raise InvalidFault(f"`delay` is from 0 to {MAX_DELAY_SECONDS:g} seconds")
    drop = _field(doc, "drop", bool, False)
    if drop and status is not None:
        raise InvalidFault("a rule either drops the connection or answers a status, not both")
    if not drop and status is None and delay == 0:
        raise InvalidFault("a rule needs an effect: `status` (with `err`), `delay` or `drop`")
    if err is not None and status is None:
        raise InvalidFault("`err` goes with `status`")
    return FaultRule(
        id=rule_id,
        face=face,
        instance=_field(doc, "instance", str, None),
        method=method,
        path=path,
        times=times,
        probability=None if probability is None else float(probability),
        seed=seed,
        status=status,
        err=err if err is not None or status is None else "Injected fault.",
        delay=delay,
        drop=drop,
        _random=random.Random(seed),
    )


class Faults:
    """The fleet's rule list. Thread-safe on its own lock; the first rule that fires wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._next_id = 1

    def add(self, doc: Any) -> FaultRule:
        with self._lock:
            if len(self._rules) >= MAX_RULES:
                raise InvalidFault(f"at most {MAX_RULES} rules; clear some first")
            rule = parse_rule(doc, f"fault-{self._next_id}")
            self._next_id += 1
            self._rules.append(rule)
            return rule

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            kept = [r for r in self._rules if r.id != rule_id]
            removed = len(kept) != len(self._rules)
            self._rules = kept
            return removed

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def fire(self, face: str, instance: str | None, method: str, path: str) -> FaultRule | None:
        """The rule that fires for this request, if any, counting it (a `times` rule is used up)."""
        if not self._rules:
            return None
        with self._lock:
            for rule in self._rules:
                if not rule.applies(face, instance, method, path):
                    continue
                if rule.probability is not None and rule._random.random() >= rule.probability:
                    continue
                rule.matched += 1
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times == 0:
                        self._rules.remove(rule)
                return rule
            return None
