"""The fleet as the harness sees it between client calls: one `GET /_mock/state` (not journalled), compared with
the model instance by instance (licence state, key, online, production, expiry) and key by key (slot holders).

The mock refreshes an online licence whose slot is gone only on the instance's next request (docs/decisions.md),
so its stored state may still say `active`; the comparison applies that refresh itself, as the model does.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from contracts.model import ACTIVE, UNLICENSED, CatalogueEntry, KeyModel, LicenceFileModel, Model
from contracts.target import KeySpec

# Where a sequence starts: the harness's names, and the mock scenario that gets there in one request.
SCENARIOS = {
    "fresh": None,
    "production": "production-only",
    "production and online backup": "production-with-online-backup",
    "production and offline backup": "production-with-offline-backup",
}
STARTS = tuple(SCENARIOS)


def keys_of(doc: dict[str, Any]) -> list[KeySpec]:
    return [
        KeySpec(k["terms"]["activation_key"], int(k["slots"]), date.fromisoformat(k["terms"]["expires"]))
        for k in doc.get("keys", [])
    ]


def model_at(
    doc: dict[str, Any], names: list[str], start: str, catalogue: dict[str, CatalogueEntry]
) -> tuple[Model, list[KeySpec]]:
    """The model of a fleet the mock walked to `start`, from its state document: a fresh model (every instance
    unlicensed, every slot free) taken to the same point by the same operations."""
    deployments = {name: str(doc["instances"][name]["deployment"]) for name in names}
    keys = keys_of(doc)
    today = datetime.fromisoformat(doc["clock"]["now"]).date()
    model = Model(deployments, [KeyModel(k.key, k.slots, k.expires or date.max) for k in keys], today, catalogue)
    if start == "fresh" or not keys:
        return model, keys
    first, key = names[0], keys[0].key
    if start == "production and offline backup":
        issued = model.obtain_file(key, deployments[first], 1)
        assert issued.ok, issued
        content = b"<the scenario's licence file>"  # its bytes stay the mock's; the harness never hands it out
        model.files[-1] = LicenceFileModel(key, deployments[first], model.keys[key].expires, content, nodes="1")
        model.upload(first, content)
        if len(names) > 1:
            model.register_offline(names[1], content)
        return model, keys
    model.activate(first, key, 1)
    if start == "production and online backup" and len(names) > 1:
        model.register_online(names[1], key, deployments[first])
    return model, keys


def _mock_view(doc: dict[str, Any], name: str, holders: dict[str, list[str]]) -> dict[str, Any]:
    inst = doc["instances"][name]
    licence = inst["licence"]
    terms = licence.get("terms") or {}
    state, key, online = licence["state"], terms.get("activation_key"), bool(licence.get("online"))
    if state == ACTIVE and online and key is not None and inst["deployment"] not in holders.get(key, []):
        state, online = UNLICENSED, False  # what its next request will show: the slot is gone (docs/decisions.md)
    if state == UNLICENSED:
        return {"state": state, "reactivate": key is not None}
    return {
        "state": state,
        "key": key,
        "online": online,
        "production": licence.get("production"),
        "expires": terms.get("expires"),
    }


def _model_view(model: Model, name: str) -> dict[str, Any]:
    inst = model.refresh(name)
    if inst.state == UNLICENSED:
        return {"state": inst.state, "reactivate": inst.key is not None}
    return {
        "state": inst.state,
        "key": inst.key,
        "online": inst.online,
        "production": inst.production,
        "expires": inst.expires.isoformat() if inst.expires else None,
    }


def differences(model: Model, doc: dict[str, Any], names: list[str], label: Any = str) -> list[str]:
    """How the fleet differs from the model; `label` names a deployment for a reader."""
    holders = {k["terms"]["activation_key"]: sorted(k["holders"]) for k in doc.get("keys", [])}
    model = model.copy()  # refreshed below as each instance's next request would be; the caller's model is not
    found = []
    for name in names:
        mock, expected = _mock_view(doc, name, holders), _model_view(model, name)
        if mock != expected:
            shown = ", ".join(
                f"{field}: fleet {mock.get(field)!r}, model {expected.get(field)!r}"
                for field in dict.fromkeys([*expected, *mock])
                if mock.get(field) != expected.get(field)
            )
            found.append(f"{name} ({shown})")
    for key, expected_holders in model.holders().items():
        actual = holders.get(key, [])
        if actual != expected_holders:
            held, expected = [label(d) for d in actual], [label(d) for d in expected_holders]
            found.append(f"key {key}: slots held by {held}, the model says {expected}")
    return found
