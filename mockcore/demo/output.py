"""How a demo shows itself: in colour for people (rich: a panel per step with a progress bar, the request, the
answer, the verdict and the fleet after it), or as JSON lines for programs (one object per line: `start`, one
`step` per step, then `outcome`; `problem` instead when the demo cannot run)."""

from __future__ import annotations

import json
from typing import IO, Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from mockcore.demo.runner import RemoteFleet, StepRecord
from mockcore.demo.scripts import Context, Demo

SHOWN_LINES = 18
STATE_STYLES = {"active": "bold green", "backup-online": "bold cyan", "backup-offline": "bold blue"}


class JsonLinesOutput:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def _emit(self, document: dict[str, Any]) -> None:
        self.stream.write(json.dumps(document) + "\n")
        self.stream.flush()

    def start(self, demo: Demo, fleet: RemoteFleet, ctx: Context, total: int) -> None:
        self._emit(
            {
                "event": "start",
                "demo": demo.name,
                "title": demo.title,
                "description": demo.description,
                "fleet": {"instances": fleet.instances, "activation_server": fleet.activation_url},
                "prod": ctx.prod,
                "backup": ctx.backup,
                "key": ctx.key,
                "login": not ctx.apikeys,
                "steps": total,
            }
        )

    def step(self, record: StepRecord) -> None:
        self._emit(record.public())

    def outcome(self, document: dict[str, Any]) -> None:
        self._emit(document)

    def problem(self, text: str) -> None:
        self._emit({"event": "problem", "ok": False, "message": text})


def _body(body: Any) -> RenderableType:
    if body is None:
        return Text("(no body)", style="dim")
    if isinstance(body, dict | list):
        text, lexer = json.dumps(body, indent=2), "json"
    else:
        text, lexer = str(body), "yaml" if ": " in str(body) else "text"
    lines = text.splitlines()
    if len(lines) > SHOWN_LINES:
        text = "\n".join(lines[:SHOWN_LINES]) + f"\n... ({len(lines) - SHOWN_LINES} more lines)"
    return Syntax(text, lexer, theme="ansi_dark", background_color="default", word_wrap=True)


def _status_style(status: int) -> str:
    return "bold green" if status < 300 else "bold yellow" if status < 500 else "bold red"


def _short(text: str | None, keep: int) -> str:
    if text is None:
        return "-"
    return text if len(text) <= keep + 1 else text[:keep] + "…"


def _note(inst: dict[str, Any]) -> str:
    if inst["backup"]:
        return f"backup of {inst['production']}"
    if inst["state"] == "active":
        return "online" if inst["online"] else "offline"
    return "reactivate" if inst["reactivate"] else ""


def state_table(state: dict[str, Any]) -> RenderableType:
    table = Table(
        title="the fleet after this step", title_justify="left", title_style="dim", box=box.SIMPLE_HEAD, expand=False
    )
    for column in ("instance", "state", "deployment", "key", "days left", "note"):
        table.add_column(column, no_wrap=True)
    for name, inst in state["instances"].items():
        table.add_row(
            name,
            Text(inst["state"], style=STATE_STYLES.get(inst["state"], "dim")),
            _short(inst["deployment"], 10),
            _short(inst["key"], 9),
            "-" if inst["days_left"] is None else str(inst["days_left"]) + (" expired" if inst["expired"] else ""),
            _note(inst),
        )
    keys = Text()
    for key in state["keys"]:
        holders = ", ".join(h["instance"] or h["deployment"] for h in key["holders"]) or "nobody"
        keys.append(f"key {key['key']}: {key['used']} of {key['slots']} slots used ({holders})\n", style="dim")
    return Group(table, keys)


class RichOutput:
    def __init__(self, console: Console, errors: Console) -> None:
        self.console = console
        self.errors = errors

    def start(self, demo: Demo, fleet: RemoteFleet, ctx: Context, total: int) -> None:
        table = Table.grid(padding=(0, 2))
        for name, url in fleet.instances.items():
            role = " (production)" if name == ctx.prod else " (backup)" if name == ctx.backup else ""
            table.add_row(Text(name + role, style="bold"), url)
        table.add_row(Text("activation server", style="bold"), fleet.activation_url)
        table.add_row(Text("activation key", style="bold"), ctx.key)
        table.add_row(Text("credentials", style="bold"), "the given API key" if ctx.apikeys else "log in (POST /login)")
        body = Group(Text(demo.description), Text(""), table, Text(f"\n{total} steps", style="dim"))
        self.console.print(Panel(body, title=f"[bold]mockcore demo: {demo.title}[/]", border_style="magenta"))

    def step(self, record: StepRecord) -> None:
        exchange = record.exchange.public()
        request, response = exchange["request"], exchange["response"]
        head = Table.grid(padding=(0, 1))
        head.add_row(
            Text(f"Step {record.index}/{record.total}", style="bold"),
            ProgressBar(total=record.total, completed=record.index, width=30),
        )
        sent = Text.assemble(("→ ", "bold"), (request["method"], "bold yellow"), " ", request["url"])
        for name, value in request["headers"].items():
            sent.append(f"\n  {name}: {value}", style="dim")
        parts: list[RenderableType] = [head, Text(record.step.why, style="italic"), Text(""), sent]
        if request["body"] is not None:
            parts.append(_body(request["body"]))
        got = Text.assemble(
            ("← ", "bold"), (f"{response['status']} {response['reason']}", _status_style(response["status"]))
        )
        parts += [got, _body(response["body"])]
        expected = record.step.expect.summary
        if record.ok:
            parts.append(Text(f"✔ as expected: {expected}", style="green"))
        else:
            parts.append(Text(f"✘ unexpected: {record.problem}", style="bold red"))
        parts.append(state_table(record.state))
        border = "red" if not record.ok else "magenta" if record.step.proof else "blue"
        title = Text(record.step.title, style="bold magenta" if record.step.proof else "bold")
        self.console.print(Panel(Group(*parts), title=title, title_align="left", border_style=border))

    def outcome(self, document: dict[str, Any]) -> None:
        if document["ok"]:
            proved = document["proved"]
            refusal = proved["refusal"] or {}
            text = (
                f"✔ {document['demo']}: all {document['steps']} steps answered as expected.\n"
                f"{proved['new_production']} is the production and scanned a file (data_id "
                f"{proved['scanned_data_id']}); {proved['old_production']} refuses: "
                f"{refusal.get('status')} {refusal.get('err')}"
            )
            self.console.print(Panel(Text(text, style="bold green"), border_style="green"))
        else:
            failed = document.get("failed_step", {})
            text = f"✘ {document['demo']}: step {failed.get('index')} ({failed.get('title')}): {failed.get('problem')}"
            self.console.print(Panel(Text(text, style="bold red"), border_style="red"))

    def problem(self, text: str) -> None:
        self.errors.print(Panel(Text(text), title="[bold red]cannot run the demo[/]", border_style="red"))
