"""Scans as clients use them (docs/responses.md, Scans), over real HTTP: the whole result the vendor's
`AnalysisResult` describes, its times on the fleet clock, `POST /file/sync`, the 411 for a body without its length,
and the `callbackurl` header."""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import pytest
import requests

from contracts.spec import ContractSpec
from mockcore.fleet import KeySpec
from mockcore.http.core_api import create_core_app
from mockcore.rules import RULES
from mockcore.scanning import EICAR, Progression
from tests.client import CoreClient
from tests.conftest import FleetFactory, RunningFleet
from tests.test_core_endpoints import _bring, _openapi, assert_vendor_schema
from tests.test_openapi_findings import _raw_exchange

ANALYSIS_RESULT = "#/components/schemas/AnalysisResult"
STAMP_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.000Z")
LENGTH_REQUIRED = (411, {"err": "Missing Content-Length header."})
CALLBACK_INVALID = (400, {"err": "Callback url is invalid."})
CALLBACK_UNSUPPORTED = (403, {"err": "callbackurl is not supported"})
SCAN_BACKUP = (403, {"err": "This instance is a backup and is not allowed to process files."})
SCAN_UNLICENSED = (403, {"err": "This instance is not licensed to process files."})

# Vendor fields of AnalysisResult the emulator does not send: reports of engines and features it has not
# (docs/responses.md, Scans). Every other field the vendor describes is in every result.
NOT_SENT = frozenset(
    {
        "dlp_info",
        "download_info",
        "extraction_info",
        "filetype_info",
        "opswatfilescan_info",
        "vulnerability_info",
        "yara",
        "file_info.signer_infos",
        "file_info.receive_data_timestamp",
        "file_info.upload_time",
        "process_info.hash_time",
        "process_info.processing_time_details",
        "process_info.post_processing.sanitization_details",
    }
)
# What clients read (a public Assemblyline service among them: queue_time, processing_time, actions_failed,
# actions_ran), with the type each has.
CLIENT_READS: Mapping[str, type | tuple[type, ...]] = {
    "data_id": str,
    "process_info.progress_percentage": int,
    "process_info.result": str,
    "process_info.profile": str,
    "process_info.blocked_reason": str,
    "process_info.file_type_skipped_scan": bool,
    "process_info.queue_time": int,
    "process_info.processing_time": int,
    "process_info.user_agent": str,
    "process_info.username": str,
    "process_info.verdicts": list,
    "process_info.post_processing.actions_failed": str,
    "process_info.post_processing.actions_ran": str,
    "process_info.post_processing.converted_destination": str,
    "process_info.post_processing.converted_to": str,
    "process_info.post_processing.copy_move_destination": str,
    "scan_results.scan_details": dict,
    "scan_results.scan_all_result_i": int,
    "scan_results.scan_all_result_a": str,
    "scan_results.start_time": str,
    "scan_results.total_time": int,
    "scan_results.total_avs": int,
    "scan_results.progress_percentage": int,
    "scan_results.data_id": str,
    "file_info.display_name": str,
    "file_info.file_size": int,
    "file_info.file_type": str,
    "file_info.file_type_description": str,
    "file_info.md5": str,
    "file_info.sha1": str,
    "file_info.sha256": str,
    "file_info.upload_timestamp": str,
}
ENGINE_FIELDS = {"def_time", "eng_id", "location", "scan_result_i", "scan_time", "threat_found", "wait_time"}


@pytest.fixture(scope="module")
def spec() -> ContractSpec:
    return ContractSpec.load()


# Helpers


