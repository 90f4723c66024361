"""The client harness (`contracts.client`): the correct Python and shell clients pass, every buggy client fails with a
report naming its bug, a client that breaks the adapter protocol gets a clear report (not a traceback), the relay
loses exactly the armed answer, the CLI's exit codes, the pytest fixture, the arguments a client sends compared
with those it was given, TLS (the CA path honoured, impostor certificates refused), the report's wording, and the
walkthrough of docs/guides/validating-a-client.md as written.

The harness speaks real HTTP to a mock fleet served in-process (`MockFleet`, one per module); the TLS tests use a
`mockcore serve --tls-cert` of their own (one per module) and the CLI walkthrough starts its own. Buggy clients run
the drills only (deterministic, and each bug is caught there); two tests show the Hypothesis exploration finding
a bug on its own.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from hypothesis import Phase

from contracts.checks import Violation
from contracts.cli import main as contracts_main
from contracts.client import Failure, Instance, Outcome, Success
from contracts.client.adapter import OPERATIONS, AdapterError, Call, PythonClient, load_adapter, parse_outcome
from contracts.client.command import CommandClient
from contracts.client.harness import FAULTS, QUANTITIES, HarnessSettings, drills
from contracts.client.journal import Record
from contracts.client.properties import argument_problems, check_outcome
from contracts.client.relay import Relay
from contracts.client.report import PROPERTIES, PROPERTY_RULES, ClientReport, ClientStep, plain
from contracts.client.run import check_client
from contracts.client.serve import DEFAULT_INSTANCES, EXAMPLE_KEYS, Certificates, ServedMock
from contracts.rules import RULE_IDS
from examples.clients import buggy_clients
from examples.clients.python_client.adapter import Adapter
from mockcore import MockFleet

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guides" / "validating-a-client.md"
SHELL_CLIENT = str(ROOT / "examples" / "clients" / "shell_client" / "client.sh")
DRILLS_ONLY = HarnessSettings(examples=0)

# Each buggy client, the property its report must name, and a fragment of what happened that names the bug.
BUGS: dict[str, tuple[str, str]] = {
    "BackupSentenceAsFailure": ("reports-server-success", "now registered as a backup one"),
    "QuantityAsList": ("request-well-formed", "/quantity: [37] is not valid"),
    "DropsApikey": ("request-well-formed", "`apikey` is missing"),
    "SuccessOn400": ("no-false-success", "the answer was 400"),
    "IgnoresReactivate": ("client-view", "reactivate: client False, server True"),
    "RetriesNominationBlindly": ("no-double-apply", "This instance is not registered as a backup."),
    "LicenceAsJson": ("request-well-formed", "the body was sent as JSON"),
    "InventsErrors": ("surfaces-server-error", "'Licence operation failed'"),
    "AssumesSuccessWithoutAnswer": ("no-false-success", "dropped by a fault"),
    "SendsFixedQuantity": ("sends-given-arguments", "`quantity` is 1, the client was given 37"),
    "UpperCasesKey": ("sends-given-arguments", "the same key in another case"),
}
# The buggy clients caught only over HTTPS.
TLS_BUGS: dict[str, tuple[str, str]] = {
    "IgnoresCa": ("verifies-tls", "should have refused the handshake, yet it sent GET /admin/license"),
}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockFleet]:
    with MockFleet(instances=DEFAULT_INSTANCES, keys=list(EXAMPLE_KEYS)) as fleet:
        yield fleet


def run(mock: MockFleet, client: Any, settings: HarnessSettings = DRILLS_ONLY) -> ClientReport:
    return check_client(client, url=mock.urls["prod"], apikey=mock.apikey, settings=settings)


def client_steps(report: ClientReport) -> list[ClientStep]:
    return [s for s in report.steps if isinstance(s, ClientStep) and s.kind == "client"]


# The correct clients pass, having seen every operation succeed, fail and go unanswered


def assert_exercised(report: ClientReport) -> None:
    seen = set(report.coverage)
    for operation in ("activate", "upload_licence", "register_online", "register_offline", "unregister", "nominate"):
        assert {f"{operation}: success", f"{operation}: 400", f"{operation}: no answer"} <= seen, (operation, seen)
    for operation in ("deactivate", "licence_info", "backup_flag"):
        assert {f"{operation}: success", f"{operation}: no answer"} <= seen, (operation, seen)
    assert {"activate: 500", "nominate: 500", "register_online: 500"} <= seen, seen


def test_the_correct_python_client_passes(mock: MockFleet) -> None:
    report = run(mock, Adapter(), HarnessSettings(examples=8, derandomize=True))
    assert report.passed, report.render()
    assert report.drills == len(drills()) and report.examples >= 8
    assert_exercised(report)
    assert "PASSED: every property held" in report.render()


def test_the_correct_shell_client_passes(mock: MockFleet) -> None:
    report = run(mock, SHELL_CLIENT, HarnessSettings(examples=2, derandomize=True))
    assert report.passed, report.render()
    assert report.client == f"command {SHELL_CLIENT!r}"
    assert_exercised(report)


# Every buggy client fails, naming its bug


def test_every_buggy_client_is_listed() -> None:
    declared = {
        name
        for name, value in vars(buggy_clients).items()
        if isinstance(value, type) and issubclass(value, Adapter) and value.__module__ == buggy_clients.__name__
    }
    assert declared == set(BUGS) | set(TLS_BUGS)
    assert len(BUGS) >= 6
    assert {rule for rule, _ in [*BUGS.values(), *TLS_BUGS.values()]} <= set(PROPERTIES)


def test_every_property_names_inventory_rules() -> None:
    assert set(PROPERTY_RULES) == set(PROPERTIES)
    for name, rules in PROPERTY_RULES.items():
        assert set(rules) <= RULE_IDS, (name, set(rules) - RULE_IDS)


@pytest.mark.parametrize("name", sorted(BUGS))
def test_each_buggy_client_fails_naming_its_bug(mock: MockFleet, name: str) -> None:
    rule, fragment = BUGS[name]
    adapter_class = getattr(buggy_clients, name)
    assert adapter_class.__doc__ and adapter_class.__doc__.startswith("Bug: ")
    report = run(mock, adapter_class())
    assert not report.passed
    text = report.render()
    assert (report.rule, fragment in report.detail) == (rule, True), text
    assert f"FAILED: property `{rule}` is broken" in text and f"broken property: {rule}: " in text
    assert "smallest failing sequence" not in text and f"The {report.phase}, up to the step that broke" in text
    steps = client_steps(report)
    assert steps and steps[-1].reported and steps[-1].exchanges, text  # the call, what it said, what it sent


def test_the_shell_client_with_a_bug_fails_naming_it(mock: MockFleet) -> None:
    report = run(mock, f"CLIENT_BUG=form-encoded {shlex.quote(SHELL_CLIENT)}")
    assert report.rule == "request-well-formed", report.render()
    assert "Content-Type application/x-www-form-urlencoded is not accepted" in report.detail


def test_exploration_alone_finds_and_shrinks_a_bug(mock: MockFleet) -> None:
    settings = HarnessSettings(examples=60, drills=False, derandomize=True)
    report = run(mock, buggy_clients.SuccessOn400(), settings)
    assert report.rule == "no-false-success", report.render()
    assert report.phase.startswith("generated sequences") and report.drills == 0
    assert len(report.steps) <= 3, report.render()  # the start, and the one refused call reported as success
    assert "the model expects: 400 E_" in report.render()
    assert "The smallest failing sequence found (" in report.render()


def test_the_default_budget_alone_catches_a_fixed_quantity(mock: MockFleet) -> None:
    """Without the drills, the generated sequences of the default budget ask for quantities other than 1 often
    enough to catch a client that always sends 1."""
    generate_only = (Phase.explicit, Phase.reuse, Phase.generate)  # finding it is the point, not shrinking it
    settings = HarnessSettings(drills=False, derandomize=True, phases=generate_only)
    report = run(mock, buggy_clients.SendsFixedQuantity(), settings)
    assert report.rule == "sends-given-arguments", report.render()
    assert "`quantity` is 1, the client was given" in report.detail


def test_drills_put_every_operation_under_every_fault() -> None:
    names = [d.name for d in drills()]
    assert len(names) == len(set(names))
    for fault in FAULTS:
        assert any(n.startswith("nominate under fault " + fault) for n in names), fault
    assert {"online failover", "offline failover", "arguments as given", "refusals"} <= set(names)
    assert "certificates to refuse" not in names and drills(tls=True)[0].name == "certificates to refuse"
    assert 1 in QUANTITIES and 1000 in QUANTITIES and any(1 < q < 1000 for q in QUANTITIES)


# A client that breaks the protocol gets a clear report


class _Raises(Adapter):
    def activate(self, instance: Instance, key: str, quantity: int) -> Outcome:
        raise RuntimeError("my client crashed")


class _ReturnsText(Adapter):
    def licence_info(self, instance: Instance) -> Outcome:
        return "licensed"  # type: ignore[return-value]


class _ViewWithoutFields(Adapter):
    def licence_info(self, instance: Instance) -> Outcome:
        return Success({"licensed": False})


@pytest.mark.parametrize(
    ("client", "fragment"),
    [
        ("echo hello", "stdout is not one JSON object"),
        ("cat > /dev/null; echo '{\"ok\": true}'; exit 3", "exited with status 3"),
        ("cat > /dev/null", "printed nothing on stdout"),
        ('cat > /dev/null; echo \'{"ok": false, "status": "400"}\'', '"status" must be an HTTP status'),
        (_Raises(), "raised RuntimeError: my client crashed"),
        (_ReturnsText(), "returns contracts.client.Success or Failure, got str"),
        (_ViewWithoutFields(), 'licence_info: "result" needs "deployment"'),
    ],
    ids=["not-json", "exit-status", "silent", "bad-status", "raises", "wrong-type", "view-fields"],
)
def test_a_broken_adapter_is_reported_clearly(mock: MockFleet, client: Any, fragment: str) -> None:
    report = run(mock, client)
    assert report.rule == "adapter-protocol", report.render()
    assert fragment in report.detail, report.detail


def test_a_hanging_command_is_killed_and_reported() -> None:
    client = CommandClient("cat > /dev/null; sleep 30", timeout=0.5)
    try:
        result = client.call(Call("nominate", Instance("prod", "http://127.0.0.1:9", "k")))
    finally:
        client.close()
    assert result.outcome is None and result.problem is not None and "still running after 0.5 s" in result.problem


def test_the_wire_format_request(mock: MockFleet, tmp_path: Path) -> None:
    """What a command receives on stdin, exactly as docs/guides/validating-a-client.md documents it."""
    script = tmp_path / "echo.sh"
    script.write_text(f'cat > {tmp_path}/request.json; echo \'{{"ok": false, "status": null, "error": "x"}}\'\n')
    client = CommandClient(f"sh {script}")
    try:
        instance = Instance("backup", "http://127.0.0.1:1", "secret")
        result = client.call(Call("register_offline", instance, {"licence": b"licence bytes"}))
        doc = json.loads((tmp_path / "request.json").read_text())
    finally:
        client.close()
    assert result.outcome == Failure(None, "x")
    assert doc["protocol"] == "mockcore-contracts-client/1" and doc["operation"] == "register_offline"
    assert doc["instance"] == {"name": "backup", "url": "http://127.0.0.1:1", "apikey": "secret", "ca_path": None}
    assert set(doc["arguments"]) == {"licence_path", "licence_base64"}
    assert doc["arguments"]["licence_base64"] == "bGljZW5jZSBieXRlcw=="


def test_outcomes_parse_strictly() -> None:
    assert parse_outcome({"ok": True}, "nominate") == Success({})
    assert parse_outcome({"ok": False, "status": 400, "error": "e"}, "nominate") == Failure(400, "e")
    assert parse_outcome({"ok": True, "result": {"is_backup": False}}, "backup_flag") == Success({"is_backup": False})
    for bad in ([], {"ok": "yes"}, {"ok": False, "status": 400}, {"ok": False, "status": True, "error": "e"}):
        with pytest.raises(ValueError):
            parse_outcome(bad, "nominate")
    with pytest.raises(ValueError, match="is_backup"):
        parse_outcome({"ok": True, "result": {}}, "backup_flag")


def test_adapter_references_are_checked(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="MODULE:CLASS"):
        load_adapter("examples.clients.python_client.adapter")
    with pytest.raises(AdapterError, match="cannot import no_such_module"):
        load_adapter("no_such_module:Adapter")
    with pytest.raises(AdapterError, match="has no Missing"):
        load_adapter("examples.clients.python_client.adapter:Missing")
    partial = tmp_path / "partial.py"
    partial.write_text("class Half:\n    def activate(self, instance, key, quantity): ...\n")
    with pytest.raises(AdapterError, match="lacks the method"):
        load_adapter(f"{partial}:Half")
    assert isinstance(load_adapter("examples.clients.python_client.adapter:Adapter"), Adapter)


def test_a_mock_with_fidelity_overrides_needs_them_named(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides.yaml"
    overrides.write_text('errors:\n  E_NOT_BACKUP: {status: 409, text: "Not a backup"}\n')
    with MockFleet(instances=DEFAULT_INSTANCES, keys=list(EXAMPLE_KEYS), overrides=overrides) as fleet:
        unnamed = check_client(Adapter(), url=fleet.urls["prod"], apikey=fleet.apikey, settings=DRILLS_ONLY)
        named = check_client(
            Adapter(), url=fleet.urls["prod"], apikey=fleet.apikey, settings=DRILLS_ONLY, overrides=overrides
        )
    assert unnamed.rule == "outcome-agrees-with-model" and "Not a backup" in unnamed.detail, unnamed.render()
    assert named.passed, named.render()


# The relay and the CLI


def test_the_relay_loses_exactly_the_armed_answer(mock: MockFleet) -> None:
    requests.delete(f"{mock.urls['prod']}/_mock/journal", timeout=10)
    relay = Relay(mock.urls["prod"])
    try:
        session = requests.Session()
        headers = {"apikey": mock.apikey}
        assert session.get(relay.url + "/admin/license/backup", headers=headers, timeout=10).json() == {
            "is_backup": False
        }
        relay.arm("POST", "/admin/license/activation")
        with pytest.raises(requests.ConnectionError):
            session.post(relay.url + "/admin/license/activation", json={"activationKey": mock.key}, headers=headers)
        assert relay.disarm() is False  # used up
        licence = session.get(relay.url + "/admin/license", headers=headers, timeout=10).json()
        assert licence["online_activated"] is True  # the lost request was carried out
    finally:
        relay.close()
    entries = requests.get(f"{mock.urls['prod']}/_mock/journal", timeout=10).json()["entries"]
    assert [(e["path"], e["status"], e["request_headers"]["x-contracts-relay"]) for e in entries] == [
        ("/admin/license/backup", 200, "relayed"),
        ("/admin/license/activation", 200, "answer-lost"),
        ("/admin/license", 200, "relayed"),
    ]
    assert entries[1]["request_headers"]["apikey"] == mock.apikey  # headers as the client sent them


def cli(*args: str) -> Any:
    return CliRunner().invoke(contracts_main, ["client", *args], catch_exceptions=False)


def test_the_cli_exit_codes(mock: MockFleet) -> None:
    target = ["--url", mock.urls["prod"], "--apikey", mock.apikey, "--examples", "0"]
    passed = cli("--adapter", "examples.clients.python_client.adapter:Adapter", *target)
    assert passed.exit_code == 0, passed.output
    assert "PASSED: every property held" in passed.output and "outcomes seen: activate: 400" in passed.output
    failed = cli("--adapter", "examples.clients.buggy_clients:InventsErrors", *target, "--json")
    assert failed.exit_code == 1, failed.output
    doc = json.loads(failed.output)
    assert (doc["passed"], doc["rule"]) == (False, "surfaces-server-error")
    assert doc["sequence"][-1]["kind"] == "client" and doc["sequence"][-1]["exchanges"]
    for args, message in [
        ((), "give exactly one of --adapter"),
        (("--adapter", "a:B", "--command", "c"), "give exactly one of --adapter"),
        (("--adapter", "examples.clients.python_client.adapter"), "MODULE:CLASS"),
        (("--command", "true", "--url", mock.urls["prod"], "--instance", "x"), "not with --url"),
        (("--command", "true", "--url", "http://127.0.0.1:9"), "cannot reach"),
        (("--adapter", "/tmp/[/x]y.py:C", "--url", mock.urls["prod"]), "[/x]y.py"),  # no rich markup read in it
    ]:
        result = cli(*args)
        assert (result.exit_code, message in result.output) == (2, True), (args, result.output)


# The pytest fixture


@pytest.fixture
def client_harness_mock(mock: MockFleet) -> tuple[str, str | None]:
    """The plugin's session mock, replaced by this module's (as a user's conftest may)."""
    return mock.urls["prod"], mock.apikey


def test_the_client_harness_fixture(client_harness: Callable[..., ClientReport]) -> None:
    assert client_harness(Adapter(), examples=0).passed
    report = client_harness(buggy_clients.QuantityAsList(), examples=0)
    assert report.rule == "request-well-formed"


def test_the_harness_imports_no_mockcore() -> None:
    sources = (ROOT / "contracts" / "client").glob("*.py")
    offending = [p.name for p in sources if re.search(r"^\s*(import|from)\s+mockcore\b", p.read_text(), re.M)]
    assert offending == []
    code = "import sys, contracts.client.harness, contracts.client.cli; print('mockcore' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "False"


def test_a_python_client_that_hangs_is_reported() -> None:
    class Hangs(Adapter):
        def nominate(self, instance: Instance) -> Outcome:
            import time

            time.sleep(5)
            return Success()

    client = PythonClient(Hangs(), timeout=0.2)
    try:
        result = client.call(Call("nominate", Instance("prod", "http://127.0.0.1:9", "k")))
    finally:
        client.close()
    assert result.outcome is None and result.problem == "nominate did not return within 0.2 s"


# The guide's walkthrough, as written


def walkthrough_commands() -> list[tuple[str, int, str]]:
    """(command, exit status, expected text) for each line of the walkthrough's sh block."""
    text = GUIDE.read_text()
    start = text.index("# Validating a client")
    block_start = text.index("```sh\n", text.index("## Walkthrough", start)) + len("```sh\n")
    block = text[block_start : text.index("```", block_start)].replace("\\\n", " ")
    commands = []
    for line in block.splitlines():
        match = re.fullmatch(r"(.+?)\s+# exit (\d+): (.+)", line.strip())
        assert match, f"a walkthrough line without its `# exit N: ...` expectation: {line!r}"
        commands.append((match[1], int(match[2]), match[3].strip()))
    return commands


def test_the_guides_walkthrough_runs_as_written() -> None:
    commands = walkthrough_commands()
    assert len(commands) >= 5
    problems = []
    for command, status, expected in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )
        output = done.stdout + done.stderr
        if done.returncode != status or expected not in output:
            problems.append(f"{command}\n  expected exit {status} and {expected!r}, got {done.returncode}:\n{output}")
    assert problems == [], "\n".join(problems)


