"""What the keys and the command palette do (both declared in screens/keymap.py):
the scenario and measure actions (handed to the open scenario panel or the Measure
view), export, help, and which actions are live where.

A base of ContainetApp (screens/app.py), which provides what is declared below.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from textual import work
from textual.actions import parse
from textual.app import SystemCommand
from textual.screen import Screen

from .dialogs import HelpScreen, ScriptScreen
from .keymap import ACTIONS, AREA_OF, CAPTURE, EVERYWHERE, FAULTS, MEASURE, SCENARIOS, help_sections
from .lab import LabControl

if TYPE_CHECKING:
    from pathlib import Path

    from textual.widgets import TabbedContent

    from .capture import CaptureView
    from .measure import MeasureView
    from .scenario import ScenarioPanel, ScenariosView


class AppActions(LabControl):
    """Actions for the keys (ContainetApp.BINDINGS), the palette and the views' buttons."""

    if TYPE_CHECKING:  # provided by ContainetApp
        export_dir: Path
        _tabs: TabbedContent | None
        _views: dict[str, Any]

        @property
        def tab(self) -> str: ...

        @property
        def measure_view(self) -> MeasureView | None: ...

        @property
        def scenarios_view(self) -> ScenariosView | None: ...

        @property
        def capture_view(self) -> CaptureView | None: ...

        async def view(self, name: str) -> Any: ...

        async def action_tab(self, name: str) -> None: ...

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # called for every binding on each footer refresh: no DOM queries here
        if self._tabs is None:
            return True
        area = AREA_OF.get(action, EVERYWHERE)
        if len(self.screen_stack) > 1 and area != EVERYWHERE:
            return False  # a dialog is open (its own keys win): nothing starts behind it
        if area == SCENARIOS:
            return self.tab == "scenarios"
        if area == FAULTS:
            return self.tab == "faults"
        if area == MEASURE and parameters == ("stop",) and self.tab == "capture":
            return self.capture_view is not None and self.capture_view.running  # x stops a capture too
        if area == MEASURE:
            view = self.measure_view
            if self.tab != "measure" or view is None:
                return False
            running = bool(view.running)
            return running if parameters == ("stop",) else (None if running else True)
        if area == CAPTURE:
            return self.tab == "capture" and self.capture_view is not None
        if action == "lab_up":
            return not self.lab_is_up and self.engine.mode == "lab"
        return True

    # --- scenarios --------------------------------------------------------------------
    def _panel(self) -> ScenarioPanel | None:
        return self.scenarios_view.current if self.scenarios_view is not None else None

    async def action_step(self, what: str, scenario: str | None = None) -> None:
        """next, back, all or undo in the open scenario's panel (or in `scenario`'s)."""
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

    async def action_cycle(self, delta: int) -> None:
        if self.scenarios_view is not None:
            await self.scenarios_view.cycle(delta)

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
    async def action_measure(self, what: str) -> None:
        """ping, iperf, pingall, doctor (the picked pair) or stop, in the Measure tab
        (stop in the Capture tab: the capture)."""
        if what == "stop" and self.tab == "capture" and self.capture_view is not None:
            self.capture_view.stop()
            return
        if self.tab != "measure":
            await self.action_tab("measure")
        view = self.measure_view
        if view is not None:
            view.stop() if what == "stop" else view.start(what)

    # --- faults -----------------------------------------------------------------------
    async def action_fault(self, what: str) -> None:
        """inject, revert, hidden, reveal, impair or clear, in the Faults tab."""
        if self.tab != "faults":
            await self.action_tab("faults")
        view = self._views.get("faults")
        act = getattr(view, "act", None)
        if act is not None:
            act(what)

    # --- capture ----------------------------------------------------------------------
    async def action_capture(self, what: str) -> None:
        """start (where the where box says), stop, or write the pcap, in the Capture tab."""
        if self.tab != "capture":
            await self.action_tab("capture")
        view = self.capture_view
        if view is not None:
            {"start": view.start, "stop": view.stop, "write": view.write, "flows": view.flows}[what]()

    async def action_capture_path(self, src: str | None = None, dst: str | None = None) -> None:
        """Capture a pair's path (both ends and the underlay): the doctor's pair, or the
        Measure tab's picked one."""
        pair: tuple[str, str] | None = (src, dst) if src and dst else None
        if pair is None:
            if self.measure_view is None:
                await self.action_tab("measure")
            view_m = self.measure_view
            pair = view_m._pair() if view_m is not None else None  # it says what to pick when none is
        if pair is None:
            return
        await self.action_tab("capture")
        view = self.capture_view
        if view is not None:
            view.start_path(*pair)

    # --- everywhere -------------------------------------------------------------------
    def action_reload(self) -> None:
        self.reload()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(help_sections()))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for act in ACTIONS:
            if act.palette and not act.per_scenario:
                yield SystemCommand(act.palette_title(), act.help, self._later(act.call))
        for name, mod in self.engine.scenarios.items():
            for act in ACTIONS:
                if act.per_scenario:
                    yield SystemCommand(act.palette_title(name), mod.TITLE, self._later(act.call_for(name)))

    def _later(self, action: str) -> Callable[[], object]:
        """A plain callable for the palette that runs the action on the app's loop, in any tab
        (run_action would ask check_action, which keeps each key to its tab)."""
        _ns, name, params = parse(action)
        method = getattr(self, f"action_{name}")
        return lambda: self.call_later(method, *params)
