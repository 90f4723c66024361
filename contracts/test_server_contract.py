"""The server contract as a pytest test: `pytest --pyargs contracts.test_server_contract --core-url URL ...`
(options: see contracts.pytest_plugin). Skipped without `--core-url`."""

from __future__ import annotations

import pytest

from contracts.server_suite import ServerRun


def test_server_keeps_the_licence_contract(contracts_server_run: ServerRun) -> None:
    for skipped in contracts_server_run.skipped:
        print(f"skipped: {skipped}")
    if not contracts_server_run.passed:
        failed = [r.render() for r in contracts_server_run.reports if not r.passed]
        pytest.fail("\n\n".join(failed) or "\n".join(contracts_server_run.parity), pytrace=False)