# Arguments: what each request carried against what the client was given


def record(**entry: Any) -> Record:
    return Record({"id": 1, "face": "core", "instance": "prod", "method": "POST", "status": 200, **entry})


def activation(body: object) -> Record:
    text = json.dumps(body)
    return record(path="/admin/license/activation", request_body=text, request_body_size=len(text))


KEY = EXAMPLE_KEYS[0].split(":")[0]


@pytest.mark.parametrize(
    ("quantity", "sent", "same"),
    [
        (1, {"quantity": 1}, True),
        (1, {}, True),  # absent: the server takes 1
        (1000, {"quantity": 1000}, True),
        (1000, {"quantity": "1000"}, True),  # a string of digits is the same value
        (37, {"quantity": "37"}, True),
        (37, {"quantity": 1}, False),
        (37, {}, False),
        (1, {"quantity": True}, False),
        (1000, {"quantity": 999}, False),
    ],
)
def test_a_quantity_is_compared_by_value(quantity: int, sent: dict[str, Any], same: bool) -> None:
    problems = argument_problems(
        "activate", {"key": KEY, "quantity": quantity}, activation({"activationKey": KEY, **sent})
    )
    assert (problems == []) == same, problems


def test_keys_deployments_and_licence_bytes_are_compared_exactly() -> None:
    assert KEY.upper() != KEY and KEY.lower() != KEY and any(c.isdigit() for c in KEY)  # real-looking keys
    upper = argument_problems("activate", {"key": KEY, "quantity": 1}, activation({"activationKey": KEY.upper()}))
    assert len(upper) == 1 and "the same key in another case" in upper[0]
    online = record(path="/admin/license/backup", request_headers={"activation-key": KEY, "active-deployment-id": "D"})
    assert argument_problems("register_online", {"key": KEY, "production_deployment": "D"}, online) == []
    assert (
        "`active-deployment-id`"
        in argument_problems("register_online", {"key": KEY, "production_deployment": "E"}, online)[0]
    )
    licence = b"licence:\n  key: x\n"
    sent = record(path="/admin/license", request_body=licence.decode(), request_body_size=len(licence))
    assert argument_problems("upload_licence", {"licence": licence}, sent) == []
    assert (
        "the body differs from the 18 bytes of the licence file given, first different at character 16"
        in argument_problems("upload_licence", {"licence": licence[:-2] + b"y\n"}, sent)[0]
    )
    assert "not the 19 bytes" in argument_problems("register_offline", {"licence": licence + b"\n"}, sent)[0]


