"""Scans and engines of one Core instance: deterministic verdicts (EICAR is infected, all else clean)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
MAX_SCANS = 10_000  # results kept per instance; the oldest is dropped past this


@dataclass(frozen=True)
class Engine:
    eng_id: str
    eng_name: str
    eng_type: str
    engine_type: str
    eng_ver: str


ENGINES: tuple[Engine, ...] = (
    Engine("clamav_1_linux", "ClamAV", "Bundled engine", "av", "1.0.5-12"),
    Engine("avira_1_linux", "Avira", "Bundled engine", "av", "8.3.64.0-9"),
    Engine("filetype_1_linux", "File type analysis", "Bundled engine", "filetype", "7.6.0-3"),
    Engine("archive_1_linux", "Archive", "Bundled engine", "archive", "7.5.1-7"),
)


@dataclass(frozen=True)
class Progression:
    """How long work stays unfinished, so polling loops can be tested: engines stay `downloading` for their first
    `engine_polls` polls of /stat/engines and `engine_seconds` of fleet time after the instance was first seen
    licensed; a scan stays below 100 % for its first `scan_polls` result polls and `scan_seconds` of fleet time."""

    engine_polls: int = 0
    engine_seconds: float = 0.0
    scan_polls: int = 0
    scan_seconds: float = 0.0


SCAN_STAMP = "%Y-%m-%dT%H:%M:%S.000Z"


def _stamp(moment: datetime) -> str:
    return moment.strftime(SCAN_STAMP)


def _partial(polls: int, needed_polls: int, elapsed: float, needed_seconds: float) -> int | None:
    """Percent done (0-99) while unfinished, None once done."""
    elapsed = max(0.0, elapsed)  # a clock moved back counts as no time passed, never as negative time
    if polls > needed_polls and elapsed >= needed_seconds:
        return None
    shares = []
    if needed_polls:
        shares.append(min(1.0, polls / (needed_polls + 1)))
    if needed_seconds:
        shares.append(min(1.0, elapsed / needed_seconds))
    return max(0, min(99, int(100 * min(shares or [0.0]))))


@dataclass(frozen=True)
class Scan:
    data_id: str
    filename: str
    size: int
    sha256: str
    infected: bool
    started: str


@dataclass
class Scanning:
    disabled: set[str] = field(default_factory=set)
    scans: OrderedDict[str, Scan] = field(default_factory=OrderedDict)
    counter: int = 0
    # Progression bookkeeping: transient, not part of a state document.
    licensed_since: datetime | None = None
    engine_polls: int = 0
    scan_polls: dict[str, int] = field(default_factory=dict)

    def observe_licence(self, licensed: bool, now: datetime) -> None:
        if not licensed:
            self.licensed_since, self.engine_polls = None, 0
        elif self.licensed_since is None:
            self.licensed_since = now

    def engines(
        self, def_time: datetime, now: datetime, progression: Progression, *, poll: bool = True
    ) -> list[dict[str, object]]:
        stamp = _stamp(def_time)
        self.engine_polls += poll
        elapsed = (now - (self.licensed_since or now)).total_seconds()
        partial = _partial(self.engine_polls, progression.engine_polls, elapsed, progression.engine_seconds)
        return [
            {
                "eng_id": e.eng_id,
                "eng_name": e.eng_name,
                "eng_type": e.eng_type,
                "engine_type": e.engine_type,
                "eng_ver": e.eng_ver,
                "state": "production" if partial is None else "downloading",
                "active": e.eng_id not in self.disabled,
                "def_time": stamp,
                "download_time": stamp,
                "download_progress": 100 if partial is None else partial,
            }
            for e in ENGINES
        ]

    @staticmethod
    def known_engine(eng_id: str) -> bool:
        return any(e.eng_id == eng_id for e in ENGINES)

    def set_enabled(self, eng_id: str, enabled: bool) -> None:
        if enabled:
            self.disabled.discard(eng_id)
        else:
            self.disabled.add(eng_id)

    def submit(self, data_id: str, body: bytes, filename: str, now: datetime) -> Scan:
        scan = Scan(
            data_id=data_id,
            filename=filename,
            size=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            infected=EICAR in body,
            started=_stamp(now),
        )
        self.counter += 1
        self.scans[data_id] = scan
        while len(self.scans) > MAX_SCANS:
            dropped, _ = self.scans.popitem(last=False)
            self.scan_polls.pop(dropped, None)
        return scan

    def result(self, data_id: str, now: datetime, progression: Progression) -> dict[str, object] | None:
        scan = self.scans.get(data_id)
        if scan is None:
            return None
        polls = self.scan_polls[data_id] = self.scan_polls.get(data_id, 0) + 1
        elapsed = (now - datetime.strptime(scan.started, SCAN_STAMP).replace(tzinfo=now.tzinfo)).total_seconds()
        partial = _partial(polls, progression.scan_polls, elapsed, progression.scan_seconds)
        verdict, text = (1, "Infected") if scan.infected else (0, "No Threat Detected")
        if partial is not None:
            verdict, text = 255, "In Progress"
        details = {
            e.eng_name: {
                "scan_result_i": verdict if e.engine_type == "av" else 0,
                "threat_found": "EICAR-Test-File" if (scan.infected and e.engine_type == "av") else "",
                "def_time": scan.started,
                "scan_time": 1,
            }
            for e in ENGINES
            if e.eng_id not in self.disabled
        }
        return {
            "data_id": scan.data_id,
            "file_info": {
                "display_name": scan.filename,
                "file_size": scan.size,
                "sha256": scan.sha256,
                "upload_timestamp": scan.started,
            },
            "process_info": {
                "progress_percentage": 100 if partial is None else partial,
                "result": "Processing" if partial is not None else ("Blocked" if scan.infected else "Allowed"),
                "profile": "File process",
            },
            "scan_results": {
                "data_id": scan.data_id,
                "progress_percentage": 100 if partial is None else partial,
                "scan_all_result_i": verdict,
                "scan_all_result_a": text,
                "start_time": scan.started,
                "total_avs": len(details),
                "scan_details": details,
            },
        }
