"""The in-process server (mockcore.inprocess.MockFleet) and the pytest plugin (mockcore.pytest_plugin).

The plugin is tested three ways: its fixtures are used right here (the plugin is installed, so this session has
it); small throwaway test projects run in a pytest subprocess (options, ini settings, marker misuse); and the
made-up client's suite in examples/made_up_client runs in a `pytest -n 2` subprocess, with a probe plugin that
records which fleet every test used, to show that each xdist worker had its own fleet on its own ports.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from mockcore import identity, pytest_plugin
from mockcore.inprocess import BaseUrlSession, InvalidSnapshot, KeySpec, MockFleet, ScenarioError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "made_up_client"
EXAMPLE_TESTS = 16  # the made-up client's suite: test functions, parametrized cases and class methods
RUN_TIMEOUT = 120
# Plugins the subprocesses do not need and that cost a second or more of start-up in every (xdist) process.
UNNEEDED_PLUGINS = ("-p", "no:hypothesispytest", "-p", "no:benchmark")
KEY = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG"


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def _listens(url: str) -> bool:
    try:
        with socket.create_connection(_address(url), timeout=2):
            return True
    except OSError:
        return False


def _start_pytest(args: list[str], cwd: Path, extra_path: Path | None = None) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("PYTEST_XDIST_WORKER", None)  # when this suite itself runs under xdist
    env.pop("PYTEST_ADDOPTS", None)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *UNNEEDED_PLUGINS, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _run_pytest(args: list[str], cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    return _finish(_start_pytest(args, cwd, extra_path))


def _junit(path: Path) -> dict[str, tuple[str, str]]:
    """Test name -> (outcome, message) from a JUnit XML report: outcome is passed, failure, error or skipped."""
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            found = case.find(kind)
            if found is not None:
                outcome, message = kind, (found.get("message") or "") + "\n" + (found.text or "")
        outcomes[case.get("name", "")] = (outcome, message)
    return outcomes


# The plugin is registered and loaded


def test_the_plugin_is_registered_through_the_pytest11_entry_point(pytestconfig: pytest.Config) -> None:
    found = [ep for ep in entry_points(group="pytest11") if ep.name == "mockcore"]
    assert [ep.value for ep in found] == ["mockcore.pytest_plugin"]
    assert found[0].load() is pytest_plugin
    assert pytestconfig.pluginmanager.get_plugin("mockcore") is pytest_plugin
    assert any(line.startswith("mockcore_scenario(") for line in pytestconfig.getini("markers"))


def test_import_mockcore_stays_cheap() -> None:
    code = (
        "import sys, mockcore\n"
        "heavy = sorted(m for m in ('requests', 'flask', 'cheroot', 'mockcore.inprocess') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert mockcore.MockFleet.__module__ == 'mockcore.inprocess'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr


# The fixtures, used in this very session


def test_the_mockcore_fixture_is_a_reset_running_fleet(mockcore: MockFleet, mockcore_urls: dict[str, str]) -> None:
    assert mockcore.running
    assert list(mockcore_urls) == ["prod", "backup"]
    assert mockcore.states() == {"prod": "unlicensed", "backup": "unlicensed"}
    assert [k["slots"] for k in mockcore.state()["keys"]] == [2]
    mockcore.clock.advance(days=1000)  # undone by the reset before the next test
    mockcore.scenario("production-only")


@pytest.mark.mockcore_scenario("production-with-online-backup")
def test_the_marker_sets_the_scenario_up(
    mockcore: MockFleet, mockcore_sessions: dict[str, BaseUrlSession], mockcore_activation_url: str
) -> None:
    assert mockcore.states() == {"prod": "active", "backup": "backup-online"}
    assert mockcore.clock.now() - datetime.now(UTC) < timedelta(hours=1)  # the previous test's clock is gone
    assert mockcore_sessions["backup"].get("/admin/license/backup").json() == {"is_backup": True}
    assert mockcore_activation_url == mockcore.activation_url


def test_the_session_factory_and_the_simple_fixtures(
    mockcore: MockFleet,
    mockcore_session: Any,
    mockcore_apikey: str,
    mockcore_key: str,
    mockcore_keys: list[str],
) -> None:
    assert mockcore_apikey == identity.apikey("0")
    assert mockcore_keys == [mockcore_key] == [identity.activation_key("0", 0)]
    bare = mockcore_session("prod", apikey=None).get("/admin/license")
    assert (bare.status_code, bare.json()) == (400, {"err": "Access denied"})
    activation = mockcore_session("activation_server")
    params = {"key": mockcore_key, "deployment": mockcore.deployments["prod"], "quantity": 1}
    answer = activation.get("/activation", params=params)
    assert answer.status_code == 200 and answer.reason == "OK"


# The made-up client's suite under pytest-xdist

PROBE = '''
"""Records, after each test, which process and which fleet ran it; and at the end, whether the server was loaded."""
import json
import os
import re
import sys
from pathlib import Path

OUT = Path(os.environ["MOCKCORE_PROBE_DIR"])


def _write(name, record):
    with (OUT / name).open("a") as out:
        out.write(json.dumps(record) + "\\n")


def pytest_runtest_teardown(item):
    fleet = item.funcargs.get("mockcore_fleet")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    urls = None if fleet is None else {**fleet.urls, "activation_server": fleet.activation_url}
    _write(f"{worker}.jsonl", {"test": item.nodeid, "pid": os.getpid(), "urls": urls})


def pytest_unconfigure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "controller")
    _write("modules.jsonl", {"process": worker, "server_loaded": "mockcore.server" in sys.modules})
'''


def test_the_made_up_clients_suite_passes_under_xdist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mockcore_probe.py").write_text(PROBE)
    records = tmp_path / "records"
    records.mkdir()
    monkeypatch.setenv("MOCKCORE_PROBE_DIR", str(records))
    result = _run_pytest(["-n", "2", "-v", "-p", "mockcore_probe", "examples/made_up_client"], ROOT, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"{EXAMPLE_TESTS} passed" in result.stdout, output

    # Both workers ran tests, and every test passed on one of them.
    ran: dict[str, str] = {}
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) >= 4 and words[0] in ("[gw0]", "[gw1]") and words[-2] == "PASSED":
            ran[words[-1]] = words[0].strip("[]")
    assert len(ran) == EXAMPLE_TESTS, output
    assert set(ran.values()) == {"gw0", "gw1"}, output

    # Each worker used one fleet of its own (session-scoped, per process) on ports no other worker used.
    per_worker: dict[str, list[dict[str, Any]]] = {}
    for worker in ("gw0", "gw1"):
        lines = (records / f"{worker}.jsonl").read_text().splitlines()
        per_worker[worker] = [json.loads(line) for line in lines]
    assert sum(len(r) for r in per_worker.values()) == EXAMPLE_TESTS
    ports: dict[str, set[int]] = {}
    for worker, recs in per_worker.items():
        assert {r["test"] for r in recs} == {t for t, w in ran.items() if w == worker}
        assert len({r["pid"] for r in recs}) == 1
        fleets = {json.dumps(r["urls"], sort_keys=True) for r in recs}
        assert len(fleets) == 1, fleets  # one fleet for the whole worker session
        ports[worker] = {_address(url)[1] for url in recs[0]["urls"].values()}
        assert len(ports[worker]) == 3  # prod, backup, the activation server
    assert per_worker["gw0"][0]["pid"] != per_worker["gw1"][0]["pid"]
    assert not ports["gw0"] & ports["gw1"]

    # The plugin is lazy: the controller, which runs no test, never loaded the server.
    modules = [json.loads(line) for line in (records / "modules.jsonl").read_text().splitlines()]
    assert {m["process"]: m["server_loaded"] for m in modules} == {"controller": False, "gw0": True, "gw1": True}


# Options, ini settings and marker misuse, in a throwaway project

PROJECT_INI = f"""
[pytest]
addopts = --strict-markers
mockcore_instances = solo
mockcore_keys =
    {KEY}:3:10
