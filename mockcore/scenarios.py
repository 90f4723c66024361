"""Named starting points for tests. Each resets the fleet, then walks there through the fleet's own operations,
so a scenario can never reach a state the licence rules forbid. The first instance is the production, the
second (where needed) the backup, the first key the key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from mockcore.fleet import Fleet

EXPIRING_SOON_DAYS = 7


class ScenarioError(ValueError):
    """The scenario cannot be set up on this fleet (too few instances or keys)."""


@dataclass(frozen=True)
class Scenario:
    description: str
    apply: Callable[[Fleet], None]
    instances: int = 1


def _names(fleet: Fleet, needed: int) -> list[str]:
    names = list(fleet.names)
    if len(names) < needed:
        raise ScenarioError(f"this scenario needs at least {needed} instances; the fleet has {len(names)}")
    if not fleet.activation_keys():
        raise ScenarioError("this scenario needs an activation key")
    return names


def _backup_pair(fleet: Fleet) -> tuple[str, str]:
    """The production and the backup; a line of Core without hot backups has no backup scenario."""
    if not fleet.profile.hot_backups:
        raise ScenarioError(f"Core {fleet.profile.name} has no hot backups (the fleet runs its profile)")
    production, backup = _names(fleet, 2)[:2]
    return production, backup


def _key(fleet: Fleet) -> str:
    return fleet.activation_keys()[0].key


def _fresh(fleet: Fleet) -> None:
    fleet.reset()


def _production(fleet: Fleet) -> None:
    fleet.reset()
    production = _names(fleet, 1)[0]
    fleet.activate(production, _key(fleet), 1)


def _online_backup(fleet: Fleet) -> None:
    production, backup = _backup_pair(fleet)
    _production(fleet)
    fleet.register_backup_online(backup, _key(fleet), fleet.deployments()[production])


def _offline_backup(fleet: Fleet) -> None:
    fleet.reset()
    production, backup = _backup_pair(fleet)
    licence_file = fleet.obtain_licence_file(_key(fleet), fleet.deployments()[production], 1)
    fleet.upload_licence(production, licence_file)
    fleet.register_backup_offline(backup, licence_file)


def _expiry_noon(fleet: Fleet) -> datetime:
    expires = fleet.activation_keys()[0].terms.expires
    return datetime.combine(expires, time(12, 0), tzinfo=UTC)


def _expiring_soon(fleet: Fleet) -> None:
    _production(fleet)
    fleet.set_clock(_expiry_noon(fleet) - timedelta(days=EXPIRING_SOON_DAYS))


def _expired(fleet: Fleet) -> None:
    _production(fleet)
    fleet.set_clock(_expiry_noon(fleet) + timedelta(days=1))


SCENARIOS: dict[str, Scenario] = {
    "fresh": Scenario("every instance unlicensed, every slot free, the clock at wall time", _fresh),
    "production-only": Scenario("the first instance activated online on the first key", _production),
    "production-with-online-backup": Scenario(
        "production-only, and the second instance registered as its online backup", _online_backup, 2
    ),
    "production-with-offline-backup": Scenario(
        "the first instance activated with a licence file, the second registered offline with that file",
        _offline_backup,
        2,
    ),
    "expiring-soon": Scenario(
        f"production-only, the clock moved to {EXPIRING_SOON_DAYS} days before the key expires", _expiring_soon
    ),
    "expired": Scenario("production-only, the clock moved to the day after the key expired", _expired),
}


def apply(fleet: Fleet, name: str) -> None:
    """Set the fleet up as `name` says, atomically: on any failure the fleet is as it was."""
    scenario = SCENARIOS[name]
    with fleet.batch():
        _names(fleet, scenario.instances)
        scenario.apply(fleet)
