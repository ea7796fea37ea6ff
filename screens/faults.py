"""The Faults tab: break it on purpose, and let the doctor explain.

The fault catalogue (name, what it does, where the doctor finds it, the command
that causes it), inject / revert by key or button, a hidden random fault for a
"spot the bug" game (revealed on request), and a link's impairment, edited on the
link picked in the selector: delay, jitter, loss, duplicate, reorder, rate.
Every engine call runs in a worker thread; the result is one line under the table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, DataTable, Input, Label, Select, Static

from workbench.api import EngineAPI
from workbench.impair.spec import FLAGS

UNITS = {"delay": "ms", "jitter": "ms", "loss": "%", "duplicate": "%", "reorder": "%", "rate": "Mbit/s"}


class FaultsView(Vertical):
    DEFAULT_CSS = """
    FaultsView { height: 1fr; }
    FaultsView .title { text-style: bold; margin: 1 0 0 1; }
    FaultsView #fault-table { height: 12; }
    FaultsView #fault-detail { height: 3; margin: 0 1; color: $text-muted; }
    FaultsView #fault-status { height: 2; margin: 0 1; }
    FaultsView #impair-row { height: 3; }
    FaultsView #impair-row Input { width: 15; }
    FaultsView #impair-target { width: 20; }
    FaultsView #fault-buttons { height: 3; }
    FaultsView #impair-state { height: auto; margin: 0 1; }
    """

    def __init__(self, engine: EngineAPI, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.engine = engine
        self.faults = list(engine.fault_catalogue())
        self.busy = False
        self.last = ""  # the last result line (tests read it)

    def compose(self) -> ComposeResult:
        yield Label("Faults: i inject, v revert all, h hidden random fault, y reveal", classes="title")
        yield DataTable(id="fault-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="fault-detail")
        with Horizontal(id="fault-buttons"):
            yield Button("Inject (i)", id="inject", variant="warning")
            yield Button("Revert all (v)", id="revert", variant="success")
            yield Button("Hidden fault (h)", id="hidden")
            yield Button("Reveal (y)", id="reveal")
        yield Static("", id="fault-status")
        yield Label("Impair a link: m set, c clear (empty: unchanged, 0: remove)", classes="title")
        with Horizontal(id="impair-row"):
            yield Select[str]([], id="impair-target", prompt="link")
            for flag in FLAGS:
                yield Input(placeholder=f"{flag} {UNITS[flag]}", id=f"imp-{flag}")
            yield Button("Set (m)", id="impair-set", variant="warning")
            yield Button("Clear (c)", id="impair-clear")
        yield Static("", id="impair-state")

    def on_mount(self) -> None:
        table = self.query_one("#fault-table", DataTable)
        for column in ("fault", "state", "the doctor names", "what it does"):
            table.add_column(column, key=column, width=8 if column == "state" else None)
        for f in self.faults:
            table.add_row(f.name, "", f.doctor, f.summary, key=f.name)
        self._detail()
        table.focus()  # up/down pick a fault at once
        self.refresh_state()

    # --- what is selected ---------------------------------------------------------
    @property
    def selected(self) -> str | None:
        table = self.query_one("#fault-table", DataTable)
        if not self.faults:
            return None
        return self.faults[min(table.cursor_row, len(self.faults) - 1)].name

    @on(DataTable.RowHighlighted, "#fault-table")
    def _detail(self, _event: object = None) -> None:
        name = self.selected
        fault = next((f for f in self.faults if f.name == name), None)
        text = f"on: {fault.target}\n$ {fault.command}" if fault else ""
        self.query_one("#fault-detail", Static).update(Text(text))

    def show_targets(self, names: list[str]) -> None:
        select = self.query_one("#impair-target", Select)
        current = select.value
        select.set_options([(n, n) for n in names])
        if isinstance(current, str) and current in names:
            select.value = current

    # --- actions ------------------------------------------------------------------
    def act(self, what: str) -> None:
        """inject, revert, hidden, reveal, impair or clear (the keys and the buttons)."""
        name = self.selected
        calls: dict[str, Callable[[], str]] = {
            "inject": lambda: self.engine.fault_inject(name),
            "revert": lambda: "\n".join(self.engine.fault_revert()) or "no fault to revert",
            "hidden": lambda: self.engine.fault_inject(None, hidden=True),
            "reveal": self.engine.fault_reveal,
            "impair": self._impair,
            "clear": self._clear,
        }
        if what in calls and not self.busy:
            self.busy = True
            self._run(what, calls[what])

    def _target(self) -> str:
        value = self.query_one("#impair-target", Select).value
        if not isinstance(value, str):
            raise ValueError("pick a link first (a container or a tunnel)")
        return value

    def _impair(self) -> str:
        target = self._target()
        changes: dict[str, float | None] = {}
        for flag in FLAGS:
            text = self.query_one(f"#imp-{flag}", Input).value.strip()
            try:
                changes[flag] = float(text) if text else None
            except ValueError:
                raise ValueError(f"{flag}: {text!r} is not a number") from None
        state = self.engine.netem_set(target, **changes)
        return state.describe()

    def _clear(self) -> str:
        return "\n".join(self.engine.netem_clear(self._target())) or "no impairment on that link"

    @work(thread=True, group="faults", exclusive=True)
    def _run(self, what: str, call: Callable[[], str]) -> None:
        try:
            line, ok = call(), True
        except Exception as exc:  # noqa: BLE001 - bad input and the lab's errors: shown as they are
            line, ok = str(exc), False
        self.app.call_from_thread(self._done, what, line, ok)

    def _done(self, what: str, line: str, ok: bool) -> None:
        self.busy = False
        self.last = line
        self.query_one("#fault-status", Static).update(
            Text.assemble((f"{what}: ", "bold green" if ok else "bold red"), line)
        )
        self.refresh_state()

    @work(thread=True, group="faults-state", exclusive=True)
    def refresh_state(self) -> None:
        try:
            active = self.engine.faults_active()
            backend, states = self.engine.netem_show()
            snap = self.engine.snapshot()
        except Exception as exc:  # noqa: BLE001 - the lab is down: say so
            self.app.call_from_thread(self._show_state, [], f"({exc})", [], [])
            return
        links = [c.name for c in snap.containers if c.host] + [
            f"{h.name}:{p.name}" for h in snap.hosts for p in h.tunnels
        ]
        self.app.call_from_thread(self._show_state, active, backend, [s.describe() for s in states], links)

    def _show_state(self, active: list[str], backend: str, impaired: list[str], links: list[str]) -> None:
        table = self.query_one("#fault-table", DataTable)
        hidden = any("hidden" in a for a in active)
        for f in self.faults:
            shown = "INJECTED" if any(a.startswith(f"{f.name}:") or a == f.name for a in active) else ""
            table.update_cell(f.name, "state", shown)
        lines = [f"backend: {backend}"] + (impaired or ["no impairment in force"])
        if hidden:
            lines.append("a hidden fault is injected: find it with the doctor (Measure tab), y reveals it")
        self.query_one("#impair-state", Static).update(Text("\n".join(lines)))
        if links:
            self.show_targets(links)

    @on(Button.Pressed)
    def _button(self, event: Button.Pressed) -> None:
        ids = {"impair-set": "impair", "impair-clear": "clear"}
        what = ids.get(event.button.id or "", event.button.id or "")
        self.act(what)
