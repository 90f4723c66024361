"""The error catalogue: one table, one source of truth for every error status and text (docs/errors.md is
rendered from it).

`Catalogue` is the table as served: the defaults below with the user's fidelity overrides applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    ACCESS_MISSING = "E_ACCESS_MISSING"
    ACCESS = "E_ACCESS"
    LOGIN = "E_LOGIN"
    INVALID_LICENSE = "E_INVALID_LICENSE"
    NOT_BACKUP_REMOVE = "E_NOT_BACKUP_REMOVE"
    EXPIRED_SCAN = "E_EXPIRED_SCAN"
    EMPTY_FILE = "E_EMPTY_FILE"
    LENGTH_REQUIRED = "E_LENGTH_REQUIRED"
    CALLBACK_INVALID = "E_CALLBACK_INVALID"
    CALLBACK_UNSUPPORTED = "E_CALLBACK_UNSUPPORTED"
    ACTIVATE_BACKUP = "E_ACTIVATE_BACKUP"
    REGISTER_ACTIVE = "E_REGISTER_ACTIVE"
    ALREADY_BACKUP = "E_ALREADY_BACKUP"
    BACKUP_REQUEST = "E_BACKUP_REQUEST"
    BACKUP_KEY = "E_BACKUP_KEY"
    BACKUP_PRODUCTION = "E_BACKUP_PRODUCTION"
    NOT_BACKUP = "E_NOT_BACKUP"
    NOMINATE_OFFLINE = "E_NOMINATE_OFFLINE"
    NO_SLOT = "E_NO_SLOT"
    NOT_ACTIVE = "E_NOT_ACTIVE"
    DEACTIVATE_BACKUP = "E_DEACTIVATE_BACKUP"
    ACTIVATION_FAILED = "E_ACTIVATION_FAILED"
    ACTIVATION_UNREACHABLE = "E_ACTIVATION_UNREACHABLE"
    SCAN_BACKUP = "E_SCAN_BACKUP"
    SCAN_UNLICENSED = "E_SCAN_UNLICENSED"
    ENGINES_UNLICENSED = "E_ENGINES_UNLICENSED"
    BAD_REQUEST = "E_BAD_REQUEST"
    TOO_LARGE = "E_TOO_LARGE"
    NOT_FOUND = "E_NOT_FOUND"
    METHOD = "E_METHOD"
    PASSWORD = "E_PASSWORD"
    APIKEY_FORMAT = "E_APIKEY_FORMAT"
    LOGOUT = "E_LOGOUT"
    NO_RIGHTS = "E_NO_RIGHTS"
    NAME_TAKEN = "E_NAME_TAKEN"
    UNKNOWN_ROLE = "E_UNKNOWN_ROLE"
    APIKEY_TAKEN = "E_APIKEY_TAKEN"


@dataclass(frozen=True)
class CatalogueEntry:
    status: int
    text: str


# E_ACCESS is one catalogue row in the vendor's material with two statuses (400 missing, 403 unknown); it is split
# in two codes here so each can be overridden on its own. `E_ACCESS` names the unknown-key case.
DEFAULT_ENTRIES: Mapping[ErrorCode, CatalogueEntry] = {
    ErrorCode.ACCESS_MISSING: CatalogueEntry(400, "Access denied"),
    ErrorCode.ACCESS: CatalogueEntry(403, "Access denied"),
    ErrorCode.LOGIN: CatalogueEntry(403, "Failed to login"),
    ErrorCode.INVALID_LICENSE: CatalogueEntry(400, "Invalid license"),
    ErrorCode.NOT_BACKUP_REMOVE: CatalogueEntry(400, "Failed to remove backup license"),
    ErrorCode.EXPIRED_SCAN: CatalogueEntry(500, "License is expired"),
    ErrorCode.EMPTY_FILE: CatalogueEntry(422, "File is empty."),
    # The vendor's statuses and example texts for a scan body sent without its length and for `callbackurl`.
    ErrorCode.LENGTH_REQUIRED: CatalogueEntry(411, "Missing Content-Length header."),
    ErrorCode.CALLBACK_INVALID: CatalogueEntry(400, "Callback url is invalid."),
    ErrorCode.CALLBACK_UNSUPPORTED: CatalogueEntry(403, "callbackurl is not supported"),
    ErrorCode.ACTIVATE_BACKUP: CatalogueEntry(
        400,
        "This instance is registered as a backup. Nominate it, or remove the backup registration before activating it.",
    ),
    ErrorCode.REGISTER_ACTIVE: CatalogueEntry(400, "An activated instance cannot be registered as a backup."),
    ErrorCode.ALREADY_BACKUP: CatalogueEntry(400, "This instance is already registered as a backup."),
    ErrorCode.BACKUP_REQUEST: CatalogueEntry(
        400, "Provide the activation-key and active-deployment-id headers, or a license file body."
    ),
    ErrorCode.BACKUP_KEY: CatalogueEntry(400, "The activation key is not valid."),
    ErrorCode.BACKUP_PRODUCTION: CatalogueEntry(
        400, "The active deployment is not activated with this activation key."
    ),
    ErrorCode.NOT_BACKUP: CatalogueEntry(400, "This instance is not registered as a backup."),
    ErrorCode.NOMINATE_OFFLINE: CatalogueEntry(
        400,
        "A backup registered offline cannot be nominated. Remove the backup registration and activate it "
        "with a license file.",
    ),
    ErrorCode.NO_SLOT: CatalogueEntry(400, "No free activation slot is left on this activation key."),
    ErrorCode.NOT_ACTIVE: CatalogueEntry(400, "This instance is not activated."),
    ErrorCode.DEACTIVATE_BACKUP: CatalogueEntry(
        400, "A backup instance cannot be deactivated; remove the backup registration instead."
    ),
    # The text is replaced by the activation server's own error text when there is one.
    ErrorCode.ACTIVATION_FAILED: CatalogueEntry(400, "Activation failed"),
    ErrorCode.ACTIVATION_UNREACHABLE: CatalogueEntry(500, "Failed to connect to the activation server."),
    ErrorCode.SCAN_BACKUP: CatalogueEntry(403, "This instance is a backup and is not allowed to process files."),
    ErrorCode.SCAN_UNLICENSED: CatalogueEntry(403, "This instance is not licensed to process files."),
    ErrorCode.ENGINES_UNLICENSED: CatalogueEntry(403, "Engines cannot be changed on an unlicensed instance."),
    ErrorCode.BAD_REQUEST: CatalogueEntry(400, "Invalid request."),
    ErrorCode.TOO_LARGE: CatalogueEntry(413, "Request body is too large."),
    ErrorCode.NOT_FOUND: CatalogueEntry(404, "Not found."),
    ErrorCode.METHOD: CatalogueEntry(405, "Method not allowed."),
    ErrorCode.PASSWORD: CatalogueEntry(400, "Invalid password."),
    ErrorCode.APIKEY_FORMAT: CatalogueEntry(400, "Invalid API key format."),
    ErrorCode.LOGOUT: CatalogueEntry(400, "Logout error"),
    # The vendor's answer when the caller's role lacks the right: 405 with the example text of its description.
    ErrorCode.NO_RIGHTS: CatalogueEntry(405, "Access denied"),
    ErrorCode.NAME_TAKEN: CatalogueEntry(400, "The name is already in use."),
    ErrorCode.UNKNOWN_ROLE: CatalogueEntry(400, "The role does not exist."),
    ErrorCode.APIKEY_TAKEN: CatalogueEntry(400, "The API key is already in use."),
}


class LicenceError(Exception):
    """A refused operation: carries its catalogue code and, rarely, a text that replaces the catalogue's."""

    def __init__(self, code: ErrorCode, text: str | None = None) -> None:
        super().__init__(f"{code}: {text}" if text else str(code))
        self.code = code
        self.text = text


class Catalogue:
    """The catalogue as served: defaults, then overrides. Immutable once built."""

    def __init__(self, overrides: Mapping[ErrorCode, CatalogueEntry] | None = None) -> None:
        entries = dict(DEFAULT_ENTRIES)
        entries.update(overrides or {})
        self._entries: Mapping[ErrorCode, CatalogueEntry] = entries

    def entry(self, code: ErrorCode) -> CatalogueEntry:
        return self._entries[code]

    def render(self, error: LicenceError) -> tuple[int, str]:
        """Status and text for an error. An override of the text wins over the activation server's text."""
        entry = self._entries[error.code]
        text_overridden = entry.text != DEFAULT_ENTRIES[error.code].text
        text = entry.text if (text_overridden or not error.text) else error.text
        return entry.status, text
