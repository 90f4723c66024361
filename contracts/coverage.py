"""Which checks cover which rules, and how often a run exercised each: what `mockcore-contracts rules` prints.

A check is a drill (`contracts.drills`), the generated exploration, or a fixed sequence for targets without a
control plane; each declares the inventory rules it covers. `server` writes the counts of its last run to a file
(`last_run_path`), which `rules` reads back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from contracts.drills import DRILLS
from contracts.rules import CELLS, RULES, SECTIONS, Rule, cell

EXPLORATION = (
    *(cell(operation, state) for operation, state in CELLS),
    "activate.same-key-no-new-slot",
    "activate.other-key-moves",
    "activate.no-slot",
    "activate.unknown-key",
    "activate.quantity",
    "activate.sets-online",
    "upload.sets-offline",
    "upload.own-deployment",
    "register-online.unknown-key",
    "register-online.production-on-key",
    "register-online.not-itself",
    "register-offline.another-deployment",
    "register.success-sentence",
    "unregister.success-sentence",
    "nominate.moves-slot",
    "nominate.success-sentence",
    "deactivate.online-frees-slot",
    "deactivate.offline-keeps-slot",
    "online.slot-lost",
    "refused.changes-nothing",
    "slots.accounting",
    "slots.within-key",
    "slots.backup-holds-none",
    "view.days_left",
    "view.deployment",
    "view.expiration",
    "view.licensed_engines",
    "view.licensed_to",
    "view.max_node_count",
    "view.online_activated",
    "view.product_id",
    "view.product_name",
    "view.unlicensed",
    "view.reactivate",
    "view.backup",
    "view.backup-flag",
    "expiry.last-valid-day",
    "expiry.first-expired-day",
    "activation.issues-file",
    "activation.reissue",
    "activation.invalid-key",
    "activation.invalid-deployment",
    "activation.invalid-quantity",
    "activation.unknown-key",
    "deactivation.frees-slot",
    "deactivation.not-activated",
    "file.fields",
    "file.values",
    "file.signature",
    "auth.missing-apikey",
    "auth.unknown-apikey",
    "scan.active",
    "scan.refused-by-state",
    "scan.result",
    "scan.eicar",
    "scan.clean",
    "engines.listed",
    "engines.toggle",
    "engines.toggle-unlicensed",
    "service.readyz",
    "service.readyz-plain",
    "service.answers",
)
READ_ONLY = (
    "view.unlicensed",
    "view.deployment",
    "view.backup-flag",
    "service.readyz",
    "auth.missing-apikey",
    "auth.unknown-apikey",
    "transition.unregister.unlicensed",
    "transition.nominate.unlicensed",
    "transition.deactivate.unlicensed",
    "scan.refused-by-state",
)


@dataclass(frozen=True)
class Check:
    name: str
    kind: str  # drill, exploration, sequence
    covers: tuple[str, ...]


def checks() -> tuple[Check, ...]:
    return (
        *(Check(f"drill: {d.name}", "drill", d.covers) for d in DRILLS),
        Check("exploration", "exploration", EXPLORATION),
        Check("read-only sequence", "sequence", READ_ONLY),
    )


def checks_by_rule(all_checks: tuple[Check, ...] | None = None) -> dict[str, list[str]]:
    """Each rule (and each id a check names) with the checks covering it."""
    found: dict[str, list[str]] = {rule.id: [] for rule in RULES}
    for check in checks() if all_checks is None else all_checks:
        for rule_id in check.covers:
            found.setdefault(rule_id, []).append(check.name)
    return found


def problems(all_checks: tuple[Check, ...] | None = None) -> list[str]:
    """A rule no check covers, or a check naming a rule the inventory does not have."""
    known = {rule.id for rule in RULES}
    found = []
    for rule_id, covering in checks_by_rule(all_checks).items():
        if rule_id not in known:
            found.append(f"{', '.join(covering)} names {rule_id!r}, which is not in the inventory")
        elif not covering:
            found.append(f"no check covers {rule_id!r}")
    return found


def last_run_path() -> Path:
    """Where `server` keeps the counts of its last run: `$MOCKCORE_CONTRACTS_LAST_RUN`, else the user's cache."""
    explicit = os.environ.get("MOCKCORE_CONTRACTS_LAST_RUN")
    if explicit:
        return Path(explicit)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "mockcore-contracts" / "last-run.json"


def write_last_run(path: Path, counts: Mapping[str, int], target: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"target": target, "exercised": dict(sorted(counts.items()))}, indent=1))
    except OSError:
        pass  # a read-only home is no reason to fail a run; `rules` then shows no counts


def read_last_run(path: Path) -> dict[str, object] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("exercised"), dict) else None


def inventory(last_run: Mapping[str, int] | None) -> list[dict[str, object]]:
    """Every rule with its section, statement, the checks covering it and the last run's count (None: no run)."""
    covering = checks_by_rule()
    return [
        {
            "id": rule.id,
            "section": rule.section,
            "statement": rule.statement,
            "checks": covering[rule.id],
            "exercised": None if last_run is None else int(last_run.get(rule.id, 0)),
        }
        for rule in RULES
    ]


def render_markdown() -> str:
    """The rule inventory as the behaviour documentation (`docs/rules.md`), section by section."""
    covering = checks_by_rule()
    lines = [
        "# The licence rules",
        "",
        "Every rule the contract suite checks, section by section, with its stable id and the checks that cover",
        "it. Rendered from `contracts/rules.py` by `mockcore-contracts rules --markdown`; a test keeps this file",
        "equal to it.",
    ]
    by_section: dict[str, list[Rule]] = {}
    for rule in RULES:
        by_section.setdefault(rule.section, []).append(rule)
    for section in SECTIONS:
        lines += ["", f"## {section.title}", "", section.text, "", "| id | rule | checked by |", "|---|---|---|"]
        for rule in by_section.get(section.id, []):
            statement = rule.statement.replace("|", "\\|")
            lines.append(f"| `{rule.id}` | {statement} | {', '.join(covering[rule.id])} |")
    return "\n".join(lines) + "\n"
