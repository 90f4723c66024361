"""mockcore: a stateful emulator of MetaDefender Core's licence and hot-backup API and its activation server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The in-process server, imported on first use so that `import mockcore` stays cheap (no Flask, no requests).
_LAZY = frozenset({"MockFleet", "BaseUrlSession", "KeySpec", "ScenarioError"})
__all__ = ["BaseUrlSession", "KeySpec", "MockFleet", "ScenarioError", "__version__"]

if TYPE_CHECKING:
    from mockcore.inprocess import BaseUrlSession, KeySpec, MockFleet, ScenarioError


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from mockcore import inprocess

        return getattr(inprocess, name)
    raise AttributeError(f"module 'mockcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
