"""Our OpenAPI contract, `contracts/openapi.yaml`, as data, and checks of requests and responses against it.

`ContractSpec` loads the document from the package data (or takes one), matches concrete paths such as
`/file/0123...` to the contract's templates (`/file/{data_id}`), and validates

* a response (method, path, status, content type, body, optionally headers) against the answers the operation
  documents, including the answers every path shares (`x-generic-responses`: 404 for an unknown path, 405 with
  `Allow` for an unknown method, 500);
* a request as a client sent it (method, path, query, headers, body bytes, content type) against the operation's
  parameters, request body and request forms (`x-request-forms`: the backup registration takes either both
  online headers or a licence file body).

Each validation returns a list of human-readable problems; an empty list means the exchange keeps the contract.
Schemas are checked with `jsonschema` (OpenAPI 3.0 schemas are JSON Schema draft 4 with a few extra keywords,
which draft 4 ignores). Everything here is pure: no network, no module-level state; a `ContractSpec` keeps only
its document and the validators it built from it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

import jsonschema
import yaml

__all__ = [
    "HTTP_METHODS",
    "ContractSpec",
    "Operation",
    "PathMatch",
    "load_document",
    "media_type",
]

SPEC_RESOURCE = "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
JSON_MEDIA = re.compile(r"^application/(.+\+)?json$")
YAML_MEDIA = frozenset({"application/x-yaml", "application/yaml", "text/yaml", "text/x-yaml"})
_NO_BODY = object()


def load_document() -> dict[str, Any]:
    """A fresh copy of the contract, parsed from the package data of `contracts`."""
    text = resources.files("contracts").joinpath(SPEC_RESOURCE).read_text(encoding="utf-8")
    document = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(document, dict):
        raise ValueError(f"contracts/{SPEC_RESOURCE} is not an OpenAPI document")
    return document


def media_type(content_type: str | None) -> str | None:
    """`application/json; charset=utf-8` -> `application/json`; None or blank -> None."""
    if content_type is None:
        return None
    bare = content_type.split(";", 1)[0].strip().lower()
    return bare or None


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


def _where(path: Iterable[Any]) -> str:
    parts = [str(part) for part in path]
    return "/" + "/".join(parts) if parts else "the body"


@dataclass(frozen=True)
class Operation:
    """One operation of the contract. `definition` is the operation object as written (references unresolved)."""

    method: str  # upper case
    path: str  # the template, e.g. /file/{data_id}
    operation_id: str
    tags: tuple[str, ...]
    definition: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class PathMatch:
    """A concrete path matched to a template: the operation for the method (None when the path does not take
    it), the methods the path takes, and the path parameters' raw values."""

    path: str
    template: str
    operation: Operation | None
    methods: tuple[str, ...]
    path_parameters: Mapping[str, str]


@dataclass(frozen=True)
class _Template:
    path: str
    regex: re.Pattern[str]
    names: tuple[str, ...]
    literal_segments: int


def _compile_template(path: str) -> _Template:
    names: list[str] = []
    pieces: list[str] = []
    literal = 0
    for segment in path.strip("/").split("/"):
        match = re.fullmatch(r"\{([^{}]+)\}", segment)
        if match:
            names.append(match.group(1))
            pieces.append("([^/]+)")
        else:
            literal += 1
            pieces.append(re.escape(segment))
    regex = re.compile("^/" + "/".join(pieces) + "$") if path != "/" else re.compile("^/$")
    return _Template(path, regex, tuple(names), literal)


