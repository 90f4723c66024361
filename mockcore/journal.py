"""The request journal: every request to a Core instance or the activation server and its answer, newest last,
bounded (the oldest entry is dropped past the cap; bodies are cut at BODY_LIMIT bytes)."""

from __future__ import annotations

import fnmatch
import threading
from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Any

DEFAULT_CAP = 1000
MAX_CAP = 100_000
BODY_LIMIT = 16 * 1024


@dataclass(frozen=True)
class JournalEntry:
    id: int
    time: str  # wall-clock time the request arrived (ISO)
    fleet_time: str  # the fleet clock at that moment
    face: str  # "core" or "activation"
    instance: str | None
    method: str
    path: str
    query: str
    request_headers: dict[str, str]
    request_body: str
    request_body_size: int
    status: int | None  # None: the connection was dropped by a fault
    response_headers: dict[str, str]
    response_body: str
    duration_ms: float
    fault: str | None  # the id of the fault rule that fired


def body_text(data: bytes) -> str:
    return data[:BODY_LIMIT].decode("utf-8", errors="replace")


class Journal:
    """`ceiling`: the largest cap `set_cap` takes (MAX_CAP for `mockcore serve`; a tenant's is its server's
    --tenant-journal-cap), so what a journal holds stays bounded whoever sets its cap."""

    def __init__(self, cap: int = DEFAULT_CAP, ceiling: int = MAX_CAP) -> None:
        if not 0 <= ceiling <= MAX_CAP:
            raise ValueError(f"a journal's ceiling is from 0 to {MAX_CAP}, not {ceiling}")
        self.ceiling = ceiling
        self._check(cap)
        self._lock = threading.Lock()
        self._entries: deque[JournalEntry] = deque(maxlen=cap)
        self._next_id = 1

    def _check(self, cap: int) -> None:
        if not 0 <= cap <= self.ceiling:
            raise ValueError(f"a journal's cap is from 0 to {self.ceiling}, not {cap}")

    @property
    def cap(self) -> int:
        return self._entries.maxlen or 0

    def set_cap(self, cap: int) -> None:
        """ValueError (and the cap unchanged) past the ceiling."""
        self._check(cap)
        with self._lock:
            self._entries = deque(self._entries, maxlen=cap)

    def record(self, entry: JournalEntry) -> None:
        """Append the entry, numbered here under the lock so ids follow the journal's order."""
        if self.cap:
            with self._lock:
                self._entries.append(replace(entry, id=self._next_id))
                self._next_id += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._next_id = 1

    def entries(
        self,
        instance: str | None = None,
        method: str | None = None,
        path: str | None = None,
        face: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        with self._lock:
            snapshot = list(self._entries)
        chosen = [
            e
            for e in snapshot
            if (instance is None or e.instance == instance)
            and (face is None or e.face == face)
            and (method is None or e.method == method.upper())
            and (path is None or fnmatch.fnmatchcase(e.path, path))
        ]
        if limit is not None:
            chosen = chosen[-limit:] if limit else []
        return [asdict(e) for e in chosen]
