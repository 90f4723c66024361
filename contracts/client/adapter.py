"""The client adapter protocol: how the harness asks a client to run one licence operation, and what it expects back.

A client is anything that speaks to a MetaDefender Core: a Python library, a shell script, a Go binary. The harness
drives it through an *adapter* with one method per operation of docs/behaviour.md, "Transitions" (plus the two
reads), each given the instance to talk to (`Instance`: name, base URL, apikey) and the operation's arguments, each
returning an `Outcome`:

- `Success(result)`: the client says the operation succeeded; `result` is the client's view of the answer (for
  `licence_info` and `backup_flag` it must hold the fields of `VIEW_FIELDS`; for the other operations anything);
- `Failure(status, error)`: the client says it failed; `status` is the HTTP status the server answered and
  `error` the server's `err` text, as the client surfaced them, or `status=None` when no answer came at all
  (connection closed, timeout), with `error` describing what happened.

Python clients implement `ClientAdapter` (a class with those nine methods, built without arguments); any other
language uses the command adapter (`contracts.client.command`), which speaks the same protocol as JSON.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

# The operations, in the order of docs/behaviour.md, "Transitions", then the two reads.
ACTIVATE = "activate"
UPLOAD_LICENCE = "upload_licence"
REGISTER_ONLINE = "register_online"
REGISTER_OFFLINE = "register_offline"
UNREGISTER = "unregister"
NOMINATE = "nominate"
DEACTIVATE = "deactivate"
LICENCE_INFO = "licence_info"
BACKUP_FLAG = "backup_flag"


@dataclass(frozen=True)
class OperationSpec:
    """One operation of the protocol: its name, the Core request that carries it, and its arguments."""

    name: str
    method: str
    path: str
    arguments: tuple[str, ...] = ()
    mutating: bool = True
    summary: str = ""


OPERATIONS: dict[str, OperationSpec] = {
    spec.name: spec
    for spec in (
        OperationSpec(ACTIVATE, "POST", "/admin/license/activation", ("key", "quantity"), summary="activate online"),
        OperationSpec(UPLOAD_LICENCE, "POST", "/admin/license", ("licence",), summary="upload a licence file"),
        OperationSpec(
            REGISTER_ONLINE,
            "POST",
            "/admin/license/backup",
            ("key", "production_deployment"),
            summary="register as an online backup (headers)",
        ),
        OperationSpec(
            REGISTER_OFFLINE,
            "POST",
            "/admin/license/backup",
            ("licence",),
            summary="register as an offline backup (licence file body)",
        ),
        OperationSpec(UNREGISTER, "DELETE", "/admin/license/backup", summary="remove the backup registration"),
        OperationSpec(NOMINATE, "POST", "/admin/license/backup/nomination", summary="nominate the backup"),
        OperationSpec(DEACTIVATE, "POST", "/admin/license/deactivation", summary="deactivate"),
        OperationSpec(LICENCE_INFO, "GET", "/admin/license", mutating=False, summary="read the licence"),
        OperationSpec(BACKUP_FLAG, "GET", "/admin/license/backup", mutating=False, summary="read the backup flag"),
    )
}

# The client's view that `licence_info` and `backup_flag` must return in `Success.result`: field -> (types, when).
# `when` is "always" or "licensed" (required only when `licensed` is true; null or absent otherwise).
VIEW_FIELDS: dict[str, dict[str, tuple[tuple[type, ...], str]]] = {
    LICENCE_INFO: {
        "licensed": ((bool,), "always"),
        "deployment": ((str,), "always"),
        "reactivate": ((bool,), "always"),
        "days_left": ((int,), "licensed"),
        "online_activated": ((bool,), "licensed"),
    },
    BACKUP_FLAG: {"is_backup": ((bool,), "always")},
}


@dataclass(frozen=True)
class Instance:
    """The Core instance an operation is for: send every request of the call to `url` with the `apikey` header."""

    name: str
    url: str
    apikey: str
    ca_path: str | None = None  # the CA certificate (PEM) to verify an HTTPS `url` with; None over plain HTTP


@dataclass(frozen=True)
class Success:
    """The client reports success; `result` is its view of the answer."""

    result: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    """The client reports failure: the server's status and `err` text, or `status=None` when no answer came."""

    status: int | None
    error: str


Outcome = Success | Failure


