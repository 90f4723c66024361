"""Tenants (`mockcore serve --tenants`, docs/guides/team-service.md): many isolated fleets on one port.

Through a tenant server in this process (mockcore.tenant_server.TenantServer on a free port, spoken to over real
HTTP) and through a real `mockcore serve --tenants` subprocess: two tenants never see each other's operations,
resets, clock moves or faults; a deleted or unknown tenant answers 404 everywhere; the limits answer their 4xx and
create nothing; idle tenants expire (on a clock the test moves); bad bodies are refused with `{"err": ...}` and
nothing created; tokens; MockFleet and the pytest plugin on a tenant server; a plain client below the prefix.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from mockcore.cli import main
from mockcore.http.control_api import TOKEN_HEADER
from mockcore.inprocess import InvalidSnapshot, MockFleet, ScenarioError
from mockcore.tenant_server import TenantServer
from mockcore.tenants import MemoryTenantRegistry, TenantError, TenantLimits, parse_tenant_request
from tests.client import ActivationClient, CoreClient
from tests.serving import MockcoreProcess

SERVER_TOKEN = "server-token-for-tests"
ID_RE = re.compile(r"[A-Za-z0-9_-]{24}")
KEY = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG"


class FakeMonotonic:
    """A monotonic clock the test moves by hand (idle expiry without waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Api:
    """The tenant API of one server, with the server's control token."""

    def __init__(self, url: str, token: str | None = SERVER_TOKEN) -> None:
        self.url = url
        self.http = requests.Session()
        if token is not None:
            self.http.headers[TOKEN_HEADER] = token

    def create(self, body: object = None, **kwargs: Any) -> requests.Response:
        if "data" in kwargs:
            return self.http.post(self.url + "/_mock/tenants", timeout=30, **kwargs)
        return self.http.post(self.url + "/_mock/tenants", json=body if body is not None else {}, timeout=30)

    def tenant(self, body: object = None) -> dict[str, Any]:
        response = self.create(body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def listing(self) -> list[dict[str, Any]]:
        response = self.http.get(self.url + "/_mock/tenants", timeout=30)
        assert response.status_code == 200, response.text
        return list(response.json()["tenants"])

    def delete(self, tenant_id: str) -> requests.Response:
        return self.http.delete(f"{self.url}/_mock/tenants/{tenant_id}", timeout=30)


def control(tenant: dict[str, Any], method: str, path: str, body: object = None) -> requests.Response:
    headers = {TOKEN_HEADER: tenant["control_token"]}
    return requests.request(method, tenant["control"] + path, json=body, headers=headers, timeout=30)


def core(tenant: dict[str, Any], name: str) -> CoreClient:
    return CoreClient(tenant["instances"][name], tenant["apikey"])


@pytest.fixture
def fake_clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def server(fake_clock: FakeMonotonic) -> Iterator[TenantServer]:
    limits = TenantLimits(max_tenants=3, max_instances=3, journal_cap=20, idle_timeout=600)
    registry = MemoryTenantRegistry(limits, monotonic=fake_clock)
    with TenantServer(registry, control_token=SERVER_TOKEN) as running:
        yield running


@pytest.fixture
def api(server: TenantServer) -> Api:
    return Api(server.url)


# Isolation


def test_two_tenants_never_see_each_others_operations_resets_clocks_or_faults(api: Api) -> None:
    a = api.tenant({"instances": ["prod", "backup"], "keys": [":2:30"]})
    b = api.tenant({"instances": ["prod", "backup"], "keys": [":2:30"]})
    assert a["tenant"] != b["tenant"] and ID_RE.fullmatch(a["tenant"]) and ID_RE.fullmatch(b["tenant"])
    assert a["control_token"] != b["control_token"]
    # Same configuration, so the same key and deployments: only the prefix tells them apart.
    key = a["keys"][0]["key"]
    assert key == b["keys"][0]["key"]

    assert core(a, "prod").activate(key).json() == {"success": True}
    assert core(a, "backup").register_online(key, core(a, "prod").deployment()).status_code == 200
    assert control(a, "GET", "/_mock/view").json()["instances"]["prod"]["state"] == "active"
    assert control(b, "GET", "/_mock/view").json()["instances"]["prod"]["state"] == "unlicensed"
    assert core(b, "prod").licence().json().get("online_activated") is not True
    assert control(b, "GET", "/_mock/slots").json()["holders"] == {key: []}

    before_b = control(b, "GET", "/_mock/clock").json()["now"]
    moved = control(a, "POST", "/_mock/clock/advance", {"days": 400}).json()["now"]
    assert moved > before_b
    assert control(b, "GET", "/_mock/clock").json()["now"] < moved

    rule = control(a, "POST", "/_mock/faults", {"face": "core", "path": "/admin/license", "status": 503})
    assert rule.status_code == 201, rule.text
    assert core(a, "prod").licence().status_code == 503
    assert core(b, "prod").licence().status_code == 200
    assert control(b, "GET", "/_mock/faults").json() == []

    assert control(b, "GET", "/_mock/journal").json()["entries"]  # b's own requests only
    assert all(e["status"] != 503 for e in control(b, "GET", "/_mock/journal").json()["entries"])

    assert core(b, "prod").activate(key).json() == {"success": True}
    assert control(b, "POST", "/_mock/reset").json() == {"reset": True}
    assert control(b, "GET", "/_mock/view").json()["instances"]["prod"]["state"] == "unlicensed"
    assert control(a, "GET", "/_mock/faults").json() != []  # a's fault rule outlives b's reset
    a_view = control(a, "GET", "/_mock/view").json()
    assert a_view["instances"]["backup"]["state"] == "backup-online"


def test_a_tenants_token_does_not_open_another_tenants_control_plane(api: Api) -> None:
    a, b = api.tenant(), api.tenant()
    assert requests.post(b["control"] + "/_mock/reset", timeout=30).status_code == 401
    wrong = requests.post(b["control"] + "/_mock/reset", headers={TOKEN_HEADER: a["control_token"]}, timeout=30)
    assert wrong.status_code == 403 and "err" in wrong.json()
    assert requests.get(b["control"] + "/_mock/health", timeout=30).json() == {"status": "ok"}
    # The control plane is below every face of the tenant too, as `mockcore serve` serves it on every port.
    info = requests.get(a["instances"]["core"] + "/_mock/info", headers={TOKEN_HEADER: a["control_token"]}, timeout=30)
    assert info.json()["instances"] == a["instances"] and info.json()["activation_server"] == a["activation_server"]


def test_the_tenant_api_demands_the_server_token(server: TenantServer) -> None:
    assert Api(server.url, token=None).create().status_code == 401
    assert Api(server.url, token="wrong").create().status_code == 403
    assert len(server.registry) == 0
    tenant = Api(server.url).tenant()
    # A tenant's own token may read and delete that tenant, and nothing else.
    own = Api(server.url, token=tenant["control_token"])
    assert (
        own.http.get(f"{server.url}/_mock/tenants/{tenant['tenant']}", timeout=30).json()["tenant"] == tenant["tenant"]
    )
    assert own.http.get(f"{server.url}/_mock/tenants", timeout=30).status_code == 403
    assert own.delete(tenant["tenant"]).status_code == 200


# Plain clients below the prefix


def test_a_plain_client_works_unmodified_below_the_prefix(api: Api) -> None:
    """tests/client.py's clients take a base URL and add the vendor's paths, as a user's client would."""
    tenant = api.tenant({"instances": ["prod", "backup"], "keys": [f"{KEY}:2:30"]})
    prod, backup = core(tenant, "prod"), core(tenant, "backup")
    activation = ActivationClient(tenant["activation_server"])
    assert prod.activate(KEY).json() == {"success": True}
    production = prod.deployment()
    assert backup.register_online(KEY, production).status_code == 200
    assert backup.is_backup().json() == {"is_backup": True}
    assert backup.nominate().status_code == 200
    assert backup.is_backup().json() == {"is_backup": False}
    licence_file = activation.obtain(KEY, "MSCL" + "0" * 32)
    assert licence_file.status_code == 200 and b"MSCL" in licence_file.content
    assert requests.get(tenant["instances"]["prod"] + "/nothing/here", timeout=30).json() == {"err": "Not found."}


# Delete, unknown


def test_a_deleted_tenant_answers_404_everywhere_as_an_unknown_one(api: Api) -> None:
    tenant = api.tenant({"instances": ["prod"]})
    kept = api.tenant({"instances": ["prod"]})
    assert core(tenant, "prod").licence().status_code == 200
    assert api.delete(tenant["tenant"]).json() == {"deleted": tenant["tenant"]}
    urls = [
        tenant["instances"]["prod"] + "/admin/license",
        tenant["activation_server"] + "/activation?key=x&deployment=y",
        tenant["control"] + "/_mock/state",
        tenant["control"] + "/_mock/health",
        f"{api.url}/_mock/tenants/{tenant['tenant']}",
        f"{api.url}/t/{'x' * 24}/prod/admin/license",
        f"{api.url}/t/",
    ]
    for url in urls:
        response = api.http.get(url, timeout=30)
        assert response.status_code == 404, url
        assert "err" in response.json(), url
    assert api.delete(tenant["tenant"]).status_code == 404
    assert [t["tenant"] for t in api.listing()] == [kept["tenant"]]
    assert core(kept, "prod").licence().status_code == 200
    assert requests.get(kept["control"] + "/nobody/admin/license", timeout=30).status_code == 404


# Limits


def test_past_the_most_tenants_the_api_answers_429_and_creates_nothing(api: Api, server: TenantServer) -> None:
    for _ in range(3):
        api.tenant()
    refused = api.create()
    assert refused.status_code == 429 and "err" in refused.json()
    assert len(api.listing()) == 3
    api.delete(api.listing()[0]["tenant"])
    assert api.create().status_code == 201


def test_too_many_instances_or_too_large_a_journal_answer_400(api: Api, server: TenantServer) -> None:
    assert api.create({"instances": ["a", "b", "c", "d"]}).status_code == 400
    assert api.create({"journal_cap": 21}).status_code == 400
    assert len(server.registry) == 0
    tenant = api.tenant({"journal_cap": 5})
    assert tenant["journal_cap"] == 5
    too_large = control(tenant, "PUT", "/_mock/journal/config", {"cap": 21})
    assert too_large.status_code == 400 and "--tenant-journal-cap" in too_large.json()["err"]
    assert control(tenant, "GET", "/_mock/journal").json()["cap"] == 5
    assert control(tenant, "PUT", "/_mock/journal/config", {"cap": 20}).json() == {"cap": 20}
    for _ in range(30):
        core(tenant, "core").licence()
    assert len(control(tenant, "GET", "/_mock/journal").json()["entries"]) == 20


def test_a_chunked_journal_config_past_the_tenant_cap_is_refused(api: Api) -> None:
    """Without a Content-Length (a chunked body), the ceiling holds all the same: it is the fleet's journal's."""
    tenant = api.tenant({"journal_cap": 5})

    def chunked(doc: object) -> requests.Response:
        headers = {TOKEN_HEADER: tenant["control_token"], "Content-Type": "application/json"}
        body = iter([json.dumps(doc).encode()])  # a generator: requests sends it chunked
        return requests.put(tenant["control"] + "/_mock/journal/config", data=body, headers=headers, timeout=30)

    too_large = chunked({"cap": 100_000})
    assert too_large.request.headers.get("Transfer-Encoding") == "chunked"
    assert too_large.status_code == 400, too_large.text
    assert too_large.json() == {
        "err": "This tenant's journal keeps at most 20 requests (the server's --tenant-journal-cap)."
    }
    assert control(tenant, "GET", "/_mock/journal").json()["cap"] == 5
    assert chunked({"cap": 20}).json() == {"cap": 20}


def test_a_fleets_journal_refuses_a_cap_past_its_ceiling() -> None:
    from mockcore.fleet import Fleet
    from mockcore.journal import MAX_CAP

    fleet = Fleet(journal_cap=5, journal_ceiling=20)
    with pytest.raises(ValueError):
        fleet.set_journal_cap(21)
    assert fleet.journal_cap == 5 and fleet.journal_ceiling == 20
    fleet.set_journal_cap(20)
    assert fleet.journal_cap == 20
    assert Fleet().journal_ceiling == MAX_CAP  # `mockcore serve`: as before
    with pytest.raises(ValueError):
        Fleet(journal_cap=21, journal_ceiling=20)


def test_past_the_most_keys_the_api_answers_400_and_creates_nothing(api: Api, server: TenantServer) -> None:
    refused = api.create({"keys": [":1:1"] * 50_000})
    assert refused.status_code == 400
    assert refused.json() == {"err": "keys: a tenant has at most 20 activation keys (the server's --max-tenant-keys)"}
    assert api.create({"keys": [":1:1"] * 21}).status_code == 400
    assert len(server.registry) == 0
    assert len(api.tenant({"keys": [":1:1"] * 20})["keys"]) == 20


def test_a_create_past_the_limits_builds_no_fleet(monkeypatch: pytest.MonkeyPatch) -> None:
    from mockcore.fleet import Fleet

    registry = MemoryTenantRegistry(TenantLimits(max_tenants=1, max_keys=2))
    request = parse_tenant_request({}, registry.limits)
    registry.create(request)
    built: list[object] = []
    build = Fleet.build
    monkeypatch.setattr(Fleet, "build", lambda *args, **kwargs: built.append(args) or build(*args, **kwargs))
    with pytest.raises(TenantError) as full:
        registry.create(request)
    assert full.value.status == 429 and built == []
    with pytest.raises(TenantError) as too_many_keys:
        parse_tenant_request({"keys": [":1"] * 3}, registry.limits)
    assert too_many_keys.value.status == 400 and built == []


@pytest.mark.parametrize("seconds", [float("nan"), float("inf"), 1e300, 0.0, -1.0])
def test_an_idle_timeout_that_is_not_a_finite_time_is_refused(seconds: float) -> None:
    with pytest.raises(ValueError):
        TenantLimits(idle_timeout=seconds)
    assert TenantLimits(idle_timeout=10 * 365 * 86400).idle_timeout == 315_360_000


def test_an_odd_tenant_id_answers_404_without_asking_the_registry(fake_clock: FakeMonotonic) -> None:
    class Recording(MemoryTenantRegistry):
        def __init__(self) -> None:
            super().__init__(TenantLimits(), monotonic=fake_clock)
            self.asked: list[str] = []

        def get(self, tenant_id: str) -> Any:
            self.asked.append(tenant_id)
            return super().get(tenant_id)

        def touch(self, tenant_id: str) -> Any:
            self.asked.append(tenant_id)
            return super().touch(tenant_id)

    registry = Recording()
    with TenantServer(registry, control_token=SERVER_TOKEN) as running:
        http = Api(running.url).http
        for path in ("/t/%00/prod", "/t/%00/_mock/state", "/_mock/tenants/%00", f"/t/{'x' * 23}!/prod", "/t/x/prod"):
            response = http.get(running.url + path, timeout=30)
            assert (response.status_code, response.json()) == (404, {"err": "Unknown tenant."}), path
        assert registry.asked == []
        http.get(f"{running.url}/t/{'x' * 24}/prod", timeout=30)
        assert registry.asked == ["x" * 24]  # an id of the right form is looked up


def test_an_instance_name_refused_says_the_rule(api: Api) -> None:
    refused = api.create({"instances": ["_x"]})
    assert refused.status_code == 400
    assert "the first a letter or a digit" in refused.json()["err"]


# Idle expiry


def test_idle_tenants_expire_and_a_request_counts_as_use(
    api: Api, server: TenantServer, fake_clock: FakeMonotonic
) -> None:
    idle = api.tenant()
    busy = api.tenant()
    fake_clock.now += 500
    assert core(busy, "core").licence().status_code == 200  # a use: busy's idle time starts again
    fake_clock.now += 200  # idle: 700 s > 600 s; busy: 200 s
    assert core(idle, "core").licence().status_code == 404
    assert [t["tenant"] for t in api.listing()] == [busy["tenant"]]
    fake_clock.now += 600
    assert api.listing() == []
    assert core(busy, "core").licence().status_code == 404


def test_the_registry_expires_on_its_own_clock_and_frees_the_tenant() -> None:
    clock = FakeMonotonic()
    registry = MemoryTenantRegistry(TenantLimits(max_tenants=1, idle_timeout=10), monotonic=clock)
    setup = parse_tenant_request({}, registry.limits)
    first = registry.create(setup)
    with pytest.raises(TenantError) as refused:
        registry.create(setup)
    assert refused.value.status == 429
    clock.now += 9.5
    assert registry.touch(first.id) is first
    clock.now += 9.5
    assert registry.expire_idle() == []
    clock.now += 0.5
    assert registry.expire_idle() == [first.id]
    assert registry.get(first.id) is None
    assert registry.create(setup).id != first.id  # room again


# Bad input


HOSTILE_YAML = {
    "alias": "a: &x [1, 2]\nb: *x\n",
    "python tag": "version: !!python/object/apply:os.system ['true']\n",
    "billion laughs": "a: &a ['lol','lol']\nb: &b [*a,*a]\nc: [*b,*b]\n",
    "deep": "errors: " + "[" * 100 + "]" * 100 + "\n",
    "not a mapping": "- 1\n- 2\n",
    "unknown code": "errors: {E_NOPE: {status: 500}}\n",
    "too large": "version: '" + "x" * (300 * 1024) + "'\n",
}


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        {"unknown": 1},
        {"instances": "prod"},
        {"instances": [1, 2]},
        {"instances": ["bad name!"]},
        {"instances": ["activation_server"]},
        {"instances": ["a", "a"]},
        {"instances": []},
        {"keys": "KEY"},
        {"keys": ["NOT-A-KEY"]},
        {"keys": [["AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG", 1]]},
        {"keys": [":2:abc"]},
        {"keys": []},
        {"seed": 1.5},
        {"seed": True},
        {"apikey": "short"},
        {"apikey": 5},
        {"admin": "nopassword"},
        {"admin": ["a", "b"]},
        {"profile": "9.9"},
        {"journal_cap": "10"},
        {"journal_cap": -1},
        {"overrides": 5},
        {"overrides": ["errors"]},
        *({"overrides": text} for text in HOSTILE_YAML.values()),
    ],
)
def test_a_bad_body_is_refused_with_err_and_creates_nothing(api: Api, server: TenantServer, body: object) -> None:
    response = api.create(body)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"err"} and response.json()["err"]
    assert "mockcore-overrides-" not in response.json()["err"]  # the temporary file is ours, not the client's
    assert len(server.registry) == 0


