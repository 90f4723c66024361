"""The scan endpoints of a Core instance (docs/responses.md, scans): `POST /file`, `GET /file/{data_id}`."""

from __future__ import annotations

from flask import Flask, Response, request

from mockcore.fleet import Fleet
from mockcore.http.rendering import json_response, read_body

SCAN_LIMIT = 64 * 1024 * 1024


def register_scan_routes(app: Flask, fleet: Fleet, name: str) -> None:
    def caller() -> None:
        fleet.authenticate(name, request.headers.get("apikey"), required=False)

    @app.post("/file")
    def scan() -> Response:
        caller()
        body = read_body(SCAN_LIMIT)
        return json_response({"data_id": fleet.scan(name, body, request.headers.get("filename", ""))})

    @app.get("/file/<data_id>")
    def scan_result(data_id: str) -> Response:
        caller()
        return json_response(fleet.scan_result(name, data_id))
