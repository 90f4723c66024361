"""schemathesis over our contract, `contracts/openapi.yaml`, against the mock: zero failures expected.

What runs (schemathesis 4, through its Python API):

* `test_operation_keeps_the_contract`, one test per operation (`@schema.parametrize()`): the examples, coverage
  and fuzzing phases, positive and negative data, and every built-in check (`not_a_server_error`, status code,
  content type, response headers and response schema conformance, positive data acceptance, negative data
  rejection, missing required header, unsupported method, ...), plus two checks of ours (below). Operations
  tagged `core` go to a Core instance, those tagged `activation` to the activation server (`GET /openapi.json`,
  tagged both, to both). Each example starts from a reset fleet in the scenario `production-with-online-backup`,
  and goes to the instance where the operation can succeed (`FUZZ_TARGET`).
* `test_stateful_lifecycle_keeps_the_contract`: the stateful phase, `schema.as_state_machine()`, walks the licence
  lifecycle along the contract's links (activation -> licence -> backup registration -> nomination;
  `/activation`'s file -> upload or offline registration...) over three instances, with the same checks. Each
  scenario starts from a reset fleet put in one of the mock's named scenarios; a rule of ours switches the
  instance root steps go to, and a link's target goes to the instance the link means (the same one, another one
  for a backup registration, the one a licence file names for an upload).

Credentials are supplied so generated requests reach the licence rules: the fleet's API key in `apikey` (except
where the case deliberately makes that header missing or invalid, or a link carries a session from `/login`), and
the fleet's activation keys, deployment ids, engine ids and the admin's name through schemathesis dictionaries.

The contract's rule for positive data: the catalogue (docs/errors.md) answers state conflicts and refused keys,
files or passwords with
400, where schemathesis's `positive_data_acceptance` expects 404 or 409. For the operations whose documented 400
includes such a refusal (`x-errors` minus the malformed-request codes), 400 is added to that check's expected
statuses, and our `positive_refusals_are_documented` then demands that such a 400 is one of those refusals: a
schema-valid request answered `Invalid request.` still fails. No check is turned off and no operation is left out.

Budget. By default a CI-sized run with a fixed seed: `CI_EXAMPLES` examples per operation in the fuzzing phase
(the examples and coverage phases add their own cases) and `CI_SCENARIOS` stateful scenarios of up to `STEPS`
steps. A larger run, opt-in: set `MOCKCORE_SCHEMATHESIS_EXAMPLES` (fuzzing examples per operation; the stateful
scenarios follow at the same number), which also draws a new seed each time unless `MOCKCORE_SCHEMATHESIS_SEED`
is set::

    MOCKCORE_SCHEMATHESIS_EXAMPLES=500 python -m pytest tests/test_schemathesis.py
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.stateful.state_machine import DEFAULT_STATE_MACHINE_SETTINGS, StepInput, StepOutput

from contracts.spec import ContractSpec, load_document
from mockcore import MockFleet
from mockcore.catalogue import DEFAULT_ENTRIES, ErrorCode
from mockcore.identity import deployment_id
from mockcore.scanning import ENGINES

CI_EXAMPLES = 25
CI_SCENARIOS = 150
CI_SEED = 20261125
EXAMPLES = int(os.environ.get("MOCKCORE_SCHEMATHESIS_EXAMPLES") or CI_EXAMPLES)
SCENARIOS = CI_SCENARIOS if EXAMPLES == CI_EXAMPLES else EXAMPLES
_SEED_TEXT = os.environ.get("MOCKCORE_SCHEMATHESIS_SEED")
SEED: int | None = int(_SEED_TEXT) if _SEED_TEXT else (CI_SEED if EXAMPLES == CI_EXAMPLES else None)
STEPS = 12

FLEET_SEED = "0"
APIKEY = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f"
KEY = "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG"  # 3 slots
SECOND_KEY = "HHHH-IIII-JJJJ-KKKK-LLLL-MMMM-NNNN"  # 1 slot
INSTANCES = ("prod", "backup", "spare")
DEPLOYMENTS = MappingProxyType({name: deployment_id(FLEET_SEED, name) for name in INSTANCES})

# Codes that say a request is malformed (or unauthenticated), as opposed to a refusal of a well-formed request.
MALFORMED = frozenset({ErrorCode.ACCESS_MISSING, ErrorCode.ACCESS, ErrorCode.BAD_REQUEST, ErrorCode.TOO_LARGE})
# Catalogue codes whose text is another server's (E_ACTIVATION_FAILED carries the activation server's words).
VARIABLE_TEXT = frozenset({ErrorCode.ACTIVATION_FAILED})
INTERNAL_ERROR = "Internal error."

# Fuzzing: where each Core operation runs. Every example starts from the scenario `production-with-online-backup`
# (prod active online on KEY, backup its online backup, spare unlicensed), so each operation meets the state in
# which it can succeed.
FUZZ_SCENARIO = "production-with-online-backup"
FUZZ_TARGET = MappingProxyType({"nominate": "backup", "unregisterBackup": "backup", "registerBackup": "spare"})
DEFAULT_TARGET = "prod"


@dataclass(frozen=True)
class ContractFacts:
    """What the harness reads from the contract, read once into immutable tables."""

    operation_ids: frozenset[str]
    labels: frozenset[str]
    x_errors: Mapping[tuple[str, str], frozenset[ErrorCode]]  # (operationId, status) -> documented codes
    error_answers: frozenset[tuple[str, str]]  # (operationId, status) answered with the `{"err"}` body
    takes_apikey: frozenset[str]


def _facts() -> ContractFacts:
    spec = ContractSpec.load()
    x_errors: dict[tuple[str, str], frozenset[ErrorCode]] = {}
    error_answers = set()
    for op in spec.operations():
        for status, raw in op.definition["responses"].items():
            response = spec.resolve(raw)
            x_errors[(op.operation_id, status)] = frozenset(ErrorCode(code) for code in response.get("x-errors", ()))
            if response.get("content", {}).get("application/json", {}).get("schema") == ERROR_SCHEMA:
                error_answers.add((op.operation_id, status))
    return ContractFacts(
        operation_ids=frozenset(op.operation_id for op in spec.operations()),
        labels=frozenset(op.label for op in spec.operations()),
        x_errors=MappingProxyType(x_errors),
        error_answers=frozenset(error_answers),
        takes_apikey=frozenset(
            op.operation_id for op in spec.operations() if any(p["name"] == "apikey" for _, p in spec.parameters(op))
        ),
    )


ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}
CONTRACT = _facts()


def _x_errors(operation_id: str, status: str) -> frozenset[ErrorCode]:
    return CONTRACT.x_errors.get((operation_id, status), frozenset())


def _is_error_answer(operation_id: str, status: str) -> bool:
    if (operation_id, status) not in CONTRACT.x_errors:  # a generic answer: 404, 405 or 500
        return True
    return (operation_id, status) in CONTRACT.error_answers


def _refusals(operation_id: str) -> frozenset[ErrorCode]:
    """The documented 400s of an operation that refuse a well-formed request (state, key, file, password)."""
    return _x_errors(operation_id, "400") - MALFORMED


def _config() -> schemathesis.Config:
    defaults = schemathesis.Config().projects.get_default().checks.positive_data_acceptance.expected_statuses
    operations = [
        {
            "include-operation-id": operation_id,
            "checks": {"positive_data_acceptance": {"expected-statuses": [*defaults, "400"]}},
        }
        for operation_id in sorted(CONTRACT.operation_ids)
        if _refusals(operation_id)
    ]
    config: dict[str, Any] = {
        "generation": {"max-examples": EXAMPLES, "database": "none"},
        # Hypothesis's speed health check only: this machine is shared and loaded (no schemathesis check is off).
        "suppress-health-check": ["too_slow"],
        "phases": {"stateful": {"max-steps": STEPS}},
        "dictionaries": {
            "keys": {"values": [KEY, SECOND_KEY]},
            "deployments": {"values": list(DEPLOYMENTS.values())},
            "engines": {"values": [engine.eng_id for engine in ENGINES]},
            "quantities": {"values": ["1", "1000"]},
            "users": {"values": ["admin"]},
        },
        "parameters": {
            "body.activationKey": {"dictionary": "keys", "probability": 0.8},
            "header.activation-key": {"dictionary": "keys", "probability": 0.8},
            "header.active-deployment-id": {"dictionary": "deployments", "probability": 0.8},
            "query.key": {"dictionary": "keys", "probability": 0.8},
            "query.deployment": {"dictionary": "deployments", "probability": 0.8},
            "query.quantity": {"dictionary": "quantities", "probability": 0.8},
            "path.engineId": {"dictionary": "engines", "probability": 0.8},
            "body.user": {"dictionary": "users", "probability": 0.8},
            "body.password": {"dictionary": "users", "probability": 0.8},
            "body.old_password": {"dictionary": "users", "probability": 0.5},
        },
        "operations": operations,
    }
    if SEED is not None:
        config["seed"] = SEED
    return schemathesis.Config.from_dict(config)


# One schema for both servers: each case is sent to the server its tag names. (Not `schema.include(tag=...)`:
# with `[[operations]]` entries in the config, schemathesis 4.32.5 ORs an include filter with the config's own
# catch-all filter, so it would select every operation.)
SCHEMA = schemathesis.openapi.from_dict(load_document(), config=_config())


@pytest.fixture(scope="module")
def fleet() -> Iterator[MockFleet]:
    with MockFleet(
        instances=INSTANCES, keys=[(KEY, 3, 365), (SECOND_KEY, 1, 365)], apikey=APIKEY, seed=FLEET_SEED
    ) as running:
        assert running.deployments == dict(DEPLOYMENTS)
        yield running


# Our checks (passed as `additional_checks`, never registered globally)


def _operation_id(case: schemathesis.Case) -> str:
    return str(case.operation.definition.raw["operationId"])


def _error_code(text: object, documented: frozenset[ErrorCode]) -> ErrorCode | None:
    """The documented code an error text stands for: a catalogue text names its own codes; any other text can
    only be a code whose text is another server's (E_ACTIVATION_FAILED)."""
    exact = [code for code in ErrorCode if DEFAULT_ENTRIES[code].text == text]
    if exact:
        return next((code for code in exact if code in documented), None)
    return next((code for code in documented if code in VARIABLE_TEXT), None)


