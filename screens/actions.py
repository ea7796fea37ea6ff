"""What the keys and the command palette do: the scenario and measure actions
(handed to the open scenario panel or the Measure view), export, help, and
which actions are offered where.

A base of ContainetApp (screens/app.py), which provides what is declared below.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from textual import work
from textual.app import SystemCommand
from textual.screen import Screen

from .dialogs import HelpScreen, ScriptScreen
from .lab import LabControl

if TYPE_CHECKING:
    from pathlib import Path

    from textual.widgets import TabbedContent

    from .measure import MeasureView
    from .scenario import ScenarioPanel, ScenariosView

SCENARIO_ACTIONS = ("next_step", "back_step", "run_all", "undo", "export", "prev_scenario", "next_scenario")
MEASURE_ACTIONS = ("ping", "iperf", "pingall", "doctor", "stop")

#: the help screen (?): every key, by where it acts
HELP = [
    (
        "Everywhere",
        [
            ("1 2 3", "Inventory, Scenarios, Measure"),
            ("?", "this help"),
            ("ctrl+p", "command palette: every action"),
            ("L / D", "lab up / lab down"),
            ("ctrl+r", "re-read everything"),
            ("q", "quit"),
        ],
    ),
    (
        "Scenarios",
        [
            ("n", "apply the next pending step"),
            ("b", "undo the last applied step"),
            ("r", "run all pending steps"),
            ("u", "undo every step"),
            ("e", "export the plan as a bash script"),
            ("[ ]", "previous / next scenario"),
        ],
    ),
    (
        "Measure",
        [
            ("p", "ping between the two picked containers (count × interval)"),
            ("t", "iperf: seconds × streams, UDP, reverse from the settings row"),
            ("a", "pingall: every pair, checked against the scenario"),
            ("d", "doctor: every hop of the path, OK / FAIL / WARN, and its fix"),
            ("x", "stop"),
        ],
    ),
]


class AppActions(LabControl):
    """Actions for the keys (ContainetApp.BINDINGS), the palette and the views' buttons."""

    if TYPE_CHECKING:  # provided by ContainetApp
        export_dir: Path
        _tabs: TabbedContent | None

        @property
        def tab(self) -> str: ...

        @property
        def measure_view(self) -> MeasureView | None: ...

        @property
        def scenarios_view(self) -> ScenariosView | None: ...

        async def action_tab(self, name: str) -> None: ...

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # called for every binding on each footer refresh: no DOM queries here
        if self._tabs is None:
            return True
        if len(self.screen_stack) > 1 and action in (*SCENARIO_ACTIONS, *MEASURE_ACTIONS):
            return False  # a dialog is open (its own keys win): nothing starts behind it
        if action in SCENARIO_ACTIONS:
            return self.tab == "scenarios"
        if action in MEASURE_ACTIONS:
            view = self.measure_view
            if self.tab != "measure" or view is None:
                return False
            running = bool(view.running)
            return running if action == "stop" else (None if running else True)
        if action == "lab_up":
            return not self.lab_is_up and self.engine.mode == "lab"
        return True

    # --- scenarios --------------------------------------------------------------------
    def _panel(self) -> ScenarioPanel | None:
        return self.scenarios_view.current if self.scenarios_view is not None else None

    async def action_next_step(self) -> None:
        await self._step("next")

    async def action_back_step(self) -> None:
        await self._step("back")

    async def action_run_all(self) -> None:
        await self._step("all")

    async def action_undo(self) -> None:
        await self._step("undo")

    async def _step(self, what: str, scenario: str | None = None) -> None:
        if scenario:
            await self.action_tab("scenarios")
        view = self.scenarios_view
        if view is None:
            return
        if scenario:
            await view.select(scenario)
        panel = view.current
        if panel is not None:
            panel.load()
            if panel.steps:
                panel.run_step_action(what)
            else:
                self.call_later(self._step_when_loaded, what, panel, 50)

    def _step_when_loaded(self, what: str, panel: ScenarioPanel, tries: int) -> None:
        if panel.steps:
            panel.run_step_action(what)
        elif tries > 0:
            self.set_timer(0.1, lambda: self._step_when_loaded(what, panel, tries - 1))

    async def action_prev_scenario(self) -> None:
        if self.scenarios_view is not None:
            await self.scenarios_view.cycle(-1)

    async def action_next_scenario(self) -> None:
        if self.scenarios_view is not None:
            await self.scenarios_view.cycle(1)

    def action_export(self, scenario: str | None = None) -> None:
        panel = self._panel()
        name = scenario or (panel.scenario if panel else None)
        if name:
            self._export(name)

    @work(thread=True, group="export")
    def _export(self, name: str) -> None:
        try:
            script = self.engine.export(name, "bash", plain=True)
            path = self.export_dir / f"containet-{name}.sh"
            path.write_text(script + "\n")
            os.chmod(path, 0o755)
        except Exception as exc:  # noqa: BLE001
            self.call_from_thread(self.notify, str(exc), title="export failed", severity="error")
            return
        self.call_from_thread(self.notify, f"saved {path}", title=f"{name} exported")
        self.call_from_thread(self.push_screen, ScriptScreen(f"{name} → {path}", script))

    # --- measure ----------------------------------------------------------------------
    async def action_ping(self) -> None:
        await self._measure("ping")

    async def action_iperf(self) -> None:
        await self._measure("iperf")

    async def action_pingall(self) -> None:
        await self._measure("pingall")

    async def action_doctor(self) -> None:
        await self._measure("doctor")

    async def action_stop(self) -> None:
        await self._measure("stop")

    async def _measure(self, what: str) -> None:
        if self.tab != "measure":
            await self.action_tab("measure")
        view = self.measure_view
        if view is not None:
            view.stop() if what == "stop" else view.start(what)

    # --- everywhere -------------------------------------------------------------------
    def action_reload(self) -> None:
        self.reload()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(HELP))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Show inventory", "hosts, bridges, tunnel, containers", self._later(self.action_tab, "inventory")
        )
        yield SystemCommand(
            "Show scenarios", "the experiments, step by step", self._later(self.action_tab, "scenarios")
        )
        yield SystemCommand("Show measure", "ping, iperf, pingall", self._later(self.action_tab, "measure"))
        yield SystemCommand("Lab up", "build the emulated two-host lab", self.action_lab_up)
        yield SystemCommand("Lab down", "remove the lab and its containers", self.action_lab_down)
        yield SystemCommand("Re-read everything", "a full snapshot now", self.action_reload)
        yield SystemCommand("Help", "keys and what they do", self.action_help)
        for name, mod in self.engine.scenarios.items():
            for what, verb in (
                ("next", "next step"),
                ("back", "back one step"),
                ("all", "run all"),
                ("undo", "undo"),
            ):
                yield SystemCommand(f"{name}: {verb}", mod.TITLE, self._later(self._step, what, name))
            yield SystemCommand(f"{name}: export script", mod.TITLE, lambda n=name: self.action_export(n))
        for what, text in (
            ("ping", "ping the picked pair"),
            ("iperf", "iperf the picked pair"),
            ("pingall", "every pair"),
            ("doctor", "check the picked pair's path hop by hop"),
            ("stop", "stop the running measurement"),
        ):
            yield SystemCommand(f"Measure: {what}", text, self._later(self._measure, what))

    def _later(self, fn: Callable[..., object], *args: object) -> Callable[[], object]:
        """A plain callable for the palette that runs fn(*args) (async or not) on the app's loop."""
        return lambda: self.call_later(fn, *args)