mockcore_overrides = overrides.yaml
"""

PROJECT_TESTS: tuple[tuple[str, str], ...] = (
    (
        "test_a_lazy.py",
        """
        import threading


        def test_nothing_runs_before_a_test_asks():
            assert not [t.name for t in threading.enumerate() if t.name.startswith("mockcore-")]
    """,
    ),
    (
        "test_ini.py",
        f"""
        def test_the_ini_settings_shape_the_fleet(mockcore, mockcore_urls, mockcore_keys, mockcore_sessions):
            assert list(mockcore_urls) == ["solo"]
            assert mockcore_keys == ["{KEY}"]
            assert [k["slots"] for k in mockcore.state()["keys"]] == [3]
            assert mockcore_sessions["solo"].get("/version").json()["version"] == "5.9.9"  # the overrides file
    """,
    ),
    (
        "test_markers.py",
        """
        import pytest


        @pytest.mark.mockcore_scenario("no-such-scenario")
        def test_unknown(mockcore):
            pass


        @pytest.mark.mockcore_scenario("production-with-online-backup")
        def test_too_few_instances(mockcore_urls):
            pass


        @pytest.mark.mockcore_scenario()
        def test_no_name(mockcore):
            pass


        @pytest.mark.mockcore_scenario("production-only")
        def test_the_fleet_still_works(mockcore):
            assert mockcore.states() == {"solo": "active"}


        @pytest.mark.mockcore_scenario("no-such-scenario")
        def test_the_marker_needs_a_fixture_to_act():
            pass
    """,
    ),
    (
        "test_cli.py",
        """
        from mockcore.identity import activation_key


        def test_the_command_line_wins_over_the_ini(mockcore_urls, mockcore_keys, mockcore):
            assert list(mockcore_urls) == ["one", "two"]
            assert mockcore_keys == [activation_key("7", 0)]
            assert [k["slots"] for k in mockcore.state()["keys"]] == [4]
    """,
    ),
)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A project with its pytest.ini and overrides file at the top and its tests in `tests/`: the directory
    pytest runs in (so the overrides path must resolve against the ini file, not the working directory)."""
    (tmp_path / "pytest.ini").write_text(PROJECT_INI)
    (tmp_path / "overrides.yaml").write_text('version: "5.9.9"\n')
    tests = tmp_path / "tests"
    tests.mkdir()
    for name, text in PROJECT_TESTS:
        (tests / name).write_text(textwrap.dedent(text))
    yield tests


