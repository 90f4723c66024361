"""The adapter that lets `mockcore-contracts client` drive `licence_client.LicenceClient`:

    mockcore-contracts client --adapter examples.clients.python_client.adapter:Adapter

One method per operation of the protocol (`contracts.client.ClientAdapter`); each calls the client library and
turns what it returns or raises into an outcome: `Success(view)`, `Failure(status, err)` for a refusal, or
`Failure(None, what)` when no answer came.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any, ClassVar

import requests

from contracts.client import Failure, Instance, Outcome, Success
from examples.clients.python_client.licence_client import CoreError, LicenceClient, NoAnswer


class Adapter:
    """The correct client: every property holds."""

    client_class: ClassVar[type[LicenceClient]] = LicenceClient

    def __init__(self) -> None:
        self.session = requests.Session()  # keep-alive across calls, as a long-lived client would

    def client(self, instance: Instance) -> LicenceClient:
        return self.client_class(instance.url, instance.apikey, session=self.session, ca_path=instance.ca_path)

    def run(self, action: Callable[[], Any]) -> Outcome:
        try:
            result = action()
        except CoreError as refused:
            return Failure(refused.status, refused.err)
        except NoAnswer as silence:
            return Failure(None, str(silence))
        return Success(result if isinstance(result, dict) else {})

    def activate(self, instance: Instance, key: str, quantity: int) -> Outcome:
        return self.run(lambda: self.client(instance).activate(key, quantity, comment=f"mockcore {instance.name}"))

    def upload_licence(self, instance: Instance, licence: bytes) -> Outcome:
        return self.run(lambda: self.client(instance).upload_licence(licence))

    def register_online(self, instance: Instance, key: str, production_deployment: str) -> Outcome:
        return self.run(lambda: self.client(instance).register_backup_online(key, production_deployment))

    def register_offline(self, instance: Instance, licence: bytes) -> Outcome:
        return self.run(lambda: self.client(instance).register_backup_offline(licence))

    def unregister(self, instance: Instance) -> Outcome:
        return self.run(lambda: self.client(instance).unregister_backup())

    def nominate(self, instance: Instance) -> Outcome:
        return self.run(lambda: self.client(instance).nominate())

    def deactivate(self, instance: Instance) -> Outcome:
        return self.run(lambda: self.client(instance).deactivate())

    def licence_info(self, instance: Instance) -> Outcome:
        return self.run(lambda: asdict(self.client(instance).licence()))

    def backup_flag(self, instance: Instance) -> Outcome:
        return self.run(lambda: {"is_backup": self.client(instance).is_backup()})

    def close(self) -> None:
        self.session.close()
