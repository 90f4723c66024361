"""The contract server suite: it passes on the emulator (in-process and over real HTTP, through its CLI), it fails on
each deliberately faulty server naming the broken rule, it only reads a target without a control plane unless told
otherwise, and its parity snapshots show differences between two targets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from contracts.rules import RULE_IDS
from contracts.server_suite import SuiteSettings, run_server_suite, run_state_machine
from contracts.target import KeySpec, Target, TargetError, discover, load_overrides
from mockcore import MockFleet
from tests.conftest import serve_fleet
from tests.faulty_servers import KEYS, VARIANTS, Variant, build_fleet, inprocess_target
from tests.serving import MockcoreProcess

# Faults are found by the drills, which run first and are the same on every run; the exploration after them is
# seeded anew each time. Shrinking some exploration failures takes minutes, so the shrink test generates only for
# three variants it knows to shrink fast (the CLI keeps shrinking on by default).
SHRUNK = ("backup-takes-slot", "registers-without-production", "backup-flag-false")
RUNS = (1, 2, 3)  # each a default run, with its own random seed
ONLY_UNDER_4_18 = frozenset({"profile.absent-endpoints", "view.deployment_id"})
# Rules of the accounts, scans and nodes a 4.18 target is held to as a 5.6 one is.
UNDER_BOTH = frozenset(
    {
        "auth.missing-apikey",
        "auth.sessions-bounded",
        "auth.set-apikey",
        "auth.role-rights",
        "auth.no-rights-changes-nothing",
        "auth.scan-rights",
        "auth.nodes-rights",
        "nodes.max-node-count",
        "scan.length-required",
        "scan.callback",
        "scan.callback-invalid",
        "activate.renews",
    }
)


def contracts_command() -> list[str]:
    script = shutil.which("mockcore-contracts")
    return [script] if script else [sys.executable, "-c", "from contracts.cli import main; main()"]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*contracts_command(), "server", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@contextmanager
def served(workdir: Path, args: Sequence[str] = ()) -> Iterator[MockcoreProcess]:
    process = MockcoreProcess(workdir, args).start()
    try:
        process.wait_ready()
        yield process
    finally:
        process.kill()


@pytest.fixture
def fleet3() -> Iterator[MockFleet]:
    with MockFleet(["a", "b", "c"], keys=list(KEYS)) as fleet:
        yield fleet


def test_suite_passes_in_process_and_exercises_every_rule() -> None:
    """The default run (drills, then the exploration) passes on the emulator and exercises every rule of the
    inventory at least once, so "passed" cannot mean "checked nothing"."""
    fleet = discover(inprocess_target(build_fleet()))
    assert fleet.profile == "5.6"
    run = run_server_suite(fleet, SuiteSettings())
    assert run.passed, "\n".join(r.render() for r in run.reports)
    assert [r.mode for r in run.reports] == ["drills", "explore"]
    exercised = set().union(*(r.coverage for r in run.reports))
    # The rules only a 4.18 target shows are exercised by the 4.18 run (next test).
    assert exercised == RULE_IDS - ONLY_UNDER_4_18, f"not exercised: {sorted(RULE_IDS - exercised)}"
    explore = run.reports[1]
    assert explore.examples >= 20 and explore.total_steps > 200


def test_suite_passes_under_the_4_18_profile() -> None:
    """Against a 4.18 fleet (found from the control plane) the suite passes: the drills needing backups,
    nominations or deactivation step aside, the others and the exploration expect the generic 404 of the absent
    endpoints, the licensed view's `deployment_id`, and a 4.18 `/version`."""
    fleet = discover(inprocess_target(build_fleet(profile="4.18")))
    assert fleet.profile == "4.18"
    run = run_server_suite(fleet, SuiteSettings(examples=10))
    assert run.passed, "\n".join(r.render() for r in run.reports)
    assert [r.mode for r in run.reports] == ["drills", "explore"]
    drills = run.reports[0]
    assert any("the 4.18 profile lacks" in note and "online failover" in note for note in drills.notes)
    # Users and roles exist in 4.18: the authentication and least-privilege drills run there, the absent endpoints
    # answering their 404 whatever the key; scans (`/file/sync` its 404) and nodes are as in 5.6.
    assert not [
        note
        for note in drills.notes
        if "authentication" in note or "least-privilege" in note or "scan requests" in note
    ]
    exercised = set().union(*(r.coverage for r in run.reports))
    assert ONLY_UNDER_4_18 | {"profile.version", "refused.changes-nothing"} <= exercised
    assert exercised >= UNDER_BOTH, sorted(UNDER_BOTH - exercised)
    assert not {"view.backup-flag", "service.readyz", "nominate.moves-slot"} & exercised
    assert run.reports[1].coverage["profile.absent-endpoints"] > 0  # the exploration expects the 404s too