# Report wording


def test_a_non_json_answer_says_what_error_holds() -> None:
    answer = record(path="/admin/license/deactivation", status=502, response_body="<html>Bad gateway</html>")
    call = Call("deactivate", Instance("prod", "http://x", "k"))
    spec = OPERATIONS["deactivate"]
    assert check_outcome(call, spec, Failure(502, "<html>Bad gateway</html>"), [answer]) == [answer]
    assert check_outcome(call, spec, Failure(502, "bad gateway"), [answer]) == [answer]  # only the status counts
    with pytest.raises(Violation, match=r"the answer has no `err` text .* `error` may hold anything"):
        check_outcome(call, spec, Failure(500, "bad gateway"), [answer])


def test_repeated_words_are_left_out_of_reports() -> None:
    assert plain("POST /admin/license/activation: body the body: [1] is not of type 'object'") == (
        "POST /admin/license/activation: the body: [1] is not of type 'object'"
    )
    assert plain("the the answer") == "the answer" and plain('{"err": "x x"}') == '{"err": "x x"}'
    # quoted text (a server's `err`, a client's error) is left as it was
    assert plain('the client reported Failure(400, "body the body") and the the end') == (
        'the client reported Failure(400, "body the body") and the end'
    )
    assert (
        plain("the client's error 'the the key' is the the server's")
        == "the client's error 'the the key' is the server's"
    )
    report = ClientReport(
        "c", False, rule="request-well-formed", detail="POST /x: body the body: bad", phase="drill `x`"
    )
    assert "body the body" not in report.render() and "body the body" not in json.dumps(report.as_dict())


