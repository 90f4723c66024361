"""Our contract, `contracts/openapi.yaml`, stays schema-compatible with the vendor's OpenAPI document (v5.6.1, the
extract in `reference/vendor/`), allowing only the conflicts docs/decisions.md lists under "Vendor conflicts".

For every endpoint the vendor's extract describes, the contract has the same path and method (or the endpoint is
listed in `NOT_SERVED` with the reason), and for each of them:

* parameters both declare: the same location and required-ness, compatible types; every parameter the vendor
  requires is declared;
* request bodies: the vendor's media types are taken, and every field the vendor describes is accepted with a
  type our schema accepts (our schema may take more, such as `quantity` as a numeric string);
* responses of a status both document: the vendor's media type, and in each shape we may answer every field the
  vendor describes, with a type within the vendor's (enums within its enums); our shapes may add fields. An object
  we leave undescribed (no `properties`, any field allowed) accepts whatever the vendor nests there.

The extract is part of the repository: a missing or unreadable extract fails every test here, it is never skipped.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from contracts.spec import HTTP_METHODS, load_document

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference" / "vendor"
EXTRACT = REFERENCE / "mdcore-5.6.1-openapi-extract.json"

# Vendor endpoints of the extract the emulator does not serve, with the reason: none now (`POST /file/sync` is
# served since issue 14; docs/responses.md, Scans).
NOT_SERVED: MappingProxyType[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Conflict:
    """One allowed difference: at `endpoint`, response `status`, in our shape `shape`, at `pointer` (a prefix;
    empty means anywhere in that shape), of `kind` `type` (our type differs) or `missing` (a vendor field we do
    not answer)."""

    endpoint: str
    status: str
    shape: str
    pointer: str
    kind: str
    reason: str


# docs/decisions.md, "Vendor conflicts": the only allowed conflicts.
CONFLICTS = (
    Conflict(
        "GET /admin/license",
        "200",
        "LicensedInformation",
        "/licensed_engines",
        "type",
        "vendor conflict: the vendor's schema says an array of strings, its example and real clients the string '*'",
    ),
    Conflict(
        "GET /admin/license",
        "200",
        "UnlicensedInformation",
        "",
        "missing",
        "vendor conflict: an unlicensed instance answers its id as `deployment` and `deployment_id` (5.x scripts "
        "and v4 docs), not the licensed fields",
    ),
)
# The other two vendor conflicts of docs/decisions.md are not allowances but rules both documents already agree on;
# they are enforced by `test_success_is_a_boolean_or_a_sentence_as_documented` and `test_login_failure_is_403`.


@dataclass(frozen=True)
class Incompatibility:
    endpoint: str
    status: str  # the response status, or "request"
    shape: str  # our schema's name (for a `oneOf` alternative), else ""
    pointer: str
    kind: str  # "type", "missing", "enum", "parameter", "media", "path"
    message: str

    def __str__(self) -> str:
        where = " ".join(part for part in (self.endpoint, self.status, self.shape, self.pointer) if part)
        return f"{where}: {self.message}"

    def allowed_by(self) -> Conflict | None:
        for conflict in CONFLICTS:
            if (conflict.endpoint, conflict.status, conflict.shape, conflict.kind) == (
                self.endpoint,
                self.status,
                self.shape,
                self.kind,
            ) and self.pointer.startswith(conflict.pointer):
                return conflict
        return None


# Reading the two documents


class Document:
    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw

    def resolve(self, node: Any) -> tuple[Any, str]:
        """The node with `$ref`s (and single-element `allOf`s) followed, and the last component name met."""
        name = ""
        for _ in range(50):
            if isinstance(node, Mapping) and "$ref" in node:
                ref = str(node["$ref"])
                name = ref.rsplit("/", 1)[-1]
                target: Any = self.raw
                for part in ref[2:].split("/"):
                    target = target[part.replace("~1", "/").replace("~0", "~")]
                node = target
            elif isinstance(node, Mapping) and len(node.get("allOf", ())) == 1 and "properties" not in node:
                node = node["allOf"][0]
            else:
                return node, name
        raise ValueError("reference loop")

    def operations(self) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
        for path, item in self.raw["paths"].items():
            for method in HTTP_METHODS:
                if method in item:
                    yield f"{method.upper()} {path}", path, item[method]

    def parameters(self, path: str, operation: Mapping[str, Any]) -> dict[tuple[str, str], Mapping[str, Any]]:
        found = {}
        for raw in [*self.raw["paths"][path].get("parameters", ()), *operation.get("parameters", ())]:
            parameter, _ = self.resolve(raw)
            found[(str(parameter["in"]), str(parameter["name"]).lower())] = parameter
        return found


def _types(doc: Document, schema: Any) -> set[str] | None:
    """The JSON types a schema allows (None: any)."""
    schema, _ = doc.resolve(schema)
    if not isinstance(schema, Mapping):
        return None
    if "type" in schema:
        return {schema["type"]} if isinstance(schema["type"], str) else set(schema["type"])
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives:
        found: set[str] = set()
        for alternative in alternatives:
            types = _types(doc, alternative)
            if types is None:
                return None
            found |= types
        return found
    return None


def _within(inner: set[str] | None, outer: set[str] | None) -> bool:
    if outer is None:
        return True
    if inner is None:
        return False
    widened = set(outer) | ({"integer"} if "number" in outer else set())
    return inner <= widened


def _alternatives(doc: Document, schema: Any) -> list[tuple[Any, str]]:
    resolved, name = doc.resolve(schema)
    if isinstance(resolved, Mapping) and ("oneOf" in resolved or "anyOf" in resolved):
        found = []
        for alternative in resolved.get("oneOf") or resolved.get("anyOf"):
            found += _alternatives(doc, alternative)
        return found
    return [(resolved, name)]


def _is_free_object(schema: Mapping[str, Any]) -> bool:
    """An object we do not describe further: no properties, any extra field allowed."""
    return (
        schema.get("type") == "object"
        and not schema.get("properties")
        and schema.get("additionalProperties", True) is True
    )


# The comparison


def compare(vendor_raw: Mapping[str, Any], ours_raw: Mapping[str, Any]) -> list[Incompatibility]:
    """Every incompatibility of our contract with the vendor's document (allowed conflicts included)."""
    vendor, ours = Document(vendor_raw), Document(ours_raw)
    our_operations = {label: (path, operation) for label, path, operation in ours.operations()}
    found: list[Incompatibility] = []
    for label, path, vendor_operation in vendor.operations():
        if label not in our_operations:
            if label not in NOT_SERVED:
                found.append(Incompatibility(label, "", "", "", "path", "the contract has no such endpoint"))
            continue
        our_path, our_operation = our_operations[label]
        found += _compare_parameters(label, vendor, path, vendor_operation, ours, our_path, our_operation)
        found += _compare_request(label, vendor, vendor_operation, ours, our_operation)
        for status, vendor_response in vendor_operation.get("responses", {}).items():
            our_response = our_operation.get("responses", {}).get(status)
            if our_response is not None:
                found += _compare_response(label, status, vendor, vendor_response, ours, our_response)
    return found


