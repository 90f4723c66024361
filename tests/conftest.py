"""Fixtures: a fleet served in-process on free ports, spoken to over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from mockcore.catalogue import Catalogue
from mockcore.fleet import Fleet, FleetConfig, KeySpec
from mockcore.inprocess import MockFleet
from mockcore.server import ACTIVATION
from tests.client import ActivationClient, CoreClient


@dataclass
class RunningFleet:
    fleet: Fleet
    server: MockFleet
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


def serve_fleet(fleet: Fleet, control_token: str | None = None) -> RunningFleet:
    """The one way the tests serve a fleet over HTTP: MockFleet, on free ports. Stop it with `.server.stop()`."""
    server = MockFleet.serving(fleet, control_token=control_token).start()
    return RunningFleet(fleet, server, {**server.urls, ACTIVATION: server.activation_url})


FleetFactory = Callable[..., RunningFleet]


@pytest.fixture
def make_fleet() -> Iterator[FleetFactory]:
    servers: list[MockFleet] = []

    def make(
        instances: tuple[str, ...] = ("a", "b", "c"),
        keys: tuple[KeySpec, ...] = (KeySpec(slots=2),),
        catalogue: Catalogue | None = None,
        **config: object,
    ) -> RunningFleet:
        fleet = Fleet(FleetConfig(instances=instances, keys=keys, **config), catalogue=catalogue)  # type: ignore[arg-type]
        running = serve_fleet(fleet)
        servers.append(running.server)
        return running

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def fleet3(make_fleet: FleetFactory) -> RunningFleet:
    """Three instances a, b, c and one key with two slots."""
    return make_fleet()