def test_ini_settings_and_marker_misuse(project: Path) -> None:
    files = ["test_a_lazy.py", "test_ini.py", "test_markers.py"]
    result = _run_pytest([*files, "--junitxml", "report.xml"], project)
    outcomes = _junit(project / "report.xml")
    assert result.returncode == 1, result.stdout + result.stderr
    assert {name: outcome for name, (outcome, _) in outcomes.items()} == {
        "test_nothing_runs_before_a_test_asks": "passed",
        "test_the_ini_settings_shape_the_fleet": "passed",
        "test_unknown": "error",
        "test_too_few_instances": "error",
        "test_no_name": "error",
        "test_the_fleet_still_works": "passed",
        "test_the_marker_needs_a_fixture_to_act": "passed",
    }
    unknown = outcomes["test_unknown"][1]
    assert "mockcore_scenario: unknown scenario 'no-such-scenario'; known scenarios: fresh, production-only" in unknown
    assert "Traceback" not in unknown
    assert "needs at least 2 instances; the fleet has 1" in outcomes["test_too_few_instances"][1]
    assert '@pytest.mark.mockcore_scenario("production-only")' in outcomes["test_no_name"][1]


def test_the_command_line_overrides_the_ini(project: Path) -> None:
    options = ["--mockcore-instances", "one,two", "--mockcore-key", ":4", "--mockcore-seed", "7"]
    result = _run_pytest([*options, "test_cli.py"], project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_a_bad_option_is_a_usage_error(project: Path) -> None:
    result = _run_pytest(["--mockcore-key", "not-a-key", "test_a_lazy.py"], project)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "mockcore: 'not-a-key': an activation key is seven groups of four" in result.stderr


# MockFleet


def test_start_listens_and_stop_closes_every_port() -> None:
    mock = MockFleet(instances=("a", "b"))
    assert not mock.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = mock.urls
    with mock:
        urls = [*mock.urls.values(), mock.activation_url]
        assert len({_address(u)[1] for u in urls}) == 3
        assert all(_listens(u) for u in urls)
        with pytest.raises(RuntimeError, match="already running"):
            mock.start()
    assert not mock.running
    assert not any(_listens(u) for u in urls)
    mock.stop()  # idempotent


def test_a_restarted_fleet_keeps_its_state_on_new_ports() -> None:
    with MockFleet() as mock, mock.session("prod") as prod:
        assert prod.post("/admin/license/activation", json={"activationKey": mock.key}).status_code == 200
    with mock:
        assert mock.states()["prod"] == "active"
        with mock.session("prod") as prod:
            assert prod.get("/admin/license").json()["online_activated"] is True


def test_the_context_manager_stops_on_an_exception() -> None:
    mock = MockFleet(instances="solo")
    with pytest.raises(ZeroDivisionError), mock:
        url = mock.urls["solo"]
        _ = 1 / 0
    assert not mock.running and not _listens(url)


def test_reset_restores_the_start_state() -> None:
    with MockFleet(keys=[(KEY, 1)]) as mock, mock.session("prod") as prod, mock.session("backup") as backup:
        start = mock.state()
        assert prod.post("/admin/license/activation", json={"activationKey": KEY}).status_code == 200
        login = backup.post("/login", json={"user": "admin", "password": "admin"}).json()
        assert backup.get("/user", headers={"apikey": login["session_id"]}).status_code == 200
        mock.clock.freeze()
        mock.clock.advance(days=500)
        assert mock.slot_holders() == {KEY: [mock.deployments["prod"]]}

        mock.reset()
        assert mock.states() == {"prod": "unlicensed", "backup": "unlicensed"}
        assert mock.slot_holders() == {KEY: []}
        assert not mock.clock.frozen
        assert abs(mock.clock.now() - datetime.now(UTC)) < timedelta(minutes=5)
        assert backup.get("/user", headers={"apikey": login["session_id"]}).status_code == 403
        assert prod.get("/admin/license").json() == {
            "deployment": mock.deployments["prod"],
            "deployment_id": mock.deployments["prod"],
        }
        now = mock.state()
        assert (now["keys"], now["instances"]) == (start["keys"], start["instances"])


def test_scenarios_and_their_errors() -> None:
    with MockFleet(instances=("solo",)) as mock:
        assert set(mock.scenarios()) >= {"fresh", "production-only", "production-with-online-backup", "expired"}
        mock.scenario("production-only")
        assert mock.states() == {"solo": "active"}
        with pytest.raises(ScenarioError, match=r"unknown scenario 'nope'; known scenarios: fresh, "):
            mock.scenario("nope")
        with pytest.raises(ScenarioError, match="needs at least 2 instances"):
            mock.scenario("production-with-offline-backup")
        assert mock.states() == {"solo": "active"}  # a refused scenario changes nothing
        mock.scenario("expired")
        with mock.session("solo") as solo:
            assert solo.get("/admin/license").json()["days_left"] == 0


def test_state_and_load_state_round_trip() -> None:
    with MockFleet() as mock:
        mock.scenario("production-with-online-backup")
        saved = mock.state()
        mock.reset()
        mock.load_state(saved)
        assert mock.states() == {"prod": "active", "backup": "backup-online"}
        json.dumps(saved)  # JSON-ready
        with pytest.raises(InvalidSnapshot, match="instances"):
            mock.load_state({**saved, "instances": {}})
        assert mock.states() == {"prod": "active", "backup": "backup-online"}


def test_the_clock_helpers_move_the_clock_the_control_plane_shows() -> None:
    with MockFleet(instances="solo") as mock, mock.session("solo") as solo:
        frozen_at = mock.clock.freeze()
        assert mock.clock.frozen
        assert mock.clock.advance(days=2, hours=3) == frozen_at + timedelta(days=2, hours=3)
        assert mock.clock.advance(timedelta(days=-1)) == frozen_at + timedelta(days=1, hours=3)
        assert mock.clock.set("2030-01-02T03:04:05+00:00") == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert solo.get("/_mock/clock").json() == {
            "now": "2030-01-02T03:04:05+00:00",
            "date": "2030-01-02",
            "frozen": True,
        }
        mock.clock.unfreeze()
        assert solo.get("/_mock/clock").json()["frozen"] is False
        with pytest.raises(ValueError, match="moment"):
            mock.clock.set("next tuesday")


def test_sessions_join_urls_and_send_the_headers() -> None:
    with MockFleet(control_token="s3cret") as mock, mock.session("prod") as prod:
        assert isinstance(prod, requests.Session)
        assert prod.base_url == mock.urls["prod"]
        assert prod.get("admin/license/backup").json() == {"is_backup": False}  # with or without the slash
        assert prod.get(mock.urls["backup"] + "/admin/license/backup").json() == {"is_backup": False}  # absolute
        assert prod.get("/_mock/state").status_code == 200  # the session carries the control token
        assert requests.get(mock.urls["prod"] + "/_mock/state", timeout=30).status_code == 401
        with mock.session("prod", apikey="1a2b3c4d5e1a2b3c4d5e1a2b3c4d5e1a2b3c") as wrong:
            assert wrong.get("/admin/license").status_code == 403
        with mock.session("activation_server") as activation:
            assert "apikey" not in activation.headers
        with pytest.raises(KeyError, match="no face named 'nope'"):
            mock.session("nope")


def test_friendly_arguments() -> None:
    mock = MockFleet(
        instances="p, q",
        keys=[KEY, ("BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH", 5, 30), KeySpec(None, 2), ":3"],
        seed=4,
        admin="root:toor",
    )
    assert mock.instances == ("p", "q")
    assert mock.keys == [KEY, "BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH", *(identity.activation_key("4", i) for i in (2, 3))]
    assert [k["slots"] for k in mock.state()["keys"]] == [1, 5, 2, 3]
    assert mock.apikey == identity.apikey("4")
    assert mock.deployments["p"] == identity.deployment_id("4", "p")
    assert "not running" in repr(mock)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"instances": ()}, "at least one instance"),
        ({"instances": ("a", "a")}, "unique: a"),
        ({"instances": ("bad name",)}, "an instance name is"),
        ({"instances": ("activation_server",)}, "the activation server's name"),
        ({"keys": []}, "at least one activation key"),
        ({"keys": ["nope:1"]}, "seven groups of four"),
        ({"keys": [f"{KEY}:x"]}, "KEY\\[:SLOTS\\[:DAYS\\]\\]"),
        ({"keys": [(KEY, -1)]}, "slots must be a whole number"),
        ({"keys": [42]}, "a key is a KeySpec"),
        ({"apikey": "0123"}, "an API key is 36 chars"),
        ({"admin": "nopassword"}, "USER:PASSWORD"),
        ({"ports": {"elsewhere": 1}}, "ports for unknown instances: elsewhere"),
        ({"control_token": ""}, "must not be empty"),
        ({"overrides": "/nonexistent/overrides.yaml"}, "cannot read"),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MockFleet(**arguments)


