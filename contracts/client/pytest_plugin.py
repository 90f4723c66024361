"""The client harness as a pytest plugin (entry point `pytest11`, name `mockcore_contracts_client`).

Two ways in:

- the shipped test module: `python -m pytest --pyargs contracts.client.test_client_contract --client-adapter
  my_module:MyAdapter` (or `--client-command './my-client'`) runs the harness on that client as one test;
- the `client_harness` fixture in your own tests: `client_harness(MyAdapter())` (or a command line) runs the
  harness and returns the `ClientReport`; `assert_client_passes(report)` fails the test with the readable report.

Both use one mock fleet per test session (per xdist worker), started with `mockcore serve` on free ports the
first time it is needed (over HTTPS with a throwaway CA with `--client-tls`), or `--client-url` of a running mock
(`--client-ca` for an HTTPS one). Nothing is imported or started otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mockcore-contracts client", "validate a licence client against the mock")
    group.addoption("--client-adapter", metavar="MODULE:CLASS", help="the Python adapter of the client under test")
    group.addoption("--client-command", metavar="COMMAND", help="the command adapter of the client under test")
    group.addoption("--client-url", metavar="URL", help="a running mock (default: start mockcore serve)")
    group.addoption("--client-ca", metavar="FILE", help="the CA file of an HTTPS mock at --client-url")
    group.addoption("--client-tls", action="store_true", help="serve the mock the plugin starts over HTTPS")
    group.addoption("--client-examples", type=int, default=None, help="generated sequences (default 25)")
    group.addoption("--client-steps", type=int, default=None, help="steps per generated sequence (default 10)")
    group.addoption("--client-derandomize", action="store_true", help="the same generated sequences every run")


def assert_client_passes(report: Any) -> None:
    """Fail the current test with the harness's report when a property broke."""
    if not report.passed:
        pytest.fail(report.render(), pytrace=False)


@pytest.fixture(scope="session")
def client_harness_mock(request: pytest.FixtureRequest) -> Iterator[tuple[Any, ...]]:
    """(URL, apikey, CA file or None) of the mock fleet the harness uses: `--client-url` (and `--client-ca`), or a
    `mockcore serve` of the session's (over HTTPS with `--client-tls`). A replacement may yield (URL, apikey)."""
    url = request.config.getoption("client_url")
    if url:
        ca = request.config.getoption("client_ca")
        yield url, None, Path(ca) if ca else None
        return
    from contracts.client.serve import Certificates, ServedMock

    certificates = Certificates.make() if request.config.getoption("client_tls") else None
    try:
        with ServedMock.start(certificates=certificates) as served:
            # no apikey: the harness logs in on each instance, so each has an apikey of its own
            yield served.url, None, certificates.trust if certificates else None
    finally:
        if certificates is not None:
            certificates.remove()


@pytest.fixture
def client_harness(request: pytest.FixtureRequest, client_harness_mock: tuple[Any, ...]) -> Callable[..., Any]:
    """`client_harness(client, examples=..., steps=..., drills=..., derandomize=...)` -> ClientReport, where client
    is a Python adapter object or a command line; the options' settings are the defaults."""
    from contracts.client.harness import HarnessSettings
    from contracts.client.run import check_client

    url, apikey, *more = client_harness_mock
    ca = more[0] if more else None
    config = request.config
    defaults: dict[str, Any] = {
        "examples": config.getoption("client_examples"),
        "steps": config.getoption("client_steps"),
        "derandomize": config.getoption("client_derandomize") or None,
    }

    def run(client: Any, **overrides: Any) -> Any:
        chosen = {k: v for k, v in {**defaults, **overrides}.items() if v is not None}
        return check_client(client, url=url, apikey=apikey, ca=ca, settings=HarnessSettings(**chosen))

    return run


@pytest.fixture
def client_under_test(request: pytest.FixtureRequest) -> Any:
    """The client the options name: a Python adapter object (`--client-adapter`) or a command line
    (`--client-command`); the test is skipped when neither is given."""
    from contracts.client.adapter import AdapterError, load_adapter

    adapter = request.config.getoption("client_adapter")
    command = request.config.getoption("client_command")
    if adapter and command:
        raise pytest.UsageError("give one of --client-adapter and --client-command, not both")
    if command:
        return command
    if adapter:
        try:
            return load_adapter(adapter)
        except AdapterError as exc:
            raise pytest.UsageError(f"--client-adapter: {exc}") from exc
    pytest.skip("no client under test: give --client-adapter MODULE:CLASS or --client-command COMMAND")