def _field(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        assert isinstance(doc, dict) and part in doc, dotted
        doc = doc[part]
    return doc


def _resolve(node: Any) -> Any:
    document = _openapi()
    while isinstance(node, dict) and ("$ref" in node or len(node.get("allOf", ())) == 1):
        if "$ref" in node:
            target: Any = document
            for part in node["$ref"][2:].split("/"):
                target = target[part]
            node = target
        else:
            node = node["allOf"][0]
    return node


def _missing(schema: Any, doc: Any, prefix: str = "") -> set[str]:
    """The vendor's fields (nested objects too) that `doc` lacks, as dotted paths; `scan_details` is keyed by
    engine name, so its example key is not a field."""
    schema, found = _resolve(schema), set()
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        if not isinstance(doc, dict) or name not in doc:
            found.add(path)
        elif path != "scan_results.scan_details":
            found |= _missing(sub, doc[name], path + ".")
    return found


def assert_full_result(result: dict[str, Any]) -> None:
    """Valid against the vendor's AnalysisResult, with every field it describes but NOT_SENT, and the fields
    clients read of the types they expect."""
    assert_vendor_schema(result, ANALYSIS_RESULT)
    assert _missing({"$ref": ANALYSIS_RESULT}, result) == NOT_SENT
    for dotted, kind in CLIENT_READS.items():
        value = _field(result, dotted)
        assert isinstance(value, kind) and (kind is bool or not isinstance(value, bool)), (dotted, value)
    for engine, report in result["scan_results"]["scan_details"].items():
        assert set(report) == ENGINE_FIELDS, engine


def _ok(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


def _refused(response: requests.Response, expected: tuple[int, dict[str, str]]) -> None:
    assert (response.status_code, response.json()) == expected, response.text
    assert response.headers["Content-Type"].startswith("application/json")


def _sync(client: CoreClient, body: bytes, filename: str = "sample.txt", **headers: str) -> requests.Response:
    return client.request("POST", "/file/sync", data=body, headers={"filename": filename, **headers})


def _result(client: CoreClient, data_id: str) -> dict[str, Any]:
    return _ok(client.request("GET", f"/file/{data_id}"))


def _active(running: RunningFleet, name: str = "a") -> CoreClient:
    return _bring(running, "active", name)


def _raw(url: str, request: bytes) -> tuple[int, bytes]:
    status, _, body = _raw_exchange(url, request)
    return status, body


def _scans_made(running: RunningFleet, name: str = "a") -> int:
    return int(running.fleet.dump()["instances"][name]["scan_counter"])


# The result


@pytest.mark.parametrize(
    ("body", "verdict"),
    [
        pytest.param(EICAR, (1, "Infected", "Blocked", "Infected"), id="eicar"),
        pytest.param(b"just some text\n", (0, "No Threat Detected", "Allowed", ""), id="clean"),
    ],
)
def test_a_result_is_the_vendors_whole_analysis_result(
    fleet3: RunningFleet, spec: ContractSpec, body: bytes, verdict: tuple[int, str, str, str]
) -> None:
    client = _active(fleet3)
    data_id = _ok(client.scan(body, "sample.com"))["data_id"]
    response = client.request("GET", f"/file/{data_id}")
    result = _ok(response)
    assert_full_result(result)
    assert (
        spec.validate_response("GET", f"/file/{data_id}", 200, response.headers["Content-Type"], response.content) == []
    )
    index, text, outcome, reason = verdict
    scan, process = result["scan_results"], result["process_info"]
    assert (scan["scan_all_result_i"], scan["scan_all_result_a"], process["result"]) == (index, text, outcome)
    assert process["blocked_reason"] == reason and process["blocked_reasons"] == ([reason] if reason else [])
    assert process["verdicts"] == [text]
    assert process["profile"] == "File process" and process["file_type_skipped_scan"] is False
    assert process["post_processing"] == dict.fromkeys(
        ("actions_failed", "actions_ran", "converted_destination", "converted_to", "copy_move_destination"), ""
    )
    assert result["data_id"] == scan["data_id"] == data_id
    assert process["progress_percentage"] == scan["progress_percentage"] == 100
    info = result["file_info"]
    assert info["display_name"] == "sample.com" and info["file_size"] == len(body)
    assert (info["md5"], info["sha1"], info["sha256"]) == tuple(
        hashlib.new(name, body).hexdigest() for name in ("md5", "sha1", "sha256")
    )
    assert (info["file_type"], info["file_type_description"], info["type_category"]) == (
        "text/plain",
        "ASCII text",
        ["T"],
    )
    engines = {e["eng_name"]: e for e in _ok(client.request("GET", "/stat/engines"))}
    assert set(scan["scan_details"]) == set(engines) and scan["total_avs"] == len(engines)
    for name, report in scan["scan_details"].items():
        av = engines[name]["engine_type"] == "av"
        assert report["eng_id"] == engines[name]["eng_id"] and report["location"] == "local"
        assert report["def_time"] == engines[name]["def_time"]  # the definitions /stat/engines reports
        assert report["scan_result_i"] == (index if av else 0)
        assert report["threat_found"] == ("EICAR-Test-File" if av and index == 1 else "")


@pytest.mark.parametrize(
    ("body", "mime", "category"),
    [
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf", "P", id="pdf"),
        pytest.param(b"PK\x03\x04" + bytes(26), "application/zip", "A", id="zip"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(8), "image/png", "G", id="png"),
        pytest.param("grüß dich\n".encode(), "text/plain", "T", id="utf8-text"),
        pytest.param(bytes(range(256)), "application/octet-stream", "O", id="binary"),
    ],
)
def test_the_file_type_follows_the_content(fleet3: RunningFleet, body: bytes, mime: str, category: str) -> None:
    client = _active(fleet3)
    info = _result(client, _ok(client.scan(body))["data_id"])["file_info"]
    assert (info["file_type"], info["type_category"]) == (mime, [category])
    assert info["file_type_description"]


def test_the_submitter_and_its_user_agent(fleet3: RunningFleet) -> None:
    client = _active(fleet3)
    headers = {"user_agent": "webscan"}
    known = _ok(client.request("POST", "/file", data=b"x", headers=headers))["data_id"]
    anonymous = fleet3.core("a", apikey=None)
    unknown = _ok(anonymous.request("POST", "/file", data=b"x", headers=headers))["data_id"]
    assert {"username": "LOCAL/admin", "user_agent": "webscan"}.items() <= _result(client, known)[
        "process_info"
    ].items()
    assert {"username": "", "user_agent": "webscan"}.items() <= _result(client, unknown)["process_info"].items()


def test_times_follow_the_fleet_clock(fleet3: RunningFleet) -> None:
    fleet = fleet3.fleet
    client = _active(fleet3)
    moment = fleet.now().replace(microsecond=0) + timedelta(days=1)
    fleet.set_clock(moment, frozen=True)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    data_id = _ok(client.scan(b"clean"))["data_id"]
    result = _result(client, data_id)
    assert result["file_info"]["upload_timestamp"] == result["scan_results"]["start_time"] == stamp
    assert (result["process_info"]["queue_time"], result["process_info"]["processing_time"]) == (0, 0)
    assert result["scan_results"]["total_time"] == 0
    # A progression of 10 s of fleet time: the scan's times are the fleet time it has taken so far, then 10 s.
    fleet.set_progression(Progression(scan_seconds=10))
    held = _ok(client.scan(b"held"))["data_id"]
    seen = []
    for seconds in (4, 4, 4, 30):
        fleet.advance_clock(timedelta(seconds=seconds))
        result = _result(client, held)
        process, scan = result["process_info"], result["scan_results"]
        assert STAMP_RE.fullmatch(scan["start_time"]) and scan["start_time"] == stamp
        assert process["processing_time"] == scan["total_time"]
        assert all(report["scan_time"] == scan["total_time"] for report in scan["scan_details"].values())
        seen.append((scan["progress_percentage"], scan["total_time"], process["result"]))
        assert_full_result(result)
    assert seen == [
        (40, 4000, "Processing"),
        (80, 8000, "Processing"),
        (100, 10000, "Allowed"),
        (100, 10000, "Allowed"),
    ]


def test_an_unfinished_result_is_complete_too(fleet3: RunningFleet) -> None:
    client = _active(fleet3)
    fleet3.fleet.set_progression(Progression(scan_polls=2))
    data_id = _ok(client.scan(EICAR))["data_id"]
    result = _result(client, data_id)
    assert_full_result(result)
    scan, process = result["scan_results"], result["process_info"]
    assert (scan["scan_all_result_i"], scan["scan_all_result_a"], process["result"]) == (
        255,
        "In Progress",
        "Processing",
    )
    assert process["verdicts"] == ["In Progress"] and process["blocked_reason"] == ""
    assert all(report["threat_found"] == "" for report in scan["scan_details"].values())


# POST /file/sync


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(EICAR, (1, "Infected", "Blocked"), id="eicar"),
        pytest.param(b"plain", (0, "No Threat Detected", "Allowed"), id="clean"),
    ],
)
def test_sync_answers_the_finished_result(
    fleet3: RunningFleet, spec: ContractSpec, body: bytes, expected: tuple[int, str, str]
) -> None:
    client = _active(fleet3)
    response = _sync(client, body, "sync.bin")
    result = _ok(response)
    assert_full_result(result)
    assert_vendor_schema(result, "#/paths/~1file~1sync/post/responses/200/content/application~1json/schema")
    assert spec.validate_response("POST", "/file/sync", 200, response.headers["Content-Type"], response.content) == []
    scan = result["scan_results"]
    assert (scan["scan_all_result_i"], scan["scan_all_result_a"], result["process_info"]["result"]) == expected
    assert scan["progress_percentage"] == 100 and result["file_info"]["display_name"] == "sync.bin"
    # The scan is kept like any other: its result is there to read again, the same.
    assert _result(client, result["data_id"]) == result


