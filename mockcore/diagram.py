"""The licence lifecycle as a state diagram, derived from the state machine's own table (`lifecycle.TRANSITIONS`),
never drawn by hand: change the table and the diagram changes with it.

`derive` reads the table into states and edges (an edge groups every operation that leads from one state to
another; refusals are kept per state). `mermaid` renders Mermaid `stateDiagram-v2` text (what `mockcore diagram`
prints and the README shows); `svg` renders an SVG with a small pure-Python layered layout (no graphviz), in which
states holding instances are highlighted (the dashboard does the same live, by the ids and classes documented on
`svg`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from mockcore.catalogue import ErrorCode
from mockcore.lifecycle import TRANSITIONS, Licence, LicenceState, Operation

Table = Mapping[Operation, Mapping[LicenceState, LicenceState | ErrorCode]]


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    operations: tuple[str, ...]

    @property
    def label(self) -> str:
        return ", ".join(self.operations)


@dataclass(frozen=True)
class Diagram:
    states: tuple[str, ...]  # in the table's column order
    initial: str
    edges: tuple[Edge, ...]
    refusals: Mapping[str, tuple[tuple[str, str], ...]]  # state -> (operation, error code) it refuses


def derive(transitions: Table = TRANSITIONS, initial: LicenceState | None = None) -> Diagram:
    """States and edges of a transition table: operation -> {state: new state, or the error that refuses it}.
    States come in the order the table first names them; `initial` defaults to the state of a fresh licence."""
    start = initial if initial is not None else Licence().state
    states: list[str] = [start.value]
    grouped: dict[tuple[str, str], list[str]] = {}
    refusals: dict[str, list[tuple[str, str]]] = {}
    for operation, row in transitions.items():
        for source, outcome in row.items():
            if not isinstance(source, LicenceState) or not isinstance(outcome, LicenceState | ErrorCode):
                raise ValueError(f"{operation}: {source!r} -> {outcome!r} is not a state -> state or error code")
            for state in (source, outcome):
                if isinstance(state, LicenceState) and state.value not in states:
                    states.append(state.value)
            if isinstance(outcome, LicenceState):
                grouped.setdefault((source.value, outcome.value), []).append(operation.value)
            else:
                refusals.setdefault(source.value, []).append((operation.value, outcome.value))
    order = {name: index for index, name in enumerate(states)}
    edges = sorted(grouped.items(), key=lambda item: (order[item[0][0]], order[item[0][1]]))
    return Diagram(
        states=tuple(states),
        initial=str(start.value),
        edges=tuple(Edge(source, target, tuple(ops)) for (source, target), ops in edges),
        refusals={state: tuple(pairs) for state, pairs in refusals.items()},
    )


def _mermaid_id(state: str) -> str:
    return re.sub(r"\W", "_", state)


def mermaid(diagram: Diagram) -> str:
    """Mermaid `stateDiagram-v2` text, one line per state and per edge, ending in a newline."""
    lines = ["stateDiagram-v2"]
    lines += [f'    state "{state}" as {_mermaid_id(state)}' for state in diagram.states]
    lines.append(f"    [*] --> {_mermaid_id(diagram.initial)}")
    lines += [f"    {_mermaid_id(e.source)} --> {_mermaid_id(e.target)} : {e.label}" for e in diagram.edges]
    return "\n".join(lines) + "\n"


# SVG layout, left to right: states in columns by their distance from the initial state (breadth first), each
# column centred on the same line. Every edge leaves and enters a node at a port of its own on the side facing the
# other node, ports ordered along the side by where the other end lies (so edges do not cross at a node, and of a
# pair of opposite edges the left-to-right one runs above); edges are cubic curves leaving their side squarely.
# Between states of one column, neighbours are joined top to bottom, others by an arc out to the right; a
# self-loop sits on the node's right.

_NODE_HEIGHT = 58
_ROW_GAP = 96  # between the nodes of a column
_COLUMN_GAP = 260  # between columns
_MARGIN = 24
_PORT_SPACING = 10
_NAME_CHAR = 8.6  # average advance of the 14 px bold state name
_LABEL_CHAR = 6.9  # average advance of the 12 px edge label
_FONT = 'system-ui, -apple-system, "Segoe UI", sans-serif'
_STYLE = f"""
.state rect {{ fill: #f8fafc; stroke: #475569; stroke-width: 1.5; }}
.state.current rect {{ fill: #dcfce7; stroke: #15803d; stroke-width: 3; }}
.state-name {{ font: 600 14px {_FONT}; fill: #0f172a; }}
.state-instances {{ font: 12px {_FONT}; fill: #15803d; }}
.edge-line {{ fill: none; stroke: #64748b; stroke-width: 1.4; }}
.edge-label {{ font: 12px {_FONT}; fill: #334155; }}
.edge-label-bg {{ fill: #ffffff; fill-opacity: 0.85; }}
.initial {{ fill: #0f172a; }}
.arrowhead {{ fill: #64748b; }}
"""

Point = tuple[float, float]
_OUTWARD: Mapping[str, Point] = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "top": (0.0, -1.0), "bottom": (0.0, 1.0)}


@dataclass(frozen=True)
class _Box:
    x: float  # centre
    y: float
    w: float
    h: float
    column: int
    row: int

    def side_centre(self, side: str) -> Point:
        dx, dy = _OUTWARD[side]
        return self.x + dx * self.w / 2, self.y + dy * self.h / 2


class _Bounds:
    def __init__(self) -> None:
        self.left = self.top = math.inf
        self.right = self.bottom = -math.inf

    def add(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.left, self.top = min(self.left, x0, x1), min(self.top, y0, y1)
        self.right, self.bottom = max(self.right, x0, x1), max(self.bottom, y0, y1)


def _columns(diagram: Diagram) -> list[list[str]]:
    rank = {diagram.initial: 0}
    frontier = [diagram.initial]
    while frontier:
        following: list[str] = []
        for state in frontier:
            for edge in diagram.edges:
                if edge.source == state and edge.target not in rank:
                    rank[edge.target] = rank[state] + 1
                    following.append(edge.target)
        frontier = following
    unreachable = max(rank.values()) + 1
    columns: dict[int, list[str]] = {}
    for state in diagram.states:  # the table's order within a column
        columns.setdefault(rank.get(state, unreachable), []).append(state)
    return [columns[r] for r in sorted(columns)]


def _layout(diagram: Diagram) -> dict[str, _Box]:
    boxes: dict[str, _Box] = {}
    widths = {s: max(130.0, len(s) * _NAME_CHAR + 40) for s in diagram.states}
    x = 0.0
    for column_index, column in enumerate(_columns(diagram)):
        width = max(widths[s] for s in column)
        top = -(len(column) - 1) * (_NODE_HEIGHT + _ROW_GAP) / 2
        for row, state in enumerate(column):
            y = top + row * (_NODE_HEIGHT + _ROW_GAP)
            boxes[state] = _Box(x + width / 2, y, widths[state], _NODE_HEIGHT, column_index, row)
        x += width + _COLUMN_GAP
    return boxes


def _sides(a: _Box, b: _Box) -> tuple[str, str]:
    """The sides of a and b an edge between them uses."""
    if a.column != b.column:
        return ("right", "left") if a.column < b.column else ("left", "right")
    if abs(a.row - b.row) == 1:
        return ("bottom", "top") if a.row < b.row else ("top", "bottom")
    return "right", "right"


def _ports(diagram: Diagram, boxes: Mapping[str, _Box]) -> dict[tuple[int, str], Point]:
    """(edge index, "source" or "target") -> the point where that end of the edge meets its node."""
    ends: dict[tuple[str, str], list[tuple[tuple[float, int, int], tuple[int, str]]]] = {}
    for index, edge in enumerate(diagram.edges):
        if edge.source == edge.target:
            continue
        a, b = boxes[edge.source], boxes[edge.target]
        source_side, target_side = _sides(a, b)
        forward = 0 if (a.column, a.row) < (b.column, b.row) else 1  # of a pair, the forward edge comes first
        for state, side, other, end in (
            (edge.source, source_side, b, "source"),
            (edge.target, target_side, a, "target"),
        ):
            along = other.y if side in ("left", "right") else other.x
            ends.setdefault((state, side), []).append(((along, forward, index), (index, end)))
    ports: dict[tuple[int, str], Point] = {}
    for (state, side), items in ends.items():
        box = boxes[state]
        span = (box.h if side in ("left", "right") else box.w) - 16
        step = min(_PORT_SPACING * 1.6, span / max(len(items), 1))
        cx, cy = box.side_centre(side)
        for position, (_, key) in enumerate(sorted(items)):
            offset = (position - (len(items) - 1) / 2) * step
            ports[key] = (cx, cy + offset) if side in ("left", "right") else (cx + offset, cy)
    return ports


def _label(x: float, y: float, text: str, anchor: str, bounds: _Bounds) -> str:
    width = len(text) * _LABEL_CHAR + 8
    left = {"start": x - 4, "end": x - width + 4, "middle": x - width / 2}[anchor]
    bounds.add(left, y - 13, left + width, y + 5)
    return (
        f'<rect class="edge-label-bg" x="{left:.1f}" y="{y - 13:.1f}" width="{width:.1f}" height="18" rx="3"/>'
        f'<text class="edge-label" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{escape(text)}</text>'
    )


def _edge_group(edge: Edge, inner: str) -> str:
    return (
        f'<g class="edge" data-source={quoteattr(edge.source)} data-target={quoteattr(edge.target)}>'
        f"<title>{escape(edge.source)} → {escape(edge.target)}: {escape(edge.label)}</title>{inner}</g>"
    )


def _self_loop(edge: Edge, box: _Box, bounds: _Bounds) -> str:
    side = box.x + box.w / 2
    reach = side + 70
    path = (
        f"M{side:.1f},{box.y - 12:.1f} "
        f"C{reach:.1f},{box.y - 52:.1f} {reach:.1f},{box.y + 52:.1f} {side:.1f},{box.y + 12:.1f}"
    )
    bounds.add(side, box.y - 40, side + 56, box.y + 40)
    line = f'<path class="edge-line" d="{path}" marker-end="url(#arrow)"/>'
    return _edge_group(edge, line + _label(side + 58, box.y + 4, edge.label, "start", bounds))


def _curve(edge: Edge, start: Point, end: Point, sides: tuple[str, str], lane: int, bounds: _Bounds) -> str:
    """A cubic from `start` to `end` leaving and entering squarely; `lane` -1 / +1 pushes the first / second of a
    pair of opposite edges apart in the middle (0: a lone edge)."""
    (x0, y0), (x3, y3) = start, end
    (sx, sy), (tx, ty) = _OUTWARD[sides[0]], _OUTWARD[sides[1]]
    horizontal = sides[0] in ("left", "right")
    pull = max(40.0, 0.45 * (abs(x3 - x0) if horizontal else abs(y3 - y0)))
    if sides == ("right", "right"):
        pull = 40.0 + 0.25 * abs(y3 - y0)
    push_x, push_y = (0.0, lane * 14.0) if horizontal else (lane * 14.0, 0.0)
    c1 = (x0 + sx * pull + push_x, y0 + sy * pull + push_y)
    c2 = (x3 + tx * pull + push_x, y3 + ty * pull + push_y)
    mid_x = (x0 + 3 * c1[0] + 3 * c2[0] + x3) / 8
    mid_y = (y0 + 3 * c1[1] + 3 * c2[1] + y3) / 8
    bounds.add(x0, y0, x3, y3)
    bounds.add(mid_x, mid_y, mid_x, mid_y)
    line = (
        f'<path class="edge-line" d="M{x0:.1f},{y0:.1f} C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} '
        f'{x3:.1f},{y3:.1f}" marker-end="url(#arrow)"/>'
    )
    if not horizontal or sides == ("right", "right"):  # a vertical edge: the label on its right
        return _edge_group(edge, line + _label(mid_x + 8, mid_y + 4, edge.label, "start", bounds))
    # The tangent in the middle tells which way the curve runs there; the first of a pair (or a lone edge) is
    # labelled above it, the second below, and on a slope the label leans away from the line.
    dx, dy = (x3 + c2[0] - c1[0] - x0), (y3 + c2[1] - c1[1] - y0)
    above = lane <= 0
    slope = dy / dx if dx else math.inf
    if abs(slope) < 0.25:
        label = _label(mid_x, mid_y - 7 if above else mid_y + 17, edge.label, "middle", bounds)
    else:
        rising = slope < 0  # up to the right, on screen
        anchor = "end" if rising == above else "start"
        label = _label(
            mid_x + (-4 if anchor == "end" else 4), mid_y - 5 if above else mid_y + 15, edge.label, anchor, bounds
        )
    return _edge_group(edge, line + label)


def svg(diagram: Diagram, current: Mapping[str, Sequence[str]] | None = None) -> str:
    """The diagram as a standalone SVG document.

    Each state is `<g class="state" id="state-NAME" data-state="NAME">` holding a `rect`, a `text.state-name` and
    a `text.state-instances`; `current` (state -> instance names) adds the class `current` to the states that hold
    instances and writes the names into their `state-instances` text. Edges are `g.edge` with `data-source` and
    `data-target`."""
    current = current or {}
    unknown = set(current) - set(diagram.states)
    if unknown:
        raise ValueError(f"not states of this diagram: {', '.join(sorted(unknown))}")
    boxes = _layout(diagram)
    ports = _ports(diagram, boxes)
    bounds = _Bounds()
    pairs = {(e.source, e.target) for e in diagram.edges}
    parts: list[str] = []
    for index, edge in enumerate(diagram.edges):
        if edge.source == edge.target:
            parts.append(_self_loop(edge, boxes[edge.source], bounds))
            continue
        a, b = boxes[edge.source], boxes[edge.target]
        lane = 0 if (edge.target, edge.source) not in pairs else (-1 if (a.column, a.row) < (b.column, b.row) else 1)
        start, end = ports[(index, "source")], ports[(index, "target")]
        parts.append(_curve(edge, start, end, _sides(a, b), lane, bounds))
    start_box = boxes[diagram.initial]
    dot_x = start_box.x - start_box.w / 2 - 46
    bounds.add(dot_x - 8, start_box.y - 8, dot_x + 8, start_box.y + 8)
    parts.append(
        f'<g class="initial-marker"><circle class="initial" cx="{dot_x:.1f}" cy="{start_box.y:.1f}" r="7"/>'
        f'<path class="edge-line" d="M{dot_x + 7:.1f},{start_box.y:.1f} H{start_box.x - start_box.w / 2:.1f}" '
        'marker-end="url(#arrow)"/></g>'
    )
    for state in diagram.states:
        box = boxes[state]
        bounds.add(box.x - box.w / 2, box.y - box.h / 2, box.x + box.w / 2, box.y + box.h / 2)
        names = list(current.get(state, ()))
        refused = "; ".join(f"{op} ({code})" for op, code in diagram.refusals.get(state, ()))
        tip = state + (f" refuses: {refused}" if refused else "")
        parts.append(
            f'<g class="state{" current" if names else ""}" id={quoteattr("state-" + state)} '
            f"data-state={quoteattr(state)}><title>{escape(tip)}</title>"
            f'<rect x="{box.x - box.w / 2:.1f}" y="{box.y - box.h / 2:.1f}" width="{box.w:.1f}" '
            f'height="{box.h:.1f}" rx="12"/>'
            f'<text class="state-name" x="{box.x:.1f}" y="{box.y - 4:.1f}" text-anchor="middle">{escape(state)}</text>'
            f'<text class="state-instances" x="{box.x:.1f}" y="{box.y + 15:.1f}" text-anchor="middle">'
            f"{escape(', '.join(names))}</text></g>"
        )
    left, top = bounds.left - _MARGIN, bounds.top - _MARGIN
    width, height = bounds.right - bounds.left + 2 * _MARGIN, bounds.bottom - bounds.top + 2 * _MARGIN
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lifecycle-diagram" '
        f'viewBox="{left:.1f} {top:.1f} {width:.1f} {height:.1f}" width="{width:.0f}" height="{height:.0f}" '
        'role="img" aria-label="Licence lifecycle state diagram">'
        f"<title>Licence lifecycle (from mockcore.lifecycle.TRANSITIONS)</title><style>{_STYLE}</style>"
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" '
        'orient="auto-start-reverse"><path class="arrowhead" d="M0,0 L10,5 L0,10 z"/></marker></defs>'
        + "".join(parts)
        + "</svg>\n"
    )
