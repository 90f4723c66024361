"""`mockcore-contracts client`: check that a client of MetaDefender Core's licence API handles the licence lifecycle
correctly, failures included, against a live mock fleet.

Python clients implement `ClientAdapter` (returning `Success` / `Failure`); clients in any other language are run
as a command, once per operation, speaking JSON (`contracts.client.command`). `run_harness` runs the drills and
the generated sequences and returns a `ClientReport`; `check_client` also starts a mock fleet of its own.

The names below load on first use, so importing the package (as pytest does for the plugin) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "OPERATIONS": "contracts.client.adapter",
    "AdapterError": "contracts.client.adapter",
    "Call": "contracts.client.adapter",
    "ClientAdapter": "contracts.client.adapter",
    "Failure": "contracts.client.adapter",
    "Instance": "contracts.client.adapter",
    "Outcome": "contracts.client.adapter",
    "PythonClient": "contracts.client.adapter",
    "Success": "contracts.client.adapter",
    "load_adapter": "contracts.client.adapter",
    "CommandClient": "contracts.client.command",
    "HarnessSettings": "contracts.client.harness",
    "run_harness": "contracts.client.harness",
    "check_client": "contracts.client.run",
    "PROPERTIES": "contracts.client.report",
    "ClientReport": "contracts.client.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
