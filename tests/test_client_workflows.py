"""Workflows (the adapter protocol's version 2) and the persistent command adapter: the correct workflow clients pass
at the default budget (Python in-process, shell through real subprocesses), each buggy variant fails naming its
property, version 1 still works through the persistent mode, the wire format's errors are `adapter-protocol`, the
judge compares values exactly and at their edges, and every property and workflow names inventory rules.

One in-process mock fleet (`MockFleet`) per module; the command adapters run as real subprocesses.
"""

from __future__ import annotations

import runpy
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from contracts.checks import Violation
from contracts.cli import main as contracts_main
from contracts.client.adapter import AdapterError, Instance, instantiate
from contracts.client.command import CommandClient, PersistentCommandClient
from contracts.client.harness import HarnessSettings
from contracts.client.journal import Record
from contracts.client.report import ClientReport
from contracts.client.run import check_client
from contracts.client.serve import DEFAULT_INSTANCES, EXAMPLE_KEYS, fresh_keys
from contracts.client.workflow import WORKFLOWS, PythonWorkflows, WorkflowCall
from contracts.client.workflow_cli import check_workflows
from contracts.client.workflow_harness import PLANS, WorkflowSettings, drills
from contracts.client.workflow_judge import WORKFLOW_PROPERTIES, query_values
from contracts.rules import RULE_IDS
from mockcore import MockFleet

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "workflows"
SHELL = str(EXAMPLES / "shell_client.sh")
LINES = f"{shlex.quote(sys.executable)} {shlex.quote(str(EXAMPLES / 'lines_adapter.py'))}"
RUNBOOKS = f"{shlex.quote(sys.executable)} {shlex.quote(str(EXAMPLES / 'runbooks.py'))}"
BUGGY = EXAMPLES / "buggy_workflows.py"
DRILLS_ONLY = WorkflowSettings(examples=0)
VARIANTS = runpy.run_path(str(BUGGY))  # the buggy variants' module, by its globals
CAUGHT_BY = {cls.__name__: prop for cls, prop in VARIANTS["CAUGHT_BY"].items()}


@pytest.fixture(scope="module")
def mock() -> Iterator[MockFleet]:
    with MockFleet(instances=DEFAULT_INSTANCES, keys=list(fresh_keys())) as fleet:
        yield fleet


def run(mock: MockFleet, client: Any, settings: WorkflowSettings | None = None, **kwargs: Any) -> ClientReport:
    """A workflow run against the module's mock, logged in on each instance (an apikey each), as against the mock
    the harness starts."""
    return check_workflows(client, url=mock.urls["prod"], settings=settings, **kwargs)


def load(name: str) -> Any:
    return VARIANTS[name]()


# The correct clients pass at the default budget


def test_the_correct_python_workflow_client_passes_at_the_default_budget(mock: MockFleet) -> None:
    report = run(mock, instantiate(f"{EXAMPLES / 'runbooks.py'}:Runbooks"))
    assert report.passed, report.render()
    assert report.drills == len(drills(tuple(WORKFLOWS))) and report.examples == WorkflowSettings.examples
    for workflow in WORKFLOWS:  # each reached its goal somewhere, and reported a failure truthfully somewhere
        assert report.coverage.get(f"{workflow}: success") and report.coverage.get(f"{workflow}: failure"), workflow


def test_the_correct_shell_workflow_client_passes_at_the_default_budget(mock: MockFleet) -> None:
    driver = PersistentCommandClient(SHELL, timeout=60)
    report = run(mock, driver)
    assert report.passed, report.render()
    assert driver.starts == 1  # one process for the whole run
    assert report.examples == WorkflowSettings.examples


def test_a_command_run_once_per_workflow_passes(mock: MockFleet) -> None:
    report = run(mock, RUNBOOKS, WorkflowSettings(examples=0, workflows=("provision", "decommission")))
    assert report.passed, report.render()
    assert report.client == f"command {RUNBOOKS!r}"


# Each buggy variant fails at the default budget, naming its property


@pytest.mark.parametrize(("name", "prop"), sorted(CAUGHT_BY.items()))
def test_each_buggy_variant_fails_naming_its_property(mock: MockFleet, name: str, prop: str) -> None:
    report = run(mock, load(name))
    assert not report.passed, f"{name} passed"
    assert report.rule == prop, report.render()
    text = report.render()
    assert f"FAILED: property `{prop}` is broken" in text
    failed_at = text.index(f"FAILED: property `{prop}`")
    assert text.index(WORKFLOW_PROPERTIES[prop].text) > failed_at  # the report says what the property checks, below
    assert text.startswith("mockcore-contracts workflows: ") and "generated case(s)" in text
    assert report.phase.count("`") == 2, report.phase  # no backticks nested in the case's name


def test_at_least_eight_buggy_variants() -> None:
    assert len(CAUGHT_BY) >= 8


# Version 1 through the persistent mode


