"""The activation server face (docs/activation-server.md): `/activation` answers a YAML licence file, failures
stay HTTP 200 with the reason phrase `Invalid parameter` or `Activation failed` and a YAML `error: '...'` body;
`/deactivation` answers JSON on success."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from mockcore.fleet import Fleet
from mockcore.http.rendering import CONTRACT_PATH, contract_view, install_error_rendering
from mockcore.rules import ActivationRefused, NotActivated

YAML_MIMETYPE = "application/x-yaml"


def _yaml_message(field: str, text: str) -> str:
    return f"{field}: '" + text.replace("'", "''") + "'\n"


def create_activation_app(fleet: Fleet) -> Flask:
    app = Flask("mockcore.activation")
    install_error_rendering(app, fleet.catalogue)
    # The same contract as the Core instances serve: it describes both servers (operations tagged `activation`
    # are this one's).
    app.add_url_rule(CONTRACT_PATH, "contract", contract_view(), methods=["GET"])

    @app.get("/activation")
    def activation() -> Response:
        args = request.args
        try:
            body = fleet.obtain_licence_file(args.get("key"), args.get("deployment"), args.get("quantity"))
        except ActivationRefused as refused:
            return Response(
                _yaml_message("error", refused.text), status=f"200 {refused.reason}", mimetype=YAML_MIMETYPE
            )
        response = Response(body, status=200, mimetype=YAML_MIMETYPE)
        response.headers["Content-Disposition"] = "attachment; filename=license.yml"
        return response

    @app.get("/deactivation")
    def deactivation() -> Response:
        try:
            fleet.release_slot(request.args.get("key", ""), request.args.get("deployment", ""))
        except NotActivated:
            text = "This deployment is not activated with this activation key."
            return Response(_yaml_message("error", text), status=404, mimetype=YAML_MIMETYPE)
        # JSON (also valid YAML): the vendor's AWS licensing Lambda `JSON.parse`s this answer.
        return jsonify({"success": "The deployment was deactivated."})

    return app
