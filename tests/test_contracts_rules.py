"""The rule inventory: every rule has a check, every check names inventory rules, each drill exercises the rules it
claims, the documentation is rendered from the inventory, and `mockcore-contracts rules` shows the last run."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from contracts import coverage
from contracts.checks import Checker, StepLog, broken
from contracts.drills import DRILLS, Drill
from contracts.rules import CELLS, RULE_IDS, RULES, SECTION_IDS, STATES
from contracts.target import discover
from mockcore import MockFleet
from tests.faulty_servers import KEYS, build_fleet, inprocess_target
from tests.test_contracts_server import contracts_command

ROOT = Path(__file__).parents[1]


def test_every_rule_has_a_check_and_every_check_names_a_rule() -> None:
    assert coverage.problems() == []


def test_removing_a_rule_from_the_checks_is_caught() -> None:
    rule = "nominate.no-slot"
    stripped = tuple(replace(c, covers=tuple(r for r in c.covers if r != rule)) for c in coverage.checks())
    assert coverage.problems(stripped) == [f"no check covers {rule!r}"]
    renamed = (*coverage.checks(), coverage.Check("made up", "drill", ("no.such-rule",)))
    assert coverage.problems(renamed) == ["made up names 'no.such-rule', which is not in the inventory"]


def test_the_inventory_is_whole() -> None:
    """Ids are unique, each in a known section; every transition-table cell and catalogue entry has its rule."""
    assert len({r.id for r in RULES}) == len(RULES)
    assert {r.section for r in RULES} <= SECTION_IDS
    assert {f"transition.{op}.{state}" for op, state in CELLS} <= RULE_IDS
    assert len(CELLS) == 7 * len(STATES)
    catalogue = [r for r in RULES if r.id.startswith("error.")]
    assert len(catalogue) == 37  # the expected catalogue and the scan requests' three (contracts.model)


def test_a_violation_must_name_an_inventory_rule() -> None:
    assert broken("view.days_left", "x").rule == "view.days_left"
    with pytest.raises(ValueError, match="not in the inventory"):
        broken("days-left-is-right", "x")


@pytest.mark.parametrize("drill", DRILLS, ids=[d.name for d in DRILLS])
def test_each_drill_exercises_every_rule_it_claims(drill: Drill) -> None:
    fleet = discover(inprocess_target(build_fleet(profile=drill.claims_under)))
    log = StepLog()
    checker = Checker(fleet, log)
    log.start_run()
    drill.run(checker)
    assert set(drill.covers) <= set(log.outcomes), sorted(set(drill.covers) - set(log.outcomes))
    assert set(log.outcomes) <= RULE_IDS


def test_the_rules_documentation_is_rendered_from_the_inventory() -> None:
    assert (ROOT / "docs" / "rules.md").read_text() == coverage.render_markdown()


def test_rules_command_shows_the_last_runs_counts(tmp_path: Path) -> None:
    last = tmp_path / "last-run.json"
    env = {**os.environ, "MOCKCORE_CONTRACTS_LAST_RUN": str(last)}
    before = subprocess.run([*contracts_command(), "rules", "--json"], capture_output=True, text=True, env=env)
    assert before.returncode == 0, before.stderr
    doc = json.loads(before.stdout)
    assert len(doc["rules"]) == len(RULES) and all(r["exercised"] is None for r in doc["rules"])
    with MockFleet(["a", "b", "c"], keys=list(KEYS)) as fleet:
        server = subprocess.run(
            [
                *contracts_command(),
                "server",
                "--core-url",
                fleet.urls["a"],
                "--apikey",
                fleet.apikey,
                "--examples",
                "3",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
    assert server.returncode == 0, server.stdout + server.stderr
    after = json.loads(
        subprocess.run([*contracts_command(), "rules", "--json"], capture_output=True, text=True, env=env).stdout
    )
    counts = {r["id"]: r["exercised"] for r in after["rules"]}
    only_under_4_18 = {"profile.absent-endpoints", "view.deployment_id"}  # the 5.6 fleet shows them not
    assert all(counts[r] > 0 for r in RULE_IDS - only_under_4_18), [r for r in RULE_IDS if not counts[r]]
    assert all(r["checks"] for r in after["rules"])
    text = subprocess.run([*contracts_command(), "rules"], capture_output=True, text=True, env=env).stdout
    assert "nominate.no-slot  [operations]" in text and "checked by: drill: slots at nomination" in text
    assert f"{len(RULES)} rules; the last run" in text


def test_without_a_control_plane_the_key_s_node_count_is_not_learnt_from_an_activation_s_quantity() -> None:
    """A view or file that carries an activation's quantity shows it as `max_node_count`: the key's own node count
    stays unknown (so a later view of the key's own terms, e.g. an online backup's, is not held to the quantity),
    and is learnt from the first source without one; a disagreeing source after that is caught."""
    from datetime import date

    from contracts.checks import learn_terms
    from contracts.model import KeyModel

    shown = {"product_id": "P", "product_name": "N", "licensed_to": "T", "licensed_engines": "E"}
    key = KeyModel("K", 2, date.max)
    assert learn_terms(key, {**shown, "max_node_count": "5"}, "view.product_id", carries_quantity=True)
    assert key.terms is not None and key.terms.max_node_count is None and key.terms.product_id == "P"
    assert not learn_terms(key, {**shown, "max_node_count": "7"}, "view.product_id", carries_quantity=True)
    assert key.terms.max_node_count is None
    assert learn_terms(key, {**shown, "max_node_count": "1"}, "view.product_id", carries_quantity=False)
    assert key.terms.max_node_count == "1"
    assert not learn_terms(key, {**shown, "max_node_count": "9"}, "view.product_id", carries_quantity=False)
    assert key.terms.max_node_count == "1"  # known now: a later source is checked against it, not learnt from
    with pytest.raises(Exception, match="is a string"):
        learn_terms(KeyModel("L", 1, date.max), {**shown, "max_node_count": 3}, "file.values", carries_quantity=False)
