"""Fixtures: a fleet served in-process on free ports, spoken to over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from mockcore.catalogue import Catalogue
from mockcore.fleet import Fleet, FleetConfig, KeySpec
from mockcore.server import ACTIVATION, FleetServer, ServeOptions
from tests.client import ActivationClient, CoreClient


@dataclass
class RunningFleet:
    fleet: Fleet
    server: FleetServer
    urls: dict[str, str]

    @property
    def apikey(self) -> str:
        return self.fleet.config.resolved_apikey

    @property
    def keys(self) -> list[str]:
        return [key.key for key in self.fleet.activation_keys()]

    @property
    def key(self) -> str:
        return self.keys[0]

    def core(self, name: str, apikey: str | None = "") -> CoreClient:
        return CoreClient(self.urls[name], self.apikey if apikey == "" else apikey)

    @property
    def activation(self) -> ActivationClient:
        return ActivationClient(self.urls[ACTIVATION])

    def slots_used(self) -> dict[str, int]:
        return {key: len(holders) for key, holders in self.fleet.slot_holders().items()}

    def snapshot(self) -> tuple[object, ...]:
        """Everything a failed operation must leave as it was: licences and slot holders."""
        return self.fleet.licences(), self.fleet.slot_holders()


FleetFactory = Callable[..., RunningFleet]


@pytest.fixture
def make_fleet() -> Iterator[FleetFactory]:
    servers: list[FleetServer] = []

    def make(
        instances: tuple[str, ...] = ("a", "b", "c"),
        keys: tuple[KeySpec, ...] = (KeySpec(slots=2),),
        catalogue: Catalogue | None = None,
        **config: object,
    ) -> RunningFleet:
        fleet = Fleet(FleetConfig(instances=instances, keys=keys, **config), catalogue=catalogue)  # type: ignore[arg-type]
        server = FleetServer(fleet, ServeOptions())
        server.start()
        servers.append(server)
        return RunningFleet(fleet, server, server.urls())

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def fleet3(make_fleet: FleetFactory) -> RunningFleet:
    """Three instances a, b, c and one key with two slots."""
    return make_fleet()
