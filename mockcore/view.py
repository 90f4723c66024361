"""The fleet as people look at it, for the dashboard and the demos (`GET /_mock/view`): each instance as its next
request will see it (an online production whose slot is gone shows `unlicensed`, `reactivate` and `slot_lost`),
and each key's slot use. Built by the fleet under its lock from values; every rule it shows is the rules'.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from mockcore.lifecycle import Licence
from mockcore.rules import Facts, LicenceRules


class Reading(Protocol):
    @property
    def now(self) -> Any: ...

    @property
    def frozen(self) -> bool: ...


def fleet_view(
    clock: Reading, facts: Facts, instances: Mapping[str, tuple[str, Licence]], rules: LicenceRules
) -> dict[str, Any]:
    """{"clock", "today", "instances": {name: {...}}, "keys": [...]}."""
    names = {deployment: name for name, (deployment, _) in instances.items()}
    shown = {
        name: _instance(deployment, licence, rules.seen(licence, deployment, facts), names, facts, rules)
        for name, (deployment, licence) in instances.items()
    }
    keys = [
        {
            "key": key.key,
            "slots": key.slots,
            "used": len(key.holders),
            "free": max(0, key.free),
            "expires": key.terms.expires.isoformat(),
            "holders": [{"deployment": dep, "instance": names.get(dep)} for dep in key.holders],
        }
        for key in facts.keys.values()
    ]
    return {
        "clock": {"now": clock.now.isoformat(), "frozen": clock.frozen},
        "today": facts.today.isoformat(),
        "instances": shown,
        "keys": keys,
    }


def _instance(
    deployment: str, stored: Licence, seen: Licence, names: Mapping[str, str], facts: Facts, rules: LicenceRules
) -> dict[str, Any]:
    production = seen.production
    shown = rules.licence_view(seen, deployment, facts)
    return {
        "state": seen.state.value,
        "deployment": deployment,
        "key": seen.key,
        "days_left": shown.get("days_left"),
        "expired": rules.readiness(seen, facts) == "expired",
        "backup": seen.state.is_backup,
        "online": seen.online if seen.licensed else None,
        "production": names.get(production, production) if production else None,
        "reactivate": bool(shown.get("reactivate", False)),
        "slot_lost": seen is not stored,
        "holds_slot": any(key.holds(deployment) for key in facts.keys.values()),
    }
