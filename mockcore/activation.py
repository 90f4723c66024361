"""The emulated activation server's store (docs/activation-server.md): activation keys with their slots, and the
licence files it signs. What it may do is decided in mockcore.rules; this module keeps the keys and applies the
slot changes decided there, and writes and reads licence files.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import datetime
from types import MappingProxyType

import yaml

from mockcore import safeyaml
from mockcore.lifecycle import (
    EXPIRATION_FORMAT,
    ActivationKey,
    LicenceFile,
    LicenceTerms,
    SlotChange,
    format_expiration,
)

MAX_LICENCE_BYTES = 1024 * 1024

# Every field of a licence file, in the order it is written.
FILE_FIELDS = (
    "product_id",
    "product_name",
    "activation_key",
    "deployment",
    "expiration",
    "licensed_engines",
    "licensed_to",
    "max_node_count",
    "online",
    "issued",
    "signature",
)


class InvalidLicenceFile(ValueError):
    """A licence file that is malformed, unsigned, edited, or not a licence at all."""


class ActivationServer:
    """Keys, slots and licence files. Not thread-safe by itself: the fleet holds the lock."""

    def __init__(self, keys: Iterable[ActivationKey], secret: bytes) -> None:
        self._keys: dict[str, ActivationKey] = {k.key: k for k in keys}
        self._secret = secret

    @property
    def keys(self) -> Mapping[str, ActivationKey]:
        """The keys, read-only (each key is an immutable value)."""
        return MappingProxyType(self._keys)

    def apply(self, changes: Iterable[SlotChange]) -> bool:
        """Apply slot changes decided by mockcore.rules; answers whether anything changed."""
        keys = dict(self._keys)
        for change in changes:
            keys[change.key] = keys[change.key].changed(change)  # KeyError, ValueError: nothing applied
        changed = keys != self._keys
        self._keys = keys
        return changed

    # Licence files

    def _signature(self, fields: Mapping[str, object]) -> str:
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self._secret, canonical, hashlib.sha256).hexdigest()

    def render(self, licence: LicenceFile) -> bytes:
        terms = asdict(licence.terms)
        fields: dict[str, object] = {
            "product_id": terms["product_id"],
            "product_name": terms["product_name"],
            "activation_key": terms["activation_key"],
            "deployment": licence.deployment,
            "expiration": format_expiration(licence.terms.expires),
            "licensed_engines": terms["licensed_engines"],
            "licensed_to": terms["licensed_to"],
            "max_node_count": terms["max_node_count"],
            "online": False,
            "issued": licence.issued,
        }
        fields["signature"] = self._signature(fields)
        return yaml.safe_dump(fields, sort_keys=False).encode()

    def parse(self, body: bytes) -> LicenceFile:
        """A licence file this fleet signed, or InvalidLicenceFile. Expiry and deployment are the rules'."""
        try:
            doc = safeyaml.load(body, MAX_LICENCE_BYTES)
        except safeyaml.UnsafeYAML as exc:
            raise InvalidLicenceFile(str(exc)) from exc
        if not isinstance(doc, dict) or set(doc) != set(FILE_FIELDS):
            raise InvalidLicenceFile("not a licence file")
        strings = [name for name in FILE_FIELDS if name != "online"]
        if doc["online"] is not False or not all(isinstance(doc[name], str) for name in strings):
            raise InvalidLicenceFile("a licence file field has the wrong type")
        fields = {name: doc[name] for name in FILE_FIELDS if name != "signature"}
        if not hmac.compare_digest(self._signature(fields).encode(), doc["signature"].encode()):
            raise InvalidLicenceFile("the signature does not match")
        try:
            expires = datetime.strptime(doc["expiration"], EXPIRATION_FORMAT).date()
        except ValueError as exc:
            raise InvalidLicenceFile("bad expiration date") from exc
        terms = LicenceTerms(
            activation_key=doc["activation_key"],
            expires=expires,
            product_id=doc["product_id"],
            product_name=doc["product_name"],
            licensed_to=doc["licensed_to"],
            max_node_count=doc["max_node_count"],
            licensed_engines=doc["licensed_engines"],
        )
        return LicenceFile(terms, doc["deployment"], doc["issued"])