def test_version_1_works_through_the_persistent_mode(mock: MockFleet) -> None:
    driver = PersistentCommandClient(LINES, timeout=60)
    report = check_client(driver, url=mock.urls["prod"], apikey=mock.apikey, settings=HarnessSettings(examples=2))
    assert report.passed, report.render()
    assert driver.starts == 1 and report.calls > 50


# The wire format's errors are `adapter-protocol`


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        (f"{sys.executable} -c \"import sys\nfor l in sys.stdin: print('not json', flush=True)\"", "not one JSON"),
        (
            f'{sys.executable} -c "import sys\nfor l in sys.stdin: '
            'print(\'{\\"protocol\\": \\"mockcore-contracts-client/1\\", \\"ok\\": true}\', flush=True)"',
            "the client answered in 'mockcore-contracts-client/1'",
        ),
        (f"head -n 1 | {RUNBOOKS}", "exited before it answered"),
        (f"{sys.executable} -c \"import sys\nfor l in sys.stdin: print('[1]', flush=True)\"", "must be a JSON object"),
    ],
    ids=["bad JSON line", "wrong protocol version", "crash mid-sequence", "not an object"],
)
def test_wire_format_errors_are_adapter_protocol(mock: MockFleet, command: str, fragment: str) -> None:
    report = run(mock, command, DRILLS_ONLY, persistent=True)
    assert report.rule == "adapter-protocol", report.render()
    assert fragment in report.detail, report.detail


def test_a_hanging_persistent_command_is_killed_and_started_again() -> None:
    driver = PersistentCommandClient("cat > /dev/null", timeout=0.5)
    call = WorkflowCall("renew", {"instance": Instance("a", "http://127.0.0.1:9", "k")}, {"key": "K"})
    first = driver.run(call)
    second = driver.run(call)
    driver.close()
    assert first.outcome is None and "no outcome line within 0.5 s" in (first.problem or "")
    assert second.outcome is None and driver.starts == 2


def test_a_workflow_adapter_needs_a_workflow_method() -> None:
    with pytest.raises(AdapterError, match="none of the workflow methods"):
        PythonWorkflows(object())


# The judge, by value and at the edges


def activation_record(query: str) -> Record:
    return Record({"id": 1, "face": "activation", "method": "GET", "path": "/activation", "query": query})


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("key=ab-C1&deployment=MSCL1&quantity=3", None),
        ("key=ab%2DC1&deployment=MSCL1&quantity=3", None),  # an escape of an unreserved character decodes the same
        ("key=a b&deployment=MSCL1&quantity=3", "is not percent-encoded"),
        ("key=a+b&deployment=MSCL1&quantity=3", "is not percent-encoded"),
        ("key=ab&key=ab&deployment=MSCL1&quantity=3", "sent twice"),
        ("key=ab&deployment=MSCL1", "the activation server takes"),
        ("key=ab&deployment=MSCL1&quantity=3&extra=1", "the activation server takes"),
        ("key&deployment=MSCL1&quantity=3", "has no `=`"),
        ("", "the activation server takes"),
    ],
)
def test_the_activation_query_is_read_strictly(query: str, problem: str | None) -> None:
    names = ("key", "deployment", "quantity")
    if problem is None:
        assert query_values(activation_record(query), names) == {"key": "ab-C1", "deployment": "MSCL1", "quantity": "3"}
    else:
        with pytest.raises(Violation, match=problem) as raised:
            query_values(activation_record(query), names)
        assert raised.value.rule == "workflow-arguments"


def test_every_property_and_workflow_names_inventory_rules() -> None:
    for name, prop in WORKFLOW_PROPERTIES.items():
        assert set(prop.rules) <= RULE_IDS, (name, set(prop.rules) - RULE_IDS)
    for name, spec in WORKFLOWS.items():
        assert spec.rules and set(spec.rules) <= RULE_IDS, (name, set(spec.rules) - RULE_IDS)
        assert PLANS[name].starts, name


def test_drills_cover_every_start_and_fault() -> None:
    cases = drills(tuple(WORKFLOWS))
    for workflow, plan in PLANS.items():
        starts = {c.start for c in cases if c.workflow == workflow and c.fault is None}
        assert starts == set(plan.starts), workflow
        faults = {c.fault for c in cases if c.workflow == workflow and c.fault}
        assert faults == set(plan.faults), workflow


# The command line


