"""The emulated activation server of SPEC §5: activation keys with slots and expiry, and signed licence files.

A slot is held by a deployment on a key. Backups never hold one: only `obtain` takes a slot, and nomination
moves or takes one through `nominate_slot`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime

import yaml

from mockcore import safeyaml
from mockcore.identity import ACTIVATION_KEY_RE, DEPLOYMENT_RE
from mockcore.lifecycle import LicenceTerms

MAX_LICENCE_BYTES = 1024 * 1024
MIN_QUANTITY, MAX_QUANTITY = 1, 1000

INVALID_PARAMETER = "Invalid parameter"
ACTIVATION_FAILED = "Activation failed"


class ActivationRefused(Exception):
    """The activation server's refusal: the HTTP reason phrase it answers with and its error text."""

    def __init__(self, reason: str, text: str, *, no_slot: bool = False) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text
        self.no_slot = no_slot


class NotActivated(Exception):
    """`/deactivation` for a deployment that holds no slot on the key."""


class InvalidLicenceFile(ValueError):
    """A licence file that is malformed, unsigned, edited, or not a licence at all."""


def invalid_key() -> ActivationRefused:
    return ActivationRefused(
        INVALID_PARAMETER,
        "Could not activate your product because the Activation Key you provided is invalid. "
        "Please check the key and try again.",
    )


def invalid_deployment() -> ActivationRefused:
    return ActivationRefused(
        INVALID_PARAMETER,
        "Could not activate your product because the Deployment ID you provided is invalid. "
        "Please check the Deployment ID and try again.",
    )


def invalid_quantity() -> ActivationRefused:
    return ActivationRefused(
        INVALID_PARAMETER,
        "Could not activate your product because the quantity you provided is invalid. "
        f"The quantity must be a whole number from {MIN_QUANTITY} to {MAX_QUANTITY}.",
    )


_NUMERIC = re.compile(r"[0-9]{1,16}")


def parse_quantity(value: object) -> int | None:
    """An integer or a numeric string from 1 to 1000 (SPEC §8), else None. A numeric string is ASCII digits
    only (no sign, no spaces, at most 16), as the contract's pattern says. Booleans are not numbers here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _NUMERIC.fullmatch(value):
        number = int(value)
    else:
        return None
    return number if MIN_QUANTITY <= number <= MAX_QUANTITY else None


@dataclass
class ActivationKey:
    terms: LicenceTerms
    slots: int
    # Deployments holding a slot, in the order they took it.
    holders: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.terms.activation_key

    @property
    def free(self) -> int:
        return self.slots - len(self.holders)


@dataclass(frozen=True)
class LicenceFile:
    terms: LicenceTerms
    deployment: str
    issued: str


_EXPIRATION_FORMAT = "%m/%d/%Y"
_FILE_FIELDS = {
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
}


def format_expiration(day: date) -> str:
    return day.strftime(_EXPIRATION_FORMAT)


class ActivationServer:
    """Keys, slots and licence files. Not thread-safe by itself: the fleet holds the lock."""

    def __init__(self, keys: list[ActivationKey], secret: bytes) -> None:
        self.keys: dict[str, ActivationKey] = {k.key: k for k in keys}
        self._secret = secret

    # Slots

    def holds_slot(self, key: str, deployment: str) -> bool:
        found = self.keys.get(key)
        return found is not None and deployment in found.holders

    def obtain(self, key: str, deployment: str, quantity: object, now: datetime) -> LicenceFile:
        """`/activation`: take a slot for the deployment (or find the one it holds) and issue its file."""
        if not isinstance(key, str) or not ACTIVATION_KEY_RE.fullmatch(key):
            raise invalid_key()
        if not isinstance(deployment, str) or not DEPLOYMENT_RE.fullmatch(deployment):
            raise invalid_deployment()
        if parse_quantity(quantity) is None:
            raise invalid_quantity()
        found = self.keys.get(key)
        if found is None:
            raise ActivationRefused(ACTIVATION_FAILED, "The Activation Key is not known to the activation server.")
        if now.date() > found.terms.expires:
            raise ActivationRefused(ACTIVATION_FAILED, "The Activation Key has expired.")
        if deployment not in found.holders:
            if found.free <= 0:
                raise ActivationRefused(
                    ACTIVATION_FAILED, "The Activation Key has no free activation left.", no_slot=True
                )
            found.holders.append(deployment)
        return LicenceFile(found.terms, deployment, now.replace(microsecond=0).isoformat())

    def release(self, key: str, deployment: str) -> None:
        """`/deactivation`: free the deployment's slot."""
        found = self.keys.get(key)
        if found is None or deployment not in found.holders:
            raise NotActivated(f"{deployment} is not activated with this key")
        found.holders.remove(deployment)

    def nominate_slot(self, key: str, production: str, backup: str) -> bool:
        """Give `backup` a slot on `key`: the production's if it still holds one, else a free one.

        Returns False when there is neither; changes nothing then."""
        found = self.keys.get(key)
        if found is None:
            return False
        if production in found.holders:
            # The production loses its slot even when the backup holds a stale one of its own (README, Slots).
            if backup in found.holders:
                found.holders.remove(production)
            else:
                found.holders[found.holders.index(production)] = backup
            return True
        if backup in found.holders:
            return True
        if found.free > 0:
            found.holders.append(backup)
            return True
        return False

    # Licence files

    def _signature(self, fields: dict[str, object]) -> str:
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
        """A licence file this fleet signed, or InvalidLicenceFile. Expiry and deployment are the caller's."""
        try:
            doc = safeyaml.load(body, MAX_LICENCE_BYTES)
        except safeyaml.UnsafeYAML as exc:
            raise InvalidLicenceFile(str(exc)) from exc
        if not isinstance(doc, dict) or set(doc) != _FILE_FIELDS:
            raise InvalidLicenceFile("not a licence file")
        if doc["online"] is not False or not all(isinstance(doc[name], str) for name in _FILE_FIELDS - {"online"}):
            raise InvalidLicenceFile("a licence file field has the wrong type")
        fields = {name: doc[name] for name in _FILE_FIELDS - {"signature"}}
        if not hmac.compare_digest(self._signature(fields).encode(), doc["signature"].encode()):
            raise InvalidLicenceFile("the signature does not match")
        try:
            expires = datetime.strptime(doc["expiration"], _EXPIRATION_FORMAT).date()
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
