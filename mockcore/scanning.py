"""Scans and engines of one Core instance: deterministic verdicts (EICAR is infected, all else clean).

A scan's result (docs/responses.md, Scans) is built from what the scan keeps and the fleet clock: its times are
the scan's start and the fleet time the progression holds it back (mockcore.scanning.Progression), never the host's.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_THREAT = "EICAR-Test-File"
MAX_SCANS = 10_000  # results kept per instance; the oldest is dropped past this
PROFILE = "File process"  # the workflow rule every scan is reported under
USER_PREFIX = "LOCAL/"  # a user of the instance's own directory, as results name the submitter


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
class FileType:
    mime: str
    description: str
    category: str  # the vendor's type category letter (T text, P PDF, A archive, E executable, G image, O other)


BINARY = FileType("application/octet-stream", "Binary data", "O")
# Leading bytes -> type: what a file type engine would tell of the usual samples, the rest is text or binary data.
_MAGIC: tuple[tuple[bytes, FileType], ...] = (
    (b"%PDF-", FileType("application/pdf", "Adobe Portable Document Format", "P")),
    (b"PK\x03\x04", FileType("application/zip", "ZIP compressed archive", "A")),
    (b"\x1f\x8b", FileType("application/gzip", "GZIP compressed archive", "A")),
    (b"MZ", FileType("application/x-dosexec", "Windows executable", "E")),
    (b"\x7fELF", FileType("application/x-executable", "ELF executable", "E")),
    (b"\x89PNG\r\n\x1a\n", FileType("image/png", "Portable Network Graphics image", "G")),
    (b"\xff\xd8\xff", FileType("image/jpeg", "JPEG image", "G")),
    (b"GIF8", FileType("image/gif", "GIF image", "G")),
)
# Control bytes no text has (tab, line feed, form feed and carriage return are text).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def file_type(body: bytes) -> FileType:
    """The type of a scanned file by its leading bytes; UTF-8 without control characters is text."""
    for magic, found in _MAGIC:
        if body.startswith(magic):
            return found
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return BINARY
    if _CONTROL.search(body):
        return BINARY
    return FileType("text/plain", "ASCII text" if body.isascii() else "UTF-8 Unicode text", "T")


@dataclass(frozen=True)
class Scan:
    """What a state document keeps of a scan (mockcore.snapshot)."""

    data_id: str
    filename: str
    size: int
    sha256: str
    infected: bool
    started: str


@dataclass(frozen=True)
class ScanExtras:
    """What a result shows beyond `Scan`, kept in memory only (like the progression's poll counts): the body's
    other digests and type, the client's user agent and the submitting user. A scan loaded from a state document
    has none of them: empty digests, user and agent, and the type of binary data."""

    md5: str = ""
    sha1: str = ""
    type: FileType = BINARY
    user_agent: str = ""
    username: str = ""


@dataclass(frozen=True)
class Upload:
    """A file sent for a scan, looked at once, before the fleet's lock is taken (hashing 64 MiB takes a while)."""

    filename: str
    size: int
    sha256: str
    infected: bool
    extras: ScanExtras


@dataclass
class Scanning:
    disabled: set[str] = field(default_factory=set)
    scans: OrderedDict[str, Scan] = field(default_factory=OrderedDict)
    counter: int = 0
    # Progression bookkeeping and the results' extras: transient, not part of a state document.
    licensed_since: datetime | None = None
    engine_polls: int = 0
    scan_polls: dict[str, int] = field(default_factory=dict)
    extras: dict[str, ScanExtras] = field(default_factory=dict)

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

    @staticmethod
    def inspect(body: bytes, filename: str, user_agent: str = "", username: str = "") -> Upload:
        """The file and its request as a scan keeps them; `username` is the submitting user's name (empty for an
        anonymous scan). Pure: no lock needed."""
        extras = ScanExtras(
            md5=hashlib.md5(body, usedforsecurity=False).hexdigest(),
            sha1=hashlib.sha1(body, usedforsecurity=False).hexdigest(),
            type=file_type(body),
            user_agent=user_agent,
            username=USER_PREFIX + username if username else "",
        )
        return Upload(filename, len(body), hashlib.sha256(body).hexdigest(), EICAR in body, extras)

    def submit(self, data_id: str, upload: Upload, now: datetime) -> Scan:
        scan = Scan(data_id, upload.filename, upload.size, upload.sha256, upload.infected, _stamp(now))
        self.counter += 1
        self.scans[data_id] = scan
        self.extras[data_id] = upload.extras
        while len(self.scans) > MAX_SCANS:
            dropped, _ = self.scans.popitem(last=False)
            self.scan_polls.pop(dropped, None)
            self.extras.pop(dropped, None)
        return scan

    def result(
        self, data_id: str, def_time: datetime, now: datetime, progression: Progression, *, poll: bool = True
    ) -> dict[str, object] | None:
        """The result of a scan (None: no such scan); `def_time` is the engines' definitions time. `poll` counts
        this read as a client's poll for the progression."""
        looked = self._look(data_id, now, progression, poll)
        return None if looked is None else _render(*looked, _stamp(def_time), self.disabled)

    def finished_result(
        self, data_id: str, def_time: datetime, now: datetime, progression: Progression
    ) -> dict[str, object] | None:
        """The result if the scan is finished already, else None (the progression holds it back). A look, not a
        poll: it sees the scan as the next poll would, and counts nothing."""
        looked = self._look(data_id, now, progression, poll=False)
        if looked is None or looked[2] is not None:
            return None
        return _render(*looked, _stamp(def_time), self.disabled)

    def _look(
        self, data_id: str, now: datetime, progression: Progression, poll: bool
    ) -> tuple[Scan, ScanExtras, int | None, int] | None:
        """The scan, its extras, its progress (None once finished) and its fleet time in milliseconds."""
        scan = self.scans.get(data_id)
        if scan is None:
            return None
        polls = self.scan_polls.get(data_id, 0) + 1
        if poll:
            self.scan_polls[data_id] = polls
        started = datetime.strptime(scan.started, SCAN_STAMP).replace(tzinfo=now.tzinfo)
        elapsed = max(0.0, (now - started).total_seconds())
        partial = _partial(polls, progression.scan_polls, elapsed, progression.scan_seconds)
        # The time the progression holds the scan back for, as far as the fleet clock has gone since `start_time`:
        # start_time + total_time is never past now, and an immediate progression makes every time 0.
        took = int(1000 * min(elapsed, max(0.0, progression.scan_seconds)))
        return scan, self.extras.get(data_id, ScanExtras()), partial, took


_EMPTY_POST_PROCESSING = {
    "actions_failed": "",
    "actions_ran": "",
    "converted_destination": "",
    "converted_to": "",
    "copy_move_destination": "",
}


def _render(
    scan: Scan, extras: ScanExtras, partial: int | None, took: int, def_time: str, disabled: set[str]
) -> dict[str, object]:
    """A scan's result as the vendor's AnalysisResult has it: progress, verdict, times, engines, file."""
    progress = 100 if partial is None else partial
    if partial is not None:
        verdict, text, outcome = 255, "In Progress", "Processing"
    elif scan.infected:
        verdict, text, outcome = 1, "Infected", "Blocked"
    else:
        verdict, text, outcome = 0, "No Threat Detected", "Allowed"
    blocked = [text] if outcome == "Blocked" else []
    details = {
        e.eng_name: {
            "eng_id": e.eng_id,
            "def_time": def_time,
            "location": "local",
            "scan_result_i": verdict if e.engine_type == "av" else 0,
            "threat_found": EICAR_THREAT if (scan.infected and e.engine_type == "av" and partial is None) else "",
            "scan_time": took,
            "wait_time": 0,
        }
        for e in ENGINES
        if e.eng_id not in disabled
    }
    return {
        "data_id": scan.data_id,
        "file_info": {
            "display_name": scan.filename,
            "file_size": scan.size,
            "file_type": extras.type.mime,
            "file_type_description": extras.type.description,
            "type_category": [extras.type.category],
            "md5": extras.md5,
            "sha1": extras.sha1,
            "sha256": scan.sha256,
            "upload_timestamp": scan.started,
        },
        "process_info": {
            "progress_percentage": progress,
            "result": outcome,
            "profile": PROFILE,
            "blocked_reason": blocked[0] if blocked else "",
            "blocked_reasons": blocked,
            "file_type_skipped_scan": False,
            "outdated_data": [],
            "queue_time": 0,  # scanned as soon as received: start_time is upload_timestamp
            "processing_time": took,
            "user_agent": extras.user_agent,
            "username": extras.username,
            "verdicts": [text],
            "post_processing": dict(_EMPTY_POST_PROCESSING),
        },
        "scan_results": {
            "data_id": scan.data_id,
            "progress_percentage": progress,
            "scan_all_result_i": verdict,
            "scan_all_result_a": text,
            "start_time": scan.started,
            "total_time": took,
            "total_avs": len(details),
            "scan_details": details,
        },
    }
