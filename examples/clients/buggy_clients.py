"""Deliberately buggy clients: each is the correct Python client (`python_client/`) with one bug, and each adapter's
docstring names it. `mockcore-contracts client --adapter examples.clients.buggy_clients:NAME` fails for every one,
with a report naming the broken property; `tests/test_client_harness.py` checks which.

    NAME                        bug                                                  property broken
    BackupSentenceAsFailure     expects `success: true` from the backup endpoints    reports-server-success
    QuantityAsList              sends `quantity` as a list                           request-well-formed
    DropsApikey                 forgets the apikey on requests without a body        request-well-formed
    SuccessOn400                takes a 400 answer for success                       no-false-success
    IgnoresReactivate           never reports the `reactivate` flag                  client-view
    RetriesNominationBlindly    sends a nomination again when no answer came         no-double-apply
    LicenceAsJson               sends the licence file inside a JSON document        request-well-formed
    InventsErrors               reports its own error text, not the server's         surfaces-server-error
    AssumesSuccessWithoutAnswer reports success when the connection was lost         no-false-success
    SendsFixedQuantity          activates with `quantity: 1` whatever it was asked   sends-given-arguments
    UpperCasesKey               sends the activation key upper-cased                 sends-given-arguments
    IgnoresCa                   turns certificate verification off (over HTTPS)      verifies-tls

`IgnoresCa` is caught only over HTTPS (`mockcore-contracts client --tls`); over plain HTTP it is correct.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import requests

from contracts.client import Failure, Instance, Outcome
from examples.clients.python_client.adapter import Adapter
from examples.clients.python_client.licence_client import CoreError, LicenceClient, LicenceInfo, NoAnswer


class _SentenceIsFailureClient(LicenceClient):
    def expect_sentence(self, answer: requests.Response) -> str:
        self.expect_true(answer)  # the bug: the backup endpoints answer a sentence, not `true`
        return ""


class BackupSentenceAsFailure(Adapter):
    """Bug: treats the backup endpoints' `success` sentence as a failure (it expects `{"success": true}`, as the
    activation endpoints answer), so a registration, unregistration or nomination that worked is reported failed."""

    client_class = _SentenceIsFailureClient


class _QuantityAsListClient(LicenceClient):
    def activate(self, key: str, quantity: int = 1, comment: str = "") -> None:
        doc = {"activationKey": key, "quantity": [quantity], "comment": comment}  # the bug: a list
        self.expect_true(self.send("POST", "/admin/license/activation", json=doc, headers=self.headers()))


class QuantityAsList(Adapter):
    """Bug: sends `quantity` as a list (`[1]`) in the activation request; the contract wants an integer (or a
    string of digits)."""

    client_class = _QuantityAsListClient


class _DropsApikeyClient(LicenceClient):
    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        if method == "POST" and "data" not in kwargs and "json" not in kwargs:
            headers = dict(kwargs.pop("headers", {}))
            headers.pop("apikey", None)  # the bug: built the request without the apikey header
            kwargs["headers"] = headers
        return super().send(method, path, **kwargs)


class DropsApikey(Adapter):
    """Bug: forgets the `apikey` header on POST requests without a body (nomination, deactivation, online backup
    registration), so they are refused `400 Access denied`."""

    client_class = _DropsApikeyClient


class _SuccessOn400Client(LicenceClient):
    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return super().send(method, path, **kwargs)
        except CoreError as refused:
            if refused.status == 400:  # the bug: "400 means there was nothing to do"
                answer = requests.Response()
                answer.status_code, answer._content = 200, b'{"success": true}'
                return answer
            raise

    def expect_sentence(self, answer: requests.Response) -> str:
        return str(self.body(answer).get("success"))


class SuccessOn400(Adapter):
    """Bug: reports success when the server answers 400 (it reads a 400 as "already done, nothing to do")."""

    client_class = _SuccessOn400Client


class _IgnoresReactivateClient(LicenceClient):
    def licence(self) -> LicenceInfo:
        return dataclasses.replace(super().licence(), reactivate=False)  # the bug: the flag is never read


class IgnoresReactivate(Adapter):
    """Bug: ignores the `reactivate` flag of an unlicensed instance's licence view (it never tells its caller that
    the instance lost its slot and holds a key to reactivate with)."""

    client_class = _IgnoresReactivateClient


class _RetriesNominationClient(LicenceClient):
    attempts: ClassVar[int] = 3

    def nominate(self) -> str:
        for attempt in range(1, self.attempts + 1):
            try:
                return super().nominate()
            except (NoAnswer, CoreError):
                if attempt == self.attempts:
                    raise
        raise AssertionError("unreachable")


class RetriesNominationBlindly(Adapter):
    """Bug: retries a nomination blindly when it fails or no answer comes. When the answer of a nomination that was
    carried out is lost, the retry is refused (`This instance is not registered as a backup.`) and the client
    reports that refusal: the nomination happened, the caller is told it did not."""

    client_class = _RetriesNominationClient


class _LicenceAsJsonClient(LicenceClient):
    def upload_licence(self, licence: bytes) -> None:
        doc = {"license": licence.decode("utf-8", "replace")}  # the bug: wrapped in JSON
        self.expect_true(self.send("POST", "/admin/license", json=doc, headers=self.headers()))

    def register_backup_offline(self, licence: bytes) -> str:
        doc = {"license": licence.decode("utf-8", "replace")}
        return self.expect_sentence(self.send("POST", "/admin/license/backup", json=doc, headers=self.headers()))


class LicenceAsJson(Adapter):
    """Bug: sends the licence file inside a JSON document (`{"license": "..."}`, `application/json`) instead of the
    file's raw bytes as `application/octet-stream`."""

    client_class = _LicenceAsJsonClient


