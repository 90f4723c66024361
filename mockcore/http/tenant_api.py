"""The tenant server's one WSGI app (`mockcore serve --tenants`, docs/guides/team-service.md): the tenant API under
`/_mock/tenants`, and every tenant's faces below a path prefix on the same port.

- `/t/<ID>/<NAME>/...`: the tenant's Core instance NAME, its vendor paths unchanged below the prefix;
- `/t/<ID>/activation_server/...`: the tenant's activation server;
- `/t/<ID>/_mock/...`: the tenant's control plane (`control` in the tenant document), which demands the tenant's
  own control token; it is also served below every face of the tenant, as `mockcore serve` serves it on every port.

A face's Flask app is built the first time a request needs it (mockcore.http.faces.build_face) and kept in a
bounded cache, least recently used first out: an idle tenant holds its fleet only. The tenant API is described in
`mockcore/tenants-openapi.yaml`, served at `/_mock/tenants/openapi.yaml`.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from http import HTTPStatus
from importlib import resources
from typing import Any

from flask import Flask, Response, has_request_context, request

from mockcore.catalogue import Catalogue
from mockcore.config import ACTIVATION_FACE
from mockcore.fleet import StoreError
from mockcore.http.control_api import TOKEN_HEADER
from mockcore.http.faces import Face, build_face
from mockcore.http.rendering import install_error_rendering, json_response, read_body
from mockcore.lifecycle import format_expiration
from mockcore.tenants import Tenant, TenantError, TenantRegistry, is_tenant_id, parse_tenant_request

TENANT_PREFIX = "/t/"
CONTROL_SEGMENT = "/_mock"  # /t/<ID>/_mock/...: the tenant's control plane (no instance name starts with `_`)
CREATE_LIMIT = 512 * 1024  # a POST body: room for the largest overrides document and the rest
DEFAULT_FACE_CACHE = 256  # faces kept built (~0.3 MB each); the others are built again when next asked
OPENAPI_FILE = "tenants-openapi.yaml"

StartResponse = Callable[..., Any]
log = logging.getLogger("mockcore.tenants")


def tenant_urls(base: str, tenant: Tenant) -> dict[str, str]:
    """Face name -> base URL of `tenant` on the server at `base` (scheme://host:port, no trailing slash)."""
    prefix = f"{base}{TENANT_PREFIX}{tenant.id}"
    return {**{name: f"{prefix}/{name}" for name in tenant.fleet.names}, ACTIVATION_FACE: f"{prefix}/{ACTIVATION_FACE}"}


def tenant_document(base: str, tenant: Tenant) -> dict[str, Any]:
    """What POST /_mock/tenants answers (GET /_mock/tenants/<ID> answers it without the control token)."""
    urls = tenant_urls(base, tenant)
    return {
        "tenant": tenant.id,
        "instances": {name: urls[name] for name in tenant.fleet.names},
        "activation_server": urls[ACTIVATION_FACE],
        "control": f"{base}{TENANT_PREFIX}{tenant.id}",
        "apikey": tenant.fleet.config.resolved_apikey,
        "control_token": tenant.control_token,
        "keys": [
            {"key": k.key, "slots": k.slots, "expires": format_expiration(k.terms.expires)}
            for k in tenant.fleet.activation_keys()
        ],
        "journal_cap": tenant.fleet.journal_cap,
        **{name: value for name, value in tenant.summary().items() if name not in ("tenant", "instances")},
    }


def _error(status: int, text: str, start_response: StartResponse) -> list[bytes]:
    body = json.dumps({"err": text}).encode()
    start_response(f"{status} {HTTPStatus(status).phrase}", _json_headers(len(body)))
    return [body]


def _store_unusable(error: StoreError, start_response: StartResponse) -> list[bytes]:
    """503 for a registry kept in PostgreSQL that cannot be used: the reason in one short line (the store's
    messages name no server address; the log has the whole error)."""
    log.error("the state store cannot be used: %s", error)
    reason = " ".join(str(error).split())[:300]
    return _error(503, f"The state store cannot be used. {reason}", start_response)


def _json_headers(length: int) -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), ("Content-Length", str(length))]


def _token_matches(given: str | None, expected: str | None) -> bool:
    return given is not None and expected is not None and hmac.compare_digest(given.encode(), expected.encode())


