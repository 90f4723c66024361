"""The fleet as the way in, without sockets: what it commits (and tells its listeners), what a refused or empty
request leaves alone, and that readers get values."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from mockcore.catalogue import ErrorCode, LicenceError
from mockcore.fleet import Fleet, FleetConfig, KeySpec
from mockcore.lifecycle import LicenceState, SlotChange
from mockcore.rules import Decision, LicenceRules


def fleet_and_commits() -> tuple[Fleet, list[int]]:
    fleet = Fleet(FleetConfig(instances=("a", "b"), keys=(KeySpec(slots=2),)))
    commits: list[int] = []
    fleet.subscribe(lambda: commits.append(fleet.revision))
    return fleet, commits


def test_listeners_hear_of_changes_and_not_of_what_changes_nothing() -> None:
    fleet, commits = fleet_and_commits()
    key = fleet.activation_keys()[0].key
    fleet.activate("a", key, 1)
    assert len(commits) == 1
    fleet.activate("a", key, 1)  # the same key again: nothing changes
    fleet.licence_info("a")
    with pytest.raises(LicenceError):
        fleet.nominate("a")
    fleet.freeze_clock()
    fleet.freeze_clock()
    fleet.advance_clock(timedelta(0))
    fleet.set_engine("a", "clamav_1_linux", True)  # enabled already
    assert len(commits) == 2  # the activation and the first freeze
    fleet.advance_clock(timedelta(days=1))
    fleet.set_engine("a", "clamav_1_linux", False)
    assert len(commits) == 4


def test_a_batch_is_told_once_and_restored_whole_on_failure() -> None:
    fleet, commits = fleet_and_commits()
    key = fleet.activation_keys()[0].key
    before = fleet.dump()
    with pytest.raises(LicenceError), fleet.batch():
        fleet.activate("a", key, 1)
        fleet.nominate("b")  # not a backup
    assert fleet.dump()["keys"] == before["keys"] and fleet.states()["a"] is LicenceState.UNLICENSED
    with fleet.batch():
        fleet.activate("a", key, 1)
        fleet.activate("b", key, 1)
    assert fleet.slot_holders()[key] == list(fleet.deployments().values())
    assert len(commits) == 1


def test_an_empty_scan_is_refused_before_the_instance_is_looked_at() -> None:
    fleet, _ = fleet_and_commits()
    key = fleet.activation_keys()[0].key
    fleet.activate("a", key, 1)
    fleet.release_slot(key, fleet.deployments()["a"])  # the slot is freed behind the instance's back
    with pytest.raises(LicenceError, match=ErrorCode.EMPTY_FILE.value):
        fleet.scan("a", b"", "empty.txt")
    assert fleet.dump()["instances"]["a"]["licence"]["state"] == "active"  # not yet seen as lost
    assert fleet.view()["instances"]["a"]["slot_lost"] is True
    assert fleet.states()["a"] is LicenceState.UNLICENSED  # a read sees it


def test_readers_get_values_not_the_fleets_own_objects() -> None:
    fleet, _ = fleet_and_commits()
    admin = fleet.authenticate("a", fleet.config.resolved_apikey)
    assert admin is not None
    admin.password = "changed here"
    admin.roles.append("9")
    assert fleet.login("a", "admin", "admin")["session_id"]
    again = fleet.authenticate("a", fleet.config.resolved_apikey)
    assert again is not None and again.roles == ["1"]


class SlotOfAMissingKey(LicenceRules):
    """Rules whose activation also frees a slot on a key the server does not have: a decision the fleet cannot
    apply, so nothing of it is applied."""

    def activate(self, *args: object, **kwargs: object) -> Decision:
        decision = super().activate(*args, **kwargs)  # type: ignore[arg-type]
        return replace(decision, slots=(*decision.slots, SlotChange("NONE-NONE-NONE-NONE-NONE-NONE-NONE", "x")))


def test_a_decision_is_applied_whole_or_not_at_all() -> None:
    fleet = Fleet(FleetConfig(instances=("a",)), rules=SlotOfAMissingKey())
    key = fleet.activation_keys()[0].key
    with pytest.raises(KeyError):
        fleet.activate("a", key, 1)
    assert fleet.slot_holders() == {key: []}
    assert fleet.states() == {"a": LicenceState.UNLICENSED}
