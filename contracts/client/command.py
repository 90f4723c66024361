"""The command adapter: a client in any language, run once per operation, speaking JSON on stdin and stdout.

Wire format (protocol `mockcore-contracts-client/1`)
----------------------------------------------------

For every operation the harness runs the user's command with `/bin/sh -c COMMAND` (so it may hold arguments,
variables and pipes), in the harness's working directory, with the harness's environment. It writes ONE JSON
object to the command's stdin, then closes stdin:

    {"protocol": "mockcore-contracts-client/1",
     "operation": "register_online",
     "instance": {"name": "backup", "url": "http://127.0.0.1:40123", "apikey": "00ce77fb...ab43"},
     "arguments": {"key": "CLNT-AAAA-0000-1111-2222-3333-0001",
                   "production_deployment": "MSCL0123..."}}

`instance.url` is the base URL to send every request of this operation to (it may differ from call to call: the
harness sometimes routes a call through a relay of its own), `instance.apikey` the `apikey` header to send.
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
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from contracts.client.adapter import Call, CallResult, parse_outcome

PROTOCOL = "mockcore-contracts-client/1"
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
        "instance": {
            "name": call.instance.name,
            "url": call.instance.url,
            "apikey": call.instance.apikey,
            "ca_path": call.instance.ca_path,
        },
        "arguments": arguments,
    }


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
        document = request_document(call, self._licences)
        try:
            process = subprocess.Popen(
                ["/bin/sh", "-c", self.command],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            return CallResult(None, f"cannot run the command: {exc}")
        try:
            stdout, stderr = process.communicate((json.dumps(document) + "\n").encode(), timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self._kill(process)
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
        text = stdout.decode("utf-8", errors="replace").strip()
        if not text:
            return CallResult(None, "the command printed nothing on stdout; expected one JSON outcome", output)
        try:
            doc = json.loads(text)
        except ValueError as exc:
            return CallResult(
                None,
                f"stdout is not one JSON object ({exc}); print only the outcome on stdout, logs on stderr",
                output,
            )
        try:
            return CallResult(parse_outcome(doc, call.operation), None, _excerpt(stderr))
        except ValueError as exc:
            return CallResult(None, f"the outcome is malformed: {exc}", output)

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()

    def close(self) -> None:
        shutil.rmtree(self._licences, ignore_errors=True)


def _output(stdout: bytes, stderr: bytes) -> str:
    parts = []
    if stdout.strip():
        parts.append(f"stdout: {_excerpt(stdout)}")
    if stderr.strip():
        parts.append(f"stderr: {_excerpt(stderr)}")
    return "\n".join(parts)