# TLS: the CA path honoured, impostors refused


@pytest.fixture(scope="module")
def tls_mock() -> Iterator[tuple[ServedMock, Path]]:
    """A `mockcore serve` over HTTPS with certificates of a CA the harness did not make (as a user's --url --ca)."""
    certificates = Certificates.make()
    try:
        with ServedMock.start(certificates=certificates) as served:
            yield served, certificates.trust
    finally:
        certificates.remove()


def run_tls(tls_mock: tuple[ServedMock, Path], client: Any, settings: HarnessSettings = DRILLS_ONLY) -> ClientReport:
    served, ca = tls_mock
    assert served.url.startswith("https://")
    return check_client(client, url=served.url, apikey=served.apikey, ca=ca, settings=settings)


def test_the_correct_clients_pass_over_tls(tls_mock: tuple[ServedMock, Path]) -> None:
    report = run_tls(tls_mock, Adapter(), HarnessSettings(examples=3, derandomize=True))
    assert report.passed, report.render()
    assert {"licence_info: refused untrusted-certificate", "activate: refused wrong-host-certificate"} <= set(
        report.coverage
    )
    assert_exercised(report)  # the answer-lost relay speaks TLS too


def test_the_shell_client_verifies_with_the_ca_path(tls_mock: tuple[ServedMock, Path]) -> None:
    """One call each way (the whole run over TLS takes the shell client some 16 s: the CLI check covers it)."""
    served, ca = tls_mock
    client = CommandClient(SHELL_CLIENT)
    try:
        with_ca = client.call(Call("backup_flag", Instance("prod", served.url, served.apikey, str(ca))))
        without = client.call(Call("backup_flag", Instance("prod", served.url, served.apikey)))
    finally:
        client.close()
    assert with_ca.outcome == Success({"is_backup": False}), with_ca
    assert isinstance(without.outcome, Failure) and without.outcome.status is None, without