def error_bodies_follow_the_catalogue(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """A Core error answers one of the catalogue entries its status documents (`x-errors`), with that entry's
    text; a 5xx may also be the generic `Internal error.` (which `not_a_server_error` reports anyway)."""
    if "core" not in case.operation.tags or response.status_code < 400 or response.status_code == 405:
        return
    if not _is_error_answer(_operation_id(case), str(response.status_code)):
        return  # /readyz's 503: the unhealthy answer, with the readiness body (checked against its schema)
    text = response.json().get("err")
    documented = _x_errors(_operation_id(case), str(response.status_code))
    if response.status_code == 404 and not documented:
        documented = frozenset({ErrorCode.NOT_FOUND})
    code = _error_code(text, documented)
    assert code is not None or (response.status_code >= 500 and text == INTERNAL_ERROR), (
        f"{case.operation.label} answered {response.status_code} {text!r}, not one of its documented errors "
        f"({', '.join(sorted(documented)) or 'none'})"
    )


def positive_refusals_are_documented(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Schema-valid data answered 400 must be refused for its state or meaning, never as malformed."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return
    if "core" not in case.operation.tags:
        return
    refusals = _refusals(_operation_id(case))
    code = _error_code(response.json().get("err"), refusals)
    assert code is not None, (
        f"{case.operation.label}: schema-valid data was refused with 400 {response.json()!r}; the contract allows "
        f"only these refusals of a well-formed request: {', '.join(sorted(refusals)) or 'none'}"
    )


OUR_CHECKS = [error_bodies_follow_the_catalogue, positive_refusals_are_documented]


# Credentials


def _header_under_test(case: schemathesis.Case, name: str) -> bool:
    """Whether the case deliberately makes header `name` invalid or missing (then it is left as generated)."""
    meta = case.meta
    if meta is None:
        return False
    data = meta.phase.data
    named = {getattr(data, "parameter", None), *(m.parameter for m in getattr(data, "mutations", ()))}
    named = {n.lower() for n in named if isinstance(n, str)}
    if named:
        return name in named
    # A negative header case that does not say which header it broke: leave every header as generated.
    return meta.generation.mode.is_negative and meta.is_negative_at(ParameterLocation.HEADER)


def _takes_apikey(case: schemathesis.Case) -> bool:
    return _operation_id(case) in CONTRACT.takes_apikey


def _authenticate(case: schemathesis.Case, sessions: frozenset[str] = frozenset()) -> None:
    if not _takes_apikey(case) or _header_under_test(case, "apikey"):
        return
    given = case.headers.get("apikey") if case.headers else None
    if given in sessions:
        return  # a session a link carried from /login
    case.headers = {**(case.headers or {}), "apikey": APIKEY}


# Fuzzing: examples, coverage and fuzzing phases


def _base_urls(case: schemathesis.Case, fleet: MockFleet) -> list[str]:
    """Where a fuzzed case goes: Core operations to the instance of FUZZ_TARGET, activation-server operations to
    the activation server; `GET /openapi.json`, tagged both, to both."""
    urls = []
    if "core" in case.operation.tags:
        urls.append(fleet.urls[FUZZ_TARGET.get(_operation_id(case), DEFAULT_TARGET)])
    if "activation" in case.operation.tags:
        urls.append(fleet.activation_url)
    return urls


@SCHEMA.parametrize()
def test_operation_keeps_the_contract(case: schemathesis.Case, fleet: MockFleet) -> None:
    fleet.scenario(FUZZ_SCENARIO)
    _authenticate(case)
    for url in _base_urls(case, fleet):
        case.call_and_validate(base_url=url, additional_checks=OUR_CHECKS)


# The stateful phase

# Where a stateful scenario starts (after a reset): one of the mock's named scenarios, reached through its own
# licence operations, so short walks still meet every licence state.
STARTS = ("fresh", "production-only", "production-with-online-backup", "production-with-offline-backup")

# Links whose target runs on another instance than their source: the production's deployment feeds a backup
# registration elsewhere; a licence file is uploaded by the instance it names and registers a backup elsewhere.
TO_ANOTHER_INSTANCE = ("ProductionIsBackedUp", "ActivatedKeyRegistersABackup", "FileRegistersABackup")
TO_THE_FILES_INSTANCE = ("FileIsUploaded",)
# The backup registration takes either both online headers or a licence file body (`x-request-forms`), which a
# schema cannot say; a link into it names the form it feeds, and a positive case following it is sent in that form.
ONLINE_FORM = ("ProductionIsBackedUp", "ActivatedKeyRegistersABackup")
OFFLINE_FORM = ("FileRegistersABackup",)
FORM_HEADERS = ("activation-key", "active-deployment-id")
LICENCE_BODY_OPERATIONS = ("uploadLicence", "registerBackup")  # their body is a licence file (raw bytes)


def _link_name(step: StepInput) -> str | None:
    if step.transition is None:
        return None
    for name in (*TO_ANOTHER_INSTANCE, *TO_THE_FILES_INSTANCE):
        if name in step.transition.id:
            return name
    return "same instance"


def test_stateful_lifecycle_keeps_the_contract(fleet: MockFleet) -> None:
    by_deployment = {deployment: name for name, deployment in DEPLOYMENTS.items()}

    class Lifecycle(SCHEMA.as_state_machine()):  # type: ignore[misc]
        """Steps go to `self.current` (switched by a rule of its own) unless a link says where they belong."""

        def setup(self) -> None:
            fleet.reset()
            self.current = INSTANCES[0]
            self.instance_of: dict[str, str] = {}
            self.sessions: set[str] = set()
            self.files: dict[str, bytes] = {}  # licence files by signature, as the activation server sent them

        @initialize(scenario=st.sampled_from(STARTS), current=st.sampled_from(INSTANCES))
        def start_from(self, scenario: str, current: str) -> None:
            fleet.scenario(scenario)
            self.current = current

        @rule()
        def switch_instance(self) -> None:
            self.current = INSTANCES[(INSTANCES.index(self.current) + 1) % len(INSTANCES)]

        def _other_than(self, name: str) -> str:
            if self.current != name:
                return self.current
            return INSTANCES[(INSTANCES.index(name) + 1) % len(INSTANCES)]

        def step(self, input: StepInput) -> StepOutput:
            case = input.case
            parent = self.instance_of.get(input.transition.parent_id, self.current) if input.transition else None
            link = _link_name(input)
            deployment = case.body.get("deployment") if isinstance(case.body, dict) else None
            if link is None:
                instance = self.current
            elif link == "FileIsUploaded":
                instance = by_deployment.get(str(deployment), self.current)
            elif link == "FileRegistersABackup":
                instance = self._other_than(by_deployment.get(str(deployment), self.current))
            elif link in ("ProductionIsBackedUp", "ActivatedKeyRegistersABackup"):
                instance = self._other_than(parent or self.current)
            else:
                instance = parent or self.current
            self.instance_of[case.id] = instance
            self.target = instance
            self.form = "online" if link in ONLINE_FORM else "offline" if link in OFFLINE_FORM else None
            return super().step(input)

        def before_call(self, case: schemathesis.Case) -> None:
            _authenticate(case, frozenset(self.sessions))
            if _operation_id(case) in LICENCE_BODY_OPERATIONS and isinstance(case.body, dict):
                # A licence file (or a refusal) a link carried from /activation: schemathesis hands it over parsed
                # from YAML. The file exactly as issued is sent as the activation server wrote it, as a client
                # would; anything else (a refusal, a file with fields left out) as YAML.
                issued = self.files.get(str(case.body.get("signature")))
                exact = issued is not None and yaml.safe_load(issued) == case.body
                case.body = issued if exact else yaml.safe_dump(case.body).encode()
            positive = case.meta is None or case.meta.generation.mode.is_positive
            if _operation_id(case) == "registerBackup" and positive and self.form is not None:
                headers = dict(case.headers or {})
                if self.form == "online":
                    case.body = b""
                else:
                    headers = {name: value for name, value in headers.items() if name.lower() not in FORM_HEADERS}
                case.headers = headers

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            if "core" in case.operation.tags:
                return {"base_url": fleet.urls[self.target]}
            return {"base_url": fleet.activation_url}

        def after_call(self, response: schemathesis.Response, case: schemathesis.Case) -> None:
            super().after_call(response, case)
            if response.status_code != 200:
                return
            if _operation_id(case) == "login":
                self.sessions.add(str(response.json()["session_id"]))
            elif _operation_id(case) == "obtainLicenceFile":
                document = yaml.safe_load(response.content)
                if isinstance(document, dict) and "signature" in document:
                    self.files[str(document["signature"])] = response.content

        def validate_response(
            self, response: schemathesis.Response, case: schemathesis.Case, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            super().validate_response(response, case, additional_checks=OUR_CHECKS, **kwargs)

    Lifecycle.run(
        settings=settings(
            DEFAULT_STATE_MACHINE_SETTINGS,
            max_examples=SCENARIOS,
            stateful_step_count=STEPS,
            derandomize=SEED is not None,
        )
    )


def test_no_operation_is_left_out_and_no_check_or_phase_is_off() -> None:
    operations = [result.ok() for result in SCHEMA.get_all_operations()]
    assert {op.label for op in operations} == CONTRACT.labels
    project = SCHEMA.config
    defaults = schemathesis.Config().projects.get_default().checks
    builtin = [name for name in type(defaults).__dataclass_fields__ if not name.startswith("_")]
    builtin.remove("max_response_time")  # off unless a limit is given: not one of the default checks
    for operation in operations:
        phases = project.phases_for(operation=operation)
        assert all(phases.get_by_name(name=name).enabled for name in ("examples", "coverage", "fuzzing", "stateful"))
        assert project.generation_for(operation=operation).modes == list(schemathesis.GenerationMode)
        for phase in (None, "examples", "coverage", "fuzzing", "stateful"):
            checks = project.checks_config_for(operation=operation, phase=phase)
            assert all(checks.get_by_name(name=name).enabled for name in builtin), (operation.label, phase)
            for name in builtin:
                statuses = getattr(checks.get_by_name(name=name), "expected_statuses", None)
                default = getattr(defaults.get_by_name(name=name), "expected_statuses", None)
                if name == "positive_data_acceptance" and _refusals(str(operation.definition.raw["operationId"])):
                    default = [*default, "400"]  # the contract's refusals of well-formed requests
                assert statuses == default, (operation.label, phase, name)


# The harness can fail: a breach of the contract, brought about with the mock's own fault rules, is reported.


def _failures(case: schemathesis.Case, url: str) -> list[str]:
    """The titles and messages of every failure schemathesis reports for one call."""
    try:
        case.call_and_validate(base_url=url, additional_checks=OUR_CHECKS)
    except FailureGroup as group:
        return [f"{getattr(failure, 'title', '')}: {failure}" for failure in group.exceptions]
    return []


def _fault(fleet: MockFleet, path: str, status: int, err: str) -> None:
    with fleet.session("prod") as control:
        rule = {"face": "core", "path": path, "status": status, "err": err}
        assert control.post("/_mock/faults", json=rule).status_code in (200, 201)


def test_an_undocumented_answer_is_caught(fleet: MockFleet) -> None:
    fleet.reset()
    _fault(fleet, "/version", 418, "I am a teapot.")
    failures = _failures(SCHEMA["/version"]["GET"].Case(headers={"apikey": APIKEY}), fleet.urls["prod"])
    fleet.reset()
    assert any("Undocumented status code" in failure for failure in failures), failures
    assert any("error_bodies_follow_the_catalogue" in failure for failure in failures), failures


def test_valid_data_refused_as_malformed_is_caught(fleet: MockFleet) -> None:
    """A schema-valid activation answered `Invalid request.` fails `positive_refusals_are_documented`, though
    400 is among the statuses the configured `positive_data_acceptance` takes for this operation."""
    operation = SCHEMA["/admin/license/activation"]["POST"]
    caught: list[str] = []

    @given(case=operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE))
    @settings(max_examples=1, database=None, suppress_health_check=list(HealthCheck))
    def attempt(case: schemathesis.Case) -> None:
        fleet.reset()
        _fault(fleet, "/admin/license/activation", 400, "Invalid request.")
        _authenticate(case)
        caught.extend(_failures(case, fleet.urls["prod"]))

    attempt()
    fleet.reset()
    assert len(caught) == 1 and "positive_refusals_are_documented" in caught[0], caught
