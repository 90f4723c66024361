"""The contracts pytest plugin (entry point `pytest11`, name `mockcore_contracts`): run the server suite from pytest.

Options: `--core-url URL` (repeatable), `--activation-url`, `--apikey`, `--admin USER:PASSWORD`,
`--contracts-key KEY:SLOTS[:DATE]` (repeatable; targets without a control plane), `--control-token`,
`--allow-destructive`, `--contracts-examples N`, `--contracts-steps N`, `--contracts-derandomize`,
`--contracts-overrides FILE`, `--contracts-profile 4.18|5.6` (default: the control plane's, else 5.6).

Fixtures: `contracts_target` (the Target the options describe; the test is skipped without `--core-url`) and
`contracts_server_run` (the suite run on it, once per session). The shipped test module runs it:

    pytest --pyargs contracts.test_server_contract --core-url http://127.0.0.1:8008 --apikey KEY
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.model import PROFILES
from contracts.server_suite import ServerRun, SuiteSettings, run_server_suite
from contracts.target import KeySpec, Target, TargetError, check_profile, discover, load_overrides, parse_admin


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockcore_contracts", "mockcore contracts: check a server against the licence rules")
    group.addoption("--core-url", action="append", default=[], metavar="URL", help="a Core base URL; repeatable")
    group.addoption("--activation-url", default=None, metavar="URL", help="the activation server")
    group.addoption("--apikey", default=None, help="the apikey header (default: log in with --admin)")
    group.addoption("--admin", default=None, metavar="USER:PASSWORD", help="log in for a session (admin:admin)")
    group.addoption("--contracts-key", action="append", default=[], metavar="KEY:SLOTS[:DATE]", help="a key to use")
    group.addoption("--control-token", default=None, help="the mock's X-Mock-Control-Token")
    group.addoption("--allow-destructive", action="store_true", help="no control plane: run the failover sequence")
    group.addoption("--contracts-examples", type=int, default=20, help="Hypothesis examples (20)")
    group.addoption("--contracts-steps", type=int, default=20, help="steps per example at most (20)")
    group.addoption("--contracts-derandomize", action="store_true", help="the same sequences on every run")
    group.addoption("--contracts-overrides", default=None, metavar="FILE", help="the target's fidelity overrides")
    group.addoption(
        "--contracts-profile",
        default=None,
        choices=sorted(PROFILES),
        help="the line of Core the target is (default: the control plane's, else 5.6)",
    )


@pytest.fixture(scope="session")
def contracts_target(pytestconfig: pytest.Config) -> Target:
    urls: list[str] = pytestconfig.getoption("core_url")
    if not urls:
        pytest.skip("no --core-url given: nothing to check the contract against")
    try:
        target = Target.from_urls(urls)
        target.activation_url = pytestconfig.getoption("activation_url")
        target.apikey = pytestconfig.getoption("apikey")
        admin = pytestconfig.getoption("admin")
        target.admin = parse_admin(admin) if admin else None if target.apikey else ("admin", "admin")
        target.keys = [KeySpec.parse(k) for k in pytestconfig.getoption("contracts_key")]
        target.control_token = pytestconfig.getoption("control_token")
        target.allow_destructive = pytestconfig.getoption("allow_destructive")
        overrides = pytestconfig.getoption("contracts_overrides")
        if overrides:
            target.catalogue = load_overrides(Path(overrides))
        profile = pytestconfig.getoption("contracts_profile")
        target.profile = check_profile(profile) if profile else None
    except TargetError as exc:
        raise pytest.UsageError(str(exc)) from exc
    return target


@pytest.fixture(scope="session")
def contracts_server_run(contracts_target: Target, pytestconfig: pytest.Config) -> ServerRun:
    settings = SuiteSettings(
        examples=pytestconfig.getoption("contracts_examples"),
        steps=pytestconfig.getoption("contracts_steps"),
        derandomize=pytestconfig.getoption("contracts_derandomize"),
    )
    try:
        return run_server_suite(discover(contracts_target), settings)
    except TargetError as exc:
        pytest.fail(f"the target cannot be used: {exc}", pytrace=False)
