#!/usr/bin/env python3
"""Render the parts of docs/ that are made from the code, so they cannot drift from it.

    python tools/render_docs.py           rewrite every rendered page or block in place
    python tools/render_docs.py --check   change nothing; exit 1 with a diff when a page is stale

What is rendered, and from what (public names only):

* docs/behaviour.md, block `transitions`: the transition table, from `mockcore.lifecycle.TRANSITIONS` and
  `mockcore.lifecycle.ENDPOINTS`;
* docs/errors.md, block `catalogue`: the error catalogue, from `mockcore.catalogue.DEFAULT_ENTRIES` served through
  `mockcore.catalogue.Catalogue` (no overrides);
* docs/reference/cli.md, the whole file: both command-line tools, from their click commands (`mockcore.cli.main`
  and `contracts.cli.main`): usage, description and every option with click's own help text;
* docs/reference/control-plane.md, block `control-endpoints`: every path and method of
  `mockcore/control-openapi.yaml` with its summary.

A block lives in a hand-written page between `<!-- BEGIN GENERATED: name -->` and `<!-- END GENERATED: name -->`;
everything outside the markers is left as it is. `tests/test_docs.py` fails when a committed page differs from what
this script renders.
"""

from __future__ import annotations

import argparse
import difflib
import inspect
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # render from this checkout, whatever the installed copy is
    sys.path.insert(0, str(ROOT))

REGENERATE = "python tools/render_docs.py"


# Markdown helpers


