"""The contracts pytest plugin (entry point `pytest11`, name `mockcore_contracts`); options are added below."""

from __future__ import annotations
