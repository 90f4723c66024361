"""The fleet as people look at it: a summary of a state document (`GET /_mock/state`, `Fleet.dump()`), for the
demos' "state after this step" and the dashboard.

Pure: it reads the document and changes nothing. An online instance whose slot is gone at the activation server
is shown as it will answer its next request (SPEC §8): `unlicensed` with `reactivate`, and `slot_lost` set.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from mockcore.lifecycle import LicenceState


def _today(doc: Mapping[str, Any]) -> date:
    return datetime.fromisoformat(doc["clock"]["now"]).date()


def summarise(doc: Mapping[str, Any]) -> dict[str, Any]:
    """{"clock": {...}, "instances": {name: {...}}, "keys": [...]} from a fleet state document."""
    today = _today(doc)
    names = {inst["deployment"]: name for name, inst in doc["instances"].items()}
    holders = {key["terms"]["activation_key"]: list(key["holders"]) for key in doc["keys"]}
    instances = {name: _instance(inst, names, holders, today) for name, inst in doc["instances"].items()}
    keys = [
        {
            "key": key["terms"]["activation_key"],
            "slots": key["slots"],
            "used": len(key["holders"]),
            "free": max(0, key["slots"] - len(key["holders"])),
            "expires": key["terms"]["expires"],
            "holders": [{"deployment": dep, "instance": names.get(dep)} for dep in key["holders"]],
        }
        for key in doc["keys"]
    ]
    return {"clock": dict(doc["clock"]), "today": today.isoformat(), "instances": instances, "keys": keys}


def _instance(
    inst: Mapping[str, Any], names: Mapping[str, str], holders: Mapping[str, list[str]], today: date
) -> dict[str, Any]:
    licence = inst["licence"]
    deployment = inst["deployment"]
    state = LicenceState(licence["state"])
    terms = licence["terms"]
    key = terms["activation_key"] if terms else None
    slot_lost = (
        state is LicenceState.ACTIVE
        and bool(licence["online"])
        and key is not None
        and deployment not in holders.get(key, [])
    )
    if slot_lost:
        state = LicenceState.UNLICENSED
    expires = date.fromisoformat(terms["expires"]) if terms else None
    licensed = state is not LicenceState.UNLICENSED
    production = licence["production"]
    return {
        "state": state.value,
        "deployment": deployment,
        "key": key,
        "days_left": max(0, (expires - today).days) if licensed and expires else None,
        "expired": bool(licensed and expires and today > expires),
        "backup": state.is_backup,
        "online": bool(licence["online"]) if licensed else None,
        "production": names.get(production, production) if production else None,
        "reactivate": state is LicenceState.UNLICENSED and key is not None,
        "slot_lost": slot_lost,
        "holds_slot": any(deployment in deps for deps in holders.values()),
    }


def states(summary: Mapping[str, Any]) -> dict[str, str]:
    """Instance name -> licence state, from a summary."""
    return {name: inst["state"] for name, inst in summary["instances"].items()}
