from tests.conftest import RunningFleet


def test_online_failover_over_http(fleet3: RunningFleet) -> None:
    a, b = fleet3.core("a"), fleet3.core("b")
    assert a.activate(fleet3.key).json() == {"success": True}
    assert b.register_online(fleet3.key, a.deployment()).status_code == 200
    assert b.nominate().status_code == 200
    assert a.licence().json()["reactivate"] is True
    assert fleet3.slots_used() == {fleet3.key: 1}
