"""`mockcore demo`: run a demo against a fleet and show it, in colour or as JSON lines."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import ExitStack

from rich.console import Console

from mockcore.demo.output import JsonLinesOutput, RichOutput
from mockcore.demo.runner import PROBLEM_EXIT, DemoProblem, Options, RemoteFleet, fresh_fleet, run
from mockcore.demo.scripts import DEMOS


def run_demo(
    name: str,
    options: Options,
    *,
    url: str | None = None,
    control_token: str | None = None,
    verify: bool | str = True,
    as_json: bool = False,
    pause: Callable[[], None] | None = None,
) -> int:
    """Run a demo against the fleet at `url`, or against a fleet of its own; the process exit code: 0 when every
    answer was the expected one, 1 when one was not, PROBLEM_EXIT when the demo could not run."""
    demo = DEMOS[name]
    output = (
        JsonLinesOutput(sys.stdout)
        if as_json
        else RichOutput(Console(highlight=False), Console(stderr=True, highlight=False))
    )
    with ExitStack() as stack:
        try:
            if url is None:
                url = stack.enter_context(fresh_fleet(options.credentials))
            fleet = RemoteFleet(url, control_token, verify)
            stack.callback(fleet.close)
            return 0 if run(demo, fleet, options, output, pause) else 1
        except DemoProblem as exc:
            output.problem(str(exc))
            return PROBLEM_EXIT


def list_document() -> dict[str, str]:
    """Demo name -> what it shows."""
    return {name: demo.description for name, demo in DEMOS.items()}
