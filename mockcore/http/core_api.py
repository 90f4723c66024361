"""The Core instance face (docs/responses.md): one Flask app per instance, each view parse -> one fleet call ->
render."""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import NotFound
from werkzeug.routing import IntegerConverter

from mockcore.accounts import User
from mockcore.activation import MAX_LICENCE_BYTES
from mockcore.catalogue import ErrorCode, LicenceError
from mockcore.fleet import Fleet
from mockcore.http.rendering import (
    CONTRACT_PATH,
    contract_view,
    install_error_rendering,
    json_object,
    json_response,
    read_body,
    string_field,
)
from mockcore.http.scan_api import register_scan_routes

BACKUP_REGISTERED = "The backup MetaDefender Core instance is now registered as a backup one."
BACKUP_REMOVED = "This MetaDefender Core instance is no longer registered as a backup one."
NOMINATED = "This MetaDefender Core instance is now fully activated and allowed to process files."


class AsciiIntegerConverter(IntegerConverter):
    """A whole number in ASCII digits: werkzeug's `int` matches any Unicode digit (`/admin/user/٢` is user 2),
    where the contract's integer path parameter is digits 0-9."""

    regex = r"[0-9]{1,18}"  # bounded: a longer run of digits is no id here (404), not an overflow


def create_core_app(fleet: Fleet, name: str) -> Flask:
    app = Flask(f"mockcore.core.{name}")
    app.url_map.converters["digits"] = AsciiIntegerConverter
    install_error_rendering(app, fleet.catalogue)
    # The contract (contracts/openapi.yaml) as JSON, for tools such as schemathesis; no apikey needed.
    app.add_url_rule(CONTRACT_PATH, "contract", contract_view(fleet.profile.absent), methods=["GET"])

    @app.before_request
    def served_by_the_profile() -> None:
        """A path the emulated line of Core does not have is unknown there: 404, whatever the method."""
        if request.path in fleet.profile.absent:
            raise NotFound()

    def caller(action: str) -> User | None:
        """The caller, once it holds what `action` needs (mockcore.rules.NEEDS)."""
        return fleet.authorise(name, action, request.headers.get("apikey"))

    def apikey() -> str | None:
        return request.headers.get("apikey")

    def success() -> Response:
        return json_response({"success": True})

    # Sessions and users

    @app.post("/login")
    def login() -> Response:
        doc = json_object()
        user, password = string_field(doc, "user"), string_field(doc, "password")
        return json_response(fleet.login(name, user, password))

    @app.post("/logout")
    def logout() -> Response:
        caller("logout")
        fleet.logout(name, request.headers["apikey"])
        return json_response({"response": "Logout success"})

    @app.get("/user")
    def current_user() -> Response:
        user = caller("user")
        assert user is not None
        return json_response(user.public())

    @app.post("/user/changepassword")
    def change_password() -> Response:
        caller("change-password")
        doc = json_object()
        old, new = string_field(doc, "old_password"), string_field(doc, "new_password")
        fleet.change_password(name, apikey(), old, new)
        return success()

    @app.put("/admin/user/<digits:user_id>")
    def set_user_apikey(user_id: int) -> Response:
        caller("set-user-apikey")
        key = string_field(json_object(), "api_key")
        return json_response(fleet.set_apikey(name, apikey(), user_id, key))

    @app.post("/admin/user")
    def create_user() -> Response:
        caller("create-user")
        return json_response(fleet.create_user(name, apikey(), json_object()))

    @app.post("/admin/role")
    def create_role() -> Response:
        caller("create-role")
        return json_response(fleet.create_role(name, apikey(), json_object()))

    # Licence

    @app.get("/admin/license")
    def licence_info() -> Response:
        caller("licence-read")
        return json_response(fleet.licence_info(name))

    @app.post("/admin/license")
    def upload_licence() -> Response:
        caller("licence-write")
        fleet.upload_licence(name, read_body(MAX_LICENCE_BYTES, too_large=None))
        return success()

    @app.post("/admin/license/activation")
    def activate() -> Response:
        caller("licence-write")
        doc = json_object()
        key = string_field(doc, "activationKey")
        string_field(doc, "comment", required=False)
        fleet.activate(name, key or "", fleet.rules.activation_quantity(doc.get("quantity", 1)))
        return success()

    @app.post("/admin/license/deactivation")
    def deactivate() -> Response:
        caller("licence-write")
        fleet.deactivate(name)
        return success()

    @app.get("/admin/license/backup")
    def backup_flag() -> Response:
        caller("licence-read")
        return json_response({"is_backup": fleet.is_backup(name)})

    @app.post("/admin/license/backup")
    def register_backup() -> Response:
        caller("licence-write")
        key = request.headers.get("activation-key")
        production = request.headers.get("active-deployment-id")
        body = read_body(MAX_LICENCE_BYTES, too_large=None)
        if fleet.rules.backup_registration(key, production, body):
            fleet.register_backup_online(name, key or "", production or "")
        else:
            fleet.register_backup_offline(name, body)
        return json_response({"success": BACKUP_REGISTERED})

    @app.delete("/admin/license/backup")
    def unregister_backup() -> Response:
        caller("licence-write")
        fleet.unregister_backup(name)
        return json_response({"success": BACKUP_REMOVED})

    @app.post("/admin/license/backup/nomination")
    def nominate() -> Response:
        caller("licence-write")
        fleet.nominate(name)
        return json_response({"success": NOMINATED})

    # Product, health, engines

    @app.get("/version")
    def version() -> Response:
        caller("version")
        return json_response({"product_id": "MSCL", "version": fleet.config.version})

    @app.get("/readyz")
    def readyz() -> Response:
        verbose = request.args.get("verbose")  # a boolean: `true` or `false`, in any case
        if verbose is not None and verbose.lower() not in ("true", "false"):
            raise LicenceError(ErrorCode.BAD_REQUEST)
        status, engines = fleet.readiness(name)
        code = fleet.rules.ready_status(status)
        if verbose is None or verbose.lower() == "false":
            return json_response({}, code)
        return json_response(
            {
                "database": {"status": True},
                "license": {"status": status},
                "scan_queue": {"max_number_in_queue": 1500, "number_in_queue": 0, "threshold": 80, "status": True},
                "number_active_av_engines": {
                    "threshold": 1,
                    "status": any(e["active"] and e["engine_type"] == "av" for e in engines),
                },
                "engines": [{"engine_id": e["eng_id"], "required": False, "status": e["active"]} for e in engines],
            },
            code,
        )

    @app.get("/stat/nodes")
    def nodes() -> Response:
        caller("nodes")
        return json_response(fleet.nodes(name))

    @app.get("/stat/engines")
    def engines() -> Response:
        caller("engines")
        return json_response(fleet.engines(name))

    @app.post("/admin/engine/<eng_id>/enable")
    def enable_engine(eng_id: str) -> Response:
        caller("engine-change")
        fleet.set_engine(name, eng_id, True)
        return json_response({"result": "Engine is enabled"})

    @app.post("/admin/engine/<eng_id>/disable")
    def disable_engine(eng_id: str) -> Response:
        caller("engine-change")
        fleet.set_engine(name, eng_id, False)
        return json_response({"result": "Engine is disabled"})

    register_scan_routes(app, fleet, name)

    return app
