"""Modal screens: help, exported script, what to do with a pair of the pingall matrix."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

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


class PairScreen(ModalScreen[str | None]):
    """A pair picked in the pingall matrix: ping, iperf or doctor it (dismisses with
    "ping", "iperf", "doctor", or None)."""

    BINDINGS = [
        Binding("p", "pick('ping')", "Ping"),
        Binding("t", "pick('iperf')", "Iperf"),
        Binding("d", "pick('doctor')", "Doctor"),
        Binding("escape,q", "pick('')", "Close"),
    ]

    def __init__(self, src: str, dst: str, detail: Text) -> None:
        super().__init__()
        self.src = src
        self.dst = dst
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(id="pair-box"):
            yield Label(Text(f"{self.src} → {self.dst}", "bold"))
            yield Label(self.detail, classes="about")
            with Horizontal(classes="buttons"):
                yield Button("Ping (p)", id="pair-ping", variant="primary")
                yield Button("Iperf (t)", id="pair-iperf", variant="success")
                yield Button("Doctor (d)", id="pair-doctor", variant="warning")
                yield Button("Cancel (esc)", id="pair-cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_pick((event.button.id or "").removeprefix("pair-").replace("cancel", ""))

    def action_pick(self, what: str) -> None:
        self.dismiss(what or None)
