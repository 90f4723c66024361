"""Fidelity overrides (docs/errors.md): a YAML file that replaces catalogue statuses and texts and the emulated version.

version: "5.8.0"
errors:
  E_NO_SLOT: {status: 409, text: "No license slot left"}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mockcore import safeyaml
from mockcore.catalogue import DEFAULT_ENTRIES, Catalogue, CatalogueEntry, ErrorCode

MAX_OVERRIDES_BYTES = 256 * 1024


class OverridesError(ValueError):
    """The overrides file cannot be used; the message says why and where."""


@dataclass(frozen=True)
class Overrides:
    version: str | None = None
    errors: dict[ErrorCode, CatalogueEntry] = field(default_factory=dict)

    def catalogue(self) -> Catalogue:
        return Catalogue(self.errors)


def _entry(code: str, value: object) -> tuple[ErrorCode, CatalogueEntry]:
    try:
        error = ErrorCode(code)
    except ValueError:
        known = ", ".join(sorted(c.value for c in ErrorCode))
        raise OverridesError(f"errors.{code}: unknown error code (known codes: {known})") from None
    if not isinstance(value, dict) or not value or set(value) - {"status", "text"}:
        raise OverridesError(f"errors.{code}: expected a mapping with `status` and/or `text`")
    default = DEFAULT_ENTRIES[error]
    status = value.get("status", default.status)
    text = value.get("text", default.text)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise OverridesError(f"errors.{code}.status: expected an HTTP status from 100 to 599, got {status!r}")
    if not isinstance(text, str) or not text:
        raise OverridesError(f"errors.{code}.text: expected a non-empty string")
    return error, CatalogueEntry(status, text)


def parse_overrides(data: bytes) -> Overrides:
    try:
        doc = safeyaml.load(data, MAX_OVERRIDES_BYTES)
    except safeyaml.UnsafeYAML as exc:
        raise OverridesError(str(exc)) from exc
    if doc is None:
        return Overrides()
    if not isinstance(doc, dict):
        raise OverridesError("expected a mapping with `version` and/or `errors`")
    unknown = set(doc) - {"version", "errors"}
    if unknown:
        raise OverridesError(f"unknown top-level keys: {', '.join(sorted(map(str, unknown)))}")
    version = doc.get("version")
    if version is not None and (not isinstance(version, str) or not version):
        raise OverridesError('version: expected a string such as "5.6.1" (quote it in YAML)')
    errors = doc.get("errors") or {}
    if not isinstance(errors, dict):
        raise OverridesError("errors: expected a mapping of error codes")
    return Overrides(version, dict(_entry(str(code), value) for code, value in errors.items()))


def load_overrides(path: Path) -> Overrides:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OverridesError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return parse_overrides(data)
    except OverridesError as exc:
        raise OverridesError(f"{path}: {exc}") from exc