def describe_outcome(outcome: Outcome) -> str:
    if isinstance(outcome, Success):
        return f"success {dict(outcome.result)}" if outcome.result else "success"
    if outcome.status is None:
        return f"failure, no answer ({outcome.error})"
    return f"failure {outcome.status} {outcome.error!r}"


@runtime_checkable
class ClientAdapter(Protocol):
    """What a Python client implements (directly, or through a thin adapter class around its own API).

    Each method sends the operation's request(s) to `instance.url` and returns an `Outcome`; it should not raise
    (an exception is reported as a broken adapter, with its traceback). Licence files are the exact bytes the
    activation server issued. An optional `close()` is called once at the end.
    """

    def activate(self, instance: Instance, key: str, quantity: int) -> Outcome: ...

    def upload_licence(self, instance: Instance, licence: bytes) -> Outcome: ...

    def register_online(self, instance: Instance, key: str, production_deployment: str) -> Outcome: ...

    def register_offline(self, instance: Instance, licence: bytes) -> Outcome: ...

    def unregister(self, instance: Instance) -> Outcome: ...

    def nominate(self, instance: Instance) -> Outcome: ...

    def deactivate(self, instance: Instance) -> Outcome: ...

    def licence_info(self, instance: Instance) -> Outcome: ...

    def backup_flag(self, instance: Instance) -> Outcome: ...


@dataclass(frozen=True)
class Call:
    """One operation the harness asks of the client."""

    operation: str
    instance: Instance
    arguments: Mapping[str, Any] = field(default_factory=dict)  # key, quantity, production_deployment, licence

    def describe(self) -> str:
        shown = []
        for name, value in self.arguments.items():
            if isinstance(value, bytes):
                shown.append(f"{name}=<{len(value)} bytes>")
            else:
                shown.append(f"{name}={value!r}")
        return f"{self.operation}({self.instance.name}{', ' if shown else ''}{', '.join(shown)})"


@dataclass(frozen=True)
class CallResult:
    """What came back from the client: an outcome, or `problem` when the adapter broke the protocol."""

    outcome: Outcome | None
    problem: str | None = None
    output: str = ""  # what the client printed besides its outcome (stderr of a command), for the report


class ClientDriver(Protocol):
    """How the harness reaches a client: `contracts.client.adapter.PythonClient` or `.command.CommandClient`."""

    kind: str

    def describe(self) -> str: ...

    def call(self, call: Call) -> CallResult: ...

    def close(self) -> None: ...


class AdapterError(Exception):
    """The adapter cannot be used as given (not importable, not a class, missing methods)."""


def parse_outcome(doc: object, operation: str) -> Outcome:
    """An outcome from its JSON form (the command adapter's wire format); ValueError names what is wrong."""
    if not isinstance(doc, dict):
        raise ValueError(f"the outcome must be a JSON object, got {type(doc).__name__}")
    ok = doc.get("ok")
    if not isinstance(ok, bool):
        raise ValueError('the outcome needs "ok": true or false')
    if ok:
        result = doc.get("result", {})
        if result is None:
            result = {}
        if not isinstance(result, dict):
            raise ValueError('"result" must be a JSON object')
        return check_success(Success(result), operation)
    status = doc.get("status")
    error = doc.get("error")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599):
        raise ValueError(f'"status" must be an HTTP status (100..599) or null, got {status!r}')
    if not isinstance(error, str):
        raise ValueError(f'a failure needs "error": the server\'s err text (a string), got {error!r}')
    return Failure(status, error)


def check_success(outcome: Success, operation: str) -> Success:
    """The view fields `licence_info` and `backup_flag` must report; ValueError names a missing or mistyped one."""
    fields = VIEW_FIELDS.get(operation)
    if not fields:
        return outcome
    result = outcome.result
    licensed = result.get("licensed") is True
    for name, (types, when) in fields.items():
        value = result.get(name)
        if when == "licensed" and not licensed:
            continue
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            kinds = " or ".join(t.__name__ for t in types)
            raise ValueError(f'{operation}: "result" needs "{name}" ({kinds}), got {value!r}')
    return outcome


