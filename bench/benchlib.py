"""What both benchmarks share: subprocesses that always stop, the load generators (wrk, else a Python keep-alive
client) and the output helpers. Not a test module: pytest never collects bench/ (testpaths is `tests`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

BENCH_DIR = Path(__file__).resolve().parent
LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
REQUEST_TIMEOUT = 10.0


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# Subprocesses


@dataclass
class Served:
    """A server running in a subprocess: its ready document, its process and where its output goes."""

    name: str
    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    stdout: Path
    stderr: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def stderr_text(self) -> str:
        return self.stderr.read_text(errors="replace")

    def cpu_seconds(self) -> float | None:
        return session_cpu_seconds(self.process.pid)


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def session_cpu_seconds(sid: int) -> float | None:
    """User + system CPU seconds of the live processes of session `sid` (a served process and, for gunicorn,
    its worker), from Linux's /proc; None where there is no /proc. Unlike requests/s, the server's CPU time per
    request hardly depends on what else the machine runs."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    ticks = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[3]) == sid:  # field 6, session
            ticks += int(fields[11]) + int(fields[12])  # fields 14 and 15, utime and stime
    return ticks / _TICKS


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process (and its session: gunicorn's worker), wait, then SIGKILL what is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_TIMEOUT)
    # The session may still hold children (a gunicorn worker) even once the leader is gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def served(name: str, argv: Sequence[str], ready_file: Path, workdir: Path) -> Iterator[Served]:
    """Start `argv` in its own session, wait for it to write `ready_file`, yield it, and always stop it."""
    stdout, stderr = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True, cwd=workdir
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready_file.exists():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}: {stderr.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name} not ready after {READY_TIMEOUT:.0f} s: {stderr.read_text(errors='replace')}"
                )
            time.sleep(0.05)
        yield Served(name, process, json.loads(ready_file.read_text()), stdout, stderr)
    finally:
        _stop(process)


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as path:
        yield Path(path)


def bare_app_argv(server: str, threads: int, ready_file: Path) -> list[str]:
    return [
        sys.executable,
        str(BENCH_DIR / "bare_app.py"),
        "--server",
        server,
        "--threads",
        str(threads),
        "--ready-file",
        str(ready_file),
    ]


