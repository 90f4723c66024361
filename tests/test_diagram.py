"""The state diagram is drawn from the state machine's own table: it says what TRANSITIONS says, changes when the
table changes, and docs/guides/demos-and-dashboard.md shows exactly what `mockcore diagram` prints."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from mockcore import diagram
from mockcore.catalogue import ErrorCode
from mockcore.cli import main
from mockcore.lifecycle import TRANSITIONS, LicenceState, Operation

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"


def _edges(drawn: diagram.Diagram) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(e.source, e.target): e.operations for e in drawn.edges}


def _modified_table() -> dict[Operation, dict[LicenceState, LicenceState | ErrorCode]]:
    """The table with offline nomination allowed and online nomination refused."""
    table = {op: dict(row) for op, row in TRANSITIONS.items()}
    table[Operation.NOMINATE][LicenceState.BACKUP_OFFLINE] = LicenceState.ACTIVE
    table[Operation.NOMINATE][LicenceState.BACKUP_ONLINE] = ErrorCode.NOT_BACKUP
    return table


def test_every_allowed_transition_of_the_table_is_an_edge_and_nothing_else() -> None:
    drawn = diagram.derive()
    expected: dict[tuple[str, str], list[str]] = {}
    for operation, row in TRANSITIONS.items():
        for state, outcome in row.items():
            if isinstance(outcome, LicenceState):
                expected.setdefault((state.value, outcome.value), []).append(operation.value)
    assert {pair: list(ops) for pair, ops in _edges(drawn).items()} == expected
    assert drawn.states == ("unlicensed", "active", "backup-online", "backup-offline")
    assert drawn.initial == "unlicensed"
    # What docs/behaviour.md, Transitions, says, spot-checked by hand
    edges = _edges(drawn)
    assert edges[("unlicensed", "active")] == ("activate", "upload")
    assert edges[("backup-online", "active")] == ("nominate",)
    assert ("backup-offline", "active") not in edges  # an offline backup cannot be nominated
    assert ("nominate", "E_NOMINATE_OFFLINE") in drawn.refusals["backup-offline"]


def test_mermaid_text_lists_states_initial_state_and_edges() -> None:
    text = diagram.mermaid(diagram.derive())
    lines = text.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert '    state "backup-online" as backup_online' in lines
    assert "    [*] --> unlicensed" in lines
    assert "    unlicensed --> active : activate, upload" in lines
    assert "    backup_online --> active : nominate" in lines
    assert "    backup_offline --> unlicensed : unregister" in lines
    assert "    active --> unlicensed : deactivate" in lines
    assert len([line for line in lines if "-->" in line]) == 1 + len(diagram.derive().edges)
    assert text.endswith("\n")


def test_the_diagram_follows_a_changed_table() -> None:
    original = diagram.derive()
    changed = diagram.derive(_modified_table())
    assert ("backup-offline", "active") in _edges(changed)
    assert ("backup-online", "active") not in _edges(changed)
    text = diagram.mermaid(changed)
    assert "    backup_offline --> active : nominate" in text
    assert "backup_online --> active" not in text
    assert text != diagram.mermaid(original)
    root = ET.fromstring(diagram.svg(changed))
    pairs = {(g.get("data-source"), g.get("data-target")) for g in root.iter(f"{SVG}g") if g.get("class") == "edge"}
    assert ("backup-offline", "active") in pairs
    assert ("backup-online", "active") not in pairs
    # a refusal the table gains is kept as a refusal, not drawn
    assert ("nominate", "E_NOT_BACKUP") in changed.refusals["backup-online"]


def test_a_table_with_something_else_than_states_and_errors_is_refused() -> None:
    table = {Operation.ACTIVATE: {LicenceState.UNLICENSED: "active"}}
    with pytest.raises(ValueError, match="not a state"):
        diagram.derive(table)  # type: ignore[arg-type]


def _rect(group: ET.Element) -> tuple[float, float, float, float]:
    rect = group.find(f"{SVG}rect")
    assert rect is not None
    x, y, w, h = (float(rect.get(a, "nan")) for a in ("x", "y", "width", "height"))
    return x, y, x + w, y + h


def test_svg_is_well_formed_has_every_state_once_and_nothing_outside_its_view_box() -> None:
    drawn = diagram.derive()
    root = ET.fromstring(diagram.svg(drawn))
    left, top, width, height = (float(v) for v in (root.get("viewBox") or "").split())
    states = {g.get("data-state"): g for g in root.iter(f"{SVG}g") if "state" in (g.get("class") or "").split()}
    assert list(states) == list(drawn.states)
    boxes = {name: _rect(g) for name, g in states.items()}
    for name, (x0, y0, x1, y1) in boxes.items():
        assert left <= x0 < x1 <= left + width and top <= y0 < y1 <= top + height, name
        assert states[name].get("id") == f"state-{name}"
    names = list(boxes)
    for i, a in enumerate(names):  # no two states overlap
        for b in names[i + 1 :]:
            ax0, ay0, ax1, ay1 = boxes[a]
            bx0, by0, bx1, by1 = boxes[b]
            assert ax1 <= bx0 or bx1 <= ax0 or ay1 <= by0 or by1 <= ay0, (a, b)
    edges = [g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]
    assert len(edges) == len(drawn.edges)
    for group in edges:
        label = group.find(f"{SVG}text")
        assert label is not None and label.text
        x, y = float(label.get("x", "nan")), float(label.get("y", "nan"))
        assert left <= x <= left + width and top <= y <= top + height, label.text
        path = group.find(f"{SVG}path")
        assert path is not None
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))]
        xs, ys = numbers[0::2], numbers[1::2]
        assert all(left <= v <= left + width for v in xs) and all(top <= v <= top + height for v in ys)


def test_svg_highlights_the_states_that_hold_instances() -> None:
    drawn = diagram.derive()
    root = ET.fromstring(diagram.svg(drawn, {"active": ["backup"], "unlicensed": ["prod", "dr"]}))
    by_state = {g.get("data-state"): g for g in root.iter(f"{SVG}g") if g.get("data-state")}
    assert by_state["active"].get("class") == "state current"
    assert by_state["unlicensed"].get("class") == "state current"
    assert by_state["backup-online"].get("class") == "state"

    def holders(state: str) -> str:
        texts = [t for t in by_state[state].iter(f"{SVG}text") if t.get("class") == "state-instances"]
        return texts[0].text or ""

    assert holders("active") == "backup"
    assert holders("unlicensed") == "prod, dr"
    assert holders("backup-offline") == ""
    with pytest.raises(ValueError, match="not states"):
        diagram.svg(drawn, {"retired": ["prod"]})


def test_cli_prints_mermaid_by_default_and_writes_svg(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["diagram"])
    assert result.exit_code == 0, result.output
    assert result.output == diagram.mermaid(diagram.derive())
    target = tmp_path / "lifecycle.svg"
    result = runner.invoke(main, ["diagram", "--format", "svg", "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text() == diagram.svg(diagram.derive())
    ET.fromstring(target.read_text())
    bad = runner.invoke(main, ["diagram", "--format", "dot"])
    assert bad.exit_code == 2 and "dot" in bad.output


GUIDE = ROOT / "docs" / "guides" / "demos-and-dashboard.md"


def _guide_section(heading: str) -> str:
    text = GUIDE.read_text()
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_guide_shows_what_mockcore_diagram_prints() -> None:
    blocks = re.findall(r"```mermaid\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    assert re.findall(r"```mermaid\n(.*?)```", _guide_section("## The state diagram"), flags=re.DOTALL) == blocks
    assert len(blocks) == 1
    printed = CliRunner().invoke(main, ["diagram"]).output
    assert blocks[0] == printed


def test_the_guide_shows_the_dashboard_screenshot() -> None:
    section = _guide_section("## Dashboard")
    assert "![" in section and "(../dashboard.png)" in section  # docs/dashboard.png, from docs/guides/
    assert "mockcore screenshot docs/dashboard.png" in section
    data = (ROOT / "docs" / "dashboard.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(data[16:20], "big")
    assert width == 1440  # the viewport `mockcore screenshot` uses