class InventsErrors(Adapter):
    """Bug: reports a refusal with its own text ("Licence operation failed") instead of the server's `err`, so the
    caller never learns why (no slot left? an offline backup?)."""

    def run(self, action: Any) -> Outcome:
        outcome = super().run(action)
        if isinstance(outcome, Failure) and outcome.status is not None:
            return Failure(outcome.status, "Licence operation failed")
        return outcome


class _AssumesSuccessClient(LicenceClient):
    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            return super().send(method, path, **kwargs)
        except NoAnswer:
            answer = requests.Response()  # the bug: "no answer? it surely went through"
            answer.status_code, answer._content = 200, b'{"success": true, "is_backup": false}'
            return answer

    def expect_sentence(self, answer: requests.Response) -> str:
        return str(self.body(answer).get("success"))


class AssumesSuccessWithoutAnswer(Adapter):
    """Bug: when the connection is lost before an answer comes, reports success (it assumes the request went
    through), though the server may never have carried it out."""

    client_class = _AssumesSuccessClient


class _FixedQuantityClient(LicenceClient):
    def activate(self, key: str, quantity: int = 1, comment: str = "") -> None:
        super().activate(key, 1, comment)  # the bug: "we only ever run one node"


class SendsFixedQuantity(Adapter):
    """Bug: activates with `quantity: 1` whatever quantity it was asked for (the server accepts it: only the
    request, compared with the arguments given, shows it)."""

    client_class = _FixedQuantityClient


class _UpperCaseKeyClient(LicenceClient):
    def activate(self, key: str, quantity: int = 1, comment: str = "") -> None:
        super().activate(key.upper(), quantity, comment)  # the bug: "keys are case-insensitive"

    def register_backup_online(self, key: str, production_deployment: str) -> str:
        return super().register_backup_online(key.upper(), production_deployment)


class UpperCasesKey(Adapter):
    """Bug: upper-cases the activation key before sending it (activation and online backup registration); keys
    are case-sensitive, so it sends another key."""

    client_class = _UpperCaseKeyClient


class IgnoresCa(Adapter):
    """Bug: turns certificate verification off (`verify=False`) instead of trusting the CA the instance's
    `ca_path` names, so it talks to an impostor with any certificate."""

    def client(self, instance: Instance) -> LicenceClient:
        client = super().client(instance)
        client.verify = False  # the bug: "the certificate is self-signed anyway"
        return client