@pytest.mark.parametrize(
    ("state", "expected"),
    [("backup-online", SCAN_BACKUP), ("backup-offline", SCAN_BACKUP), ("unlicensed", SCAN_UNLICENSED)],
)
def test_sync_is_refused_as_post_file_is(
    fleet3: RunningFleet, state: str, expected: tuple[int, dict[str, str]]
) -> None:
    client = _bring(fleet3, state)
    before = fleet3.snapshot()
    _refused(_sync(client, b"hello"), expected)
    _refused(client.scan(b"hello"), expected)
    assert fleet3.snapshot() == before and _scans_made(fleet3, "b") == 0


def test_sync_is_refused_when_expired_empty_or_unknown_key(make_fleet: FleetFactory) -> None:
    running = make_fleet(keys=(KeySpec(slots=2, days=1),))
    client = _active(running)
    _refused(_sync(client, b""), (422, {"err": "File is empty."}))
    _refused(_sync(running.core("a", apikey="0" * 36), b"x"), (403, {"err": "Access denied"}))
    running.fleet.advance_clock(timedelta(days=3))
    _refused(_sync(client, b"hello"), (500, {"err": "License is expired"}))
    assert _scans_made(running) == 0


def test_sync_while_the_progression_holds_the_scan_is_the_vendors_timeout(
    fleet3: RunningFleet, spec: ContractSpec
) -> None:
    """docs/decisions.md, Synchronous scans: 408 with the data_id, then polled as after `POST /file`."""
    client = _active(fleet3)
    fleet3.fleet.set_progression(Progression(scan_polls=2))
    response = _sync(client, EICAR)
    assert response.status_code == 408 and set(response.json()) == {"data_id"}
    assert spec.validate_response("POST", "/file/sync", 408, response.headers["Content-Type"], response.content) == []
    data_id = response.json()["data_id"]
    polls = [_result(client, data_id)["scan_results"] for _ in range(3)]
    assert [(p["progress_percentage"], p["scan_all_result_a"]) for p in polls] == [
        (33, "In Progress"),
        (66, "In Progress"),
        (100, "Infected"),
    ]
    # Fleet time: held until the clock has gone past the progression's seconds.
    fleet3.fleet.set_progression(Progression(scan_seconds=5))
    fleet3.fleet.freeze_clock()
    assert _sync(client, b"x").status_code == 408
    fleet3.fleet.set_progression(Progression())
    assert _ok(_sync(client, b"x"))["scan_results"]["progress_percentage"] == 100