@pytest.mark.parametrize(
    ("variant", "rule"),
    [
        ("ignores-rights", "auth.role-rights"),
        ("scan-ignores-rights", "auth.scan-rights"),
        ("wrong-password-logs-in", "auth.login-refused"),
    ],
)
def test_the_account_drills_catch_their_faults_under_the_4_18_profile(variant: str, rule: str) -> None:
    """The authentication and least-privilege drills run under 4.18, so a 4.18 Core that ignores rights or takes a
    wrong password is caught there too."""
    found = next(v for v in VARIANTS if v.name == variant)
    older = replace(found, profile="4.18")
    fleet = discover(inprocess_target(build_fleet(older.fleet_class), older.wrap_core, older.wrap_activation))
    assert fleet.profile == "4.18"
    run = run_server_suite(fleet, SuiteSettings(examples=1))
    assert not run.passed and run.reports[0].rule == rule, run.reports[0].render()


def test_the_profile_is_discovered_or_given() -> None:
    assert discover(inprocess_target(build_fleet(profile="4.18"))).profile == "4.18"
    target = inprocess_target(build_fleet(profile="4.18"))
    target.profile = "5.6"  # what the user says wins over the control plane
    fleet = discover(target)
    assert fleet.profile == "5.6"
    run = run_server_suite(fleet, SuiteSettings(examples=1))
    assert not run.passed and run.reports[0].rule in {"profile.version", "view.backup-flag", "service.readyz"}
    target = inprocess_target(build_fleet())
    target.profile = "3.0"
    with pytest.raises(TargetError, match=r"unknown profile '3\.0'"):
        discover(target)


def test_suite_passes_over_http(fleet3: MockFleet) -> None:
    target = Target.from_urls([fleet3.urls["a"]], apikey=fleet3.apikey)
    fleet = discover(target)
    assert list(fleet.instances) == ["a", "b", "c"]  # named by the control plane
    assert fleet.activation_url == fleet3.activation_url
    run = run_server_suite(fleet, SuiteSettings(examples=8, steps=15))
    assert run.passed, "\n".join(r.render() for r in run.reports)


@pytest.mark.parametrize("run_number", RUNS)
@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_suite_catches_each_faulty_server(variant: Variant, run_number: int) -> None:
    """At the default budget, on every run (each seeded anew): every faulty server is reported, naming the rule."""
    fleet = discover(inprocess_target(build_fleet(variant.fleet_class), variant.wrap_core, variant.wrap_activation))
    run = run_server_suite(fleet, SuiteSettings())
    failed = [r for r in run.reports if not r.passed]
    assert failed, f"the suite missed: {variant.breaks}"
    report = failed[0]
    assert report.rule in variant.rules, report.render()
    text = report.render()
    assert f"FAILED: rule `{report.rule}` is broken" in text
    assert report.steps
    assert "  > " in text and "  < " in text  # each step's HTTP request and answer


@pytest.mark.parametrize("name", SHRUNK)
def test_exploration_alone_finds_and_shrinks(name: str) -> None:
    """Without the drills, the generated exploration finds the fault too and shrinks it to a short sequence."""
    variant = next(v for v in VARIANTS if v.name == name)
    fleet = discover(inprocess_target(build_fleet(variant.fleet_class), variant.wrap_core))
    report = run_state_machine(fleet, SuiteSettings(examples=200, steps=20, derandomize=True))
    assert not report.passed and report.rule in variant.rules, report.render()
    # Three starting reads, at most two set-up steps, the step that breaks the rule.
    assert len(report.steps) <= 7, report.render()