def _compare_parameters(
    label: str,
    vendor: Document,
    vendor_path: str,
    vendor_operation: Mapping[str, Any],
    ours: Document,
    our_path: str,
    our_operation: Mapping[str, Any],
) -> list[Incompatibility]:
    found = []
    our_parameters = ours.parameters(our_path, our_operation)
    for key, parameter in vendor.parameters(vendor_path, vendor_operation).items():
        where = f"/parameters/{key[0]}/{key[1]}"
        mine = our_parameters.get(key)
        if mine is None:
            if parameter.get("required"):
                found.append(Incompatibility(label, "request", "", where, "parameter", "a required one is missing"))
            continue
        if bool(mine.get("required")) != bool(parameter.get("required")):
            message = f"required is {bool(mine.get('required'))}, the vendor's {bool(parameter.get('required'))}"
            found.append(Incompatibility(label, "request", "", where, "parameter", message))
        if not _within(_types(vendor, parameter.get("schema")), _types(ours, mine.get("schema"))):
            found.append(Incompatibility(label, "request", "", where, "type", "does not take the vendor's type"))
    return found


def _compare_request(
    label: str, vendor: Document, vendor_operation: Mapping[str, Any], ours: Document, our_operation: Mapping[str, Any]
) -> list[Incompatibility]:
    if "requestBody" not in vendor_operation:
        return []
    vendor_body, _ = vendor.resolve(vendor_operation["requestBody"])
    if "requestBody" not in our_operation:
        return [Incompatibility(label, "request", "", "/requestBody", "media", "the contract takes no body")]
    our_body, _ = ours.resolve(our_operation["requestBody"])
    found = []
    for media, content in vendor_body.get("content", {}).items():
        if media not in our_body.get("content", {}):
            found.append(Incompatibility(label, "request", "", f"/{media}", "media", "media type not taken"))
            continue
        found += _accepts(label, vendor, content.get("schema"), ours, our_body["content"][media].get("schema"), "")
    return found