class TenantServerApp:
    """The WSGI app of a tenant server. `control_token`: what the tenant API demands (None: open). `base_url`: the
    server's own base URL, for URLs made outside a request (inside one, the request's host is used, so the URLs
    handed out are the ones the client reached the server by)."""

    def __init__(
        self,
        registry: TenantRegistry,
        *,
        control_token: str | None = None,
        base_url: Callable[[], str] = lambda: "",
        face_cache: int = DEFAULT_FACE_CACHE,
    ) -> None:
        self.registry = registry
        self.control_token = control_token
        self.base_url = base_url
        self._face_cache = face_cache
        self._faces: OrderedDict[tuple[str, str], Face] = OrderedDict()
        self._faces_lock = threading.Lock()
        self.api = self._create_api()

    # Faces, built when first asked

    def face(self, tenant: Tenant, name: str) -> Face:
        """The tenant's face `name`, built now if it is not in the cache (or was built for another fleet)."""
        key = (tenant.id, name)
        with self._faces_lock:
            face = self._faces.get(key)
            if face is not None and face.wsgi.fleet is tenant.fleet:
                self._faces.move_to_end(key)
                return face
        face = build_face(
            tenant.fleet,
            name,
            lambda: tenant_urls(self._base(), tenant),
            lambda: {face: self.face(tenant, face).wsgi for face in (*tenant.fleet.names, ACTIVATION_FACE)},
            tenant.control_token,
        )
        with self._faces_lock:
            for cached in [k for k in self._faces if not self.registry.holds(k[0])]:
                del self._faces[cached]  # tenants deleted or expired since
            self._faces[key] = face
            while len(self._faces) > self._face_cache:
                self._faces.popitem(last=False)
        return face

    def forget(self, tenant_id: str) -> None:
        with self._faces_lock:
            for key in [k for k in self._faces if k[0] == tenant_id]:
                del self._faces[key]

    def cached_faces(self) -> int:
        with self._faces_lock:
            return len(self._faces)

    def _base(self) -> str:
        return request.host_url.rstrip("/") if has_request_context() else self.base_url()

    # WSGI

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if not path.startswith(TENANT_PREFIX):
            return self.api(environ, start_response)
        tenant_id, _, below = path[len(TENANT_PREFIX) :].partition("/")
        try:  # an id of another form is no tenant's: the registry is not asked
            tenant = self.registry.touch(tenant_id) if is_tenant_id(tenant_id) else None
        except StoreError as exc:  # a registry kept in PostgreSQL that cannot be reached
            return _store_unusable(exc, start_response)
        if tenant is None:
            return _error(404, "Unknown tenant.", start_response)
        below = "/" + below
        if below == CONTROL_SEGMENT or below.startswith(CONTROL_SEGMENT + "/"):
            name, script, path_info = ACTIVATION_FACE, TENANT_PREFIX + tenant_id, below
        else:
            name, _, rest = below[1:].partition("/")
            script, path_info = f"{TENANT_PREFIX}{tenant_id}/{name}", "/" + rest
            if name not in tenant.fleet.names and name != ACTIVATION_FACE:
                return _error(404, "This tenant has no such instance.", start_response)
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "").rstrip("/") + script
        environ["PATH_INFO"] = path_info
        try:
            face = self.face(tenant, name)
        except StoreError as exc:
            return _store_unusable(exc, start_response)
        return face.wsgi(environ, start_response)

    # The tenant API

    def _create_api(self) -> Flask:
        app = Flask("mockcore.tenants")
        install_error_rendering(app, Catalogue())
        registry = self.registry

        @app.errorhandler(TenantError)
        def tenant_error(error: TenantError) -> Response:
            return json_response({"err": error.text}, error.status)

        def authorise(tenant: Tenant | None = None) -> None:
            """The server's control token, when it has one; for one tenant's own URL, its token will do too."""
            if self.control_token is None:
                return
            given = request.headers.get(TOKEN_HEADER)
            if given is None:
                raise TenantError(401, f"The tenant API needs the {TOKEN_HEADER} header.")
            if not (
                _token_matches(given, self.control_token)
                or (tenant is not None and _token_matches(given, tenant.control_token))
            ):
                raise TenantError(403, f"Wrong {TOKEN_HEADER}.")

        def known(tenant_id: str) -> Tenant:
            tenant = registry.get(tenant_id) if is_tenant_id(tenant_id) else None
            if tenant is None:
                authorise()
                raise TenantError(404, "Unknown tenant.")
            authorise(tenant)
            return tenant

        @app.get("/_mock/health")
        def health() -> Response:
            return json_response({"status": "ok"})

        @app.get("/_mock/tenants/openapi.yaml")
        def openapi() -> Response:
            text = resources.files("mockcore").joinpath(OPENAPI_FILE).read_bytes()
            return Response(text, mimetype="application/yaml")

        @app.post("/_mock/tenants")
        def create() -> Response:
            authorise()
            body = read_body(CREATE_LIMIT)
            try:
                doc = json.loads(body.decode("utf-8")) if body.strip() else {}
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                raise TenantError(400, f"The body is not JSON: {exc}") from exc
            tenant = registry.create(parse_tenant_request(doc, registry.limits))
            return json_response(tenant_document(self._base(), tenant), 201)

        @app.get("/_mock/tenants")
        def listing() -> Response:
            authorise()
            limits = registry.limits
            return json_response(
                {
                    "tenants": registry.summaries(),
                    "max_tenants": limits.max_tenants,
                    "max_instances": limits.max_instances,
                    "max_keys": limits.max_keys,
                    "journal_cap": limits.journal_cap,
                    "idle_timeout": limits.idle_timeout,
                }
            )

        @app.get("/_mock/tenants/<tenant_id>")
        def one(tenant_id: str) -> Response:
            document = tenant_document(self._base(), known(tenant_id))
            del document["control_token"]
            return json_response(document)

        @app.delete("/_mock/tenants/<tenant_id>")
        def delete(tenant_id: str) -> Response:
            known(tenant_id)
            registry.delete(tenant_id)
            self.forget(tenant_id)
            return json_response({"deleted": tenant_id})

        return app