def check_outcome(value: object, operation: str) -> Outcome:
    """What a Python adapter returned, checked: a Success (with its view fields) or a Failure."""
    if isinstance(value, Success):
        if not isinstance(value.result, Mapping):
            raise ValueError(f"Success.result must be a mapping, got {type(value.result).__name__}")
        return check_success(value, operation)
    if isinstance(value, Failure):
        status = value.status
        if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599):
            raise ValueError(f"Failure.status must be an HTTP status or None, got {status!r}")
        if not isinstance(value.error, str):
            raise ValueError(f"Failure.error must be a string, got {value.error!r}")
        return value
    raise ValueError(
        f"an adapter method returns contracts.client.Success or Failure, got {type(value).__name__}: {value!r}"
    )


def load_adapter(reference: str) -> ClientAdapter:
    """`module:Class` or `path/to/file.py:Class` -> an instance (the class is called without arguments). The
    current directory is importable, as for `python -m`."""
    adapter = instantiate(reference)
    missing = [name for name in OPERATIONS if not callable(getattr(adapter, name, None))]
    if missing:
        raise AdapterError(f"{reference} lacks the method(s) {', '.join(missing)} of the adapter protocol")
    return adapter  # type: ignore[no-any-return]


def instantiate(reference: str) -> Any:
    """`module:Class` or `path/to/file.py:Class` -> an instance of the class, called without arguments."""
    module_name, sep, class_name = reference.partition(":")
    if not sep or not module_name or not class_name:
        raise AdapterError(f"an adapter is MODULE:CLASS (or FILE.py:CLASS), got {reference!r}")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).resolve()
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None or not path.is_file():
                raise AdapterError(f"cannot load {module_name}: no such file")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))
            module = importlib.import_module(module_name)
    except AdapterError:
        raise
    except Exception as exc:  # an import error of the user's module, shown with its cause
        raise AdapterError(f"cannot import {module_name}: {type(exc).__name__}: {exc}") from exc
    found = getattr(module, class_name, None)
    if found is None:
        raise AdapterError(f"{module_name} has no {class_name}")
    if not isinstance(found, type):
        raise AdapterError(f"{reference} is not a class")
    try:
        return found()
    except Exception as exc:
        raise AdapterError(f"{reference}() failed: {type(exc).__name__}: {exc}") from exc


class ThreadedAdapter:
    """Runs a Python adapter's methods in a worker thread, so a call that hangs is reported after `timeout` seconds
    instead of hanging the harness; an exception is reported with its traceback. `PythonClient` (version 1) and
    `contracts.client.workflow.PythonWorkflows` (version 2) build on it."""

    kind = "python"

    def __init__(self, adapter: Any, *, timeout: float = 30.0, name: str | None = None) -> None:
        self.adapter = adapter
        self.timeout = timeout
        self.name = name or f"{type(adapter).__module__}:{type(adapter).__qualname__}"
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="client-adapter")

    def invoke(self, name: str, *args: Any, **kwargs: Any) -> CallResult:
        """The adapter's method `name`, called with the arguments, its outcome checked."""
        method = getattr(self.adapter, name, None)
        if not callable(method):
            return CallResult(None, f"{self.name} has no method {name}")
        future = self._pool.submit(method, *args, **kwargs)
        try:
            value = future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            # The worker is stuck in the user's code: leave it, and use a fresh thread from now on.
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="client-adapter")
            return CallResult(None, f"{name} did not return within {self.timeout:g} s")
        except Exception as exc:
            trace = "".join(traceback.format_exception(exc)[-6:])
            return CallResult(None, f"{name} raised {type(exc).__name__}: {exc}", trace)
        try:
            return CallResult(check_outcome(value, name))
        except ValueError as exc:
            return CallResult(None, str(exc))

    def close(self) -> None:
        closer = getattr(self.adapter, "close", None)
        if callable(closer):
            with contextlib.suppress(Exception):  # the verdict is known by now; a failing close() does not change it
                closer()
        self._pool.shutdown(wait=False, cancel_futures=True)


class PythonClient(ThreadedAdapter):
    """Drives a Python adapter of protocol version 1, one operation per call."""

    def __init__(self, adapter: Any, *, timeout: float = 30.0, name: str | None = None) -> None:
        missing = [op for op in OPERATIONS if not callable(getattr(adapter, op, None))]
        if missing:
            raise AdapterError(f"{type(adapter).__name__} lacks the method(s) {', '.join(missing)}")
        super().__init__(adapter, timeout=timeout, name=name)

    def describe(self) -> str:
        return f"Python adapter {self.name}"

    def call(self, call: Call) -> CallResult:
        return self.invoke(call.operation, call.instance, **call.arguments)
