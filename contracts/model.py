"""An independent model of the licence rules (SPEC §3, §5, §6 and the clarifications of §8).

Written from the SPEC, apart from mockcore's state machine: it shares no code and no table with it, so a rule the
emulator gets wrong is caught rather than copied. It predicts, for each operation, the answer a conforming server
gives (an `Outcome`: status and body, or the catalogue error) and the fleet after it.

The model is plain data plus pure-ish methods: each operation mutates the model only when the operation succeeds
(a refused operation leaves a conforming server, and so the model, exactly as it was), except the *refresh* of an
online licence whose slot is gone, which a server does on any request to the instance (SPEC §8).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

UNLICENSED = "unlicensed"
ACTIVE = "active"
BACKUP_ONLINE = "backup-online"
BACKUP_OFFLINE = "backup-offline"
STATES = (UNLICENSED, ACTIVE, BACKUP_ONLINE, BACKUP_OFFLINE)
BACKUPS = (BACKUP_ONLINE, BACKUP_OFFLINE)

DEPLOYMENT_FORMAT = re.compile(r"MSCL[0-9a-f]{32}")
KEY_FORMAT = re.compile(r"[0-9A-Za-z]{4}(-[0-9A-Za-z]{4}){6}")

# The documented answers (SPEC §4): the backup endpoints answer sentences, the others `true`.
BACKUP_REGISTERED = "The backup MetaDefender Core instance is now registered as a backup one."
BACKUP_REMOVED = "This MetaDefender Core instance is no longer registered as a backup one."
NOMINATED = "This MetaDefender Core instance is now fully activated and allowed to process files."


@dataclass(frozen=True)
class CatalogueEntry:
    status: int
    text: str | None  # None: the text is the server's own (E_ACTIVATION_FAILED carries the activation server's)


# SPEC §6, written out again here on purpose (the suite must not read the emulator's catalogue). A target whose
# texts are overridden (fidelity overrides) passes its own catalogue to the model.
CATALOGUE: dict[str, CatalogueEntry] = {
    "E_ACCESS_MISSING": CatalogueEntry(400, "Access denied"),
    "E_ACCESS": CatalogueEntry(403, "Access denied"),
    "E_LOGIN": CatalogueEntry(403, "Failed to login"),
    "E_INVALID_LICENSE": CatalogueEntry(400, "Invalid license"),
    "E_NOT_BACKUP_REMOVE": CatalogueEntry(400, "Failed to remove backup license"),
    "E_EXPIRED_SCAN": CatalogueEntry(500, "License is expired"),
    "E_EMPTY_FILE": CatalogueEntry(422, "File is empty."),
    "E_ACTIVATE_BACKUP": CatalogueEntry(
        400,
        "This instance is registered as a backup. Nominate it, or remove the backup registration before activating it.",
    ),
    "E_REGISTER_ACTIVE": CatalogueEntry(400, "An activated instance cannot be registered as a backup."),
    "E_ALREADY_BACKUP": CatalogueEntry(400, "This instance is already registered as a backup."),
    "E_BACKUP_REQUEST": CatalogueEntry(
        400, "Provide the activation-key and active-deployment-id headers, or a license file body."
    ),
    "E_BACKUP_KEY": CatalogueEntry(400, "The activation key is not valid."),
    "E_BACKUP_PRODUCTION": CatalogueEntry(400, "The active deployment is not activated with this activation key."),
    "E_NOT_BACKUP": CatalogueEntry(400, "This instance is not registered as a backup."),
    "E_NOMINATE_OFFLINE": CatalogueEntry(
        400,
        "A backup registered offline cannot be nominated. Remove the backup registration and activate it with a "
        "license file.",
    ),
    "E_NO_SLOT": CatalogueEntry(400, "No free activation slot is left on this activation key."),
    "E_NOT_ACTIVE": CatalogueEntry(400, "This instance is not activated."),
    "E_DEACTIVATE_BACKUP": CatalogueEntry(
        400, "A backup instance cannot be deactivated; remove the backup registration instead."
    ),
    "E_ACTIVATION_FAILED": CatalogueEntry(400, None),
    "E_ACTIVATION_UNREACHABLE": CatalogueEntry(500, "Failed to connect to the activation server."),
    "E_SCAN_BACKUP": CatalogueEntry(403, "This instance is a backup and is not allowed to process files."),
    "E_SCAN_UNLICENSED": CatalogueEntry(403, "This instance is not licensed to process files."),
    "E_ENGINES_UNLICENSED": CatalogueEntry(403, "Engines cannot be changed on an unlicensed instance."),
    "E_BAD_REQUEST": CatalogueEntry(400, "Invalid request."),
    "E_TOO_LARGE": CatalogueEntry(413, "Request body is too large."),
    "E_NOT_FOUND": CatalogueEntry(404, "Not found."),
    "E_METHOD": CatalogueEntry(405, "Method not allowed."),
}


@dataclass(frozen=True)
class Outcome:
    """What a conforming server answers: a success body, or a catalogue error (status and `{"err": text}`)."""

    status: int
    body: object = None
    error: str | None = None  # the catalogue code, when the answer is an error
    rule: str = ""  # the contract rule this answer stands for, named in reports

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class KeyModel:
    key: str
    slots: int
    expires: date
    holders: list[str] = field(default_factory=list)  # deployments holding a slot, in the order they took it

    @property
    def free(self) -> int:
        return self.slots - len(self.holders)


@dataclass(frozen=True)
class LicenceFileModel:
    """A licence file the activation server issued: what it was issued for, and its bytes (opaque to the model)."""

    key: str
    deployment: str
    expires: date
    content: bytes = b""


@dataclass
class InstanceModel:
    name: str
    deployment: str
    state: str = UNLICENSED
    key: str | None = None  # the key held; on an unlicensed instance it means `reactivate: true`
    online: bool = False
    production: str | None = None  # a backup's production deployment
    expires: date | None = None  # the licence's expiry (the key's, or the file's)

    @property
    def is_backup(self) -> bool:
        return self.state in BACKUPS

    def licensed(self) -> bool:
        return self.state != UNLICENSED


class Model:
    """A fleet as SPEC describes it: instances, the activation server's keys and slots, and the clock's date."""

    def __init__(
        self,
        instances: dict[str, str],
        keys: Iterable[KeyModel],
        today: date,
        catalogue: dict[str, CatalogueEntry] | None = None,
    ) -> None:
        self.instances = {name: InstanceModel(name, deployment) for name, deployment in instances.items()}
        self.keys = {k.key: k for k in keys}
        self.today = today
        self.catalogue = dict(CATALOGUE if catalogue is None else catalogue)
        self.files: list[LicenceFileModel] = []

    def copy(self) -> Model:
        return copy.deepcopy(self)

    # Answers

    def error(self, code: str, rule: str) -> Outcome:
        entry = self.catalogue[code]
        return Outcome(entry.status, None if entry.text is None else {"err": entry.text}, code, rule)

    @staticmethod
    def success(body: object, rule: str) -> Outcome:
        return Outcome(200, body, None, rule)

    # Views

    def expired(self, inst: InstanceModel) -> bool:
        return inst.licensed() and inst.expires is not None and self.today > inst.expires

    def days_left(self, inst: InstanceModel) -> int:
        assert inst.expires is not None
        return max(0, (inst.expires - self.today).days)

    def holders(self) -> dict[str, list[str]]:
        return {k.key: sorted(k.holders) for k in self.keys.values()}

    def deployments(self) -> dict[str, str]:
        return {inst.deployment: name for name, inst in self.instances.items()}

    def refresh(self, name: str) -> InstanceModel:
        """SPEC §8: an online production consults the activation server on each request; when its slot is gone
        (freed at `/deactivation`, or moved to a nominated backup) it is unlicensed and keeps its key."""
        inst = self.instances[name]
        if inst.state == ACTIVE and inst.online and inst.key is not None:
            key = self.keys.get(inst.key)
            if key is None or inst.deployment not in key.holders:
                inst.state, inst.online, inst.production, inst.expires = UNLICENSED, False, None, None
        return inst

    def licence_info(self, name: str) -> Outcome:
        inst = self.refresh(name)
        if not inst.licensed():
            body: dict[str, object] = {"deployment": inst.deployment, "deployment_id": inst.deployment}
            if inst.key is not None:
                body["reactivate"] = True
            return self.success(body, "licence-info-unlicensed")
        assert inst.expires is not None
        return self.success(
            {
                "deployment": inst.deployment,
                "days_left": self.days_left(inst),
                "expiration": inst.expires.strftime("%m/%d/%Y"),
                "online_activated": inst.online,
            },
            "licence-info-licensed",
        )

    def backup_flag(self, name: str) -> Outcome:
        return self.success({"is_backup": self.refresh(name).is_backup}, "backup-flag")

    def readiness(self, name: str) -> Outcome:
        inst = self.refresh(name)
        if not inst.licensed():
            return Outcome(503, {"status": "invalid"}, None, "readyz-unlicensed")
        if self.expired(inst):
            return Outcome(503, {"status": "expired"}, None, "readyz-expired")
        return Outcome(200, {"status": "ok"}, None, "readyz-licensed")

    def scan(self, name: str) -> Outcome:
        inst = self.refresh(name)
        if inst.is_backup:
            return self.error("E_SCAN_BACKUP", "no-scan-on-backup")
        if not inst.licensed():
            return self.error("E_SCAN_UNLICENSED", "no-scan-unlicensed")
        if self.expired(inst):
            return self.error("E_EXPIRED_SCAN", "no-scan-expired")
        return self.success({"data_id": "<32 hex>"}, "scan-on-active")

    # The activation server (SPEC §5)

    def _obtain(self, key: str, deployment: str) -> str | None:
        """Take a slot for the deployment (none when it already holds one); the refusal's catalogue code."""
        found = self.keys.get(key)
        if found is None or not KEY_FORMAT.fullmatch(key) or self.today > found.expires:
            return "E_ACTIVATION_FAILED"
        if deployment not in found.holders:
            if found.free <= 0:
                return "E_NO_SLOT"
            found.holders.append(deployment)
        return None

    def obtain_file(self, key: str, deployment: str, quantity: int) -> Outcome:
        """`GET /activation`: HTTP 200 either way; a file, or a YAML `error:` with reason phrase."""
        if not KEY_FORMAT.fullmatch(key):
            return Outcome(200, "Invalid parameter", "invalid-key", "activation-server-invalid-key")
        if not DEPLOYMENT_FORMAT.fullmatch(deployment):
            return Outcome(200, "Invalid parameter", "invalid-deployment", "activation-server-invalid-deployment")
        if not 1 <= quantity <= 1000:
            return Outcome(200, "Invalid parameter", "invalid-quantity", "activation-server-invalid-quantity")
        refused = self._obtain(key, deployment)
        if refused == "E_NO_SLOT":
            return Outcome(200, "Activation failed", "no-slot", "activation-server-slots")
        if refused is not None:
            return Outcome(200, "Activation failed", "refused", "activation-server-unknown-or-expired-key")
        self.files.append(LicenceFileModel(key, deployment, self.keys[key].expires))
        return Outcome(200, "OK", None, "activation-server-issues-file")

    def free_slot(self, key: str, deployment: str) -> Outcome:
        """`GET /deactivation`: 200 frees the slot; 404 when the deployment holds none on the key."""
        found = self.keys.get(key)
        if found is None or deployment not in found.holders:
            return Outcome(404, None, "not-activated", "activation-server-deactivation-unknown")
        found.holders.remove(deployment)
        return Outcome(200, None, None, "activation-server-deactivation-frees")

    # Licence operations (SPEC §3), in the order of checks of SPEC §8: state rule, then key, slot and file.

    def _free_if_online(self, inst: InstanceModel) -> None:
        if inst.online and inst.key is not None:
            found = self.keys.get(inst.key)
            if found is not None and inst.deployment in found.holders:
                found.holders.remove(inst.deployment)

    @staticmethod
    def valid_quantity(quantity: object) -> bool:
        """SPEC §8: an integer, or a string of digits, from 1 to 1000 (README: plain ASCII digits, at most 16)."""
        if isinstance(quantity, str) and quantity.isascii() and quantity.isdigit() and len(quantity) <= 16:
            quantity = int(quantity)
        return isinstance(quantity, int) and not isinstance(quantity, bool) and 1 <= quantity <= 1000

    def activate(self, name: str, key: str, quantity: object = 1) -> Outcome:
        if not self.valid_quantity(quantity):
            return self.error("E_BAD_REQUEST", "activation-quantity-is-checked")
        inst = self.refresh(name)
        if inst.is_backup:
            return self.error("E_ACTIVATE_BACKUP", "no-activation-on-backup")
        refused = self._obtain(key, inst.deployment)
        if refused is not None:
            return self.error(refused, "activation-needs-key-and-slot")
        if inst.state == ACTIVE and inst.key != key:
            # Moving to another key frees the old slot of an online licence (an offline one stays held, SPEC §8).
            self._free_if_online(inst)
        inst.state, inst.key, inst.online, inst.production = ACTIVE, key, True, None
        inst.expires = self.keys[key].expires
        return self.success({"success": True}, "activation-takes-slot")

    def _usable_file(self, content: bytes) -> LicenceFileModel | None:
        """A file this fleet's activation server issued, unaltered and unexpired (SPEC §8: expired files are
        invalid)."""
        for issued in self.files:
            if issued.content == content:
                return None if self.today > issued.expires else issued
        return None

    def upload(self, name: str, content: bytes) -> Outcome:
        inst = self.refresh(name)
        if inst.is_backup:
            return self.error("E_ACTIVATE_BACKUP", "no-upload-on-backup")
        issued = self._usable_file(content)
        if issued is None or issued.deployment != inst.deployment:
            return self.error("E_INVALID_LICENSE", "upload-needs-valid-own-file")
        if inst.state == ACTIVE and inst.key != issued.key:
            self._free_if_online(inst)
        inst.state, inst.key, inst.online, inst.production = ACTIVE, issued.key, False, None
        inst.expires = issued.expires
        return self.success({"success": True}, "upload-activates-offline")

    def _registration_state_rule(self, inst: InstanceModel) -> Outcome | None:
        if inst.state == ACTIVE:
            return self.error("E_REGISTER_ACTIVE", "no-registration-of-active")
        if inst.is_backup:
            return self.error("E_ALREADY_BACKUP", "no-registration-of-backup")
        return None

    def register_online(self, name: str, key: str, production: str) -> Outcome:
        inst = self.refresh(name)
        refused = self._registration_state_rule(inst)
        if refused is not None:
            return refused
        found = self.keys.get(key)
        if found is None:
            return self.error("E_BACKUP_KEY", "registration-needs-known-key")
        if production == inst.deployment or production not in found.holders:
            return self.error("E_BACKUP_PRODUCTION", "registration-needs-active-production")
        inst.state, inst.key, inst.online, inst.production = BACKUP_ONLINE, key, True, production
        inst.expires = found.expires
        return self.success({"success": BACKUP_REGISTERED}, "registration-online")

    def register_offline(self, name: str, content: bytes) -> Outcome:
        inst = self.refresh(name)
        refused = self._registration_state_rule(inst)
        if refused is not None:
            return refused
        issued = self._usable_file(content)
        if issued is None or issued.deployment == inst.deployment:
            return self.error("E_INVALID_LICENSE", "offline-registration-needs-another-deployments-file")
        inst.state, inst.key, inst.online, inst.production = BACKUP_OFFLINE, issued.key, False, issued.deployment
        inst.expires = issued.expires
        return self.success({"success": BACKUP_REGISTERED}, "registration-offline")

    def unregister(self, name: str) -> Outcome:
        inst = self.refresh(name)
        if not inst.is_backup:
            return self.error("E_NOT_BACKUP_REMOVE", "unregister-needs-backup")
        inst.state, inst.key, inst.online, inst.production, inst.expires = UNLICENSED, None, False, None, None
        return self.success({"success": BACKUP_REMOVED}, "unregister-backup")

    def nominate(self, name: str) -> Outcome:
        inst = self.refresh(name)
        if inst.state == BACKUP_OFFLINE:
            return self.error("E_NOMINATE_OFFLINE", "no-nomination-of-offline-backup")
        if inst.state != BACKUP_ONLINE:
            return self.error("E_NOT_BACKUP", "nomination-needs-backup")
        assert inst.key is not None and inst.production is not None
        found = self.keys.get(inst.key)
        if found is None:
            return self.error("E_NO_SLOT", "nomination-moves-or-takes-slot")
        if inst.production in found.holders:
            # The production's slot moves to the backup (a stale slot of the backup's own stays one slot).
            found.holders.remove(inst.production)
            if inst.deployment not in found.holders:
                found.holders.append(inst.deployment)
        elif inst.deployment not in found.holders:
            if found.free <= 0:
                return self.error("E_NO_SLOT", "nomination-moves-or-takes-slot")
            found.holders.append(inst.deployment)
        inst.state, inst.online, inst.production = ACTIVE, True, None
        return self.success({"success": NOMINATED}, "nomination-moves-slot")

    def deactivate(self, name: str) -> Outcome:
        inst = self.refresh(name)
        if inst.is_backup:
            return self.error("E_DEACTIVATE_BACKUP", "no-deactivation-of-backup")
        if inst.state != ACTIVE:
            return self.error("E_NOT_ACTIVE", "deactivation-needs-active")
        if inst.online:
            self._free_if_online(inst)  # freed at once; the key is kept (`reactivate`)
        else:
            inst.key = None  # offline: the slot stays held until /deactivation, nothing is kept locally
        inst.state, inst.online, inst.production, inst.expires = UNLICENSED, False, None, None
        return self.success({"success": True}, "deactivation")

    # Invariants

    def invariant_problems(self) -> list[str]:
        """The model's own consistency: a broken model is a bug of the suite, never of the target."""
        problems = []
        for key in self.keys.values():
            if len(key.holders) > key.slots:
                problems.append(f"model: key {key.key} has {len(key.holders)} holders for {key.slots} slots")
        return problems