# 411: a body without its length


def _chunked(client: CoreClient, path: str, **headers: str) -> requests.Response:
    return client.request("POST", path, data=iter([b"hello ", b"world"]), headers=headers)


@pytest.mark.parametrize("path", ["/file", "/file/sync"])
def test_a_chunked_body_is_411(fleet3: RunningFleet, spec: ContractSpec, path: str) -> None:
    client = _active(fleet3)
    response = _chunked(client, path)
    assert response.request.headers.get("Transfer-Encoding") == "chunked"  # requests sends a generator chunked
    _refused(response, LENGTH_REQUIRED)
    assert spec.validate_response("POST", path, 411, response.headers["Content-Type"], response.content) == []
    # Whatever the licence: the request's shape is checked before it.
    _refused(_chunked(fleet3.core("c"), path), LENGTH_REQUIRED)
    _refused(_chunked(client, path, callbackurl="not a url"), LENGTH_REQUIRED)
    assert _scans_made(fleet3) == 0
    # The connection stays usable: the next request on it is answered.
    assert _ok(client.scan(b"after"))["data_id"]


@pytest.mark.parametrize("path", ["/file", "/file/sync"])
@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
def test_no_content_length_is_411_and_a_zero_one_is_an_empty_file(
    fleet3: RunningFleet, path: str, version: str
) -> None:
    _active(fleet3)
    head = f"POST {path} {version}\r\nHost: mockcore\r\napikey: {fleet3.apikey}\r\nConnection: close\r\n"
    status, body = _raw(fleet3.urls["a"], f"{head}\r\n".encode())
    assert (status, body) == (411, b'{"err": "Missing Content-Length header."}')
    status, body = _raw(fleet3.urls["a"], f"{head}Content-Length: 0\r\n\r\n".encode())
    assert (status, body) == (422, b'{"err": "File is empty."}')
    status, _ = _raw(fleet3.urls["a"], f"{head}Content-Length: 5\r\n\r\nhello".encode())
    assert status == 200
    assert _scans_made(fleet3) == 1


