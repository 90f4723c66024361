"""The rule inventory: every rule the server suite claims to check, each with a stable id, one line saying what a
conforming server does, and the section of the behaviour documentation (`docs/rules.md`, rendered from this list)
it belongs to.

One list, used three ways: `mockcore-contracts rules` prints it with the checks that cover each rule and how often
the last run exercised it; every `Violation` names one of these ids (an unknown id is a bug of the suite); and a
test fails when a rule has no check or a check names no rule. Ids never change meaning: a rule that goes away is
removed, a new meaning gets a new id.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.catalogue import CATALOGUE


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Rule:
    id: str
    section: str
    statement: str


SECTIONS: tuple[Section, ...] = (
    Section(
        "states",
        "1. Instances and their licence states",
        "A fleet is one activation server and one or more Core instances sharing one clock. Each instance is "
        "`unlicensed`, `active` (production), `backup-online` or `backup-offline`; expiry is a condition on top of "
        "a state.",
    ),
    Section(
        "transitions",
        "2. The transition table",
        "One rule per cell: an operation sent to an instance in a state. A refused operation answers the catalogue "
        "error and changes nothing, on the instance or at the activation server.",
    ),
    Section(
        "operations",
        "3. What each licence operation decides",
        "The key, slot and file rules behind the cells: which key, which deployment, which slot.",
    ),
    Section(
        "slots",
        "4. Slots",
        "Every deployment activated on a key uses one slot; backups use none. The activation server's slot holders "
        "are checked after every operation.",
    ),
    Section(
        "licence-view",
        "5. The licence view (`GET /admin/license`)",
        "Every field by name, type and value, licensed and unlicensed, and the backup flag.",
    ),
    Section(
        "expiry",
        "6. Expiry",
        "A licence is valid up to and including its expiry date; the day after, it is expired.",
    ),
    Section(
        "activation-server",
        "7. The activation server",
        "`GET /activation` issues licence files and takes slots; `GET /deactivation` frees them.",
    ),
    Section(
        "licence-file",
        "8. Licence files",
        "What a file carries, and when a Core instance accepts one (upload, offline backup registration).",
    ),
    Section(
        "auth",
        "9. Authentication and accounts",
        "`/login`, `/logout`, the `apikey` header (a configured API key or a session), `/user`, password and API-key "
        "changes; users and roles, and the rights each request needs.",
    ),
    Section(
        "scans",
        "10. Scans and engines",
        "Scans succeed only on an unexpired production, by `POST /file` or `POST /file/sync`; engines appear once an "
        "instance is licensed; `GET /stat/nodes` tells the licence's node count.",
    ),
    Section(
        "service",
        "11. Service endpoints and request handling",
        "`/version`, `/readyz`, the order in which a request is judged, unknown paths and methods.",
    ),
    Section(
        "errors",
        "12. The error catalogue",
        "Each refusal's status and `{\"err\": text}`, as the catalogue (or the target's fidelity overrides) says.",
    ),
    Section(
        "profiles",
        "13. Version profiles",
        "The line of Core a target is (`--profile 4.18` or `5.6`, by default the control plane's, else 5.6): what "
        "its `/version` says and which endpoints it has. Under 4.18 there are no backups, nominations, "
        "deactivation, `/readyz` or `/file/sync`; everything else is as under 5.6.",
    ),
)

OPERATIONS = {
    "activate": "online activation (`POST /admin/license/activation`)",
    "upload": "a licence file upload (`POST /admin/license`)",
    "register-online": "an online backup registration (headers `activation-key` and `active-deployment-id`)",
    "register-offline": "an offline backup registration (a licence file as body)",
    "unregister": "unregistering a backup (`DELETE /admin/license/backup`)",
    "nominate": "a nomination (`POST /admin/license/backup/nomination`)",
    "deactivate": "a deactivation (`POST /admin/license/deactivation`)",
}
STATES = ("unlicensed", "active", "backup-online", "backup-offline")
CELLS: dict[tuple[str, str], str] = {
    ("activate", "unlicensed"): 'makes the instance active (online) on the key, taking a slot: 200 `{"success": true}`',
    ("activate", "active"): "re-activates: the same key takes no new slot; another key with a free slot moves to it",
    ("activate", "backup-online"): "is refused with E_ACTIVATE_BACKUP",
    ("activate", "backup-offline"): "is refused with E_ACTIVATE_BACKUP",
    ("upload", "unlicensed"): "with a valid file issued for this deployment makes it active (offline)",
    ("upload", "active"): "with a valid file issued for this deployment replaces the licence",
    ("upload", "backup-online"): "is refused with E_ACTIVATE_BACKUP",
    ("upload", "backup-offline"): "is refused with E_ACTIVATE_BACKUP",
    ("register-online", "unlicensed"): "with a known key and a production active on it makes it backup-online",
    ("register-online", "active"): "is refused with E_REGISTER_ACTIVE",
    ("register-online", "backup-online"): "is refused with E_ALREADY_BACKUP",
    ("register-online", "backup-offline"): "is refused with E_ALREADY_BACKUP",
    ("register-offline", "unlicensed"): "with a valid unexpired file of another deployment makes it backup-offline",
    ("register-offline", "active"): "is refused with E_REGISTER_ACTIVE",
    ("register-offline", "backup-online"): "is refused with E_ALREADY_BACKUP",
    ("register-offline", "backup-offline"): "is refused with E_ALREADY_BACKUP",
    ("unregister", "unlicensed"): "is refused with E_NOT_BACKUP_REMOVE",
    ("unregister", "active"): "is refused with E_NOT_BACKUP_REMOVE",
    ("unregister", "backup-online"): "makes it unlicensed, without `reactivate`, with the documented sentence",
    ("unregister", "backup-offline"): "makes it unlicensed, without `reactivate`, with the documented sentence",
    ("nominate", "unlicensed"): "is refused with E_NOT_BACKUP",
    ("nominate", "active"): "is refused with E_NOT_BACKUP",
    ("nominate", "backup-online"): "makes it active (online) on its key, with the documented sentence",
    ("nominate", "backup-offline"): "is refused with E_NOMINATE_OFFLINE",
    ("deactivate", "unlicensed"): "is refused with E_NOT_ACTIVE",
    ("deactivate", "active"): 'makes it unlicensed: 200 `{"success": true}`',
    ("deactivate", "backup-online"): "is refused with E_DEACTIVATE_BACKUP",
    ("deactivate", "backup-offline"): "is refused with E_DEACTIVATE_BACKUP",
}


def cell(operation: str, state: str) -> str:
    """The id of the transition-table cell for an operation sent to an instance in a state."""
    return f"transition.{operation}.{state}"


def error_rule(code: str) -> str:
    """The id of an error-catalogue entry's rule."""
    return f"error.{code}"