class ContractSpec:
    """The contract document with path matching and validation. Build it once and keep it: it caches the
    validators it makes (per instance)."""

    def __init__(self, document: Mapping[str, Any] | None = None) -> None:
        self._document: Mapping[str, Any] = document if document is not None else load_document()
        paths = self._document.get("paths")
        if not isinstance(paths, Mapping):
            raise ValueError("the document has no `paths`")
        # Literal segments first, so /file/sync would win over /file/{data_id}.
        self._templates = sorted(
            (_compile_template(path) for path in paths), key=lambda t: (-t.literal_segments, t.path)
        )
        operations: list[Operation] = []
        for path, item in paths.items():
            for method in HTTP_METHODS:
                definition = item.get(method)
                if isinstance(definition, Mapping):
                    operations.append(
                        Operation(
                            method=method.upper(),
                            path=path,
                            operation_id=str(definition.get("operationId", f"{method} {path}")),
                            tags=tuple(definition.get("tags", ())),
                            definition=definition,
                        )
                    )
        self._operations = tuple(operations)
        self._validators: dict[str, jsonschema.Draft4Validator] = {}

    @classmethod
    def load(cls) -> ContractSpec:
        """The contract shipped in the `contracts` package."""
        return cls(load_document())

    # The document

    @property
    def document(self) -> Mapping[str, Any]:
        return self._document

    def operations(self) -> tuple[Operation, ...]:
        return self._operations

    def operation(self, operation_id: str) -> Operation:
        for operation in self._operations:
            if operation.operation_id == operation_id:
                return operation
        raise KeyError(operation_id)

    def operations_tagged(self, tag: str) -> tuple[Operation, ...]:
        return tuple(op for op in self._operations if tag in op.tags)

    def resolve(self, node: Any) -> Any:
        """Follow `$ref`s (local ones, `#/...`) until the node is not a reference."""
        seen: set[str] = set()
        while isinstance(node, Mapping) and "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
                raise ValueError(f"cannot resolve {ref!r}")
            seen.add(ref)
            target: Any = self._document
            for part in ref[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def match(self, method: str, path: str) -> PathMatch | None:
        """The template a concrete path (without query string) falls under, or None for a path not served."""
        path = path.split("?", 1)[0] or "/"
        for template in self._templates:
            found = template.regex.match(path)
            if found is None:
                continue
            item = self._document["paths"][template.path]
            methods = tuple(m.upper() for m in HTTP_METHODS if isinstance(item.get(m), Mapping))
            operation = next(
                (op for op in self._operations if op.path == template.path and op.method == method.upper()), None
            )
            values = dict(zip(template.names, found.groups(), strict=True))
            return PathMatch(path, template.path, operation, methods, values)
        return None

    def parameters(self, operation: Operation) -> list[tuple[str, Mapping[str, Any]]]:
        """The operation's parameters (path-level ones included, the operation's own winning), each as the JSON
        pointer to where it is written and the parameter object with its reference resolved."""
        merged: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}
        item = self._document["paths"][operation.path]
        for where, raws in (
            (("paths", operation.path, "parameters"), item.get("parameters")),
            (("paths", operation.path, operation.method.lower(), "parameters"), operation.definition.get("parameters")),
        ):
            for position, raw in enumerate(raws or ()):
                parameter = self.resolve(raw)
                key = (str(parameter["in"]), str(parameter["name"]).lower())
                merged[key] = (_pointer(*where, str(position)), parameter)
        return list(merged.values())

    # Schema validation

    def _validator(self, pointer: str) -> jsonschema.Draft4Validator:
        validator = self._validators.get(pointer)
        if validator is None:
            # Draft 4: a root `$ref` ignores its siblings, and resolves inside the whole document.
            validator = jsonschema.Draft4Validator({**self._document, "$ref": pointer})
            self._validators[pointer] = validator
        return validator

    def schema_problems(self, pointer: str, instance: Any) -> list[str]:
        """Every way `instance` breaks the schema at `pointer` (a JSON pointer into the document)."""
        errors = sorted(self._validator(pointer).iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
        problems = []
        for error in errors:
            text = f"at {_where(error.absolute_path)}: {error.message}"
            if error.context:  # oneOf / anyOf: say what came closest
                closest = jsonschema.exceptions.best_match(error.context)
                if closest is not None:
                    text += f" (closest: at {_where(closest.absolute_path)}: {closest.message})"
            problems.append(text)
        return problems

    # Responses

    def validate_response(
        self,
        method: str,
        path: str,
        status: int | str,
        content_type: str | None,
        body: bytes | str | Any,
        headers: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Problems with an answer: an undocumented status, a wrong content type, a body that breaks the
        documented schema, a missing required header (checked when `headers` is given). `body` may be the raw
        bytes or text (parsed as the content type says), or an already parsed value; None means no body was
        read (a HEAD answer). HEAD is checked as the GET it stands for; OPTIONS on a served path is the HTTP
        framework's own answer."""
        method, code = method.upper(), str(status)
        label = f"{method} {path.split('?', 1)[0]} -> {code}"
        if method == "HEAD":  # the GET it stands for, without the body
            method, body = "GET", None
        elif method == "OPTIONS" and code == "200" and self.match(method, path) is not None:
            return []  # the HTTP framework's own answer, with Allow
        found = self.match(method, path)
        generic = self._document.get("x-generic-responses", {})
        if found is None:
            if code not in ("404", "500"):
                return [f"{label}: the path is not in the contract, so only the generic 404 (or 500) may answer"]
            return self._check_response(label, _pointer("x-generic-responses", code), content_type, body, headers)
        if found.operation is None:
            if code not in ("405", "500"):
                allowed = ", ".join(found.methods)
                return [f"{label}: {found.template} does not take {method} ({allowed}): expected the generic 405"]
            problems = self._check_response(label, _pointer("x-generic-responses", code), content_type, body, headers)
            if code == "405" and headers is not None:
                problems += self._allow_problems(label, found, headers)
            return problems
        operation = found.operation
        responses = operation.definition.get("responses", {})
        key = next((k for k in (code, f"{code[0]}XX", f"{code[0]}xx", "default") if k in responses), None)
        if key is not None:
            pointer = _pointer("paths", operation.path, operation.method.lower(), "responses", key)
        elif (code in generic and code != "404") or (code == "404" and found.path_parameters):
            # 500 anywhere; 404 where a path parameter names something that may not exist.
            pointer = _pointer("x-generic-responses", code)
        else:
            documented = ", ".join(sorted(responses))
            return [f"{label}: status {code} is not documented for {operation.label} (documented: {documented})"]
        return self._check_response(label, pointer, content_type, body, headers)

    def _allow_problems(self, label: str, found: PathMatch, headers: Mapping[str, str]) -> list[str]:
        allow = _header(headers, "allow")
        if allow is None:
            return []  # reported with the documented headers
        advertised = {m.strip().upper() for m in allow.split(",") if m.strip()} - {"HEAD", "OPTIONS"}
        expected = set(found.methods) - {"HEAD", "OPTIONS"}
        if advertised != expected:
            return [f"{label}: Allow says {allow!r}, the contract has {', '.join(sorted(expected))}"]
        return []

    def _check_response(
        self,
        label: str,
        pointer: str,
        content_type: str | None,
        body: bytes | str | Any,
        headers: Mapping[str, str] | None,
    ) -> list[str]:
        response = self.resolve({"$ref": pointer})
        problems: list[str] = []
        if headers is not None:
            for name, header in response.get("headers", {}).items():
                if self.resolve(header).get("required") and _header(headers, name) is None:
                    problems.append(f"{label}: the {name} header is required")
        content = response.get("content")
        if body is None:  # a HEAD answer: no body to check
            return problems
        empty = isinstance(body, bytes | str) and not body
        if not content:
            if not empty:
                problems.append(f"{label}: the answer has a body, the contract documents none")
            return problems
        given = media_type(content_type)
        if given is None:
            problems.append(f"{label}: no Content-Type; expected {', '.join(content)}")
            return problems
        declared = {media_type(name): name for name in content}
        if given not in declared:
            problems.append(f"{label}: Content-Type {given} is not documented ({', '.join(content)})")
            return problems
        media = self.resolve(content[declared[given]])
        if "schema" not in media:
            return problems
        parsed = _parse_body(given, body)
        if parsed is _NO_BODY:
            problems.append(f"{label}: the body is not {given}")
            return problems
        schema_pointer = f"{pointer}/content/{declared[given].replace('~', '~0').replace('/', '~1')}/schema"
        problems += [f"{label}: {problem}" for problem in self.schema_problems(self._absolute(schema_pointer), parsed)]
        return problems

    def _absolute(self, pointer: str) -> str:
        """A pointer through references (`#/paths/.../responses/400` may be a `$ref`) as a direct pointer."""
        node: Any = self._document
        parts: list[str] = []
        for raw in pointer[2:].split("/"):
            part = raw.replace("~1", "/").replace("~0", "~")
            while isinstance(node, Mapping) and "$ref" in node:
                ref = node["$ref"]
                parts = [p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")]
                node = self.resolve(node)
            node = node[int(part)] if isinstance(node, list) else node[part]
            parts.append(part)
        return _pointer(*parts)

    # Requests

    def validate_request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | Sequence[str]] | str | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> list[str]:
        """Problems with a request as a client sent it: an operation the contract does not have, a missing or
        ill-typed parameter, a body where none is taken or none where one is needed, a wrong content type (a
        licence file sent as JSON...), a JSON body that breaks its schema, a request that matches none (or more
        than one) of the operation's request forms. `content_type` defaults to the Content-Type in `headers`."""
        method = method.upper()
        raw_path, _, raw_query = path.partition("?")
        label = f"{method} {raw_path}"
        if method == "OPTIONS" and self.match(method, raw_path) is not None:
            return []  # the HTTP framework answers it for every path
        if method == "HEAD":
            method = "GET"  # a GET that wants no body
        headers = headers or {}
        if query is None:
            query = raw_query
        queries = _query_values(query)
        found = self.match(method, raw_path)
        if found is None:
            return [f"{label}: the contract has no such path"]
        if found.operation is None:
            return [f"{label}: {found.template} does not take {method} (it takes {', '.join(found.methods)})"]
        operation = found.operation
        problems: list[str] = []
        for pointer, parameter in self.parameters(operation):
            name, location = str(parameter["name"]), str(parameter["in"])
            if location == "path":
                raw: str | None = found.path_parameters.get(name)
            elif location == "query":
                values = queries.get(name)
                raw = values[0] if values else None
            elif location == "header":
                raw = _header(headers, name)
            else:
                continue
            if raw is None:
                if parameter.get("required"):
                    problems.append(f"{label}: the required {location} parameter `{name}` is missing")
                continue
            schema = self.resolve(parameter.get("schema", {}))
            value = _coerce(raw, schema, self)
            if value is _NO_BODY:
                problems.append(f"{label}: {location} parameter `{name}` is {raw!r}, not of type {schema.get('type')}")
                continue
            problems += [
                f"{label}: {location} parameter `{name}` {problem.removeprefix('at the body: ')}"
                for problem in self.schema_problems(self._absolute(f"{pointer}/schema"), value)
            ]
        problems += self._body_problems(label, operation, body, content_type or _header(headers, "content-type"))
        problems += self._form_problems(label, operation, headers, body)
        return problems

    def _body_problems(self, label: str, operation: Operation, body: bytes, content_type: str | None) -> list[str]:
        raw_body = operation.definition.get("requestBody")
        request_body = self.resolve(raw_body) if raw_body is not None else None
        if request_body is None:
            return [f"{label}: the operation takes no body, {len(body)} bytes were sent"] if body else []
        content = request_body.get("content", {})
        if not body:
            return [f"{label}: the body is missing ({', '.join(content)})"] if request_body.get("required") else []
        given = media_type(content_type)
        declared = {media_type(name): name for name in content}
        if given is None:
            if "application/octet-stream" in declared:
                return []  # RFC 9110 §8.3: without Content-Type, a recipient may take the body as octet-stream
            return [f"{label}: a body was sent without Content-Type; expected {', '.join(content)}"]
        if given not in declared:
            if JSON_MEDIA.match(given) and "application/octet-stream" in declared:
                return [
                    f"{label}: the body was sent as JSON ({given}); the operation takes the raw bytes as "
                    "application/octet-stream (a licence or scanned file is sent as it is)"
                ]
            return [f"{label}: Content-Type {given} is not accepted ({', '.join(content)})"]
        if not JSON_MEDIA.match(given):
            return []
        parsed = _parse_body(given, body)
        if parsed is _NO_BODY:
            return [f"{label}: the body is not valid JSON"]
        request_pointer = _pointer("paths", operation.path, operation.method.lower(), "requestBody")
        schema_pointer = self._absolute(f"{request_pointer}/content/{declared[given].replace('/', '~1')}/schema")
        problems = self.schema_problems(schema_pointer, parsed)
        # A problem is "at /field: ..." or, for the whole body, "at the body: ...": say "body" once.
        return [
            f"{label}: {problem.removeprefix('at ')}"
            if problem.startswith("at the body")
            else f"{label}: body {problem.removeprefix('at ')}"
            for problem in problems
        ]

    def _form_problems(self, label: str, operation: Operation, headers: Mapping[str, str], body: bytes) -> list[str]:
        """`x-request-forms`: the request must match exactly one form (its headers all sent, the other forms'
        headers absent, a body exactly when the form has one)."""
        forms = operation.definition.get("x-request-forms")
        if not forms:
            return []
        form_headers = {str(name).lower() for form in forms for name in form.get("headers", ())}
        sent = {name for name in form_headers if _header(headers, name) is not None}
        matching = [
            form
            for form in forms
            if {str(name).lower() for name in form.get("headers", ())} == sent and bool(form.get("body")) == bool(body)
        ]
        if len(matching) == 1:
            return []
        problems = []
        for form in forms:
            wanted = {str(name).lower() for name in form.get("headers", ())}
            if sent and sent < wanted:
                missing = ", ".join(f"`{name}`" for name in sorted(wanted - sent))
                problems.append(f"{label}: the {form.get('name', '')} form also needs the {missing} header")
        if sent and body:
            problems.append(f"{label}: both a body and the {', '.join(f'`{n}`' for n in sorted(sent))} header(s)")
        if not problems:
            described = "; or ".join(_describe_form(form) for form in forms)
            what = ", ".join(f"`{name}`" for name in sorted(sent)) or "none of the form headers"
            sent_body = "a body" if body else "no body"
            problems.append(f"{label}: the request matches no request form (sent {what}, {sent_body}): {described}")
        return problems


def _describe_form(form: Mapping[str, Any]) -> str:
    names = [f"`{name}`" for name in form.get("headers", ())]
    parts = [f"{form.get('name', 'a form')}: "]
    parts.append(" and ".join(names) + (" headers" if len(names) > 1 else " header") if names else "no such header")
    parts.append(", with a body" if form.get("body") else ", no body")
    return "".join(parts)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _query_values(query: Mapping[str, str | Sequence[str]] | str) -> dict[str, list[str]]:
    if isinstance(query, str):
        return parse_qs(query, keep_blank_values=True)
    return {name: [value] if isinstance(value, str) else list(value) for name, value in query.items()}


def _types(schema: Mapping[str, Any], spec: ContractSpec) -> set[str]:
    if "type" in schema:
        declared = schema["type"]
        return {declared} if isinstance(declared, str) else set(declared)
    found: set[str] = set()
    for key in ("oneOf", "anyOf", "allOf"):
        for sub in schema.get(key, ()):
            found |= _types(spec.resolve(sub), spec)
    return found


def _coerce(raw: str, schema: Mapping[str, Any], spec: ContractSpec) -> Any:
    """A query, header or path value (always text on the wire) as the type its schema names."""
    types = _types(schema, spec)
    if "string" in types or not types:
        return raw
    if "integer" in types and re.fullmatch(r"-?[0-9]+", raw):
        return int(raw)
    if "number" in types:
        try:
            return float(raw)
        except ValueError:
            pass
    if "boolean" in types and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    return _NO_BODY


def _parse_body(given: str, body: Any) -> Any:
    if not isinstance(body, bytes | str):
        return body
    try:
        if JSON_MEDIA.match(given):
            return json.loads(body)
        if given in YAML_MEDIA:
            return yaml.safe_load(body)
    except (ValueError, yaml.YAMLError):
        return _NO_BODY
    return body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
