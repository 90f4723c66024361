"""The command adapter: a client in any language, run once per operation, speaking JSON on stdin and stdout.

Wire format (protocol `mockcore-contracts-client/1`)
----------------------------------------------------

For every operation the harness runs the user's command with `/bin/sh -c COMMAND` (so it may hold arguments,
variables and pipes), in the harness's working directory, with the harness's environment. It writes ONE JSON
object to the command's stdin, then closes stdin:

    {"protocol": "mockcore-contracts-client/1",
     "operation": "register_online",
     "instance": {"name": "backup", "url": "http://127.0.0.1:40123", "apikey": "00ce77fb...ab43", "ca_path": null},
     "arguments": {"key": "k3Fq-8ZtA-mW2x-Pq7R-c9Lh-4VnB-tY6d",
                   "production_deployment": "MSCL0123..."}}

`instance.url` is the base URL to send every request of this operation to (it may differ from call to call: the
harness sometimes routes a call through a relay of its own), `instance.apikey` the `apikey` header to send,
`instance.ca_path` the CA file to verify an https URL with (null over plain HTTP; never disable verification).
`arguments` by operation:

    activate            key (string), quantity (integer, 1..1000)
    upload_licence      licence_path (absolute path of a file holding the licence file's exact bytes),
                        licence_base64 (the same bytes, base64)
    register_online     key (string), production_deployment (string)
    register_offline    licence_path, licence_base64 (as for upload_licence)
    unregister, nominate, deactivate, licence_info, backup_flag    no arguments ({})

The command prints ONE JSON object on stdout (whitespace around it is fine; anything else, such as logs, goes to
stderr, which the harness shows in its report) and exits with status 0, whether the operation succeeded or not:

    {"ok": true, "result": {...}}                       the client reports success
    {"ok": false, "status": 400, "error": "<err text>"} the client reports the server's refusal: the HTTP status
                                                        and the `err` text of the answer, verbatim
    {"ok": false, "status": null, "error": "<what>"}    no answer came (connection closed, timeout)

`result` may be left out, except for the two reads:

    licence_info   {"licensed": bool, "deployment": "MSCL...", "reactivate": bool,
                    "days_left": int, "online_activated": bool}   (the last two when licensed; else null/absent)
    backup_flag    {"is_backup": bool}

A non-zero exit status, stdout that is not one JSON object of that shape, or a command still running after the
call timeout (30 s by default; the whole process group is killed) is a broken adapter (`adapter-protocol`), shown
with the command's stdout and stderr.

Workflows (protocol `mockcore-contracts-client/2`)
--------------------------------------------------

A whole runbook per request (`contracts.client.workflow`): the object names the workflow, its instances by role and
its arguments; the outcome is the same `{"ok": ...}` object, for the whole runbook:

    {"protocol": "mockcore-contracts-client/2",
     "workflow": "offline_failover",
     "instances": {"production": {"name": "prod", "url": "http://127.0.0.1:40123", "apikey": "...",
                                  "ca_path": null},
                   "backup": {"name": "backup", "url": "http://127.0.0.1:40125", "apikey": "...",
                              "ca_path": null}},
     "arguments": {"key": "k3Fq-8ZtA-mW2x-Pq7R-c9Lh-4VnB-tY6d", "activation_server": "http://127.0.0.1:40124"}}

An outcome may carry `"protocol"`; when it does it must be the request's (a client that speaks only version 1
answers a version 2 request with `{"protocol": "mockcore-contracts-client/1", ...}` and is reported as such).

Persistent mode (both versions)
-------------------------------

With `persistent=True` (`--persistent` on the command line) the harness starts the command once, with
`MOCKCORE_CONTRACTS_PERSISTENT=1` in its environment, and keeps its stdin open: one request object per line in, one
outcome object per line out (flush after each), in order, for the whole run; stdin is closed at the end and the
command should then exit. A client written as a loop over the lines of stdin serves both modes unchanged. A line
that is not one JSON outcome, the command exiting before it answered every request, or no answer within the call
timeout is a broken adapter (`adapter-protocol`); so is anything printed on stdout after a request's outcome line
and before the next request (more than one line for one request), and closing stdout while still running. After
any of these the command is stopped and started again for the next request.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from contracts.client.adapter import Call, CallResult, Instance, parse_outcome
from contracts.client.workflow import WorkflowCall

PROTOCOL = "mockcore-contracts-client/1"
PROTOCOL_2 = "mockcore-contracts-client/2"
PERSISTENT_ENV = "MOCKCORE_CONTRACTS_PERSISTENT"
EXCERPT = 2000


def request_document(call: Call, licence_dir: Path) -> dict[str, Any]:
    """The JSON object written to the command's stdin for one call."""
    arguments: dict[str, Any] = {}
    for name, value in call.arguments.items():
        if isinstance(value, bytes):
            digest = hashlib.sha256(value).hexdigest()[:16]
            path = licence_dir / f"licence-{digest}.yml"
            if not path.exists():
                path.write_bytes(value)
            arguments[f"{name}_path"] = str(path)
            arguments[f"{name}_base64"] = base64.b64encode(value).decode("ascii")
        else:
            arguments[name] = value
    return {
        "protocol": PROTOCOL,
        "operation": call.operation,
        "instance": instance_document(call.instance),
        "arguments": arguments,
    }


