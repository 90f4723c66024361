"""The dashboard's buttons: each lifecycle operation as the HTTP calls a person would make for it. Most are one
call; "upload" and "register offline" first obtain a licence file at the activation server, as a person does.

Each operation gets a `send` that makes one call and answers what came back, so the same code runs over any
transport (the dashboard sends through each face's WSGI app in-process).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mockcore import calls
from mockcore.calls import Answer, Call

SCANNED_CONTENT = b"mockcore dashboard: a harmless file to scan\n"
SCANNED_NAME = "dashboard.txt"
COMMENT = "mockcore dashboard"

Send = Callable[[Call], Answer]


class OperationRefused(ValueError):
    """The request for an operation is incomplete or names something the fleet does not have."""


@dataclass(frozen=True)
class Params:
    instance: str | None
    key: str | None
    production: str | None  # an instance name
    deployment: str | None  # for free-slot
    deployments: Mapping[str, str]  # instance -> deployment id


@dataclass(frozen=True)
class OperationSpec:
    name: str
    label: str
    description: str
    needs: tuple[str, ...]  # of "instance", "key", "production", "deployment"
    run: Callable[[Send, Params], None]
    face: str = "instance"  # where the button sits: "instance" (a card) or "key" (the activation server's table)

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "description": self.description,
            "needs": list(self.needs),
            "face": self.face,
        }


def _one(build: Callable[[Params], Call]) -> Callable[[Send, Params], None]:
    def run(send: Send, params: Params) -> None:
        send(build(params))

    return run


def _instance(p: Params) -> str:
    assert p.instance is not None
    return p.instance


def _key(p: Params) -> str:
    assert p.key is not None
    return p.key


def _upload(send: Send, p: Params) -> None:
    licence_file = send(calls.obtain_licence_file(_key(p), p.deployments[_instance(p)]))
    if calls.is_licence_file(licence_file):
        send(calls.upload(_instance(p), licence_file.body))


def _register_offline(send: Send, p: Params) -> None:
    assert p.production is not None
    licence_file = send(calls.obtain_licence_file(_key(p), p.deployments[p.production]))
    if calls.is_licence_file(licence_file):
        send(calls.register_offline(_instance(p), licence_file.body))


def _register_online(p: Params) -> Call:
    assert p.production is not None
    return calls.register_online(_instance(p), _key(p), p.deployments[p.production])


def _free_slot(p: Params) -> Call:
    assert p.deployment is not None
    return calls.free_slot(_key(p), p.deployment)


OPERATIONS: dict[str, OperationSpec] = {
    spec.name: spec
    for spec in (
        OperationSpec(
            "activate",
            "Activate online",
            "POST /admin/license/activation with the chosen key",
            ("instance", "key"),
            _one(lambda p: calls.activate(_instance(p), _key(p), COMMENT)),
        ),
        OperationSpec(
            "upload",
            "Upload a licence file",
            "GET /activation for this instance's deployment, then POST /admin/license with the file",
            ("instance", "key"),
            _upload,
        ),
        OperationSpec(
            "register-online",
            "Register as online backup",
            "POST /admin/license/backup with the activation-key and active-deployment-id headers",
            ("instance", "key", "production"),
            _one(_register_online),
        ),
        OperationSpec(
            "register-offline",
            "Register as offline backup",
            "GET /activation for the production's deployment, then POST /admin/license/backup with the file",
            ("instance", "key", "production"),
            _register_offline,
        ),
        OperationSpec(
            "nominate",
            "Nominate",
            "POST /admin/license/backup/nomination",
            ("instance",),
            _one(lambda p: calls.nominate(_instance(p))),
        ),
        OperationSpec(
            "unregister",
            "Unregister backup",
            "DELETE /admin/license/backup",
            ("instance",),
            _one(lambda p: calls.unregister(_instance(p))),
        ),
        OperationSpec(
            "deactivate",
            "Deactivate",
            "POST /admin/license/deactivation",
            ("instance",),
            _one(lambda p: calls.deactivate(_instance(p))),
        ),
        OperationSpec(
            "scan",
            "Scan a file",
            "POST /file with a small harmless file",
            ("instance",),
            _one(lambda p: calls.scan(_instance(p), SCANNED_CONTENT, SCANNED_NAME)),
        ),
        OperationSpec(
            "licence",
            "Licence info",
            "GET /admin/license",
            ("instance",),
            _one(lambda p: calls.licence(_instance(p))),
        ),
        OperationSpec(
            "free-slot",
            "Free slot",
            "GET /deactivation at the activation server for this deployment",
            ("key", "deployment"),
            _one(_free_slot),
            face="key",
        ),
    )
}


def params_from(doc: Any, deployments: Mapping[str, str], keys: list[str]) -> tuple[OperationSpec, Params]:
    """Check a request for an operation ({"operation", "instance", "key", "production", "deployment"}) against
    the fleet: OperationRefused names what is wrong."""
    if not isinstance(doc, dict):
        raise OperationRefused("Expected a JSON object.")
    unknown = set(doc) - {"operation", "instance", "key", "production", "deployment"}
    if unknown:
        raise OperationRefused(f"Unknown fields: {', '.join(sorted(map(str, unknown)))}.")
    spec = OPERATIONS.get(doc.get("operation"))  # type: ignore[arg-type]
    if spec is None:
        raise OperationRefused(f"`operation` must be one of {', '.join(OPERATIONS)}.")
    values = {name: doc.get(name) for name in ("instance", "key", "production", "deployment")}
    for name in spec.needs:
        if not isinstance(values[name], str) or not values[name]:
            raise OperationRefused(f"{spec.name} needs `{name}`.")
    for name in ("instance", "production"):
        if name in spec.needs and values[name] not in deployments:
            raise OperationRefused(f"No instance {values[name]!r}; the fleet has {', '.join(deployments)}.")
    if "key" in spec.needs and values["key"] not in keys:
        raise OperationRefused(f"No activation key {values['key']!r} on this fleet.")
    return spec, Params(
        instance=values["instance"] if "instance" in spec.needs else None,
        key=values["key"] if "key" in spec.needs else None,
        production=values["production"] if "production" in spec.needs else None,
        deployment=values["deployment"] if "deployment" in spec.needs else None,
        deployments=deployments,
    )