def test_in_process_an_empty_body_without_a_length_is_an_empty_file(fleet3: RunningFleet) -> None:
    """docs/decisions.md, Synchronous scans and lengths: an in-process WSGI caller frames no body (werkzeug's test
    client sends no length for an empty one), so only a chunked body is 411 there."""
    _active(fleet3)
    client = create_core_app(fleet3.fleet, "a").test_client()
    headers = {"apikey": fleet3.apikey}
    empty = client.post("/file", data=b"", headers=headers)
    assert "Content-Length" not in empty.request.headers
    assert (empty.status_code, empty.get_json()) == (422, {"err": "File is empty."})
    chunked = client.post("/file", data=b"5\r\nhello\r\n0\r\n\r\n", headers={**headers, "Transfer-Encoding": "chunked"})
    assert (chunked.status_code, chunked.get_json()) == LENGTH_REQUIRED


# callbackurl


class _Listener:
    """An HTTP server that counts the requests it gets (the emulator must send it none)."""

    def __init__(self) -> None:
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/listenback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[_Listener]:
    found = _Listener()
    yield found
    found.close()


VALID_CALLBACKS = [
    "http://10.0.1.100:8081/listenback",
    "https://example.com",
    "HTTPS://hooks.example.com/mdcore?token=a1&x=%20",
    "http://[::1]:8080/x",
    "http://localhost:65535/",
]
INVALID_CALLBACKS = [
    "",
    "10.0.1.100:8081/listenback",
    "ftp://example.com/x",
    "http://",
    "http://example.com:0/",
    "http://example.com:65536/",
    "http://exa mple.com/",
    "http://example.com/a b",
    "http://-example.com/",
    "http://example..com/",
    "http://user@example.com/",
    "http://example.com/" + "a" * 2048,
]


def test_a_valid_callbackurl_is_taken_and_never_called(fleet3: RunningFleet, listener: _Listener) -> None:
    client = _active(fleet3)
    for url in [listener.url, *VALID_CALLBACKS]:
        data_id = _ok(client.request("POST", "/file", data=EICAR, headers={"callbackurl": url}))["data_id"]
        assert _result(client, data_id)["scan_results"]["scan_all_result_i"] == 1
    assert _scans_made(fleet3) == len(VALID_CALLBACKS) + 1
    assert listener.hits == []  # not even once the results were read


@pytest.mark.parametrize("url", INVALID_CALLBACKS)
def test_an_invalid_callbackurl_is_the_vendors_400(fleet3: RunningFleet, spec: ContractSpec, url: str) -> None:
    client = _active(fleet3)
    response = client.request("POST", "/file", data=b"x", headers={"callbackurl": url})
    _refused(response, CALLBACK_INVALID)
    assert spec.validate_response("POST", "/file", 400, response.headers["Content-Type"], response.content) == []
    assert _scans_made(fleet3) == 0


def test_the_contract_and_the_rule_share_the_callbackurl_format(spec: ContractSpec) -> None:
    parameter = next(p for _, p in spec.parameters(spec.operation("submitFile")) if p["name"] == "callbackurl")
    assert parameter["schema"]["pattern"] == RULES.CALLBACK_URL
    assert parameter["schema"]["maxLength"] == RULES.CALLBACK_URL_MAX
    for url in VALID_CALLBACKS:
        assert re.fullmatch(RULES.CALLBACK_URL, url), url
    for url in INVALID_CALLBACKS:
        assert not re.fullmatch(RULES.CALLBACK_URL, url) or len(url) > RULES.CALLBACK_URL_MAX, url


def test_sync_takes_no_callbackurl(fleet3: RunningFleet, spec: ContractSpec, listener: _Listener) -> None:
    client = _active(fleet3)
    for url in (listener.url, "not a url"):
        response = _sync(client, b"x", callbackurl=url)
        _refused(response, CALLBACK_UNSUPPORTED)
        assert (
            spec.validate_response("POST", "/file/sync", 403, response.headers["Content-Type"], response.content) == []
        )
    assert _scans_made(fleet3) == 0 and listener.hits == []


def test_sync_is_no_scan_id(fleet3: RunningFleet) -> None:
    client = _active(fleet3)
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, "/file/sync")
        _refused(response, (405, {"err": "Method not allowed."}))
        assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert client.request("GET", "/file/syncs").status_code == 404  # an id like any other
