"""An independent model of the licence rules (docs/rules.md, rendered from `contracts.rules`).

Written from the behaviour documentation, apart from mockcore's state machine: it shares no code and no table with
it, so a rule the emulator gets wrong is caught rather than copied. It predicts, for each operation, the answer a
conforming server gives (an `Outcome`: status and body, or the catalogue error) and the fleet after it.

The model is plain data plus pure-ish methods: each operation mutates the model only when the operation succeeds
(a refused operation leaves a conforming server, and so the model, exactly as it was), except the *refresh* of an
online licence whose slot is gone, which a server does on any licence-dependent request to the instance.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from contracts.catalogue import CATALOGUE, CatalogueEntry

UNLICENSED = "unlicensed"
ACTIVE = "active"
BACKUP_ONLINE = "backup-online"
BACKUP_OFFLINE = "backup-offline"
STATES = (UNLICENSED, ACTIVE, BACKUP_ONLINE, BACKUP_OFFLINE)
BACKUPS = (BACKUP_ONLINE, BACKUP_OFFLINE)

DEPLOYMENT_FORMAT = re.compile(r"MSCL[0-9a-f]{32}")
KEY_FORMAT = re.compile(r"[0-9A-Za-z]{4}(-[0-9A-Za-z]{4}){6}")

# A `callbackurl` of the vendor's format (docs/responses.md, Scans): `http` or `https`, a host (a name of dot-separated
# labels of letters, digits and inner hyphens, an IPv4 address, or an IPv6 address in brackets), an optional port,
# an optional path, query or fragment of printable ASCII; at most CALLBACK_MAX characters. The port is checked by
# value (1 to 65535) apart from the pattern.
CALLBACK_FORMAT = re.compile(
    r"(?i)https?://(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)"
    r"(?::(?P<port>[0-9]{1,5}))?(?:[/?#][!-~]*)?"
)
CALLBACK_MAX = 2048
SYNC_PATH = "/file/sync"

# The documented answers: the backup endpoints answer sentences, the others `true`.
BACKUP_REGISTERED = "The backup MetaDefender Core instance is now registered as a backup one."
BACKUP_REMOVED = "This MetaDefender Core instance is no longer registered as a backup one."
NOMINATED = "This MetaDefender Core instance is now fully activated and allowed to process files."


@dataclass(frozen=True)
class Profile:
    """What one line of Core offers: the version `/version` names (its major.minor), the Core paths it does not have
    (they answer the generic 404 `E_NOT_FOUND`, as an unknown path does, and change nothing), and whether the
    licensed view names the deployment `deployment_id` too."""

    name: str
    absent: frozenset[str] = frozenset()
    deployment_id_in_view: bool = False

    def lacks(self, path: str) -> bool:
        return path.split("?", 1)[0] in self.absent


PROFILES: dict[str, Profile] = {
    "5.6": Profile("5.6"),
    "4.18": Profile(
        "4.18",
        frozenset(
            {
                "/admin/license/backup",
                "/admin/license/backup/nomination",
                "/admin/license/deactivation",
                "/readyz",
                "/file/sync",
            }
        ),
        deployment_id_in_view=True,
    ),
}
DEFAULT_PROFILE = "5.6"
BACKUP_PATH = "/admin/license/backup"
NOMINATION_PATH = "/admin/license/backup/nomination"
DEACTIVATION_PATH = "/admin/license/deactivation"
READYZ_PATH = "/readyz"


@dataclass(frozen=True)
class Outcome:
    """What a conforming server answers: a success body, or a catalogue error (status and `{"err": text}`).

    `rules` are the inventory ids (`contracts.rules`) this answer stands for, the most specific first: the one a
    report blames when the target answers otherwise. An error's catalogue entry is `error.<code>`, blamed when only
    its text differs."""

    status: int
    body: object = None
    error: str | None = None  # the catalogue code, when the answer is an error
    rules: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def rule(self) -> str:
        return self.rules[0] if self.rules else ""


@dataclass(frozen=True)
class Terms:
    """What a key licenses, as the licence view and a licence file show it."""

    product_id: str
    product_name: str
    licensed_to: str
    max_node_count: str | None  # None: not known yet (learnt from a view that showed an activation's quantity)
    licensed_engines: object


@dataclass
class KeyModel:
    key: str
    slots: int
    expires: date
    holders: list[str] = field(default_factory=list)  # deployments holding a slot, in the order they took it
    terms: Terms | None = None  # None: not known (a target without a control plane); learnt from what it shows

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
    nodes: str | None = None  # the node count it carries (the quantity asked for); None: the key's


@dataclass
class InstanceModel:
    name: str
    deployment: str
    state: str = UNLICENSED
    key: str | None = None  # the key held; on an unlicensed instance it means `reactivate: true`
    online: bool = False
    production: str | None = None  # a backup's production deployment
    expires: date | None = None  # the licence's expiry (the key's, or the file's)
    nodes: str | None = None  # the licence's node count when it came from an activation or a file; None: the key's

    @property
    def is_backup(self) -> bool:
        return self.state in BACKUPS

    def licensed(self) -> bool:
        return self.state != UNLICENSED


def cell(operation: str, state: str) -> str:
    """The inventory id of a transition-table cell (as `contracts.rules.cell`; repeated so the model stands alone)."""
    return f"transition.{operation}.{state}"


class Model:
    """A fleet as the behaviour documentation describes it: instances, the activation server's keys and slots, and
    the clock's date."""

    def __init__(
        self,
        instances: dict[str, str],
        keys: Iterable[KeyModel],
        today: date,
        catalogue: dict[str, CatalogueEntry] | None = None,
        profile: str = DEFAULT_PROFILE,
    ) -> None:
        self.profile = PROFILES[profile]
        self.instances = {name: InstanceModel(name, deployment) for name, deployment in instances.items()}
        self.keys = {k.key: k for k in keys}
        self.today = today
        self.catalogue = CATALOGUE if catalogue is None else catalogue
        self.files: list[LicenceFileModel] = []

    def copy(self) -> Model:
        """An independent copy (instances and slot holders copied; licence files and terms are immutable)."""
        other = copy.copy(self)
        other.instances = {name: copy.copy(inst) for name, inst in self.instances.items()}
        other.keys = {key: dataclasses.replace(found, holders=list(found.holders)) for key, found in self.keys.items()}
        other.files = list(self.files)
        other.catalogue = self.catalogue
        return other

    # Answers

    def error(self, code: str, *rules: str) -> Outcome:
        entry = self.catalogue[code]
        return Outcome(
            entry.status, None if entry.text is None else {"err": entry.text}, code, (*rules, f"error.{code}")
        )

    def absent(self, path: str) -> Outcome | None:
        """The generic 404 of a path the profile lacks (it changes nothing); None where the profile has it."""
        return self.error("E_NOT_FOUND", "profile.absent-endpoints") if self.profile.lacks(path) else None

    @staticmethod
    def success(body: object, *rules: str) -> Outcome:
        return Outcome(200, body, None, rules)

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
        """An online production consults the activation server on each licence-dependent request; when its slot
        is gone (freed at `/deactivation`, or moved to a nominated backup) it is unlicensed and keeps its key."""
        inst = self.instances[name]
        if self.slot_lost(name):
            inst.state, inst.online, inst.production, inst.expires = UNLICENSED, False, None, None
        return inst

    def slot_lost(self, name: str) -> bool:
        """Whether the instance's next licence-dependent request finds its online slot gone."""
        inst = self.instances[name]
        if inst.state != ACTIVE or not inst.online or inst.key is None:
            return False
        key = self.keys.get(inst.key)
        return key is None or inst.deployment not in key.holders

    def licence_info(self, name: str) -> Outcome:
        inst = self.refresh(name)
        if not inst.licensed():
            body: dict[str, object] = {"deployment": inst.deployment, "deployment_id": inst.deployment}
            if inst.key is not None:
                body["reactivate"] = True
            return self.success(body, "view.unlicensed", "view.reactivate")
        assert inst.expires is not None
        expected: dict[str, object] = {
            "deployment": inst.deployment,
            "days_left": self.days_left(inst),
            "expiration": inst.expires.strftime("%m/%d/%Y"),
            "online_activated": inst.online,
        }
        if self.profile.deployment_id_in_view:
            expected["deployment_id"] = inst.deployment
        terms = self.keys[inst.key].terms if inst.key in self.keys else None
        if terms is not None:
            expected.update(
                product_id=terms.product_id,
                product_name=terms.product_name,
                licensed_to=terms.licensed_to,
                licensed_engines=terms.licensed_engines,
            )
            if (inst.nodes or terms.max_node_count) is not None:
                expected["max_node_count"] = inst.nodes or terms.max_node_count
        elif inst.nodes is not None:
            expected["max_node_count"] = inst.nodes
        return self.success(expected, "view.backup" if inst.is_backup else "view.deployment")

    def backup_flag(self, name: str) -> Outcome:
        lacking = self.absent(BACKUP_PATH)
        if lacking is not None:
            return lacking
        return self.success({"is_backup": self.refresh(name).is_backup}, "view.backup-flag")

    def readiness(self, name: str) -> Outcome:
        lacking = self.absent(READYZ_PATH)
        if lacking is not None:
            return lacking
        inst = self.refresh(name)
        if not inst.licensed():
            return Outcome(503, {"status": "invalid"}, None, ("service.readyz",))
        if self.expired(inst):
            rules = ("expiry.backup",) if inst.is_backup else ("expiry.first-expired-day",)
            return Outcome(503, {"status": "expired"}, None, (*rules, "service.readyz"))
        rules = ("expiry.last-valid-day",) if self.days_left(inst) == 0 else ()
        return Outcome(200, {"status": "ok"}, None, (*rules, "service.readyz"))

    @staticmethod
    def valid_callback(url: str) -> bool:
        """A `callbackurl` `POST /file` takes (`CALLBACK_FORMAT`, a port from 1 to 65535, at most 2048 characters)."""
        found = CALLBACK_FORMAT.fullmatch(url)
        if found is None or len(url) > CALLBACK_MAX:
            return False
        port = found.group("port")
        return port is None or (not port.startswith("0") and 1 <= int(port) <= 65535)

    def scan(self, name: str, *, sync: bool = False, framed: bool = True, callback: str | None = None) -> Outcome:
        """`POST /file` (or `/file/sync`) of a non-empty file, in the order of checks: the path the profile may lack,
        the body's length (`framed`: sent with a Content-Length), the `callbackurl`, then the licence's state."""
        if sync:
            lacking = self.absent(SYNC_PATH)
            if lacking is not None:
                return lacking
        if not framed:
            return self.error("E_LENGTH_REQUIRED", "scan.length-required")
        if callback is not None and sync:
            return self.error("E_CALLBACK_UNSUPPORTED", "scan.sync-callback")
        if callback is not None and not self.valid_callback(callback):
            return self.error("E_CALLBACK_INVALID", "scan.callback-invalid")
        inst = self.refresh(name)
        refused = "scan.sync-refused-by-state" if sync else "scan.refused-by-state"
        if inst.is_backup:
            return self.error("E_SCAN_BACKUP", refused)
        if not inst.licensed():
            return self.error("E_SCAN_UNLICENSED", refused)
        if self.expired(inst):
            return self.error("E_EXPIRED_SCAN", "expiry.first-expired-day", *((refused,) if sync else ()))
        rules = ("expiry.last-valid-day",) if self.days_left(inst) == 0 else ()
        if callback is not None:
            rules = (*rules, "scan.callback")
        if sync:
            return self.success("the finished result", *rules, "scan.sync")
        return self.success({"data_id": "<32 hex>"}, *rules, "scan.active")

    def node_count(self, name: str) -> Outcome:
        """`GET /stat/nodes`'s `max_node_count`, an integer: the licence's node count (the activation's quantity or
        its file's; an online backup's key's own), 0 unlicensed. The body is the count; None: not known (a key whose
        terms the suite has not seen)."""
        inst = self.refresh(name)
        count: int | None = 0
        if inst.licensed():
            terms = self.keys[inst.key].terms if inst.key in self.keys else None
            shown = inst.nodes or (terms.max_node_count if terms is not None else None)
            count = int(shown) if shown is not None and shown.isdigit() else None
        return self.success(count, "nodes.max-node-count")

    def engines_licensed(self, name: str) -> bool:
        """Engines are listed, and can be switched, once an instance is active or a backup."""
        return self.refresh(name).licensed()

    # The activation server

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
        """`GET /activation`: HTTP 200 either way; a file, or a YAML `error:` with a reason phrase. The outcome's
        body is the reason phrase; `error` names the refusal."""
        if not KEY_FORMAT.fullmatch(key):
            return Outcome(200, "Invalid parameter", "invalid-key", ("activation.invalid-key",))
        if not DEPLOYMENT_FORMAT.fullmatch(deployment):
            return Outcome(200, "Invalid parameter", "invalid-deployment", ("activation.invalid-deployment",))
        if not 1 <= quantity <= 1000:
            return Outcome(200, "Invalid parameter", "invalid-quantity", ("activation.invalid-quantity",))
        found = self.keys.get(key)
        held = found is not None and deployment in found.holders
        refused = self._obtain(key, deployment)
        if refused == "E_NO_SLOT":
            return Outcome(200, "Activation failed", "no-slot", ("activation.no-slot",))
        if refused is not None:
            return Outcome(200, "Activation failed", "refused", ("activation.unknown-key",))
        self.files.append(LicenceFileModel(key, deployment, self.keys[key].expires, nodes=str(quantity)))
        rules = ("activation.reissue",) if held else ()
        return Outcome(200, "OK", None, (*rules, "activation.issues-file", "file.values"))

    def free_slot(self, key: str, deployment: str) -> Outcome:
        """`GET /deactivation`: 200 frees the slot; 404 when the deployment holds none on the key."""
        found = self.keys.get(key)
        if found is None or deployment not in found.holders:
            return Outcome(404, None, "not-activated", ("deactivation.not-activated",))
        found.holders.remove(deployment)
        return Outcome(200, None, None, ("deactivation.frees-slot",))

    # Licence operations, in the order of checks: well-formedness, the state rule, then key, slot and file.

    def _free_if_online(self, inst: InstanceModel) -> None:
        if inst.online and inst.key is not None:
            found = self.keys.get(inst.key)
            if found is not None and inst.deployment in found.holders:
                found.holders.remove(inst.deployment)

    @staticmethod
    def valid_quantity(quantity: object) -> bool:
        """An integer, or a string of plain ASCII digits (at most 16), from 1 to 1000."""
        if isinstance(quantity, str) and quantity.isascii() and quantity.isdigit() and len(quantity) <= 16:
            quantity = int(quantity)
        return isinstance(quantity, int) and not isinstance(quantity, bool) and 1 <= quantity <= 1000

    def activate(self, name: str, key: str, quantity: object = 1) -> Outcome:
        if not self.valid_quantity(quantity):
            return self.error("E_BAD_REQUEST", "activate.quantity")
        inst = self.refresh(name)
        here = cell("activate", inst.state)
        if inst.is_backup:
            return self.error("E_ACTIVATE_BACKUP", here)
        moving = inst.state == ACTIVE and inst.key != key
        found = self.keys.get(key)
        if found is not None and KEY_FORMAT.fullmatch(key) and self.today > found.expires:
            return self.error("E_ACTIVATION_FAILED", "activate.expired-key", here)
        refused = self._obtain(key, inst.deployment)
        if refused == "E_NO_SLOT":
            return self.error(refused, "activate.other-key-no-slot" if moving else "activate.no-slot", here)
        if refused is not None:
            return self.error(refused, "activate.unknown-key", here)
        rules: tuple[str, ...] = ("activate.sets-online",)
        if moving:
            # Moving to another key frees the old slot of an online licence (an offline one stays held).
            self._free_if_online(inst)
            rules = ("activate.other-key-moves", *rules)
        elif inst.state == ACTIVE:
            rules = ("activate.same-key-no-new-slot", *rules)
        inst.state, inst.key, inst.online, inst.production = ACTIVE, key, True, None
        inst.expires = self.keys[key].expires
        inst.nodes = str(int(quantity))  # type: ignore[call-overload]
        return self.success({"success": True}, *rules, here, "activate.quantity")

    def _usable_file(self, content: bytes) -> tuple[LicenceFileModel | None, str]:
        """A file this fleet's activation server issued, unaltered and unexpired; else the rule it breaks."""
        for issued in self.files:
            if issued.content == content:
                return (None, "file.expired") if self.today > issued.expires else (issued, "")
        return None, "file.signature" if b"signature" in content else "file.not-a-licence"

    def upload(self, name: str, content: bytes) -> Outcome:
        inst = self.refresh(name)
        here = cell("upload", inst.state)
        if inst.is_backup:
            return self.error("E_ACTIVATE_BACKUP", here)
        issued, broken = self._usable_file(content)
        if issued is None:
            return self.error("E_INVALID_LICENSE", broken, here)
        if issued.deployment != inst.deployment:
            return self.error("E_INVALID_LICENSE", "upload.own-deployment", here)
        rules: tuple[str, ...] = ("upload.sets-offline",)
        if inst.key is not None and inst.key != issued.key:
            rules = ("upload.takes-files-key", *rules)
        if inst.state == ACTIVE and inst.key != issued.key:
            self._free_if_online(inst)
        if issued.deployment not in self.keys[issued.key].holders:
            rules = ("file.reupload", *rules)
        inst.state, inst.key, inst.online, inst.production = ACTIVE, issued.key, False, None
        inst.expires = issued.expires
        inst.nodes = issued.nodes
        return self.success({"success": True}, *rules, here)

    def _registration_state_rule(self, inst: InstanceModel, operation: str) -> Outcome | None:
        here = cell(operation, inst.state)
        if inst.state == ACTIVE:
            return self.error("E_REGISTER_ACTIVE", here)
        if inst.is_backup:
            return self.error("E_ALREADY_BACKUP", here)
        return None

    def register_online(self, name: str, key: str, production: str) -> Outcome:
        lacking = self.absent(BACKUP_PATH)
        if lacking is not None:
            return lacking
        inst = self.refresh(name)
        refused = self._registration_state_rule(inst, "register-online")
        if refused is not None:
            return refused
        here = cell("register-online", inst.state)
        found = self.keys.get(key)
        if found is None:
            return self.error("E_BACKUP_KEY", "register-online.unknown-key", here)
        if production == inst.deployment:
            return self.error("E_BACKUP_PRODUCTION", "register-online.not-itself", here)
        if production not in found.holders:
            return self.error("E_BACKUP_PRODUCTION", "register-online.production-on-key", here)
        inst.state, inst.key, inst.online, inst.production = BACKUP_ONLINE, key, True, production
        inst.expires = found.expires
        inst.nodes = None  # an online backup carries the key's own terms
        return self.success({"success": BACKUP_REGISTERED}, "register.success-sentence", here)

    def register_offline(self, name: str, content: bytes) -> Outcome:
        lacking = self.absent(BACKUP_PATH)
        if lacking is not None:
            return lacking
        inst = self.refresh(name)
        refused = self._registration_state_rule(inst, "register-offline")
        if refused is not None:
            return refused
        here = cell("register-offline", inst.state)
        issued, broken = self._usable_file(content)
        if issued is None:
            return self.error("E_INVALID_LICENSE", broken, here)
        if issued.deployment == inst.deployment:
            return self.error("E_INVALID_LICENSE", "register-offline.another-deployment", here)
        inst.state, inst.key, inst.online, inst.production = BACKUP_OFFLINE, issued.key, False, issued.deployment
        inst.expires = issued.expires
        inst.nodes = issued.nodes
        return self.success({"success": BACKUP_REGISTERED}, "register.success-sentence", here)

    def unregister(self, name: str) -> Outcome:
        lacking = self.absent(BACKUP_PATH)
        if lacking is not None:
            return lacking
        inst = self.refresh(name)
        here = cell("unregister", inst.state)
        if not inst.is_backup:
            return self.error("E_NOT_BACKUP_REMOVE", here)
        inst.state, inst.key, inst.online, inst.production, inst.expires = UNLICENSED, None, False, None, None
        return self.success({"success": BACKUP_REMOVED}, "unregister.success-sentence", here)

    def nominate(self, name: str) -> Outcome:
        lacking = self.absent(NOMINATION_PATH)
        if lacking is not None:
            return lacking
        inst = self.refresh(name)
        here = cell("nominate", inst.state)
        if inst.state == BACKUP_OFFLINE:
            return self.error("E_NOMINATE_OFFLINE", here)
        if inst.state != BACKUP_ONLINE:
            return self.error("E_NOT_BACKUP", here)
        assert inst.key is not None and inst.production is not None
        found = self.keys.get(inst.key)
        if found is None:
            return self.error("E_NO_SLOT", "nominate.no-slot", here)
        if inst.production in found.holders:
            # The production's slot moves to the backup (a stale slot of the backup's own stays one slot).
            found.holders.remove(inst.production)
            if inst.deployment not in found.holders:
                found.holders.append(inst.deployment)
            rule = "nominate.moves-slot"
        elif inst.deployment in found.holders:
            rule = "nominate.takes-free-slot"
        else:
            if found.free <= 0:
                return self.error("E_NO_SLOT", "nominate.no-slot", here)
            found.holders.append(inst.deployment)
            rule = "nominate.takes-free-slot"
        inst.state, inst.online, inst.production = ACTIVE, True, None
        return self.success({"success": NOMINATED}, rule, "nominate.success-sentence", here)

    def deactivate(self, name: str) -> Outcome:
        lacking = self.absent(DEACTIVATION_PATH)
        if lacking is not None:
            return lacking
        inst = self.refresh(name)
        here = cell("deactivate", inst.state)
        if inst.is_backup:
            return self.error("E_DEACTIVATE_BACKUP", here)
        if inst.state != ACTIVE:
            return self.error("E_NOT_ACTIVE", here)
        if inst.online:
            self._free_if_online(inst)  # freed at once; the key is kept (`reactivate`)
            rule = "deactivate.online-frees-slot"
        else:
            inst.key = None  # offline: the slot stays held until /deactivation, nothing is kept locally
            rule = "deactivate.offline-keeps-slot"
        inst.state, inst.online, inst.production, inst.expires = UNLICENSED, False, None, None
        return self.success({"success": True}, rule, here)

    # Invariants

    def invariant_problems(self) -> list[str]:
        """The model's own consistency: a broken model is a bug of the suite, never of the target."""
        problems = []
        for key in self.keys.values():
            if len(key.holders) > key.slots:
                problems.append(f"model: key {key.key} has {len(key.holders)} holders for {key.slots} slots")
        return problems