def test_the_workflows_command(mock: MockFleet) -> None:
    runner = CliRunner()
    common = ["workflows", "--url", mock.urls["prod"], "--apikey", mock.apikey, "--examples", "0"]
    passed = runner.invoke(
        contracts_main, [*common, "--adapter", f"{EXAMPLES / 'runbooks.py'}:Runbooks", "--workflow", "renew"]
    )
    assert passed.exit_code == 0, passed.output
    assert "PASSED" in passed.output
    failed = runner.invoke(contracts_main, [*common, "--adapter", f"{BUGGY}:FixedQuantity", "--workflow", "provision"])
    assert failed.exit_code == 1 and "workflow-arguments" in failed.output, failed.output
    wrong = runner.invoke(contracts_main, [*common, "--adapter", f"{BUGGY}:NoSuchClass"])
    assert wrong.exit_code == 2 and "has no NoSuchClass" in wrong.output
    both = runner.invoke(contracts_main, [*common, "--persistent", "--adapter", f"{BUGGY}:FixedQuantity"])
    assert both.exit_code == 2 and "--persistent goes with --command" in both.output
    markup = runner.invoke(contracts_main, [*common, "--adapter", "/tmp/[/x]y.py:C"])
    assert markup.exit_code == 2 and "[/x]y.py" in markup.output, markup.output  # no rich markup read in it


def test_nothing_to_check_is_an_error_not_a_pass(mock: MockFleet, tmp_path: Path) -> None:
    only = tmp_path / "only_provision.py"
    only.write_text(
        "from contracts.client import Failure\n\n\nclass OnlyProvision:\n"
        "    def provision(self, instance, key, quantity, activation_server):\n"
        "        return Failure(None, 'nope')\n"
    )
    common = ["workflows", "--url", mock.urls["prod"], "--apikey", mock.apikey, "--examples", "0"]
    result = CliRunner().invoke(contracts_main, [*common, "--adapter", f"{only}:OnlyProvision", "--workflow", "renew"])
    assert result.exit_code == 2, result.output
    assert "implements none of the workflows asked for (renew): nothing to check" in result.output
    assert "PASSED" not in result.output


# The persistent mode's protocol errors (each a CallResult with a problem, never a traceback)

RENEW_CALL = WorkflowCall("renew", {"instance": Instance("a", "http://127.0.0.1:9", "k")}, {"key": "K"})
ANSWER = '{"ok": true, "result": {}}'


def python_command(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def test_two_outcome_lines_for_one_request_are_adapter_protocol() -> None:
    twice = python_command(
        f"import sys\nfor i, l in enumerate(sys.stdin):\n print({ANSWER!r}, flush=True)\n"
        f" if i == 0: print({ANSWER!r}, flush=True)"
    )
    driver = PersistentCommandClient(twice, timeout=10)
    try:
        first = driver.run(RENEW_CALL)
        time.sleep(0.3)  # the stray line has arrived
        second = driver.run(RENEW_CALL)
        third = driver.run(RENEW_CALL)
    finally:
        driver.close()
    assert first.outcome is not None
    assert second.outcome is None and "more than one line for the previous request" in (second.problem or "")
    assert third.outcome is not None and driver.starts == 2  # started again, answers in step


def test_a_persistent_command_that_closes_stdout_and_keeps_running_is_adapter_protocol() -> None:
    driver = PersistentCommandClient("exec >&-; sleep 30", timeout=10)
    try:
        result = driver.run(RENEW_CALL)
    finally:
        driver.close()
    assert result.outcome is None and "closed its stdout but kept running" in (result.problem or "")


@pytest.mark.parametrize("persistent", [False, True])
def test_deeply_nested_json_is_adapter_protocol(persistent: bool) -> None:
    deep = python_command("import sys\nfor l in sys.stdin: print('[' * 100000, flush=True)")
    driver = PersistentCommandClient(deep, timeout=10) if persistent else CommandClient(deep, timeout=10)
    try:
        result = driver.run(RENEW_CALL)
    finally:
        driver.close()
    assert result.outcome is None and "not one JSON object" in (result.problem or "")


# The mock the harness starts: keys drawn for the run, an apikey per instance


def test_keys_are_drawn_per_run_mixed_case() -> None:
    drawn = [fresh_keys() for _ in range(3)]
    assert len({keys for keys in drawn}) == 3 and all(keys != EXAMPLE_KEYS for keys in drawn)
    for keys in drawn:
        assert [spec.split(":")[1:] for spec in keys] == [["2", "365"], ["1", "365"]]
        for spec in keys:
            key = spec.split(":")[0]
            groups = key.split("-")
            assert len(groups) == 7 and all(len(g) == 4 and g.isalnum() and g.isascii() for g in groups), key
            assert any(c.isupper() for c in key) and any(c.islower() for c in key) and any(c.isdigit() for c in key)


def test_the_served_mock_has_keys_of_its_own_and_an_apikey_per_instance() -> None:
    """A client using the docs' example key, or one instance's apikey on another, fails against the mock the
    harness starts."""
    settings = WorkflowSettings(examples=0, workflows=("online_failover",))
    doc_key = check_workflows(load("HardcodesDocKey"), settings=settings)
    assert doc_key.rule == "workflow-arguments" and "the client was given" in doc_key.detail, doc_key.render()
    swapped = check_workflows(load("SwapsApikeys"), settings=settings)
    assert swapped.rule == "workflow-reaches-goal", swapped.render()
