"""The client harness as one test, for `python -m pytest --pyargs contracts.client.test_client_contract
--client-adapter MODULE:CLASS` (or `--client-command COMMAND`); skipped when no client is named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.client.pytest_plugin import assert_client_passes


def test_client_keeps_the_licence_contract(client_harness: Callable[..., Any], client_under_test: Any) -> None:
    assert_client_passes(client_harness(client_under_test))