def instance_document(instance: Instance) -> dict[str, Any]:
    return {"name": instance.name, "url": instance.url, "apikey": instance.apikey, "ca_path": instance.ca_path}


def workflow_document(call: WorkflowCall) -> dict[str, Any]:
    """The JSON object of one workflow (protocol version 2)."""
    return {
        "protocol": PROTOCOL_2,
        "workflow": call.workflow,
        "instances": {role: instance_document(instance) for role, instance in call.instances.items()},
        "arguments": dict(call.arguments),
    }


def read_outcome(text: str, name: str, protocol: str, output: str) -> CallResult:
    """The outcome a command printed (for operation or workflow `name`), or the protocol problem with it."""
    if not text.strip():
        return CallResult(None, "the command printed nothing on stdout; expected one JSON outcome", output)
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than the decoder goes
        return CallResult(
            None, f"stdout is not one JSON object ({exc}); print only the outcome on stdout, logs on stderr", output
        )
    spoken = doc.get("protocol") if isinstance(doc, dict) else None
    if spoken is not None and spoken != protocol:
        return CallResult(None, f"the harness asked in {protocol}, the client answered in {spoken!r}", output)
    try:
        return CallResult(parse_outcome(doc, name), None, output)
    except ValueError as exc:
        return CallResult(None, f"the outcome is malformed: {exc}", output)


