"""Scenarios: a panel per scenario with its steps, their state, why and command."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widget import AwaitMount
from textual.widgets import Button, DataTable, Label, ProgressBar, Static, TabbedContent, TabPane

from workbench.api import EngineAPI
from workbench.steps import Step, StepEvent

from .messages import StepUpdate

STATE_STYLE = {
    "pending": "dim",
    "running": "bold yellow",
    "applied": "green",
    "verified": "bold green",
    "failed": "bold red",
    "rolled back": "red",
    "undoing": "yellow",
    "undone": "dim",
}
EVENT_STATE = {
    "running": "running",
    "applied": "applied",
    "skipped": "verified",
    "failed": "failed",
    "undoing": "undoing",
    "undone": "pending",
    "rolled-back": "rolled back",
}
MARK = {"verified": "✔", "applied": "✓", "failed": "✗", "running": "▶", "rolled back": "↶", "undoing": "↶"}


def state_cell(state: str) -> Text:
    return Text(f"{MARK.get(state, '·')} {state}", STATE_STYLE.get(state, ""))


class ScenarioPanel(Vertical):
    """One scenario's plan. All engine calls run in thread workers."""

    def __init__(self, engine: EngineAPI, name: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.engine = engine
        self.scenario = name
        module = engine.scenarios[name]
        self.heading = module.TITLE
        self.summary = module.SUMMARY
        self.steps: list[Step] = []
        self.states: list[str] = []
        self.messages: dict[int, str] = {}
        self.seconds: dict[int, float] = {}
        self.commands: list[list[str]] = []
        self.started: dict[int, float] = {}
        self.busy = ""
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Label(Text.assemble((self.heading, "bold"), ": ", self.summary), classes="summary")
        with Horizontal(classes="buttons"):
            yield Button("Next step (n)", id="next", variant="primary")
            yield Button("Back (b)", id="back")
            yield Button("Run all (r)", id="all", variant="success")
            yield Button("Undo (u)", id="undo", variant="warning")
            yield Button("Export (e)", id="export")
        with Horizontal(classes="progress-row"):
            yield ProgressBar(total=1, show_eta=False, id="progress")
            yield Label("", id="status")
        table: DataTable[Any] = DataTable(cursor_type="row", zebra_stripes=True, id="steps")
        yield table
        with VerticalScroll(id="detail-box"):
            yield Static("", id="detail")

    def on_mount(self) -> None:
        self._columns(self.query_one("#steps", DataTable), [], [])
        self.set_interval(0.2, self._tick)

    @staticmethod
    def _columns(table: DataTable[Any], titles: list[str], wheres: list[str]) -> None:
        """Every column with its width given: an auto-width column is sized only when the
        table next goes idle, so the first frames after the rows arrive would cut the
        titles to the header's width ("step": "linu", "dock", "wire")."""
        table.clear(columns=True)
        table.add_column("#", key="n", width=3)
        table.add_column("state", key="state", width=13)
        table.add_column("host", key="host", width=max([7, *(len(w) for w in wheres)]))
        table.add_column("step", key="title", width=max([len("step"), *(len(t) for t in titles)]))
        table.add_column("time", key="time", width=7)

    # --- loading ------------------------------------------------------------
    def load(self) -> None:
        if not self.loaded:
            self.loaded = True
            self._load()

    @work(thread=True, group="scenario-load")
    def _load(self) -> None:
        plan = self.engine.plan(self.scenario)
        try:
            exported = json.loads(self.engine.export(self.scenario, "json", plain=True))
            commands = [s["commands"] for s in exported["steps"]]
        except Exception:  # noqa: BLE001 - the plan still shows without its commands
            commands = [[c.text for c in s.commands] for s in plan.steps]
        status = self._read_status(len(plan.steps))
        self.app.call_from_thread(self._loaded, list(plan.steps), commands, status)

    def _read_status(self, count: int) -> list[bool] | None:
        try:
            return list(self.engine.status(self.scenario))
        except Exception:  # noqa: BLE001 - lab down: everything pending
            return None

    def _loaded(self, steps: list[Step], commands: list[list[str]], status: list[bool] | None) -> None:
        self.steps = steps
        self.commands = commands
        self.states = ["pending"] * len(steps)
        table = self.query_one("#steps", DataTable)
        self._columns(table, [step.title for step in steps], [step.where for step in steps])
        for i, step in enumerate(steps):
            table.add_row(str(i + 1), state_cell("pending"), step.where, step.title, "", key=str(i))
        self._verified(status)
        self._show_detail(0)

    def _verified(self, status: list[bool] | None) -> None:
        """Merge what verify() says into the states (keeps failure marks)."""
        if status is not None:
            for i, ok in enumerate(status[: len(self.states)]):
                if ok:
                    self.states[i] = "verified"
                elif self.states[i] not in ("failed", "rolled back"):
                    self.states[i] = "pending"
        for i in range(len(self.states)):
            self._row(i)
        self._progress()

    # --- drawing --------------------------------------------------------------
    def _row(self, i: int) -> None:
        table = self.query_one("#steps", DataTable)
        table.update_cell(str(i), "state", state_cell(self.states[i]))
        secs = self.seconds.get(i)
        table.update_cell(str(i), "time", f"{secs:.1f}s" if secs is not None else "")

    def _progress(self) -> None:
        bar = self.query_one("#progress", ProgressBar)
        bar.update(
            total=max(1, len(self.states)), progress=sum(s in ("verified", "applied") for s in self.states)
        )

    def _tick(self) -> None:
        now = time.monotonic()
        for i, t0 in self.started.items():
            self.seconds[i] = now - t0
            self._row(i)

    def _show_detail(self, i: int) -> None:
        if not self.steps or i >= len(self.steps):
            return
        step = self.steps[i]
        text = Text()
        text.append(f"{i + 1}. {step.title}", "bold")
        text.append(f"  on {step.where}\n", "dim")
        text.append(f"{step.why}\n", "italic")
        for cmd in self.commands[i] if i < len(self.commands) else []:
            text.append("$ ", "bold green")
            text.append(f"{cmd}\n", "green")
        if i in self.messages:
            text.append(self.messages[i], "bold red")
        self.query_one("#detail", Static).update(text)

    @on(DataTable.RowHighlighted, "#steps")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show_detail(int(event.row_key.value))

    def set_status(self, text: str, style: str = "") -> None:
        self.query_one("#status", Label).update(Text(text, style))

    # --- actions ----------------------------------------------------------------
    @on(Button.Pressed)
    async def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "export":
            await self.app.run_action("export")
        elif event.button.id:
            self.run_step_action(event.button.id)

    def run_step_action(self, what: str) -> None:
        if self.busy:
            self.app.notify(f"{self.scenario}: {self.busy} is running", severity="warning")
            return
        if not self.steps:
            self.app.notify(f"{self.scenario}: the plan is still loading", severity="warning")
            return
        self.busy = {"next": "next step", "back": "back", "all": "run all", "undo": "undo"}[what]
        for i, s in enumerate(self.states):
            if s in ("failed", "rolled back"):
                self.states[i] = "pending"
                self.messages.pop(i, None)
        self.set_status(f"{self.busy}…", "bold yellow")
        self._set_buttons(disabled=True)
        self._act(what)

    def _set_buttons(self, disabled: bool) -> None:
        for b in self.query(Button):
            if b.id != "export":
                b.disabled = disabled

    @work(thread=True, group="scenario-step")
    def _act(self, what: str) -> None:
        def emit(ev: StepEvent) -> None:
            self.post_message(StepUpdate(self.scenario, ev))

        error = None
        result: int | None = None
        try:
            if what == "next":
                result = self.engine.next_step(self.scenario, on_event=emit)
            elif what == "back":
                result = self.engine.back_step(self.scenario, on_event=emit)
            elif what == "all":
                result = self.engine.apply(self.scenario, on_event=emit)
            else:
                result = self.engine.undo(self.scenario, on_event=emit)
        except Exception as exc:  # noqa: BLE001 - shown to the user, the UI keeps running
            error = str(exc)
        status = self._read_status(len(self.steps))
        self.app.call_from_thread(self._acted, what, result, error, status)

    def on_step_update(self, message: StepUpdate) -> None:
        message.stop()
        ev = message.event
        i = ev.index
        if i >= len(self.states):
            return
        state = EVENT_STATE.get(ev.state, ev.state)
        if not (state == "rolled back" and self.states[i] == "failed"):
            self.states[i] = state  # the failed step keeps its mark after its rollback
        if state == "running":
            self.started[i] = time.monotonic()
            self.set_status(f"step {i + 1}: {ev.step.title}…", "bold yellow")
            table = self.query_one("#steps", DataTable)
            table.move_cursor(row=i)
        else:
            t0 = self.started.pop(i, None)
            if ev.seconds:
                self.seconds[i] = ev.seconds
            elif t0 is not None:
                self.seconds[i] = time.monotonic() - t0
        if ev.state == "failed":
            self.messages[i] = f"✗ failed: {ev.message}"
            self._show_detail(i)
        elif ev.state == "rolled-back":
            prior = self.messages.get(i, "")
            self.messages[i] = (prior + "\n" if prior else "") + "↶ rolled back after a failure"
        self._row(i)
        self._progress()

    def _acted(self, what: str, result: int | None, error: str | None, status: list[bool] | None) -> None:
        self.busy = ""
        self.started.clear()
        self._set_buttons(disabled=False)
        self._verified(status)
        if error:
            rolled = sum(s == "rolled back" for s in self.states)
            note = f" — rolled back {rolled} step(s)" if rolled else ""
            self.set_status(f"✗ {error}{note}", "bold red")
            self.app.notify(error, title=f"{self.scenario}: {what} failed", severity="error", timeout=8)
            failed = next((i for i, s in enumerate(self.states) if s == "failed"), None)
            if failed is not None:
                self._show_detail(failed)
            return
        if what == "next":
            msg = "all steps applied" if result is None else f"applied step {result + 1}"
        elif what == "back":
            msg = "nothing to undo" if result is None else f"undid step {result + 1}"
        elif what == "all":
            msg = f"applied {result} step(s)" if result else "already applied"
        else:
            msg = f"undid {result} step(s)" if result else "nothing was applied"
        done = sum(s == "verified" for s in self.states)
        self.set_status(f"✓ {msg} · {done}/{len(self.states)} verified", "bold green")

    def refresh_status(self) -> None:
        if self.loaded and not self.busy and self.steps:
            self._refresh_status()

    @work(thread=True, group="scenario-load", exclusive=True)
    def _refresh_status(self) -> None:
        status = self._read_status(len(self.steps))
        self.app.call_from_thread(self._verified, status)


class ScenariosView(Vertical):
    """A tab per scenario; a scenario's panel is built when its tab is first opened."""

    def __init__(self, engine: EngineAPI, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.engine = engine
        self.panels: dict[str, ScenarioPanel] = {}
        self._mounting: dict[str, AwaitMount] = {}

    def compose(self) -> ComposeResult:
        names = list(self.engine.scenarios)
        with TabbedContent(id="scenario-tabs"):
            for n, name in enumerate(names):
                if n == 0:  # the tab that shows first
                    self.panels[name] = ScenarioPanel(self.engine, name, id=f"panel-{name}")
                    with TabPane(name, id=f"sc-{name}"):
                        yield self.panels[name]
                else:
                    yield TabPane(name, id=f"sc-{name}")

    @property
    def current(self) -> ScenarioPanel | None:
        tabs = self.query_one("#scenario-tabs", TabbedContent)
        if not tabs.active:
            return None
        return self.panels.get(tabs.active.removeprefix("sc-"))

    async def panel(self, name: str) -> ScenarioPanel:
        """The scenario's panel, mounted (on first use) before it is returned."""
        if name not in self.panels:
            self.panels[name] = ScenarioPanel(self.engine, name, id=f"panel-{name}")
            self._mounting[name] = self.query_one(f"#sc-{name}", TabPane).mount(self.panels[name])
        if name in self._mounting:
            await self._mounting[name]
        return self.panels[name]

    async def select(self, name: str) -> None:
        self.query_one("#scenario-tabs", TabbedContent).active = f"sc-{name}"
        (await self.panel(name)).load()

    async def cycle(self, delta: int) -> None:
        names = list(self.engine.scenarios)
        panel = self.current
        at = names.index(panel.scenario) if panel else 0
        await self.select(names[(at + delta) % len(names)])

    @on(TabbedContent.TabActivated, "#scenario-tabs")
    async def _activated(self, event: TabbedContent.TabActivated) -> None:
        event.stop()
        name = (event.pane.id or "").removeprefix("sc-")
        if name in self.engine.scenarios:
            (await self.panel(name)).load()
