"""Modal screens: help, exported script."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

ABOUT = (
    "containet builds container networks step by step on two emulated hosts: docker containers "
    "on a linux bridge or Open vSwitch, VLAN tags, and a GRE/VXLAN tunnel between the hosts. "
    "The inventory follows docker, netlink and OVS events live."
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for title, rows in self.sections:
            table.add_row(Text(title, "bold underline"), "")
            for key, text in rows:
                table.add_row(key, text)
        with Vertical(id="help-box"):
            yield Label(Text("containet — keys", "bold"))
            with VerticalScroll():
                yield Static(Text(ABOUT, "italic"), classes="about")
                yield Static(table)
            yield Label(Text("Esc or ? closes · Ctrl+P lists every action", "dim"))

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class ScriptScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,e", "dismiss", "Close")]

    def __init__(self, title: str, script: str) -> None:
        super().__init__()
        self.title_text = title
        self.script = script

    def compose(self) -> ComposeResult:
        with Vertical(id="script-box"):
            yield Label(Text(self.title_text, "bold"))
            with VerticalScroll():
                yield Static(Text(self.script, "green"))
            yield Label(Text("Esc closes", "dim"))

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