_RULES: list[tuple[str, str, str]] = [
    # 1. States
    ("state.starts-unlicensed", "states", "After a reset every instance is unlicensed and no slot is held."),
    ("state.deployment-id", "states", "An instance's deployment id is `MSCL` and 32 lowercase hex, and never changes."),
    # 3. Operations
    ("activate.same-key-no-new-slot", "operations", "Re-activating on the key the instance holds takes no new slot."),
    (
        "activate.other-key-moves",
        "operations",
        "Re-activating on another key with a free slot moves the licence to it; an online licence frees its old "
        "slot, an offline one keeps it held.",
    ),
    (
        "activate.other-key-no-slot",
        "operations",
        "Re-activating on another key with no free slot is E_NO_SLOT and keeps the old licence.",
    ),
    ("activate.no-slot", "operations", "Activation on a key whose slots are all held is E_NO_SLOT."),
    (
        "activate.unknown-key",
        "operations",
        "Activation with a key the activation server does not know (or a malformed one) is E_ACTIVATION_FAILED.",
    ),
    ("activate.expired-key", "operations", "Activation on a key past its expiry is E_ACTIVATION_FAILED."),
    (
        "activate.quantity",
        "operations",
        "`quantity` is an integer or a string of digits from 1 to 1000; anything else is E_BAD_REQUEST, and each "
        "deployment takes one slot whatever the quantity.",
    ),
    ("activate.sets-online", "operations", "An online activation shows `online_activated: true`."),
    (
        "activate.renews",
        "operations",
        "Re-activating on the key the instance already holds takes the key's current terms: when the vendor has "
        "renewed the key (a later expiry), the licence shows the key's new expiry (`expiration`, `days_left`), and no "
        "new slot is taken. Until then the licence keeps the expiry it was activated with.",
    ),
    (
        "upload.own-deployment",
        "operations",
        "An uploaded file issued for another deployment is E_INVALID_LICENSE.",
    ),
    ("upload.sets-offline", "operations", "An uploaded file shows `online_activated: false` and takes no slot."),
    (
        "upload.takes-files-key",
        "operations",
        "An uploaded file puts the instance on the file's key and expiry; moving off an online key frees its slot.",
    ),
    ("register-online.unknown-key", "operations", "An online registration naming an unknown key is E_BACKUP_KEY."),
    (
        "register-online.production-on-key",
        "operations",
        "An online registration whose `active-deployment-id` holds no slot on the key is E_BACKUP_PRODUCTION.",
    ),
    (
        "register-online.not-itself",
        "operations",
        "An online registration naming the instance's own deployment is E_BACKUP_PRODUCTION.",
    ),
    (
        "register.request-shape",
        "operations",
        "A registration carries both headers or a body: both, neither, or one header alone is E_BACKUP_REQUEST.",
    ),
    (
        "register-offline.another-deployment",
        "operations",
        "An offline registration with the instance's own file is E_INVALID_LICENSE.",
    ),
    ("register.success-sentence", "operations", "A registration answers the documented sentence as `success`."),
    ("unregister.success-sentence", "operations", "Unregistering answers the documented sentence as `success`."),
    (
        "nominate.moves-slot",
        "operations",
        "Nomination moves the production's slot to the backup; the old production becomes unlicensed with "
        "`reactivate: true`.",
    ),
    (
        "nominate.takes-free-slot",
        "operations",
        "When the production holds no slot on the key, nomination takes a free one.",
    ),
    ("nominate.no-slot", "operations", "When there is neither, nomination is E_NO_SLOT and the backup stays one."),
    ("nominate.success-sentence", "operations", "A nomination answers the documented sentence as `success`."),
    (
        "nominate.other-backups-stay",
        "operations",
        "A second backup of the same production stays a backup when the first is nominated.",
    ),
    (
        "deactivate.online-frees-slot",
        "operations",
        "Deactivating an online licence frees its slot at once and keeps the key (`reactivate: true`).",
    ),
    (
        "deactivate.offline-keeps-slot",
        "operations",
        "Deactivating an offline licence keeps its slot held until `/deactivation`; no `reactivate`.",
    ),
    (
        "online.slot-lost",
        "operations",
        "An online production whose slot is gone (freed at `/deactivation` or moved by a nomination) is unlicensed "
        "with `reactivate: true` on its next request.",
    ),
    (
        "offline.keeps-licence",
        "operations",
        "An offline production keeps its local licence when its slot is freed or moved.",
    ),
    (
        "online.activation-server-down",
        "operations",
        "While the activation server cannot be reached, online activation, online registration, nomination and "
        "online deactivation answer E_ACTIVATION_UNREACHABLE and change nothing; a licence file upload still works.",
    ),
    ("refused.changes-nothing", "transitions", "A refused operation leaves every instance and every slot as it was."),
    # 4. Slots
    ("slots.accounting", "slots", "The slots held on each key are exactly those the rules give, after every step."),
    ("slots.within-key", "slots", "A key never has more deployments holding a slot than it has slots."),
    ("slots.backup-holds-none", "slots", "A backup never takes a slot by registering."),
    # 5. Licence view
    (
        "view.days_left",
        "licence-view",
        "`days_left` is an integer: the days from today to the expiry date, at least 0.",
    ),
    ("view.deployment", "licence-view", "`deployment` is the instance's own deployment id."),
    (
        "view.deployment_id",
        "licence-view",
        "Under the 4.18 profile the licensed view also names the deployment `deployment_id` (the same value as "
        "`deployment`); under 5.6 only the unlicensed view does.",
    ),
    ("view.expiration", "licence-view", "`expiration` is the licence's expiry date as `MM/DD/YYYY`."),
    ("view.licensed_engines", "licence-view", '`licensed_engines` is the key\'s value, the string `"*"`.'),
    ("view.licensed_to", "licence-view", "`licensed_to` is the key's licensee, a string."),
    (
        "view.max_node_count",
        "licence-view",
        "`max_node_count` is, as a string, the quantity the licence was activated (or its file issued) with; an "
        "online backup shows its key's own node count.",
    ),
    ("view.online_activated", "licence-view", "`online_activated` is a boolean: true online, false from a file."),
    ("view.product_id", "licence-view", "`product_id` is the key's product id, a string."),
    ("view.product_name", "licence-view", "`product_name` is the key's product name, a string."),
    (
        "view.unlicensed",
        "licence-view",
        "An unlicensed instance shows exactly `deployment` and `deployment_id` (both its id), plus `reactivate`.",
    ),
    (
        "view.reactivate",
        "licence-view",
        "`reactivate: true` is shown exactly when an unlicensed instance still holds a key.",
    ),
    (
        "view.backup",
        "licence-view",
        "A backup shows the licensed view of its key with its own deployment, `online_activated` as registered.",
    ),
    ("view.backup-flag", "licence-view", '`GET /admin/license/backup` answers `{"is_backup": bool}`, true on backups.'),
    # 6. Expiry
    (
        "expiry.last-valid-day",
        "expiry",
        "On the expiry date: `days_left` 0, `/readyz` 200 ok, scans succeed.",
    ),
    (
        "expiry.first-expired-day",
        "expiry",
        "The day after: `days_left` 0, `/readyz` 503 `expired`, scans E_EXPIRED_SCAN.",
    ),
    ("expiry.backup", "expiry", "An expired backup's `/readyz` is 503 `expired`."),
    # 7. Activation server
    (
        "activation.issues-file",
        "activation-server",
        "`GET /activation` answers 200 with the licence file and takes a slot for the deployment.",
    ),
    (
        "activation.reissue",
        "activation-server",
        "Asking again for a deployment that holds a slot returns a file again without a new slot.",
    ),
    (
        "activation.invalid-key",
        "activation-server",
        "A malformed key: HTTP 200 `Invalid parameter`, YAML `error:` with the documented Activation Key sentence.",
    ),
    (
        "activation.invalid-deployment",
        "activation-server",
        "A malformed deployment id: HTTP 200 `Invalid parameter`, the documented Deployment ID sentence.",
    ),
    (
        "activation.invalid-quantity",
        "activation-server",
        "A quantity outside 1..1000: HTTP 200 `Invalid parameter`, the documented quantity sentence.",
    ),
    (
        "activation.unknown-key",
        "activation-server",
        "An unknown or expired key: HTTP 200 `Activation failed`, an `error:` text, no slot taken.",
    ),
    (
        "activation.no-slot",
        "activation-server",
        "No free slot: HTTP 200 `Activation failed`, an `error:` text, no slot taken.",
    ),
    (
        "deactivation.frees-slot",
        "activation-server",
        "`GET /deactivation` of a deployment holding a slot answers 200 with a JSON body and frees the slot.",
    ),
    (
        "deactivation.not-activated",
        "activation-server",
        "`GET /deactivation` of a deployment holding no slot on the key answers 404 and changes nothing.",
    ),
    # 8. Licence files
    (
        "file.fields",
        "licence-file",
        "A licence file is a YAML mapping with product_id, product_name, activation_key, deployment, expiration, "
        "licensed_engines, licensed_to, max_node_count, online, issued and signature.",
    ),
    (
        "file.values",
        "licence-file",
        "A file carries its key, the deployment asked for, the key's expiry and terms, `online: false`, and the "
        "time it was issued (`issued`, ISO 8601 to the second).",
    ),
    ("file.signature", "licence-file", "An edited file is E_INVALID_LICENSE, for upload and for registration."),
    ("file.expired", "licence-file", "A file past its expiry is E_INVALID_LICENSE, for upload and for registration."),
    (
        "file.not-a-licence",
        "licence-file",
        "A body that is not a licence file (or a licence body over 1 MiB) is E_INVALID_LICENSE.",
    ),
    (
        "file.reupload",
        "licence-file",
        "A file stays valid until it expires: uploading it again after its slot was freed is accepted.",
    ),
    # 9. Authentication and accounts
    (
        "auth.missing-apikey",
        "auth",
        "A protected endpoint without an `apikey` header is 400 `Access denied`, and nothing changes.",
    ),
    ("auth.unknown-apikey", "auth", "An unknown `apikey` is 403 `Access denied`, and nothing changes."),
    ("auth.configured-apikey", "auth", "The configured API key works as `apikey`."),
    (
        "auth.optional-apikey",
        "auth",
        "`/version`, `/stat/engines`, `/file` and `/file/{data_id}` answer without an apikey; a present but unknown "
        "one is 403.",
    ),
    (
        "auth.login",
        "auth",
        "`POST /login` with right credentials answers 200 with `oms-csrf-token` and `session_id` strings, and the "
        "session works as `apikey`.",
    ),
    ("auth.login-refused", "auth", "A wrong password or unknown user is 403 `Failed to login`."),
    (
        "auth.logout",
        "auth",
        '`POST /logout` with a session answers 200 `{"response": "Logout success"}`; the session is then 403.',
    ),
    ("auth.logout-apikey", "auth", "`POST /logout` with the configured API key is 400 `Logout error`."),
    (
        "auth.sessions-bounded",
        "auth",
        "An instance keeps at most 1,000 sessions: the 1,001st login ends the oldest session, and only that one.",
    ),
    ("auth.user", "auth", "`GET /user` answers the calling user with `id`, `name` and `roles`; the admin is id 2."),
    (
        "auth.change-password",
        "auth",
        '`POST /user/changepassword` with the right old password answers `{"success": true}`; the new password '
        "logs in and the old one no longer does.",
    ),
    (
        "auth.change-password-refused",
        "auth",
        "A wrong old password is 400 `Invalid password.`, an empty new one E_BAD_REQUEST; nothing changes.",
    ),
    (
        "auth.set-apikey",
        "auth",
        "`PUT /admin/user/2` with a well-formed `api_key` answers 200 and that key then works as `apikey`.",
    ),
    (
        "auth.set-apikey-format",
        "auth",
        "An `api_key` not of the documented format (36 of 0-9a-f, at least 10 letters and 10 digits, no more than 3 "
        "letters or 3 digits in a row) is 400 `Invalid API key format.`; nothing changes.",
    ),
    (
        "auth.create-role",
        "auth",
        "`POST /admin/role` by a caller with `users: write` answers 200 with the role: an integer `id`, `name` and "
        "`display_name` as sent, `rights` (area -> `read` and/or `write`) as sent once each area's list is sorted "
        "and de-duplicated (the suite sends them so), `editable: true`.",
    ),
    (
        "auth.create-user",
        "auth",
        "`POST /admin/user` by a caller with `users: write` answers 200 with the user: an integer `id`, `name` and "
        "`roles` as sent; its `apikey` (the documented form) then works as `apikey`, and it logs in with its password.",
    ),
    (
        "auth.role-rights",
        "auth",
        "A request needs its area's right in one of the caller's roles: licence reads `license: read`, every licence "
        "change `license: write`, engine enable/disable `engines: write`, creating users and roles and setting API "
        "keys `users: write`; `read` does not grant `write`. Without it: 405 E_NO_RIGHTS; with it, the request is "
        "served as for the administrator.",
    ),
    (
        "auth.scan-rights",
        "auth",
        "A scan request sent with an apikey needs its right: submitting (`POST /file`, `POST /file/sync`) "
        "`scan: write`, reading a result (`GET /file/{data_id}`) `scan: read`; neither grants the other. Without it: "
        "405 E_NO_RIGHTS and no scan is kept; with it, as for the administrator.",
    ),
    (
        "auth.nodes-rights",
        "auth",
        "`GET /stat/nodes` needs `agents: read`: without it 405 E_NO_RIGHTS; a role granting only it (and `scan: "
        "write`) lists the nodes.",
    ),
    (
        "auth.no-rights-changes-nothing",
        "auth",
        "A request refused E_NO_RIGHTS changes nothing: the licence, the slots, the engines, the users and roles.",
    ),
    (
        "auth.own-account-needs-no-right",
        "auth",
        "`GET /user`, `POST /user/changepassword` and `POST /logout` need only a valid key: a user whose roles grant "
        "no `users` right reads itself, changes its own password and logs out.",
    ),
    (
        "auth.name-taken",
        "auth",
        "A role or a user named like an existing one is 400 E_NAME_TAKEN, and nothing is created.",
    ),
    (
        "auth.unknown-role",
        "auth",
        "A user given a role id the instance does not have is 400 E_UNKNOWN_ROLE, and no user is created.",
    ),
    # 10. Scans and engines
    ("scan.active", "scans", '`POST /file` on an unexpired production answers 200 `{"data_id": 32 hex}`.'),
    ("scan.refused-by-state", "scans", "A backup refuses scans (E_SCAN_BACKUP), an unlicensed instance too."),
    ("scan.empty", "scans", "An empty `POST /file` body is 422 `File is empty.`"),
    (
        "scan.sync",
        "scans",
        "`POST /file/sync` on an unexpired production answers 200 with the finished result, by the same fields and "
        "values as `GET /file/{data_id}` (`data_id` 32 hex, `progress_percentage` 100, EICAR `Blocked` and infected, "
        "anything else `Allowed` and clean); the scan is kept: `GET /file/{data_id}` answers it the same.",
    ),
    (
        "scan.sync-refused-by-state",
        "scans",
        "`POST /file/sync` is refused as `POST /file` is: E_SCAN_BACKUP on a backup, E_SCAN_UNLICENSED unlicensed, "
        "E_EXPIRED_SCAN past expiry (a scan on the last valid day succeeds); no scan is kept.",
    ),
    (
        "scan.length-required",
        "scans",
        "A scan body sent without its length (`Transfer-Encoding: chunked`, no `Content-Length`), to `POST /file` or "
        "`POST /file/sync`, is 411 E_LENGTH_REQUIRED whatever the licence and the `callbackurl` (the length is "
        "judged first), and no scan is kept.",
    ),
    (
        "scan.callback",
        "scans",
        "`POST /file` takes a `callbackurl` of the vendor's format: `http` or `https` (any case), a host (a name, an "
        "IPv4 address, or an IPv6 address in brackets), an optional port from 1 to 65535, an optional path, query "
        "or fragment of printable ASCII, at most 2048 characters in all; the scan is then as without it.",
    ),
    (
        "scan.callback-invalid",
        "scans",
        "Any other `callbackurl` on `POST /file` (port 0 or 65536, another scheme or none, no host, a space, an "
        "IPv6 address without brackets, 2049 characters) is 400 E_CALLBACK_INVALID, before the licence is looked "
        "at, and no scan is kept.",
    ),
    (
        "scan.sync-callback",
        "scans",
        "A `callbackurl` on `POST /file/sync`, well-formed or not, is 403 E_CALLBACK_UNSUPPORTED, before the licence "
        "is looked at, and no scan is kept.",
    ),
    ("scan.size", "scans", "A file of up to 64 MiB is accepted for a scan; a larger one is E_TOO_LARGE."),
    (
        "scan.result",
        "scans",
        "`GET /file/{data_id}` answers the finished result with `data_id`, `file_info`, `process_info` "
        "(`progress_percentage` 100, `result` `Blocked` or `Allowed`), `scan_results` (`progress_percentage` 100, "
        "`scan_all_result_i`, `scan_all_result_a`, `scan_details`).",
    ),
    (
        "scan.eicar",
        "scans",
        "The EICAR test file is infected: `scan_all_result_i` 1, `scan_all_result_a` `Infected`; in `scan_details` "
        "every active AV engine reports 1 and the threat, any other engine 0.",
    ),
    (
        "scan.clean",
        "scans",
        "Any other file is clean: `scan_all_result_i` 0, `No Threat Detected`, every engine 0 and no threat.",
    ),
    (
        "scan.progress",
        "scans",
        "A scan polled before it is finished shows `progress_percentage` below 100 and rising, `In Progress`; then "
        "its result. With the mock's progression, the n-th of N polls shows n/(N+1) of 100 %.",
    ),
    ("scan.unknown-id", "scans", '`GET /file/{data_id}` of an unknown id is 404 with `{"err": ...}`.'),
    (
        "engines.listed",
        "scans",
        "`GET /stat/engines` is empty on an unlicensed instance and lists engines with `eng_id`, `eng_name`, "
        "`engine_type`, `state` and `active` once it is active or a backup; a ready engine is `production` at "
        "`download_progress` 100.",
    ),
    (
        "engines.progress",
        "scans",
        "Engines polled while their definitions download are `downloading`, their progress below 100 and rising "
        "(n/(N+1) of 100 % at the n-th of N polls of the mock's progression); then `production` at 100.",
    ),
    (
        "engines.toggle",
        "scans",
        'Engine disable/enable answers `{"result": "Engine is disabled"}` / `"Engine is enabled"` on active '
        "instances and backups, and `active` follows.",
    ),
    ("engines.toggle-unlicensed", "scans", "Engine enable/disable on an unlicensed instance is E_ENGINES_UNLICENSED."),
    (
        "nodes.max-node-count",
        "scans",
        "`GET /stat/nodes` answers a list of the instance's nodes, each with `max_node_count` an integer: the "
        "licence's node count (the activation's `quantity`, 1 to 1000, or its licence file's; an online backup its "
        "key's own), 0 when unlicensed. Under both profiles.",
    ),
    # 11. Service endpoints and request handling
    ("service.version", "service", '`GET /version` answers `{"product_id": "MSCL", "version": <text>}`.'),
    (
        "service.readyz",
        "service",
        "`/readyz?verbose=true`: 200 `license.status` ok for an unexpired production or backup, 503 `invalid` "
        "unlicensed, 503 `expired` past expiry.",
    ),
    ("service.readyz-plain", "service", "`/readyz` without `verbose` answers `{}` with the same status."),
    (
        "service.readyz-verbose",
        "service",
        "`/readyz?verbose=true` also says `database.status` true, `number_active_av_engines.status` (true exactly "
        "when the AV engines active on a licensed instance reach its `threshold`), and each engine of a licensed "
        "one with its status.",
    ),
    (
        "service.order-of-checks",
        "service",
        "A request is judged in order: authentication, then well-formedness, then the state rule, then key, slot "
        "and file.",
    ),
    ("service.unknown-path", "service", 'An unknown path is 404 `{"err": "Not found."}`, never an HTML page.'),
    ("service.unknown-method", "service", 'A method a path does not take is 405 `{"err": "Method not allowed."}`.'),
    ("service.answers", "service", "Every request gets an HTTP answer, and the same sequence gives the same answers."),
    # 13. Version profiles
    (
        "profile.absent-endpoints",
        "profiles",
        "An endpoint the profile lacks (under 4.18: `/admin/license/backup` with any method, "
        "`/admin/license/backup/nomination`, `/admin/license/deactivation`, `/readyz`, `/file/sync`) answers the "
        'generic 404 `{"err": "Not found."}` (E_NOT_FOUND), as an unknown path does, and changes nothing.',
    ),
    (
        "profile.version",
        "profiles",
        "`GET /version`'s `version` is of the profile's line: `4.18.` or `5.6.` and the rest.",
    ),
]


def _build() -> tuple[Rule, ...]:
    rules = [Rule(rid, section, statement) for rid, section, statement in _RULES]
    for (operation, state), effect in CELLS.items():
        rules.append(Rule(cell(operation, state), "transitions", f"{OPERATIONS[operation]} on {state} {effect}."))
    for code, entry in CATALOGUE.items():
        text = f'`{{"err": "{entry.text}"}}`' if entry.text is not None else "the activation server's own text"
        rules.append(Rule(error_rule(code), "errors", f"{code} answers {entry.status} with {text}."))
    return tuple(rules)


RULES: tuple[Rule, ...] = _build()
RULE_IDS: frozenset[str] = frozenset(r.id for r in RULES)
SECTION_IDS: frozenset[str] = frozenset(s.id for s in SECTIONS)


def known(rule_id: str) -> bool:
    return rule_id in RULE_IDS