def _accepts(
    label: str, vendor: Document, vendor_schema: Any, ours: Document, our_schema: Any, pointer: str
) -> list[Incompatibility]:
    """Requests: our schema takes every field the vendor's describes, with a type that includes the vendor's."""
    vendor_resolved, _ = vendor.resolve(vendor_schema)
    our_resolved, _ = ours.resolve(our_schema)
    if not isinstance(vendor_resolved, Mapping) or not isinstance(our_resolved, Mapping):
        return []
    if not _within(_types(vendor, vendor_resolved), _types(ours, our_resolved)):
        return [Incompatibility(label, "request", "", pointer, "type", "does not take the vendor's type")]
    found = []
    our_properties = our_resolved.get("properties", {})
    for name, vendor_property in vendor_resolved.get("properties", {}).items():
        if name not in our_properties:
            if not _is_free_object(our_resolved):
                found.append(Incompatibility(label, "request", "", f"{pointer}/{name}", "missing", "not described"))
            continue
        found += _accepts(label, vendor, vendor_property, ours, our_properties[name], f"{pointer}/{name}")
    return found


def _compare_response(
    label: str, status: str, vendor: Document, vendor_response: Any, ours: Document, our_response: Any
) -> list[Incompatibility]:
    vendor_resolved, _ = vendor.resolve(vendor_response)
    our_resolved, _ = ours.resolve(our_response)
    found = []
    for media, content in vendor_resolved.get("content", {}).items():
        our_content = our_resolved.get("content", {})
        if media not in our_content:
            found.append(Incompatibility(label, status, "", f"/{media}", "media", "media type not answered"))
            continue
        if "schema" not in content:
            continue
        for alternative, name in _alternatives(ours, our_content[media].get("schema")):
            found += _answers(label, status, name, vendor, content["schema"], ours, alternative, "")
    return found