@pytest.mark.parametrize("name", sorted(TLS_BUGS))
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")  # what IgnoresCa does, on purpose
def test_each_tls_bug_fails_naming_it(tls_mock: tuple[ServedMock, Path], name: str) -> None:
    rule, fragment = TLS_BUGS[name]
    report = run_tls(tls_mock, getattr(buggy_clients, name)())
    assert (report.rule, fragment in report.detail) == (rule, True), report.render()
    assert report.phase == "drill `certificates to refuse`"


def test_the_insecure_shell_client_fails_over_tls(tls_mock: tuple[ServedMock, Path]) -> None:
    report = run_tls(tls_mock, f"CLIENT_BUG=insecure {shlex.quote(SHELL_CLIENT)}")
    assert report.rule == "verifies-tls", report.render()
    assert "yet it sent GET /admin/license" in report.detail


class _SkipsHostName(Adapter):
    """Trusts the CA but does not check that the certificate names the host."""

    def __init__(self) -> None:
        super().__init__()

        class NoHostCheck(requests.adapters.HTTPAdapter):
            def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
                kwargs["assert_hostname"] = False
                super().init_poolmanager(*args, **kwargs)

        self.session.mount("https://", NoHostCheck())


class _SystemCas(Adapter):
    """Ignores `ca_path`: verifies with the system's CAs, which do not know the fleet's."""

    def client(self, instance: Instance) -> Any:
        return self.client_class(instance.url, instance.apikey, session=self.session)