def test_overrides_change_the_answers(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text('version: "5.8.0"\nerrors:\n  E_NOT_BACKUP: {status: 409, text: "Not a backup"}\n')
    with MockFleet(instances="solo", overrides=overrides) as mock, mock.session("solo") as solo:
        assert solo.get("/version").json()["version"] == "5.8.0"
        refused = solo.post("/admin/license/backup/nomination")
        assert (refused.status_code, refused.json()) == (409, {"err": "Not a backup"})


# The examples of docs/guides/test-double.md and the README, as written


GUIDE = ROOT / "docs" / "guides" / "test-double.md"


def _section(text: str, heading: str) -> str:
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def _guide_examples() -> list[str]:
    """The python blocks of the guide's `In-process server` and `pytest plugin` sections, in order."""
    text = GUIDE.read_text()
    sections = _section(text, "## In-process server") + _section(text, "## pytest plugin")
    return re.findall(r"```python\n(.*?)```", sections, re.DOTALL)


def test_the_guides_in_process_example_runs() -> None:
    example = _guide_examples()[0]
    assert "MockFleet(" in example
    exec(compile(example, str(GUIDE), "exec"), {})


def test_the_readmes_in_process_example_runs() -> None:
    examples = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert len(examples) == 1 and "MockFleet(" in examples[0]
    exec(compile(examples[0], "README.md", "exec"), {})


def test_the_guides_plugin_examples_run(tmp_path: Path) -> None:
    tests, conftest = _guide_examples()[1:3]
    assert tests.startswith("# test_licences.py") and conftest.startswith("# conftest.py")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "test_licences.py").write_text(tests)
    (tmp_path / "configured").mkdir()
    (tmp_path / "configured" / "conftest.py").write_text(conftest)
    (tmp_path / "configured" / "test_configured.py").write_text(
        "def test_the_conftest_configures_the_fleet(mockcore, mockcore_urls):\n"
        "    assert list(mockcore_urls) == ['east', 'west', 'dr']\n"
        "    assert [k['slots'] for k in mockcore.state()['keys']] == [2]\n"
    )
    runs = {directory: _start_pytest(["-q"], tmp_path / directory) for directory in ("plain", "configured")}
    for (directory, process), passed in zip(runs.items(), (6, 1), strict=True):
        result = _finish(process)
        assert result.returncode == 0, directory + "\n" + result.stdout + result.stderr
        assert f"{passed} passed" in result.stdout, result.stdout