def _answers(
    label: str,
    status: str,
    shape: str,
    vendor: Document,
    vendor_schema: Any,
    ours: Document,
    our_schema: Any,
    pointer: str,
) -> list[Incompatibility]:
    """Responses: our shape carries every field the vendor describes, each with a type within the vendor's."""
    vendor_resolved, _ = vendor.resolve(vendor_schema)
    our_resolved, _ = ours.resolve(our_schema)
    if not isinstance(vendor_resolved, Mapping) or not isinstance(our_resolved, Mapping):
        return []
    if _is_free_object(our_resolved):
        return []
    our_types, vendor_types = _types(ours, our_resolved), _types(vendor, vendor_resolved)
    if not _within(our_types, vendor_types):
        message = f"answers {sorted(our_types or ['anything'])}, the vendor's schema says {sorted(vendor_types or [])}"
        return [Incompatibility(label, status, shape, pointer, "type", message)]
    found = []
    if "enum" in vendor_resolved and not set(our_resolved.get("enum", [object()])) <= set(vendor_resolved["enum"]):
        found.append(Incompatibility(label, status, shape, pointer, "enum", "answers values the vendor does not list"))
    if vendor_types == {"array"} and "items" in vendor_resolved:
        found += _answers(
            label, status, shape, vendor, vendor_resolved["items"], ours, our_resolved.get("items"), f"{pointer}/*"
        )
    our_properties = our_resolved.get("properties", {})
    extra = our_resolved.get("additionalProperties")
    for name, vendor_property in vendor_resolved.get("properties", {}).items():
        where = f"{pointer}/{name}"
        if name in our_properties:
            found += _answers(label, status, shape, vendor, vendor_property, ours, our_properties[name], where)
        elif isinstance(extra, Mapping):
            found += _answers(label, status, shape, vendor, vendor_property, ours, extra, where)
        else:
            found.append(Incompatibility(label, status, shape, where, "missing", "a vendor field the contract lacks"))
    return found


# Fixtures


def load_vendor(path: Path = EXTRACT) -> dict[str, Any]:
    """The vendor's extract, kept in the repository; its absence is a failure, never a skip."""
    if not path.is_file():
        pytest.fail(
            f"the vendor's OpenAPI extract is not at {path}: it belongs to the repository (reference/vendor/, "
            "see its README.md)",
            pytrace=False,
        )
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def vendor() -> dict[str, Any]:
    return load_vendor()


@pytest.fixture(scope="module")
def ours() -> dict[str, Any]:
    return load_document()


# Tests


def test_the_extract_is_in_the_repository_and_tracked() -> None:
    assert EXTRACT.relative_to(ROOT).as_posix() == "reference/vendor/mdcore-5.6.1-openapi-extract.json"
    vendor = load_vendor()
    assert vendor["info"]["version"] == "v5.6.1"
    assert vendor["info"]["license"]["name"] == "Apache 2.0"
    for companion in ("README.md", "NOTICE"):
        assert (REFERENCE / companion).is_file(), companion
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", "reference/vendor/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if "not a git repository" not in tracked.stderr:  # a copy of the tree without .git has nothing to ask
        assert tracked.returncode == 0, tracked.stderr
        assert set(tracked.stdout.split()) >= {
            "reference/vendor/README.md",
            "reference/vendor/NOTICE",
            "reference/vendor/mdcore-5.6.1-openapi-extract.json",
        }, tracked.stdout


def test_a_missing_extract_fails_and_says_where_it_belongs(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"belongs to the repository \(reference/vendor/"):
        load_vendor(tmp_path / "reference" / EXTRACT.name)


def _spec_validator() -> Any:
    """openapi-spec-validator's `validate` (OpenAPI 3.0 and 3.1); it is not a dependency of the project."""
    module = pytest.importorskip(
        "openapi_spec_validator", reason="openapi-spec-validator is not installed (pip install openapi-spec-validator)"
    )
    return module.validate


def test_our_contract_is_a_valid_openapi_document(ours: dict[str, Any]) -> None:
    assert str(ours["openapi"]).startswith("3.0.")
    _spec_validator()(ours)


def test_the_vendor_extract_is_a_valid_openapi_document(vendor: dict[str, Any]) -> None:
    _spec_validator()(vendor)


def test_contract_agrees_with_the_vendor_but_for_known_conflicts(vendor: dict[str, Any], ours: dict[str, Any]) -> None:
    found = compare(vendor, ours)
    unexplained = [str(item) for item in found if item.allowed_by() is None]
    assert not unexplained, "\n".join(unexplained)


def test_every_allowed_conflict_is_still_needed(vendor: dict[str, Any], ours: dict[str, Any]) -> None:
    """An allowance nothing needs any more is dropped from CONFLICTS, so the list stays exactly the documented one."""
    used = {item.allowed_by() for item in compare(vendor, ours)} - {None}
    assert used == set(CONFLICTS), [c.reason for c in set(CONFLICTS) - used]


