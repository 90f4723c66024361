"""Tests of the made-up client, written only against mockcore's pytest plugin: its fixtures and its marker.

The plugin's defaults give every test a fleet of two instances, `prod` and `backup`, and one activation key with
two slots, reset before each test. Run with `python -m pytest -n 2 examples/made_up_client`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import failover
import pytest
import requests

NOMINATE_OFFLINE = (
    "A backup registered offline cannot be nominated. Remove the backup registration and activate it with a "
    "license file."
)


def test_a_fresh_fleet_is_unlicensed(mockcore_urls: dict[str, str], mockcore_apikey: str) -> None:
    for url in mockcore_urls.values():
        status = failover.licence_status(url, mockcore_apikey)
        assert not status.licensed
        assert not status.is_backup
        assert status.deployment.startswith("MSCL")


def test_activate_makes_a_production(mockcore_urls: dict[str, str], mockcore_apikey: str, mockcore_key: str) -> None:
    status = failover.activate(mockcore_urls["prod"], mockcore_apikey, mockcore_key)
    assert status.licensed
    assert status.online is True
    assert status.days_left is not None and status.days_left > 300


def test_activate_with_an_unknown_key_is_refused(mockcore_urls: dict[str, str], mockcore_apikey: str) -> None:
    with pytest.raises(failover.LicenceAutomationError) as refused:
        failover.activate(mockcore_urls["prod"], mockcore_apikey, "ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZ")
    assert refused.value.status == 400
    assert not failover.licence_status(mockcore_urls["prod"], mockcore_apikey).licensed


def test_a_wrong_apikey_is_refused(mockcore_urls: dict[str, str], mockcore_key: str) -> None:
    wrong = "1a2b3c4d5e" * 3 + "6f7a8b"
    with pytest.raises(failover.LicenceAutomationError) as refused:
        failover.activate(mockcore_urls["prod"], wrong, mockcore_key)
    assert (refused.value.status, refused.value.text) == (403, "Access denied")


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_every_test_starts_from_a_fresh_fleet(
    attempt: int, mockcore_urls: dict[str, str], mockcore_apikey: str, mockcore_key: str
) -> None:
    # Whichever of these runs later on the same worker would see the earlier one's production without the reset.
    assert not failover.licence_status(mockcore_urls["prod"], mockcore_apikey).licensed
    failover.activate(mockcore_urls["prod"], mockcore_apikey, mockcore_key, comment=f"attempt {attempt}")


def test_promote_registers_the_backup_then_nominates_it(
    mockcore_urls: dict[str, str], mockcore_apikey: str, mockcore_key: str
) -> None:
    failover.activate(mockcore_urls["prod"], mockcore_apikey, mockcore_key)
    old, new = failover.promote_backup(mockcore_urls["prod"], mockcore_urls["backup"], mockcore_apikey, mockcore_key)
    assert new.licensed and new.online and not new.is_backup
    assert not old.licensed and old.reactivate


@pytest.mark.mockcore_scenario("production-with-online-backup")
class TestWithAnOnlineBackup:
    def test_the_scenario_is_set_up(self, mockcore_sessions: dict[str, requests.Session]) -> None:
        assert mockcore_sessions["backup"].get("/admin/license/backup").json() == {"is_backup": True}
        assert mockcore_sessions["prod"].get("/admin/license").json()["online_activated"] is True

    def test_promote_moves_the_licence_to_the_backup(
        self, mockcore_urls: dict[str, str], mockcore_apikey: str, mockcore_key: str
    ) -> None:
        old, new = failover.promote_backup(
            mockcore_urls["prod"], mockcore_urls["backup"], mockcore_apikey, mockcore_key
        )
        assert new.licensed and not new.is_backup
        assert not old.licensed and old.reactivate

    def test_a_backup_cannot_step_down(self, mockcore_urls: dict[str, str], mockcore_apikey: str) -> None:
        with pytest.raises(failover.LicenceAutomationError) as refused:
            failover.step_down(mockcore_urls["backup"], mockcore_apikey)
        assert refused.value.status == 400
        assert refused.value.text == "A backup instance cannot be deactivated; remove the backup registration instead."


@pytest.mark.mockcore_scenario("production-with-offline-backup")
def test_promoting_an_offline_backup_gives_the_documented_error(
    mockcore_urls: dict[str, str], mockcore_apikey: str, mockcore_key: str
) -> None:
    with pytest.raises(failover.LicenceAutomationError) as refused:
        failover.promote_backup(mockcore_urls["prod"], mockcore_urls["backup"], mockcore_apikey, mockcore_key)
    assert refused.value.step == "nominate"
    assert (refused.value.status, refused.value.text) == (400, NOMINATE_OFFLINE)
    assert failover.licence_status(mockcore_urls["backup"], mockcore_apikey).is_backup  # nothing changed


def test_offline_activation_through_the_activation_server(
    mockcore_urls: dict[str, str], mockcore_activation_url: str, mockcore_apikey: str, mockcore_key: str
) -> None:
    status = failover.activate_offline(mockcore_urls["prod"], mockcore_activation_url, mockcore_apikey, mockcore_key)
    assert status.licensed and status.online is False


@pytest.mark.mockcore_scenario("expiring-soon")
def test_an_expiring_licence_needs_renewal(mockcore_urls: dict[str, str], mockcore_apikey: str) -> None:
    assert failover.needs_renewal(mockcore_urls["prod"], mockcore_apikey, within_days=30)
    assert not failover.needs_renewal(mockcore_urls["prod"], mockcore_apikey, within_days=3)


def test_moving_the_clock_through_the_control_plane_expires_the_licence(
    mockcore_sessions: dict[str, requests.Session],
    mockcore_urls: dict[str, str],
    mockcore_apikey: str,
    mockcore_key: str,
) -> None:
    failover.activate(mockcore_urls["prod"], mockcore_apikey, mockcore_key)
    assert not failover.needs_renewal(mockcore_urls["prod"], mockcore_apikey)
    control = mockcore_sessions["prod"]  # the control plane answers on every port of the fleet
    moved = control.post("/_mock/clock/advance", json={"days": 340})
    assert moved.status_code == 200, moved.text
    assert failover.needs_renewal(mockcore_urls["prod"], mockcore_apikey)
    control.post("/_mock/clock/advance", json={"days": 60})
    assert failover.licence_status(mockcore_urls["prod"], mockcore_apikey).expired


def test_sessions_carry_the_apikey_and_a_bare_one_is_refused(
    mockcore_session: Callable[..., requests.Session],
) -> None:
    assert mockcore_session("backup").get("/admin/license/backup").json() == {"is_backup": False}
    bare: Any = mockcore_session("backup", apikey=None).get("/admin/license/backup")
    assert (bare.status_code, bare.json()) == (400, {"err": "Access denied"})