def wait_until_serving(url: str, path: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> None:
    """Until one request to `path` answers 200 (a server may listen before its worker serves)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, _ = request_once(url, "GET", path, headers=headers)
            if status == 200:
                return
            last = status
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{url}{path} not serving after {timeout:.0f} s: {last}")


# HTTP


def connect(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    assert parts.hostname in (LOOPBACK, "localhost"), f"benchmarks only target {LOOPBACK}, not {url}"
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=REQUEST_TIMEOUT)


def request_once(
    url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = connect(url)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# Load generators


@dataclass
class Load:
    """One timed run: how many requests completed in how long, and what went wrong."""

    generator: str
    connections: int
    requests: int
    seconds: float
    errors: int  # socket errors, timeouts and responses whose status was not the expected one
    statuses: dict[str, int] = field(default_factory=dict)  # unexpected statuses seen (python client only)
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    server_cpu_s: float | None = None  # CPU time the server spent meanwhile (None: not measurable here)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_request(self) -> float | None:
        return cpu_ms_per_request(self.server_cpu_s, self.requests)

    def as_dict(self) -> dict[str, Any]:
        cpu = self.cpu_ms_per_request
        return {**asdict(self), "rps": round(self.rps, 1), "cpu_ms_per_request": None if cpu is None else round(cpu, 4)}


def cpu_ms_per_request(cpu_s: float | None, requests: int) -> float | None:
    return None if cpu_s is None or requests <= 0 else cpu_s * 1000 / requests


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str:
    path = wrk_path()
    if path is None:
        return "missing"
    result = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10, check=False)
    match = re.search(r"wrk\s+(\S+)", result.stdout + result.stderr)
    return match[1] if match else "unknown"


_WRK_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_string(text: str) -> str:
    assert re.fullmatch(r"[\x20-\x7e]*", text) and "\\" not in text, text
    return '"' + text.replace('"', '\\"') + '"'


def run_wrk(url: str, path: str, headers: dict[str, str], connections: int, duration: int, workdir: Path) -> Load:
    """wrk with one thread (the server is Python on the same two cores) and `connections` keep-alive connections.
    Responses of status 400 or above are wrk's `status` errors."""
    path_ok = re.fullmatch(r"/[A-Za-z0-9/_.-]*", path)
    assert path_ok, path
    script = workdir / "bench.lua"
    lines = [f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n" + _WRK_DONE)
    wrk = wrk_path()
    assert wrk is not None
    argv = [wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "-s", str(script), url + path]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    match = re.search(r"^BENCH_RESULT (.*)$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout}\n{result.stderr}")
    doc = json.loads(match[1])
    errors = sum(doc[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Load(
        "wrk",
        connections,
        doc["requests"],
        doc["duration_us"] / 1e6,
        errors,
        {k: doc[k] for k in ("connect", "read", "write", "status", "timeout") if doc[k]},
        doc["p50_us"] / 1000,
        doc["p99_us"] / 1000,
    )


@dataclass
class _ClientTally:
    requests: int = 0
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)


def _client_loop(
    url: str,
    path: str,
    headers: dict[str, str],
    start: threading.Barrier,
    deadline_box: list[float],
    tally: _ClientTally,
) -> None:
    conn = connect(url)
    try:
        start.wait(timeout=30)
        deadline = deadline_box[0]
        while True:
            began = time.perf_counter()
            if began >= deadline:
                return
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                tally.errors += 1
                tally.statuses[type(exc).__name__] = tally.statuses.get(type(exc).__name__, 0) + 1
                conn.close()
                conn = connect(url)
                continue
            tally.latencies.append(time.perf_counter() - began)
            tally.requests += 1
            if response.status != 200:
                tally.errors += 1
                tally.statuses[str(response.status)] = tally.statuses.get(str(response.status), 0) + 1
    finally:
        conn.close()


def run_python(url: str, path: str, headers: dict[str, str], connections: int, duration: float) -> Load:
    """`connections` threads, each with its own keep-alive http.client connection, GET `path` until the end.
    The client shares the GIL and the two cores with nothing but itself; it is much slower than wrk."""
    tallies = [_ClientTally() for _ in range(connections)]
    start = threading.Barrier(connections + 1)
    deadline_box = [0.0]
    threads = [
        threading.Thread(target=_client_loop, args=(url, path, headers, start, deadline_box, tally), daemon=True)
        for tally in tallies
    ]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline_box[0] = began + duration
    start.wait(timeout=30)
    for thread in threads:
        thread.join(timeout=duration + 2 * REQUEST_TIMEOUT)
    seconds = time.perf_counter() - began
    latencies = sorted(x for t in tallies for x in t.latencies)
    statuses: dict[str, int] = {}
    for tally in tallies:
        for key, count in tally.statuses.items():
            statuses[key] = statuses.get(key, 0) + count
    return Load(
        "python",
        connections,
        sum(t.requests for t in tallies),
        seconds,
        sum(t.errors for t in tallies),
        statuses,
        _percentile_ms(latencies, 50),
        _percentile_ms(latencies, 99),
    )


def _percentile_ms(sorted_seconds: list[float], pct: int) -> float | None:
    if not sorted_seconds:
        return None
    index = min(len(sorted_seconds) - 1, round(pct / 100 * (len(sorted_seconds) - 1)))
    return sorted_seconds[index] * 1000


class LoadGenerator:
    """wrk when it is installed (or asked for), else the Python client; `name` says which one runs."""

    def __init__(self, choice: str, workdir: Path) -> None:
        if choice == "wrk" and wrk_path() is None:
            raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install wrk)")
        self.name = "wrk" if choice in ("wrk", "auto") and wrk_path() is not None else "python"
        self.why = "--loadgen python" if choice == "python" else "wrk not installed"
        self.workdir = workdir

    def describe(self) -> str:
        if self.name == "wrk":
            return f"wrk {wrk_version()} (1 thread, Lua script for headers)"
        return f"python http.client keep-alive client, one thread per connection ({self.why})"

    def run(
        self, server: Served, url: str, path: str, headers: dict[str, str], connections: int, duration: int
    ) -> Load:
        """Load `url` + `path` (served by `server`, whose CPU time is taken)."""
        return timed_on(server, lambda: self._run(url, path, headers, connections, duration))

    def _run(self, url: str, path: str, headers: dict[str, str], connections: int, duration: int) -> Load:
        if self.name == "wrk":
            return run_wrk(url, path, headers, connections, duration, self.workdir)
        return run_python(url, path, headers, connections, duration)


LoadT = TypeVar("LoadT", bound=Load)


def timed_on(server: Served, measure: Callable[[], LoadT]) -> LoadT:
    """`measure()`, with the CPU time `server` spent meanwhile."""
    before = server.cpu_seconds()
    load = measure()
    after = server.cpu_seconds()
    if before is not None and after is not None:
        load.server_cpu_s = max(0.0, after - before)
    return load


# Output


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def fmt_ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def environment() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),  # other work on the machine makes figures noisy
    }


def header(doc: dict[str, Any]) -> str:
    return (
        f"mockcore {doc['benchmark']}  {doc['date']}  {doc['cores']} cores  "
        f"1-min load at start {doc['loadavg_1m_at_start']}  Python {doc['python']}"
    )


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)