def test_every_vendor_endpoint_is_served_under_its_own_path(vendor: dict[str, Any], ours: dict[str, Any]) -> None:
    vendor_labels = {label for label, _, _ in Document(vendor).operations()}
    our_labels = {label for label, _, _ in Document(ours).operations()}
    assert vendor_labels - our_labels == set(NOT_SERVED)
    assert not set(NOT_SERVED) & our_labels


def test_success_is_a_boolean_or_a_sentence_as_documented(vendor: dict[str, Any], ours: dict[str, Any]) -> None:
    """Vendor conflicts: `success` is a boolean for upload and activation, a sentence for the backup endpoints, in both
    documents, and the contract answers it that way."""
    expected = {
        "POST /admin/license": "boolean",
        "POST /admin/license/activation": "boolean",
        "POST /admin/license/backup": "string",
        "DELETE /admin/license/backup": "string",
        "POST /admin/license/backup/nomination": "string",
    }
    for raw in (vendor, ours):
        document = Document(raw)
        operations = {label: operation for label, _, operation in document.operations()}
        for label, kind in expected.items():
            response, _ = document.resolve(operations[label]["responses"]["200"])
            schema, _ = document.resolve(response["content"]["application/json"]["schema"])
            assert _types(document, schema["properties"]["success"]) == {kind}, label


def test_login_failure_is_403(vendor: dict[str, Any], ours: dict[str, Any]) -> None:
    """Vendor conflicts: 403 (the vendor's spec), not 404 (one knowledge-base table)."""
    for raw in (vendor, ours):
        responses = raw["paths"]["/login"]["post"]["responses"]
        assert "403" in responses and "404" not in responses


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        ("rename days_left", "GET /admin/license 200 LicensedInformation /days_left: a vendor field"),
        ("is_backup as a string", "GET /admin/license/backup 200 BackupFlag /is_backup: answers ['string']"),
        ("engine id renamed", "POST /admin/engine/{engineId}/enable: the contract has no such endpoint"),
        ("apikey optional", "GET /admin/license request /parameters/header/apikey: required is False"),
        ("success as a sentence", "POST /admin/license 200 Done /success: answers ['string']"),
        ("engine state widened", "GET /stat/engines 200 /*/state: answers values the vendor does not list"),
        ("quantity only a string", "POST /admin/license/activation request /quantity: does not take"),
    ],
)
def test_the_comparison_fails_on_a_broken_contract(
    vendor: dict[str, Any], ours: dict[str, Any], breakage: str, expected: str
) -> None:
    broken = copy.deepcopy(ours)
    schemas = broken["components"]["schemas"]
    if breakage == "rename days_left":
        properties = schemas["LicensedInformation"]["properties"]
        properties["daysLeft"] = properties.pop("days_left")
        schemas["LicensedInformation"]["required"].remove("days_left")
    elif breakage == "is_backup as a string":
        schemas["BackupFlag"]["properties"]["is_backup"] = {"type": "string"}
    elif breakage == "engine id renamed":
        broken["paths"]["/admin/engine/{id}/enable"] = broken["paths"].pop("/admin/engine/{engineId}/enable")
    elif breakage == "apikey optional":
        operation = broken["paths"]["/admin/license"]["get"]
        operation["parameters"] = [{"$ref": "#/components/parameters/ApiKeyOptional"}]
    elif breakage == "success as a sentence":
        schemas["Done"]["properties"]["success"] = {"type": "string"}
    elif breakage == "engine state widened":
        schemas["Engine"]["properties"]["state"]["enum"].append("resting")
    elif breakage == "quantity only a string":
        schemas["ActivationRequest"]["properties"]["quantity"] = {"type": "string"}
    unexplained = [str(item) for item in compare(vendor, broken) if item.allowed_by() is None]
    assert any(item.startswith(expected) for item in unexplained), unexplained