def cell(text: str) -> str:
    """Text fit for one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def code(text: str) -> str:
    """Inline code, with a fence long enough for any backticks inside."""
    text = str(text)
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") else text
    return f"{ticks}{padded}{ticks}"


def table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# The transition table


def render_transitions() -> str:
    from mockcore.lifecycle import ENDPOINTS, TRANSITIONS

    states = list(next(iter(TRANSITIONS.values())))
    for operation, row in TRANSITIONS.items():
        assert list(row) == states, f"{operation}: every row of TRANSITIONS has the same states in the same order"

    def outcome(value: Any) -> str:
        return f"→ {code(value)}" if value in states else code(value)

    rows = []
    for operation, row in TRANSITIONS.items():
        method, path = ENDPOINTS[operation]
        rows.append([f"{code(operation)} {code(f'{method} {path}')}", *(outcome(row[state]) for state in states)])
    return table(["operation (endpoint)", *(code(state) for state in states)], rows)


# The error catalogue


def render_catalogue() -> str:
    from mockcore.catalogue import DEFAULT_ENTRIES, Catalogue

    served = Catalogue()
    rows = []
    for error_code in DEFAULT_ENTRIES:
        entry = served.entry(error_code)
        rows.append([code(error_code), str(entry.status), cell(entry.text)])
    return table(["code", "HTTP status", "text (`err`)"], rows)


# The command-line reference


def _help_text(command: Any) -> str:
    text = inspect.cleandoc(command.help or "").split("\f", 1)[0]
    paragraphs = [" ".join(part.replace("\b", "").split()) for part in re.split(r"\n\s*\n", text)]
    return "\n\n".join(part for part in paragraphs if part)


def _usage(command: Any, ctx: Any) -> str:
    return " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])


def _options(command: Any, ctx: Any) -> str:
    import click

    rows = []
    for param in command.get_params(ctx):
        if isinstance(param, click.Option):
            record = param.get_help_record(ctx)
            if record is None:  # a hidden option
                continue
            names, meaning = record
            rows.append([", ".join(cell(code(name.strip())) for name in names.split(", ")), cell(meaning)])
        elif isinstance(param, click.Argument):
            kind = "argument" if param.required else "argument, optional"
            rows.append([cell(code(param.human_readable_name)), kind])
    return table(["option", "meaning"], rows)


def _command_section(command: Any, ctx: Any, level: str) -> list[str]:
    parts = [f"{level} {ctx.command_path}\n", f"```text\n{_usage(command, ctx)}\n```\n"]
    if help_text := _help_text(command):
        parts.append(help_text + "\n")
    parts.append(_options(command, ctx))
    return parts


def render_cli() -> str:
    import click

    from contracts.cli import main as contracts_main
    from mockcore.cli import main as mockcore_main

    parts = [
        "# Command-line reference\n",
        f"<!-- GENERATED: this whole page is rendered from the click commands; edit their help, then run\n"
        f"`{REGENERATE}`. -->\n",
        "Both tools are installed with the package. This page is their own `--help`, every command and option,\n"
        "rendered from the code (`mockcore.cli` and `contracts.cli`). The guides say more:\n"
        "[test double](../guides/test-double.md) (`mockcore serve`), "
        "[demos and dashboard](../guides/demos-and-dashboard.md)\n"
        "(`mockcore demo`, `diagram`, `screenshot`), [checking a server](../guides/checking-a-server.md)\n"
        "(`mockcore-contracts server`, `rules`) and [validating a client](../guides/validating-a-client.md)\n"
        "(`mockcore-contracts client`).\n",
    ]
    for tool, group in (("mockcore", mockcore_main), ("mockcore-contracts", contracts_main)):
        ctx = click.Context(group, info_name=tool, max_content_width=1000, terminal_width=1000)
        parts += _command_section(group, ctx, "##")
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            sub = click.Context(command, info_name=name, parent=ctx, max_content_width=1000, terminal_width=1000)
            parts += _command_section(command, sub, "###")
    return "\n".join(parts)


# The control plane's endpoints


def render_control_endpoints() -> str:
    import yaml

    document = yaml.safe_load((ROOT / "mockcore" / "control-openapi.yaml").read_text(encoding="utf-8"))
    methods = ("get", "put", "post", "delete", "patch", "head", "options")
    rows = []
    for path, item in document["paths"].items():
        for method in methods:
            if method in item:
                rows.append([code(f"{method.upper()} {path}"), cell(item[method].get("summary", ""))])
    return table(["endpoint", "what it does"], rows)


# The pages


@dataclass(frozen=True)
class Rendered:
    path: str  # relative to the repository root
    render: Callable[[], str]
    block: str | None = None  # the marker name; None: the whole file is rendered


TARGETS: tuple[Rendered, ...] = (
    Rendered("docs/behaviour.md", render_transitions, "transitions"),
    Rendered("docs/errors.md", render_catalogue, "catalogue"),
    Rendered("docs/reference/cli.md", render_cli),
    Rendered("docs/reference/control-plane.md", render_control_endpoints, "control-endpoints"),
)


class StalePage(Exception):
    pass


def replace_block(text: str, name: str, body: str, where: str) -> str:
    begin, end = f"<!-- BEGIN GENERATED: {name} -->", f"<!-- END GENERATED: {name} -->"
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise StalePage(f"{where}: expected one `{begin}` ... `{end}` pair")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    note = f"<!-- rendered by `{REGENERATE}` from the code: do not edit by hand -->"
    return f"{head}{begin}\n{note}\n\n{body.rstrip()}\n\n{end}{tail}"


def render_all(root: Path = ROOT) -> dict[str, str]:
    """What every rendered page should hold: path (relative to `root`) -> text."""
    pages: dict[str, str] = {}
    for target in TARGETS:
        body = target.render()
        if target.block is None:
            pages[target.path] = body.rstrip() + "\n"
            continue
        current = pages.get(target.path)
        if current is None:
            file = root / target.path
            if not file.is_file():
                raise StalePage(f"{target.path}: missing (it holds the `{target.block}` block)")
            current = file.read_text(encoding="utf-8")
        pages[target.path] = replace_block(current, target.block, body, target.path)
    return pages


def stale(root: Path = ROOT, pages: Mapping[str, str] | None = None) -> dict[str, str]:
    """Pages whose committed text differs from the rendering: path -> unified diff."""
    found = {}
    for path, wanted in (pages or render_all(root)).items():
        file = root / path
        current = file.read_text(encoding="utf-8") if file.is_file() else ""
        if current != wanted:
            diff = difflib.unified_diff(
                current.splitlines(keepends=True), wanted.splitlines(keepends=True), f"{path} (committed)", path
            )
            found[path] = "".join(diff)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff when stale")
    args = parser.parse_args(argv)
    try:
        pages = render_all()
    except StalePage as problem:
        print(f"render_docs: {problem}", file=sys.stderr)
        return 1
    differences = stale(ROOT, pages)
    if args.check:
        for diff in differences.values():
            sys.stdout.write(diff)
        if differences:
            print(f"\n{len(differences)} page(s) out of date: run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    for path in differences:
        file = ROOT / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(pages[path], encoding="utf-8")
        print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