def _excerpt(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace").strip()
    return text if len(text) <= EXCERPT else text[:EXCERPT] + f"… ({len(data)} bytes)"


class CommandClient:
    """Runs COMMAND once per operation (see the module's docstring for the wire format)."""

    kind = "command"

    def __init__(self, command: str, *, timeout: float = 30.0, cwd: Path | None = None) -> None:
        if not command.strip():
            raise ValueError("the command is empty")
        self.command = command
        self.timeout = timeout
        self.cwd = cwd
        self._licences = Path(tempfile.mkdtemp(prefix="mockcore-contracts-licences-"))

    def describe(self) -> str:
        return f"command {self.command!r}"

    def call(self, call: Call) -> CallResult:
        return self._exchange(request_document(call, self._licences), call.operation, PROTOCOL)

    def run(self, call: WorkflowCall) -> CallResult:
        return self._exchange(workflow_document(call), call.workflow, PROTOCOL_2)

    def spawn(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes] | CallResult:
        """The command, started in its own process group with pipes on stdin, stdout and stderr."""
        try:
            return subprocess.Popen(
                ["/bin/sh", "-c", self.command],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return CallResult(None, f"cannot run the command: {exc}")

    def _exchange(self, document: dict[str, Any], name: str, protocol: str) -> CallResult:
        process = self.spawn()
        if isinstance(process, CallResult):
            return process
        try:
            stdout, stderr = process.communicate((json.dumps(document) + "\n").encode(), timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            stdout, stderr = process.communicate()
            return CallResult(
                None,
                f"the command was still running after {self.timeout:g} s (killed)",
                _output(stdout, stderr),
            )
        output = _output(stdout, stderr)
        if process.returncode != 0:
            return CallResult(
                None,
                f"the command exited with status {process.returncode} (an outcome, success or failure, exits 0)",
                output,
            )
        found = read_outcome(stdout.decode("utf-8", errors="replace"), name, protocol, output)
        return found if found.outcome is None else CallResult(found.outcome, None, _excerpt(stderr))

    def close(self) -> None:
        shutil.rmtree(self._licences, ignore_errors=True)


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def _output(stdout: bytes, stderr: bytes) -> str:
    parts = []
    if stdout.strip():
        parts.append(f"stdout: {_excerpt(stdout)}")
    if stderr.strip():
        parts.append(f"stderr: {_excerpt(stderr)}")
    return "\n".join(parts)


class _StdoutClosed(Exception):
    """A persistent command closed its stdout and kept running."""


class PersistentCommandClient(CommandClient):
    """Runs COMMAND once for the whole run and speaks JSON lines with it (see "Persistent mode" above); started on
    the first request, and again after a timeout or an exit."""

    kind = "command"

    def __init__(self, command: str, *, timeout: float = 30.0, cwd: Path | None = None) -> None:
        super().__init__(command, timeout=timeout, cwd=cwd)
        self._process: subprocess.Popen[bytes] | None = None
        self._pending = b""
        self._stderr: list[bytes] = []
        self._stderr_lock = threading.Lock()
        self.starts = 0

    def describe(self) -> str:
        return f"command {self.command!r} (persistent, JSON lines)"

    def _exchange(self, document: dict[str, Any], name: str, protocol: str) -> CallResult:
        process = self._process if self._process is not None and self._process.poll() is None else self._start()
        if isinstance(process, CallResult):
            return process
        assert process.stdin is not None
        if self._stray_output(process):
            self._stop(process)
            return CallResult(
                None,
                "the command printed more than one line for the previous request (one outcome line per request; "
                "logs go to stderr); started again for the next request",
                _output(self._pending, self._drain_stderr().encode()),
            )
        try:
            process.stdin.write((json.dumps(document) + "\n").encode())
            process.stdin.flush()
        except OSError as exc:
            return self._ended(f"the command no longer reads its stdin ({exc})")
        try:
            line = self._read_line(process)
        except _StdoutClosed:
            self._stop(process)
            return CallResult(
                None,
                "the command closed its stdout but kept running (killed; started again for the next request)",
                self._drain_stderr(),
            )
        if line is None:
            if process.poll() is None:
                self._stop(process)
                return CallResult(
                    None,
                    f"the command printed no outcome line within {self.timeout:g} s (killed; started again for the "
                    "next request)",
                    self._drain_stderr(),
                )
            return self._ended("the command exited before it answered (a crash mid-sequence?)")
        found = read_outcome(line.decode("utf-8", errors="replace"), name, protocol, "")
        stderr = self._drain_stderr()
        if found.outcome is None:
            return CallResult(None, found.problem, _output(line, stderr.encode()))
        return CallResult(found.outcome, None, stderr)

    def _start(self) -> subprocess.Popen[bytes] | CallResult:
        process = self.spawn({**os.environ, PERSISTENT_ENV: "1"})
        if isinstance(process, CallResult):
            return process
        assert process.stderr is not None
        threading.Thread(target=self._collect, args=(process.stderr,), name="command-stderr", daemon=True).start()
        self._process, self._pending = process, b""
        self.starts += 1
        return process

    def _collect(self, stream: IO[bytes]) -> None:
        for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
            with self._stderr_lock:
                self._stderr.append(chunk)

    def _drain_stderr(self) -> str:
        time.sleep(0)  # let the reader thread take what is already in the pipe
        with self._stderr_lock:
            data, self._stderr = b"".join(self._stderr), []
        return _excerpt(data) if data.strip() else ""

    def _stray_output(self, process: subprocess.Popen[bytes]) -> bool:
        """Whether the command printed anything since its last outcome line (kept in `_pending`): looked at
        without waiting, before the next request is written."""
        assert process.stdout is not None
        fd = process.stdout.fileno()
        while not self._pending.strip():
            ready, _, _ = select.select([fd], [], [], 0)
            if not ready:
                return False
            chunk = os.read(fd, 65536)
            if not chunk:  # the end of the stream: the next read reports it
                return False
            self._pending += chunk
        return True

    def _read_line(self, process: subprocess.Popen[bytes]) -> bytes | None:
        """The next non-blank line of stdout, or None at a timeout or at the end of the stream (the command
        exited); raises _StdoutClosed when the stream ended and the command is still running."""
        assert process.stdout is not None
        fd = process.stdout.fileno()
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\n" in self._pending:
                line, self._pending = self._pending.split(b"\n", 1)
                if line.strip():
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                if self._pending.strip():
                    line, self._pending = self._pending, b""
                    return line
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired as exc:
                    raise _StdoutClosed from exc
                return None
            self._pending += chunk

    def _ended(self, problem: str) -> CallResult:
        process = self._process
        status = process.poll() if process is not None else None
        if process is not None:
            self._stop(process)
        return CallResult(None, f"{problem}; exit status {status}", self._drain_stderr())

    def _stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            _kill(process)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._process = None

    def close(self) -> None:
        process = self._process
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            self._stop(process)
        super().close()


def command_client(command: str, *, timeout: float, persistent: bool = False, cwd: Path | None = None) -> CommandClient:
    """The driver of a command adapter: a process per call, or (`persistent`) one for the whole run."""
    kind = PersistentCommandClient if persistent else CommandClient
    return kind(command, timeout=timeout, cwd=cwd)
