"""YAML from untrusted hands: a size cap, the safe constructors only, and no anchors or aliases at all.

Refusing aliases shuts out billion-laughs documents, which the safe loader alone would build as shared
references that blow up the first time anyone walks them. Deep nesting is refused the same way.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 32


class UnsafeYAML(ValueError):
    """The document is too large, malformed, uses aliases or tags, or nests too deep."""


class _StrictLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        event = self.peek_event()
        where = f"line {event.start_mark.line + 1}, column {event.start_mark.column + 1}"
        if isinstance(event, yaml.AliasEvent):
            raise UnsafeYAML(f"YAML aliases are not accepted ({where})")
        if getattr(event, "anchor", None) is not None:
            raise UnsafeYAML(f"YAML anchors are not accepted ({where})")
        self._depth = getattr(self, "_depth", 0) + 1
        try:
            if self._depth > MAX_DEPTH:
                raise UnsafeYAML(f"YAML nests deeper than {MAX_DEPTH} levels ({where})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load(data: bytes | str, max_bytes: int) -> Any:
    """Parse one YAML document, or raise UnsafeYAML with a reason a person can read."""
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise UnsafeYAML(f"document is larger than {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnsafeYAML("document is not UTF-8") from exc
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except UnsafeYAML:
        raise
    except (yaml.YAMLError, RecursionError) as exc:
        raise UnsafeYAML(f"not valid YAML: {exc}") from exc
