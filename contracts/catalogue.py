"""The error catalogue the suite expects: every refusal's status and text, written out again from the behaviour
documentation on purpose (the suite never reads the emulator's catalogue). A target run with fidelity overrides
passes its own catalogue (`contracts.target.load_overrides`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogueEntry:
    status: int
    text: str | None  # None: the text is the server's own (E_ACTIVATION_FAILED carries the activation server's)


# The error catalogue (docs/rules.md, section 12), written out again here on purpose (the suite must not read the
# emulator's catalogue). A target whose texts are overridden (fidelity overrides) passes its own catalogue.
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
    "E_PASSWORD": CatalogueEntry(400, "Invalid password."),
    "E_APIKEY_FORMAT": CatalogueEntry(400, "Invalid API key format."),
    "E_LOGOUT": CatalogueEntry(400, "Logout error"),
    # Users, roles and rights: the vendor answers a caller whose roles lack the right with 405 and its access text.
    "E_NO_RIGHTS": CatalogueEntry(405, "Access denied"),
    "E_NAME_TAKEN": CatalogueEntry(400, "The name is already in use."),
    "E_UNKNOWN_ROLE": CatalogueEntry(400, "The role does not exist."),
    "E_APIKEY_TAKEN": CatalogueEntry(400, "The API key is already in use."),
    # The scan requests' refusals: the vendor's statuses and example texts.
    "E_LENGTH_REQUIRED": CatalogueEntry(411, "Missing Content-Length header."),
    "E_CALLBACK_INVALID": CatalogueEntry(400, "Callback url is invalid."),
    "E_CALLBACK_UNSUPPORTED": CatalogueEntry(403, "callbackurl is not supported"),
}