def test_at_least_nineteen_faulty_servers_each_breaking_a_different_rule() -> None:
    assert len(VARIANTS) >= 19
    # The fidelity features each have a server that breaks them (scans by sync, unframed and with a callbackurl,
    # nodes, the rights of scans and nodes, renewals).
    for rule in (
        "scan.sync-refused-by-state",
        "scan.length-required",
        "scan.callback-invalid",
        "scan.sync-callback",
        "nodes.max-node-count",
        "auth.scan-rights",
        "auth.nodes-rights",
        "activate.renews",
    ):
        assert any(v.rules == (rule,) for v in VARIANTS), rule
    assert len({v.name for v in VARIANTS}) == len(VARIANTS)
    assert all(set(v.rules) <= RULE_IDS for v in VARIANTS), [v.name for v in VARIANTS if not set(v.rules) <= RULE_IDS]


def test_cli_passes_against_a_fresh_mockcore_serve(tmp_path: Path) -> None:
    """Must-hold 1 as written: a fresh `mockcore serve` with its defaults (one instance, one key), logging in as
    the default admin; and a three-instance fleet with the API key."""
    with served(tmp_path / "one") as process:
        result = run_cli("--core-url", process.urls()[0], "--examples", "5")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "PASSED: every rule held" in result.stdout
        assert "1 instance(s)" in result.stdout  # says the exploration is better with three
    three = [
        "--instance",
        "a",
        "--instance",
        "b",
        "--instance",
        "c",
        "--key",
        "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG:2:365",
    ]
    with served(tmp_path / "three", three) as process:
        result = run_cli("--core-url", process.urls()[0], "--apikey", process.apikey, "--examples", "8", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        doc = json.loads(result.stdout)
        assert doc["passed"] is True
        assert [r["mode"] for r in doc["reports"]] == ["drills", "explore"]
        assert doc["reports"][1]["examples"] >= 8


@pytest.fixture
def faulty_served() -> Iterator[str]:
    """The registers-without-production variant on real ports."""
    variant = next(v for v in VARIANTS if v.name == "registers-without-production")
    running = serve_fleet(build_fleet(variant.fleet_class))
    try:
        yield running.urls["a"]
    finally:
        running.server.stop()


def test_cli_report_names_the_rule_and_shows_the_exchanges(faulty_served: str) -> None:
    result = run_cli("--core-url", faulty_served)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "FAILED: rule `register-online.production-on-key` is broken" in out
    assert "The failing drill" in out
    assert "as an online backup of" in out
    assert "expected: 400 E_BACKUP_PRODUCTION" in out
    assert "  > POST http://127.0.0.1:" in out and "/admin/license/backup" in out
    assert "  > active-deployment-id: " in out
    assert "  < 200 OK" in out


def test_read_only_checks_under_the_4_18_profile() -> None:
    """Without a control plane, told `--profile 4.18`: the reads expect the absent endpoints' 404, and the failover
    sequence is skipped (4.18 has no backups)."""
    target = inprocess_target(build_fleet(profile="4.18"))
    target.control, target.profile, target.allow_destructive = False, "4.18", True
    target.keys = [KeySpec.parse("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG:2")]
    run = run_server_suite(discover(target), SuiteSettings())
    assert run.passed, "\n".join(r.render() for r in run.reports)
    assert [r.mode for r in run.reports] == ["read-only"]
    assert {"profile.absent-endpoints", "view.unlicensed"} <= set(run.reports[0].coverage)
    assert any("no backups" in skipped for skipped in run.skipped)


def test_cli_takes_the_profile() -> None:
    """A 4.18 fleet on real ports: the CLI finds its profile and passes; told `--profile 5.6`, it fails (the 5.6
    endpoints are not there); an unknown profile is a usage error."""
    running = serve_fleet(build_fleet(profile="4.18"))
    try:
        url = running.urls["a"]
        result = run_cli("--core-url", url, "--examples", "2", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        notes = json.loads(result.stdout)["reports"][0]["notes"]
        assert any("4.18 profile lacks" in note for note in notes), notes
        result = run_cli("--core-url", url, "--examples", "2", "--profile", "5.6")
        assert result.returncode == 1, result.stdout + result.stderr
        result = run_cli("--core-url", url, "--profile", "4.0")
        assert result.returncode == 2 and "4.0" in result.stderr
    finally:
        running.server.stop()


def test_cli_refuses_an_unusable_target(tmp_path: Path) -> None:
    result = run_cli("--core-url", "http://127.0.0.1:9", "--examples", "1")
    assert result.returncode == 2
    assert "cannot reach http://127.0.0.1:9" in result.stdout
    bad = tmp_path / "target.yaml"
    bad.write_text("core_urls: [http://127.0.0.1:9]\nnonsense: 1\n")
    result = run_cli("--target", str(bad))
    assert result.returncode == 2 and "unknown fields" in result.stdout


def _state(fleet: MockFleet) -> dict[str, object]:
    doc = dict(fleet.state())
    doc.pop("clock")
    return doc


def test_target_without_control_plane_is_only_read(fleet3: MockFleet) -> None:
    fleet3.scenario("production-with-online-backup")
    before = _state(fleet3)
    target = Target.from_urls(list(fleet3.urls.values()), apikey=fleet3.apikey, control=False)
    target.activation_url = fleet3.activation_url
    run = run_server_suite(discover(target), SuiteSettings())
    assert run.passed, run.reports[0].render()
    assert [r.mode for r in run.reports] == ["read-only"]
    assert "--allow-destructive" in run.skipped[0]
    assert _state(fleet3) == before  # nothing changed


def test_read_only_checks_can_fail() -> None:
    variant = next(v for v in VARIANTS if v.name == "missing-apikey-accepted")
    fleet = build_fleet(variant.fleet_class)
    target = inprocess_target(fleet, variant.wrap_core)
    target.control = False
    run = run_server_suite(discover(target), SuiteSettings())
    assert not run.passed
    assert run.reports[0].rule == "auth.missing-apikey"
    assert "without an apikey" in run.reports[0].render()


def test_destructive_sequence_without_control_plane_leaves_instances_unlicensed(fleet3: MockFleet) -> None:
    key = fleet3.keys[0]
    target = Target.from_urls(list(fleet3.urls.values()), apikey=fleet3.apikey, control=False, allow_destructive=True)
    target.activation_url = fleet3.activation_url
    target.keys = [KeySpec(key, 2)]
    run = run_server_suite(discover(target), SuiteSettings())
    assert run.passed, "\n".join(r.render() for r in run.reports)
    assert [r.mode for r in run.reports] == ["read-only", "failover sequence"]
    assert set(fleet3.states().values()) == {"unlicensed"}
    assert fleet3.slot_holders() == {k: [] for k in fleet3.keys}
    again = run_server_suite(discover(target), SuiteSettings())  # and it can run again
    assert again.passed


def test_parity_record_then_compare(tmp_path: Path, fleet3: MockFleet) -> None:
    snapshot = tmp_path / "parity.json"
    url = fleet3.urls["a"]
    recorded = run_cli("--core-url", url, "--apikey", fleet3.apikey, "--record", str(snapshot))
    assert recorded.returncode == 0, recorded.stdout
    doc = json.loads(snapshot.read_text())
    assert doc["format"] == "mockcore-contracts-parity/1"
    text = snapshot.read_text()
    assert "MSCL" not in text and fleet3.keys[0] not in text and url not in text  # masked
    same = run_cli("--core-url", url, "--apikey", fleet3.apikey, "--compare", str(snapshot))
    assert same.returncode == 0, same.stdout
    assert "parity: no difference" in same.stdout


def test_parity_shows_a_different_error_text(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text('errors:\n  E_NOMINATE_OFFLINE: {status: 409, text: "Nope."}\n')
    snapshot = tmp_path / "parity.json"
    with MockFleet(["a", "b"], keys=list(KEYS)) as plain:
        assert (
            run_cli("--core-url", plain.urls["a"], "--apikey", plain.apikey, "--record", str(snapshot)).returncode == 0
        )
    with MockFleet(["a", "b"], keys=list(KEYS), overrides=overrides) as other:
        args = ["--core-url", other.urls["a"], "--apikey", other.apikey]
        differs = run_cli(*args, "--overrides", str(overrides), "--compare", str(snapshot))
        assert differs.returncode == 1, differs.stdout
        assert "PARITY: 1 difference(s)" in differs.stdout
        assert "status: recorded 400, now 409" in differs.stdout and "Nope." in differs.stdout
        # Without the overrides the suite itself reports the text as a broken rule.
        strict = run_cli(*args, "--compare", str(snapshot))
        assert strict.returncode == 1 and "transition.nominate.backup-offline" in strict.stdout


def test_target_file_and_overrides_are_checked(tmp_path: Path) -> None:
    good = tmp_path / "target.yaml"
    good.write_text(
        "core_urls: {prod: 'http://h:1', backup: 'http://h:2'}\nkeys: ['AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG:2']\n"
    )
    target = Target.load(good)
    assert target.core_urls == {"prod": "http://h:1", "backup": "http://h:2"}
    assert target.keys == [KeySpec("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG", 2)]
    for text in ("core_urls: 3\n", "- a list\n", "core_urls: [x]\nkeys: ['short:2']\n"):
        good.write_text(text)
        with pytest.raises(TargetError):
            Target.load(good)
    overrides = tmp_path / "o.yaml"
    overrides.write_text("errors: {E_UNKNOWN: {status: 400}}\n")
    with pytest.raises(TargetError, match="E_UNKNOWN"):
        load_overrides(overrides)
    overrides.write_text("errors: {E_NO_SLOT: {status: 409}}\n")
    assert load_overrides(overrides)["E_NO_SLOT"].status == 409


def test_a_control_token_is_sent(tmp_path: Path) -> None:
    with MockFleet(["a", "b", "c"], keys=list(KEYS), control_token="s3cret") as fleet:
        assert requests.post(fleet.urls["a"] + "/_mock/reset", timeout=5).status_code == 401
        args = ["--core-url", fleet.urls["a"], "--apikey", fleet.apikey, "--examples", "3"]
        assert run_cli(*args, "--control-token", "s3cret").returncode == 0


def test_pytest_entry_point(tmp_path: Path, fleet3: MockFleet, faulty_served: str) -> None:
    """`pytest --pyargs contracts.test_server_contract` with the plugin's options: passes on the mock, is skipped
    without --core-url, and fails with the report on a faulty server."""
    base = [sys.executable, "-m", "pytest", "--pyargs", "contracts.test_server_contract", "-p", "no:cacheprovider"]
    base += ["-p", "no:xdist", "-q", "--rootdir", str(tmp_path)]

    def pytest_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)

    passed = pytest_run("--core-url", fleet3.urls["a"], "--apikey", fleet3.apikey, "--contracts-examples", "5")
    assert passed.returncode == 0 and "1 passed" in passed.stdout, passed.stdout + passed.stderr
    skipped = pytest_run()
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout, skipped.stdout
    failed = pytest_run("--core-url", faulty_served)
    assert failed.returncode == 1, failed.stdout
    assert "FAILED: rule `register-online.production-on-key` is broken" in failed.stdout


def test_guides_quick_start_runs(tmp_path: Path) -> None:
    """The two lines of docs/guides/checking-a-server.md, on free ports instead of 8008/8009 (the only change)."""
    guide = (Path(__file__).parents[1] / "docs" / "guides" / "checking-a-server.md").read_text()
    section = guide.split("\n## Quick start\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    serve_line, suite_line = block.strip().splitlines()
    assert serve_line.startswith("mockcore serve ") and serve_line.endswith(" &")
    process = MockcoreProcess(tmp_path, serve_line.removeprefix("mockcore serve ").removesuffix(" &").split())
    process.start()
    try:
        process.wait_ready()
        port = process.urls()[0].rsplit(":", 1)[1]
        argv = suite_line.replace("127.0.0.1:8008", f"127.0.0.1:{port}").split()
        assert argv[0] == "mockcore-contracts"
        result = subprocess.run(
            [*contracts_command(), *argv[1:]], capture_output=True, text=True, timeout=300, check=False
        )
    finally:
        process.kill()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASSED: every rule held" in result.stdout


def test_cli_over_tls_with_the_fleets_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--cacert` is the CA the suite trusts, even when REQUESTS_CA_BUNDLE points elsewhere."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    with served(tmp_path, ["--tls", "--instance", "a", "--instance", "b"]) as process:
        assert process.urls()[0].startswith("https://")
        ca = process.ca_cert
        assert ca is not None
        result = run_cli("--core-url", process.urls()[0], "--apikey", process.apikey, "--cacert", ca, "--examples", "3")
        assert result.returncode == 0, result.stdout + result.stderr
        refused = run_cli("--core-url", process.urls()[0], "--apikey", process.apikey, "--examples", "1")
        assert refused.returncode == 2  # an untrusted certificate: the target cannot be used
