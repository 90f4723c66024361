"""`mockcore demo` as a real subprocess: both failovers end to end, against a fleet of its own and against the URL of
a running `mockcore serve`; the JSON lines checked step by step (request, answer, the fleet after it)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from mockcore.catalogue import DEFAULT_ENTRIES, ErrorCode
from mockcore.cli import main
from tests.serving import MockcoreProcess, mockcore_command

KEY = "DEMO-KEYA-AAAA-BBBB-CCCC-DDDD-EEEE"
TOKEN = "demo-token"
DEMO_TIMEOUT = 120

ONLINE_STEPS = [
    "login-prod",
    "login-backup",
    "activate-prod",
    "read-prod-deployment",
    "register-backup-online",
    "backup-flag",
    "backup-refuses-scan",
    "nominate-backup",
    "prod-lost-licence",
    "backup-scans",
    "backup-scan-result",
    "prod-refuses-scan",
]
OFFLINE_STEPS = [
    "login-prod",
    "login-backup",
    "read-prod-deployment",
    "obtain-prod-file",
    "upload-prod-file",
    "register-backup-offline",
    "nomination-refused",
    "read-backup-deployment",
    "deactivate-prod",
    "free-prod-slot",
    "obtain-backup-file",
    "unregister-backup",
    "upload-backup-file",
    "backup-scans",
    "backup-scan-result",
    "prod-refuses-scan",
]


def _err(code: ErrorCode) -> str:
    return DEFAULT_ENTRIES[code].text


def demo(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*mockcore_command(), "demo", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        env={**os.environ, "COLUMNS": "120", **(env or {})},
    )


def events(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    return [json.loads(line) for line in lines]


def steps_by_id(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["id"]: doc for doc in docs if doc["event"] == "step"}


def states(step: dict[str, Any]) -> dict[str, str]:
    return {name: inst["state"] for name, inst in step["state"]["instances"].items()}


def holders(step: dict[str, Any]) -> list[str | None]:
    return [h["instance"] for h in step["state"]["keys"][0]["holders"]]


def check_shape(docs: list[dict[str, Any]], demo_name: str, ids: list[str]) -> None:
    assert [doc["event"] for doc in docs] == ["start", *["step"] * len(ids), "outcome"]
    start, outcome = docs[0], docs[-1]
    assert start["demo"] == demo_name and start["steps"] == len(ids)
    assert (start["prod"], start["backup"]) == ("prod", "backup")
    steps = docs[1:-1]
    assert [s["id"] for s in steps] == ids
    assert [s["index"] for s in steps] == list(range(1, len(ids) + 1))
    for step in steps:
        assert step["ok"] is True and step["problem"] is None, step
        assert step["request"]["url"].startswith(("http://127.0.0.1:", "https://127.0.0.1:"))
        assert set(step["state"]["instances"]) == {"prod", "backup"}
    assert outcome["ok"] is True and outcome["steps_run"] == len(ids)
    assert outcome["states"] == {"prod": "unlicensed", "backup": "active"}
    proved = outcome["proved"]
    assert (proved["new_production"], proved["old_production"]) == ("backup", "prod")
    assert proved["refusal"] == {"instance": "prod", "status": 403, "err": _err(ErrorCode.SCAN_UNLICENSED)}


def check_proof(steps: dict[str, dict[str, Any]], instances: dict[str, str]) -> None:
    scans = steps["backup-scans"]
    assert scans["request"]["method"] == "POST" and scans["request"]["url"] == instances["backup"] + "/file"
    data_id = scans["response"]["body"]["data_id"]
    assert len(data_id) == 32 and scans["response"]["status"] == 200
    result = steps["backup-scan-result"]
    assert result["request"]["url"] == f"{instances['backup']}/file/{data_id}"
    assert result["response"]["body"]["data_id"] == data_id
    assert result["response"]["body"]["scan_results"]["scan_all_result_a"] == "No Threat Detected"
    refused = steps["prod-refuses-scan"]
    assert refused["request"]["url"] == instances["prod"] + "/file"
    assert refused["response"]["status"] == 403
    assert refused["response"]["body"] == {"err": _err(ErrorCode.SCAN_UNLICENSED)}
    assert all(steps[i]["proof"] for i in ("backup-scans", "backup-scan-result", "prod-refuses-scan"))


def check_online(docs: list[dict[str, Any]]) -> None:
    check_shape(docs, "online-failover", ONLINE_STEPS)
    instances = docs[0]["fleet"]["instances"]
    steps = steps_by_id(docs)
    login = steps["login-prod"]
    assert login["request"]["url"] == instances["prod"] + "/login"
    session = login["response"]["body"]["session_id"]
    activate = steps["activate-prod"]
    assert activate["request"]["method"] == "POST"
    assert activate["request"]["url"] == instances["prod"] + "/admin/license/activation"
    assert activate["request"]["headers"]["apikey"] == session  # the session from the log-in
    assert activate["request"]["body"]["activationKey"] == docs[0]["key"]
    assert (activate["response"]["status"], activate["response"]["body"]) == (200, {"success": True})
    assert states(activate) == {"prod": "active", "backup": "unlicensed"}
    assert holders(activate) == ["prod"]
    assert activate["state"]["instances"]["prod"]["days_left"] > 0
    deployment = steps["read-prod-deployment"]["response"]["body"]["deployment"]
    assert steps["read-prod-deployment"]["response"]["body"]["online_activated"] is True
    register = steps["register-backup-online"]
    assert register["request"]["headers"]["activation-key"] == docs[0]["key"]
    assert register["request"]["headers"]["active-deployment-id"] == deployment
    assert states(register) == {"prod": "active", "backup": "backup-online"}
    assert register["state"]["instances"]["backup"]["backup"] is True
    assert register["state"]["instances"]["backup"]["production"] == "prod"
    assert holders(register) == ["prod"]  # a backup uses no slot
    assert steps["backup-flag"]["response"]["body"] == {"is_backup": True}
    backup_scan = steps["backup-refuses-scan"]
    assert (backup_scan["response"]["status"], backup_scan["response"]["body"]) == (
        403,
        {"err": _err(ErrorCode.SCAN_BACKUP)},
    )
    assert backup_scan["expected"]["error_code"] == "E_SCAN_BACKUP"
    nominate = steps["nominate-backup"]
    assert nominate["request"]["url"] == instances["backup"] + "/admin/license/backup/nomination"
    assert nominate["response"]["status"] == 200
    assert states(nominate) == {"prod": "unlicensed", "backup": "active"}
    assert holders(nominate) == ["backup"]  # the slot moved
    assert nominate["state"]["instances"]["prod"]["reactivate"] is True
    lost = steps["prod-lost-licence"]["response"]["body"]
    assert lost["reactivate"] is True and "days_left" not in lost
    check_proof(steps, instances)


def check_offline(docs: list[dict[str, Any]], logged_in: bool = True) -> None:
    ids = OFFLINE_STEPS if logged_in else OFFLINE_STEPS[2:]
    check_shape(docs, "offline-failover", ids)
    instances, activation = docs[0]["fleet"]["instances"], docs[0]["fleet"]["activation_server"]
    steps = steps_by_id(docs)
    prod_deployment = steps["read-prod-deployment"]["response"]["body"]["deployment"]
    obtain = steps["obtain-prod-file"]
    assert obtain["request"]["url"].startswith(activation + "/activation?key=")
    assert f"deployment={prod_deployment}" in obtain["request"]["url"]
    assert "apikey" not in obtain["request"]["headers"]  # a person at the activation server, not a Core client
    licence_file = obtain["response"]["body"]
    assert obtain["response"]["reason"] == "OK" and f"deployment: {prod_deployment}" in licence_file
    assert holders(obtain) == ["prod"]  # the file took a slot
    upload = steps["upload-prod-file"]
    assert upload["request"]["body"] == licence_file
    assert states(upload) == {"prod": "active", "backup": "unlicensed"}
    assert upload["state"]["instances"]["prod"]["online"] is False
    register = steps["register-backup-offline"]
    assert register["request"]["body"] == licence_file
    assert "activation-key" not in register["request"]["headers"]
    assert states(register) == {"prod": "active", "backup": "backup-offline"}
    refused = steps["nomination-refused"]
    assert refused["response"]["status"] == 400
    assert refused["response"]["body"] == {"err": _err(ErrorCode.NOMINATE_OFFLINE)}
    assert states(refused) == {"prod": "active", "backup": "backup-offline"}  # nothing changed
    backup_deployment = steps["read-backup-deployment"]["response"]["body"]["deployment"]
    assert backup_deployment != prod_deployment
    down = steps["deactivate-prod"]
    assert states(down) == {"prod": "unlicensed", "backup": "backup-offline"}
    assert holders(down) == ["prod"]  # an offline slot stays taken until the activation server is told
    freed = steps["free-prod-slot"]
    assert freed["request"]["url"] == f"{activation}/deactivation?key={docs[0]['key']}&deployment={prod_deployment}"
    assert holders(freed) == []
    own = steps["obtain-backup-file"]
    assert f"deployment: {backup_deployment}" in own["response"]["body"]
    assert holders(own) == ["backup"]
    assert states(steps["unregister-backup"]) == {"prod": "unlicensed", "backup": "unlicensed"}
    final = steps["upload-backup-file"]
    assert final["request"]["body"] == own["response"]["body"]
    assert states(final) == {"prod": "unlicensed", "backup": "active"}
    check_proof(steps, instances)


# Against a fleet of its own


def test_list() -> None:
    runner = CliRunner()
    text = runner.invoke(main, ["demo", "--list"])
    assert text.exit_code == 0, text.output
    assert [line.split()[0] for line in text.output.splitlines()] == ["online-failover", "offline-failover"]
    listed = runner.invoke(main, ["demo", "--list", "--json"])
    assert set(json.loads(listed.output)) == {"online-failover", "offline-failover"}
    unknown = runner.invoke(main, ["demo", "sideways-failover"])
    assert unknown.exit_code == 2 and "online-failover, offline-failover" in unknown.output
    assert runner.invoke(main, ["demo"]).exit_code == 2
    assert runner.invoke(main, ["demo", "online-failover", "--admin", "admin"]).exit_code == 2


def test_online_failover_on_a_fleet_of_its_own() -> None:
    result = demo("online-failover", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    check_online(events(result))


def test_offline_failover_on_a_fleet_of_its_own() -> None:
    result = demo("offline-failover", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    check_offline(events(result))


def test_coloured_output_and_pause_between_steps() -> None:
    result = demo("online-failover", "--pause", stdin="\n" * 20, env={"FORCE_COLOR": "1", "TERM": "xterm-256color"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.count("Press Enter for the next step") == len(ONLINE_STEPS) - 1
    assert "\x1b[" in result.stdout  # colour
    assert "Step 12/12" in result.stdout and "━" in result.stdout  # the progress bar
    assert "Fail over: nominate backup" in result.stdout
    assert "✔ online-failover: all 12 steps answered as expected." in result.stdout


# Against a running `mockcore serve`


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockcoreProcess]:
    args = ["--instance", "prod", "--instance", "backup", "--key", f"{KEY}:1:365", "--control-token", TOKEN]
    process = MockcoreProcess(tmp_path_factory.mktemp("serve"), args).start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()
        process.kill()


def _control(served: MockcoreProcess, method: str, path: str, body: object = None) -> requests.Response:
    url = served.instances["backup"] + "/_mock" + path
    return requests.request(method, url, json=body, headers={"X-Mock-Control-Token": TOKEN}, timeout=30)


def test_both_demos_against_a_running_serve(served: MockcoreProcess) -> None:
    url = served.instances["backup"]  # any face answers for the whole fleet
    assert _control(served, "POST", "/reset").status_code == 200
    online = demo("online-failover", "--json", "--url", url, "--control-token", TOKEN)
    assert online.returncode == 0, online.stdout + online.stderr
    docs = events(online)
    check_online(docs)
    assert docs[0]["fleet"]["instances"] == served.instances
    assert docs[0]["key"] == KEY
    assert served.ready["keys"] == [{"key": KEY, "slots": 1, "expires": served.ready["keys"][0]["expires"]}]

    # The fleet is not at the start any more: refused, and nothing is touched.
    again = demo("offline-failover", "--json", "--url", url, "--control-token", TOKEN)
    assert again.returncode == 3
    [problem] = events(again)
    assert problem["event"] == "problem"
    assert "backup is active" in problem["message"] and "--reset" in problem["message"]
    assert _control(served, "GET", "/state").json()["instances"]["backup"]["licence"]["state"] == "active"

    # --reset, and the configured API key instead of logging in.
    offline = demo(
        "offline-failover", "--json", "--url", url, "--control-token", TOKEN, "--reset", "--apikey", served.apikey
    )
    assert offline.returncode == 0, offline.stdout + offline.stderr
    docs = events(offline)
    check_offline(docs, logged_in=False)
    assert docs[0]["login"] is False
    assert all(d["request"]["headers"].get("apikey") in (None, served.apikey) for d in docs if d["event"] == "step")


def test_an_unexpected_answer_stops_the_demo_with_exit_code_1(served: MockcoreProcess) -> None:
    assert _control(served, "POST", "/reset").status_code == 200
    fault = {"face": "core", "instance": "backup", "method": "POST", "path": "/admin/license/backup/nomination"}
    assert (
        _control(served, "POST", "/faults", {**fault, "status": 503, "err": "Service unavailable"}).status_code == 201
    )
    result = demo("online-failover", "--json", "--url", served.instances["prod"], "--control-token", TOKEN)
    assert result.returncode == 1, result.stdout + result.stderr
    docs = events(result)
    steps = [d for d in docs if d["event"] == "step"]
    assert [s["id"] for s in steps] == ONLINE_STEPS[: ONLINE_STEPS.index("nominate-backup") + 1]
    assert all(s["ok"] for s in steps[:-1])
    last = steps[-1]
    assert last["ok"] is False and "503" in last["problem"]
    assert last["response"] == {
        "status": 503,
        "reason": "Injected",
        "content_type": "application/json",
        "body": {"err": "Service unavailable"},
    }
    assert states(last) == {"prod": "active", "backup": "backup-online"}  # the failed nomination changed nothing
    outcome = docs[-1]
    assert outcome["ok"] is False and outcome["failed_step"]["id"] == "nominate-backup"
    assert "proved" not in outcome


def test_a_missing_control_token_or_a_dead_url_is_a_clear_refusal(served: MockcoreProcess, tmp_path: Path) -> None:
    no_token = demo("online-failover", "--url", served.instances["prod"], env={"MOCKCORE_CONTROL_TOKEN": ""})
    assert no_token.returncode == 3
    assert "--control-token" in no_token.stderr and "401" in no_token.stderr
    assert no_token.stdout == ""
    nothing = demo("online-failover", "--json", "--url", "http://127.0.0.1:9")  # discard port: nothing listens
    assert nothing.returncode == 3
    assert "cannot reach" in events(nothing)[0]["message"]


def test_a_fleet_served_over_tls_with_its_ca(tmp_path: Path) -> None:
    process = MockcoreProcess(tmp_path / "tls", ["--tls", "--instance", "prod", "--instance", "backup"]).start()
    try:
        process.wait_ready()
        assert process.ca_cert is not None
        result = demo("online-failover", "--json", "--url", process.instances["prod"], "--ca-cert", process.ca_cert)
        assert result.returncode == 0, result.stdout + result.stderr
        docs = events(result)
        assert docs[-1]["ok"] is True
        assert all(d["request"]["url"].startswith("https://") for d in docs if d["event"] == "step")
    finally:
        process.stop()
        process.kill()