def test_a_client_must_check_the_host_name_and_trust_the_ca(tls_mock: tuple[ServedMock, Path]) -> None:
    skips = run_tls(tls_mock, _SkipsHostName())
    assert skips.rule == "verifies-tls" and "for another host" in skips.detail, skips.render()
    system = run_tls(tls_mock, _SystemCas())
    assert system.rule == "verifies-tls" and "it does not trust the fleet's certificate" in system.detail
    assert "ca.pem" in system.detail, system.render()


def test_tls_options_are_checked(mock: MockFleet, tls_mock: tuple[ServedMock, Path]) -> None:
    served, _ = tls_mock
    for args, message in [
        (("--tls", "--url", mock.urls["prod"]), "with an https --url give --ca"),
        (("--ca", __file__), "--ca goes with --url"),
        (("--url", served.url, "--apikey", served.apikey), "give the CA"),
    ]:
        result = cli("--adapter", "examples.clients.python_client.adapter:Adapter", *args)
        assert (result.exit_code, message in result.output) == (2, True), (args, result.output)


def test_the_cli_runs_a_command_persistently_and_refuses_persistent_without_a_command() -> None:
    """`--persistent` runs the command once for the whole run (JSON lines), a real subprocess of the real CLI: the
    example line adapter passes the drills; with a Python adapter the flag is a usage error (exit 2)."""
    command = ["mockcore-contracts", "client", "--command", f"{sys.executable} examples/workflows/lines_adapter.py"]
    done = subprocess.run(
        [*command, "--persistent", "--examples", "0"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "PASSED" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    refused = subprocess.run(
        ["mockcore-contracts", "client", "--adapter", "examples.clients.python_client.adapter:Adapter", "--persistent"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "--persistent goes with --command" in refused.stdout + refused.stderr
