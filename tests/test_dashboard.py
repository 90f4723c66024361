"""The dashboard at /_mock/ui: its JSON endpoints and buttons over HTTP, then the page itself in real headless
Chromium (Debian's package, driven by Playwright), clicked through an online failover."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from mockcore import MockFleet
from mockcore.calls import ACTIVATION_SERVER
from mockcore.catalogue import DEFAULT_ENTRIES, ErrorCode
from mockcore.server import ACTIVATION
from tests.serving import unavailable

TOKEN = "ui-token"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def mock() -> Iterator[MockFleet]:
    with MockFleet(instances=("prod", "backup"), control_token=TOKEN) as fleet:
        yield fleet


def _get(url: str, token: str | None = TOKEN) -> requests.Response:
    return requests.get(url, headers={"X-Mock-Control-Token": token} if token else {}, timeout=30)


def _call(mock: MockFleet, body: Any, content_type: str = "application/json") -> requests.Response:
    return requests.post(
        mock.urls["prod"] + "/_mock/ui/call",
        data=body if isinstance(body, str | bytes) else json.dumps(body),
        headers={"X-Mock-Control-Token": TOKEN, "Content-Type": content_type},
        timeout=30,
    )


def test_the_activation_face_name_is_the_servers() -> None:
    assert ACTIVATION_SERVER == ACTIVATION


def test_page_and_assets_ship_in_the_package_on_every_face(mock: MockFleet) -> None:
    for base in [*mock.urls.values(), mock.activation_url]:
        page = _get(base + "/_mock/ui", token=None)  # static, no fleet data: no token needed
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "connect-src 'self'" in page.headers["Content-Security-Policy"]
        assert "/_mock/ui/assets/dashboard.js" in page.text
    base = mock.urls["backup"]
    script = _get(base + "/_mock/ui/assets/dashboard.js", token=None)
    style = _get(base + "/_mock/ui/assets/dashboard.css", token=None)
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert style.headers["Content-Type"].startswith("text/css")
    for text in (page.text, script.text, style.text):  # nothing from elsewhere: no CDN, no web font
        assert not re.search(r"https?://|@import|url\(", text.replace("http://www.w3.org", ""))
    for name in ("nope.js", "..%2Fserver.py", "control-openapi.yaml", ".hidden.css"):
        assert _get(base + "/_mock/ui/assets/" + name, token=None).status_code == 404, name


def test_data_and_buttons_need_the_control_token(mock: MockFleet) -> None:
    base = mock.urls["prod"] + "/_mock/ui"
    for path in ("/view", "/diagram.svg"):
        assert _get(base + path, token=None).status_code == 401
        assert _get(base + path, token="wrong").status_code == 403
        assert _get(base + path).status_code == 200
    refused = requests.post(base + "/call", json={"operation": "activate"}, timeout=30)
    assert refused.status_code == 401
    assert mock.states() == {"prod": "unlicensed", "backup": "unlicensed"}


def test_view_shows_instances_keys_clock_and_journal(mock: MockFleet) -> None:
    with mock.session("prod") as prod:
        assert prod.post("/_mock/scenarios/production-with-online-backup").status_code == 200
        prod.get("/admin/license")
    frozen_at = mock.clock.freeze()
    view = _get(mock.urls["prod"] + "/_mock/ui/view").json()
    instances = {inst["name"]: inst for inst in view["instances"]}
    assert instances["prod"]["state"] == "active" and instances["prod"]["key"] == mock.key
    assert instances["prod"]["days_left"] == 365 and instances["prod"]["online"] is True
    assert instances["prod"]["deployment"] == mock.deployments["prod"]
    assert instances["backup"]["state"] == "backup-online" and instances["backup"]["backup"] is True
    assert instances["backup"]["production"] == "prod"
    assert instances["backup"]["url"] == mock.urls["backup"]
    [key] = view["activation_server"]["keys"]
    assert (key["key"], key["slots"], key["used"]) == (mock.key, 2, 1)
    assert key["holders"] == [{"deployment": mock.deployments["prod"], "instance": "prod"}]
    assert view["activation_server"]["url"] == mock.activation_url
    assert view["clock"] == {"now": frozen_at.isoformat(), "date": frozen_at.date().isoformat(), "frozen": True}
    [entry] = view["journal"]["entries"]
    assert (entry["instance"], entry["method"], entry["path"], entry["status"]) == (
        "prod",
        "GET",
        "/admin/license",
        200,
    )
    assert "production-with-online-backup" in view["scenarios"]
    assert {op["name"] for op in view["operations"]} >= {"activate", "register-online", "nominate", "free-slot"}
    assert view["states"] == ["unlicensed", "active", "backup-online", "backup-offline"]


def test_a_button_goes_through_the_faces_own_http_code(mock: MockFleet) -> None:
    answer = _call(mock, {"operation": "activate", "instance": "prod", "key": mock.key})
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["ok"] is True and doc["operation"] == "activate"
    [exchange] = doc["exchanges"]
    assert exchange["request"]["method"] == "POST"
    assert exchange["request"]["url"] == mock.urls["prod"] + "/admin/license/activation"
    assert exchange["request"]["headers"]["apikey"] == mock.apikey
    assert exchange["response"] == {
        "status": 200,
        "reason": "OK",
        "content_type": "application/json",
        "body": {"success": True},
    }
    assert mock.states()["prod"] == "active"
    with mock.session("prod") as prod:
        journal = prod.get("/_mock/journal", params={"path": "/admin/license/activation"}).json()["entries"]
        assert [(e["instance"], e["status"]) for e in journal] == [("prod", 200)]
        # fault rules apply to buttons as to any request
        rule = {"instance": "backup", "path": "/admin/license/backup", "status": 503, "err": "down"}
        assert prod.post("/_mock/faults", json=rule).status_code == 201
    faulted = _call(mock, {"operation": "register-online", "instance": "backup", "key": mock.key, "production": "prod"})
    assert faulted.json()["ok"] is False
    assert faulted.json()["exchanges"][0]["response"]["status"] == 503
    assert mock.states()["backup"] == "unlicensed"


def test_an_offline_registration_first_obtains_the_productions_file(mock: MockFleet) -> None:
    upload = _call(mock, {"operation": "upload", "instance": "prod", "key": mock.key}).json()
    assert [x["request"]["face"] for x in upload["exchanges"]] == ["activation_server", "prod"]
    assert upload["ok"] is True and mock.states()["prod"] == "active"
    body = {"operation": "register-offline", "instance": "backup", "key": mock.key, "production": "prod"}
    register = _call(mock, body).json()
    first, second = register["exchanges"]
    assert first["request"]["url"].startswith(mock.activation_url + "/activation?key=")
    assert f"deployment: {mock.deployments['prod']}" in first["response"]["body"]
    assert second["request"]["body"] == first["response"]["body"]
    assert mock.states() == {"prod": "active", "backup": "backup-offline"}
    nominate = _call(mock, {"operation": "nominate", "instance": "backup"}).json()
    assert nominate["ok"] is False
    assert nominate["exchanges"][0]["response"]["body"] == {"err": DEFAULT_ENTRIES[ErrorCode.NOMINATE_OFFLINE].text}


def test_bad_button_requests_are_refused_and_change_nothing(mock: MockFleet) -> None:
    cases = [
        ({"operation": "activate", "instance": "prod", "key": mock.key}, "text/plain", 415, "application/json"),
        ({"operation": "explode", "instance": "prod"}, "application/json", 400, "`operation` must be one of"),
        ({"operation": "activate", "instance": "prod"}, "application/json", 400, "activate needs `key`"),
        ({"operation": "nominate", "instance": "dr"}, "application/json", 400, "No instance 'dr'"),
        (
            {"operation": "activate", "instance": "prod", "key": "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG"},
            None,
            400,
            "No activation key",
        ),
        ({"operation": "nominate", "instance": "prod", "extra": 1}, "application/json", 400, "Unknown fields: extra"),
        ("[1, 2", "application/json", 400, "not JSON"),
    ]
    for body, content_type, status, text in cases:
        answer = _call(mock, body, content_type or "application/json")
        assert answer.status_code == status, (body, answer.text)
        assert text in answer.json()["err"], (body, answer.text)
    assert mock.states() == {"prod": "unlicensed", "backup": "unlicensed"}
    assert mock.fleet.journal() == []


def test_diagram_svg_highlights_each_instances_state(mock: MockFleet) -> None:
    mock.scenario("production-with-offline-backup")
    root = ET.fromstring(_get(mock.urls["backup"] + "/_mock/ui/diagram.svg").text)
    groups = {g.get("data-state"): g for g in root.iter(f"{SVG}g") if g.get("data-state")}
    current = {name for name, g in groups.items() if "current" in (g.get("class") or "").split()}
    assert current == {"active", "backup-offline"}
    label = [t for t in groups["backup-offline"].iter(f"{SVG}text") if t.get("class") == "state-instances"]
    assert label[0].text == "backup"


# The page in a real browser


@pytest.fixture
def browser_page() -> Iterator[Any]:
    reason = None
    if not CHROMIUM.exists():
        reason = "Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "Playwright is not installed (python3 -m pip install -e '.[test]')"
    if reason is not None:
        unavailable(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


def test_click_through_an_online_failover_in_chromium(mock: MockFleet, browser_page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser_page
    origin = mock.urls["prod"]
    requested: list[str] = []
    problems: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)

    page.goto(origin + "/_mock/ui#token=" + TOKEN)
    prod, backup = page.locator("#instance-prod"), page.locator("#instance-backup")
    slots = page.locator(f'#keys tr[data-key="{mock.key}"]')
    last = page.locator("#exchanges")

    def state_of(card: Any) -> Any:
        return card.locator(".field-state")

    def diagram_holds(state: str, names: str) -> None:
        node = page.locator(f"#diagram #state-{state}")
        expect(node.locator(".state-instances")).to_have_text(names)
        expect(node).to_have_class(re.compile(r"\bcurrent\b"))

    # The start: both unlicensed, no slot used
    expect(state_of(prod)).to_have_text("unlicensed")
    expect(state_of(backup)).to_have_text("unlicensed")
    expect(prod.locator(".field-deployment")).to_have_text(mock.deployments["prod"])
    expect(slots.locator(".slots-used")).to_have_text("0 / 2")
    diagram_holds("unlicensed", "prod, backup")
    expect(page.locator("#state-active")).not_to_have_class(re.compile(r"\bcurrent\b"))

    # 1. Activate prod online
    prod.locator('button[data-op="activate"]').click()
    expect(state_of(prod)).to_have_text("active")
    expect(prod.locator(".field-key")).to_have_text(mock.key)
    expect(prod.locator(".field-days")).to_have_text("365")
    expect(prod.locator(".field-detail")).to_have_text("online")
    expect(slots.locator(".slots-used")).to_have_text("1 / 2")
    expect(slots.locator(".holder > span")).to_have_text(["prod"])
    expect(last.locator(".request .line")).to_have_text(f"→ POST {origin}/admin/license/activation")
    expect(last.locator(".response .line")).to_have_text("← 200 OK")
    diagram_holds("active", "prod")
    diagram_holds("unlicensed", "backup")

    # 2. Register backup as prod's online backup
    expect(backup.locator(".production-select")).to_have_value("prod")
    backup.locator('button[data-op="register-online"]').click()
    expect(state_of(backup)).to_have_text("backup-online")
    expect(backup.locator(".field-backup")).to_have_text("yes")
    expect(backup.locator(".field-detail")).to_have_text("backup of prod, online")
    expect(slots.locator(".slots-used")).to_have_text("1 / 2")  # a backup uses no slot
    expect(last.locator(".request pre")).to_contain_text(f"active-deployment-id: {mock.deployments['prod']}")
    diagram_holds("backup-online", "backup")

    # 3. A backup refuses to scan
    backup.locator('button[data-op="scan"]').click()
    expect(last.locator(".response .line")).to_have_text("← 403 FORBIDDEN")
    expect(last.locator(".response-body")).to_contain_text(DEFAULT_ENTRIES[ErrorCode.SCAN_BACKUP].text)

    # 4. Nominate backup: the slot moves, prod loses its licence
    backup.locator('button[data-op="nominate"]').click()
    expect(state_of(backup)).to_have_text("active")
    expect(state_of(prod)).to_have_text("unlicensed")
    expect(prod.locator(".field-detail")).to_contain_text("reactivate")
    expect(prod.locator(".field-days")).to_have_text("—")
    expect(backup.locator(".field-backup")).to_have_text("no")
    expect(slots.locator(".holder > span")).to_have_text(["backup"])
    diagram_holds("active", "backup")
    diagram_holds("unlicensed", "prod")
    expect(page.locator("#state-backup-online")).not_to_have_class(re.compile(r"\bcurrent\b"))

    # 5. Prove it: the new production scans, the old one refuses
    backup.locator('button[data-op="scan"]').click()
    expect(last.locator(".request .line")).to_have_text(f"→ POST {mock.urls['backup']}/file")
    expect(last.locator(".response .line")).to_have_text("← 200 OK")
    expect(last.locator(".response-body")).to_contain_text('"data_id"')
    prod.locator('button[data-op="scan"]').click()
    expect(last.locator(".response .line")).to_have_text("← 403 FORBIDDEN")
    expect(last.locator(".response-body")).to_contain_text(DEFAULT_ENTRIES[ErrorCode.SCAN_UNLICENSED].text)
    journal = page.locator("#journal tbody tr")
    expect(journal.first).to_contain_text("POST /file")
    expect(journal.first).to_contain_text("403")
    expect(page.locator("#journal")).to_contain_text("POST /admin/license/backup/nomination")

    # What others do to the fleet shows up live: the clock moved from outside
    moved = requests.post(
        origin + "/_mock/clock/advance", json={"days": 30}, headers={"X-Mock-Control-Token": TOKEN}, timeout=30
    )
    assert moved.status_code == 200
    expect(backup.locator(".field-days")).to_have_text("335")

    # A scenario button
    page.locator('button[data-scenario="production-with-offline-backup"]').click()
    expect(state_of(prod)).to_have_text("active")
    expect(state_of(backup)).to_have_text("backup-offline")
    expect(prod.locator(".field-detail")).to_have_text("offline")
    diagram_holds("backup-offline", "backup")

    shot = tmp_path / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert problems == []
    assert requested, "the page made no request"
    outside = [url for url in requested if not url.startswith(origin + "/")]
    assert outside == [], outside
    assert mock.states() == {"prod": "active", "backup": "backup-offline"}


def test_a_tenants_dashboard_works_below_its_prefix(browser_page: Any) -> None:
    """A tenant's faces live below /t/<ID>/<face>: the page links its assets and sends every request there (the
    prefix written into the page from the WSGI SCRIPT_NAME), and a button acts on that tenant only."""
    from playwright.sync_api import expect

    from mockcore.tenant_server import TenantServer
    from mockcore.tenants import MemoryTenantRegistry, TenantLimits

    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    with TenantServer(MemoryTenantRegistry(TenantLimits())) as server:
        mine, other = (
            requests.post(server.url + "/_mock/tenants", json={"instances": ["prod", "backup"]}, timeout=10).json()
            for _ in range(2)
        )
        prefix = mine["instances"]["prod"]
        html_page = requests.get(prefix + "/_mock/ui", timeout=10).text
        assert f'content="{prefix.removeprefix(server.url)}"' in html_page
        assert requests.get(prefix + "/_mock/ui/assets/dashboard.js", timeout=10).status_code == 200
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        page.goto(prefix + "/_mock/ui#token=" + mine["control_token"])
        prod = page.locator("#instance-prod")
        expect(prod.locator(".field-state")).to_have_text("unlicensed")
        prod.locator('button[data-op="activate"]').click()
        expect(prod.locator(".field-state")).to_have_text("active")
        assert requested and all(url.startswith(prefix) for url in requested), requested
        headers = {"X-Mock-Control-Token": other["control_token"]}
        states = requests.get(other["control"] + "/_mock/state", headers=headers, timeout=10).json()
        assert states["instances"]["prod"]["licence"]["state"] == "unlicensed"  # the other tenant: untouched
    assert problems == []