@pytest.mark.parametrize(
    "data", [b"{", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000, b'{"instances": ["a"]' + b" " * (600 * 1024) + b"}"]
)
def test_a_body_that_is_no_json_is_refused(api: Api, server: TenantServer, data: bytes) -> None:
    response = api.create(data=data, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert "err" in response.json()
    assert len(server.registry) == 0


def test_parse_fleet_is_the_one_parser_and_inline_overrides_apply(api: Api) -> None:
    tenant = api.tenant(
        {
            "instances": ["x"],
            "keys": [f"{KEY}:0"],
            "seed": 7,
            "overrides": {"version": "5.8.0", "errors": {"E_NO_SLOT": {"status": 409, "text": "No slot left"}}},
        }
    )
    refused = core(tenant, "x").activate(KEY)
    assert (refused.status_code, refused.json()) == (409, {"err": "No slot left"})
    assert core(tenant, "x").request("GET", "/version").json()["version"] == "5.8.0"
    yaml_tenant = api.tenant({"overrides": "errors:\n  E_NO_SLOT: {status: 418}\n", "keys": [f"{KEY}:0"]})
    assert core(yaml_tenant, "core").activate(KEY).status_code == 418


# MockFleet and the pytest plugin on a tenant server


def test_mockfleet_remote_is_a_tenant_created_on_start_and_deleted_on_stop(server: TenantServer) -> None:
    with (
        MockFleet.remote(server.url, token=SERVER_TOKEN) as mock,
        MockFleet.remote(server.url, token=SERVER_TOKEN) as other,
    ):
        assert len(server.registry) == 2 and mock.tenant != other.tenant
        assert "/t/" in mock.urls["prod"] and mock.activation_url.endswith("/activation_server")
        with mock.session("prod") as prod:
            assert prod.post("/admin/license/activation", json={"activationKey": mock.key}).json() == {"success": True}
        assert mock.states() == {"prod": "active", "backup": "unlicensed"}
        assert other.states() == {"prod": "unlicensed", "backup": "unlicensed"}
        before = other.clock.now()
        assert mock.clock.advance(days=30) - before >= timedelta(days=29)
        assert other.clock.now() - before < timedelta(days=1)
        mock.clock.freeze()
        assert mock.clock.frozen and not other.clock.frozen
        mock.scenario("production-with-online-backup")
        assert mock.states() == {"prod": "active", "backup": "backup-online"}
        assert mock.slot_holders() == {mock.key: [mock.deployments["prod"]]}
        with pytest.raises(ScenarioError):
            mock.scenario("no-such-scenario")
        with pytest.raises(InvalidSnapshot):
            mock.load_state({"format": "nope"})
        saved = mock.state()
        mock.reset()
        assert mock.states() == {"prod": "unlicensed", "backup": "unlicensed"}
        mock.load_state(saved)
        assert mock.states() == {"prod": "active", "backup": "backup-online"}
        with pytest.raises(RuntimeError):
            _ = mock.fleet
    assert len(server.registry) == 0


def test_mockfleet_remote_reports_a_refusal_and_checks_its_arguments_first(server: TenantServer) -> None:
    with pytest.raises(ValueError):
        MockFleet.remote(server.url, token=SERVER_TOKEN, instances=["bad name!"])
    with pytest.raises(ValueError):
        MockFleet.remote(server.url, token=SERVER_TOKEN, control_token="mine")
    with pytest.raises(RuntimeError, match="X-Mock-Control-Token"):
        MockFleet.remote(server.url, token="wrong").start()
    with pytest.raises(RuntimeError, match="at most 3 instances"):
        MockFleet.remote(server.url, token=SERVER_TOKEN, instances=["a", "b", "c", "d"]).start()
    assert len(server.registry) == 0


def test_the_pytest_plugin_uses_a_tenant_server(server: TenantServer, tmp_path: Path) -> None:
    (tmp_path / "test_remote.py").write_text(
        textwrap.dedent(
            """
            import pytest

            def test_one(mockcore, mockcore_sessions, mockcore_urls):
                assert "/t/" in mockcore_urls["prod"]
                answer = mockcore_sessions["prod"].post("/admin/license/activation",
                                                        json={"activationKey": mockcore.key})
                assert answer.json() == {"success": True}
                assert mockcore.states()["prod"] == "active"

            @pytest.mark.mockcore_scenario("production-with-online-backup")
            def test_two(mockcore):
                assert mockcore.states() == {"prod": "active", "backup": "backup-online"}

            def test_three(mockcore):
                assert mockcore.states()["prod"] == "unlicensed"  # reset between tests, over the control plane
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", "PYTEST_ADDOPTS")}
    args = ["--mockcore-tenant-server", server.url, "--mockcore-tenant-server-token", SERVER_TOKEN]
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "3 passed" in completed.stdout
    assert len(server.registry) == 0  # the session's tenant was deleted at its end


# The real command


def test_mockcore_serve_tenants_as_a_subprocess(tmp_path: Path) -> None:
    process = MockcoreProcess(
        tmp_path, ["--tenants", "--port", "0", "--control-token", SERVER_TOKEN, "--max-tenants", "2"], free_ports=False
    )
    process.start()
    try:
        ready = process.wait_ready()
        assert set(ready) == {"url", "tenants"} and ready["tenants"] == ready["url"] + "/_mock/tenants"
        api = Api(ready["url"])
        a = api.tenant({"instances": ["prod", "backup"]})
        b = api.tenant({"instances": ["prod", "backup"]})
        assert api.create().status_code == 429
        assert core(a, "prod").activate(a["keys"][0]["key"]).json() == {"success": True}
        control(a, "POST", "/_mock/clock/advance", {"days": 10})
        assert control(a, "GET", "/_mock/view").json()["instances"]["prod"]["state"] == "active"
        assert control(b, "GET", "/_mock/view").json()["instances"]["prod"]["state"] == "unlicensed"
        assert control(a, "GET", "/_mock/clock").json()["now"] > control(b, "GET", "/_mock/clock").json()["now"]
        spec = api.http.get(ready["url"] + "/_mock/tenants/openapi.yaml", timeout=30)
        assert spec.status_code == 200 and "/_mock/tenants" in spec.text
        assert api.delete(a["tenant"]).status_code == 200
        assert core(a, "prod").licence().status_code == 404
        assert core(b, "prod").licence().status_code == 200
        exited = process.stop(signal.SIGTERM)
        assert exited.returncode == 0, exited.stderr
    finally:
        process.kill()


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--tenants", "--instance", "a"], "--instance: with --tenants"),
        (["--tenants", "--key", ":2"], "--key: with --tenants"),
        (["--tenants", "--state", "x.db"], "--state: with --tenants"),
        (["--tenants", "--activation-port", "0"], "--activation-port: with --tenants"),
        (["--max-tenants", "3"], "--max-tenants go with --tenants"),
        (["--tenant-idle-timeout", "0"], "0<x<="),
        (["--tenants", "--tenant-idle-timeout", "nan"], "nan is not a number"),
        (["--tenants", "--tenant-idle-timeout", "inf"], "0<x<="),
        (["--tenants", "--tenant-idle-timeout", "1e300"], "0<x<="),
        (["--max-tenant-keys", "3"], "--max-tenant-keys go with --tenants"),
    ],
)
def test_serve_refuses_options_that_do_not_go_with_the_mode(args: list[str], text: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--port", "0", *args])
    assert result.exit_code == 2
    assert text in result.output


def test_the_openapi_document_describes_every_route_of_the_tenant_api() -> None:
    import yaml

    from mockcore.http.tenant_api import OPENAPI_FILE, TenantServerApp

    spec = yaml.safe_load((Path(__file__).resolve().parent.parent / "mockcore" / OPENAPI_FILE).read_text())
    app = TenantServerApp(MemoryTenantRegistry()).api
    routes = {
        (re.sub(r"<(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS") and rule.endpoint != "static"
    }
    described = {(path, method) for path, item in spec["paths"].items() for method in item if method != "parameters"}
    assert routes <= described
    assert json.dumps(spec)  # plain data
