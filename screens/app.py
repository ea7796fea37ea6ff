"""`containet-tui`: the Textual face of the workbench.

    make_app(engine)  builds the app around an engine (tests inject a fake one)
    main()            parses --serve/--host/--port/--real and runs it

Engine work runs in thread workers; live changes arrive from the engine's
watcher as messages, are coalesced, and only the affected part is re-read.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import AwaitMount, Widget
from textual.widgets import Button, Footer, Label, TabbedContent, TabPane

from workbench.api import EngineAPI, LiveWatcher
from workbench.inventory.model import Snapshot
from workbench.inventory.watch import Change, Dirty, SourceState, dirty

from .dialogs import HelpScreen, ScriptScreen
from .inventory import InventoryView
from .messages import Changed, LabChanged, SnapshotReady, SourceChanged

if TYPE_CHECKING:  # built on first open (start-up time): imported there
    from .measure import MeasureView
    from .scenario import ScenarioPanel, ScenariosView

#: a burst of changes within this window is re-collected once
COALESCE = 0.1
SCENARIO_ACTIONS = ("next_step", "back_step", "run_all", "undo", "export", "prev_scenario", "next_scenario")
MEASURE_ACTIONS = ("ping", "iperf", "pingall", "doctor", "stop")


class ContainetApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "containet"
    SUB_TITLE = "container networking workbench"

    BINDINGS = [
        Binding("1", "tab('inventory')", "Inventory", show=False),
        Binding("2", "tab('scenarios')", "Scenarios", show=False),
        Binding("3", "tab('measure')", "Measure", show=False),
        Binding("n", "next_step", "Next step"),
        Binding("b", "back_step", "Back"),
        Binding("r", "run_all", "Run all"),
        Binding("u", "undo", "Undo"),
        Binding("e", "export", "Export"),
        Binding("left_square_bracket", "prev_scenario", "Prev scenario", show=False),
        Binding("right_square_bracket", "next_scenario", "Next scenario", show=False),
        Binding("p", "ping", "Ping"),
        Binding("t", "iperf", "Iperf"),
        Binding("a", "pingall", "Pingall"),
        Binding("d", "doctor", "Doctor"),
        Binding("x", "stop", "Stop"),
        Binding("L", "lab_up", "Lab up"),
        Binding("D", "lab_down", "Lab down", show=False),
        Binding("ctrl+r", "reload", "Re-read all", show=False),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self, engine: EngineAPI, *, watch: bool = True, export_dir: str | Path | None = None
    ) -> None:
        super().__init__()
        self.engine = engine
        self.use_watch = watch
        self.export_dir = Path(export_dir) if export_dir else Path.cwd()
        self.snap: Snapshot | None = None
        self.sources: dict[str, bool | None] = {}
        self.lab_busy = ""
        self.watcher: LiveWatcher | None = None
        self._pending: list[Change | SourceState] = []
        self._timer: Timer | None = None
        self._collecting = False
        self._mounted = False
        self._tabs: TabbedContent | None = None
        self._inventory: InventoryView | None = None
        self._bar: Label | None = None
        # the Scenarios and Measure tabs are built when first opened (start-up time)
        self._views: dict[str, Widget] = {}
        self._mounting: dict[str, AwaitMount] = {}
        self.collects = 0  # how many re-collects ran (tests and the benchmark read it)

    # --- layout ---------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Label("", id="topbar")
        with TabbedContent(id="tabs", initial="inventory"):
            with TabPane("Inventory [1]", id="inventory"):
                yield InventoryView(id="inventory-view")
            yield TabPane("Scenarios [2]", id="scenarios")
            yield TabPane("Measure [3]", id="measure")
        yield Footer()

    def on_load(self) -> None:
        self.reload()  # read the lab while the widgets are being composed

    def on_mount(self) -> None:
        self._mounted = True
        self._tabs = self.query_one("#tabs", TabbedContent)
        self._inventory = self.query_one(InventoryView)
        self._bar = self.query_one("#topbar", Label)
        self._topbar()
        if self.snap is not None:
            self._show()
            self.call_after_refresh(self._start_watcher)

    def _start_watcher(self) -> None:
        """After the first inventory is drawn: the sources' imports and connections do not
        delay it, and each source's first "connected" change re-reads what moved in between."""
        if self.use_watch and self.watcher is None and self.is_running:
            self.watcher = self.engine.watch(self._from_watcher, self._from_watcher_state)
            self.watcher.start()

    async def view(self, name: str) -> Widget:
        """The Scenarios or Measure view, built and mounted on first use."""
        if name not in self._views:
            if name == "scenarios":
                from .scenario import ScenariosView

                widget: Widget = ScenariosView(self.engine, id="scenarios-view")
            else:
                from .measure import MeasureView

                widget = MeasureView(self.engine, id="measure-view")
            self._views[name] = widget
            self._mounting[name] = self.query_one(f"#{name}", TabPane).mount(widget)
        await self._mounting[name]
        return self._views[name]

    @property
    def measure_view(self) -> MeasureView | None:
        return self._views.get("measure")  # type: ignore[return-value]

    @property
    def scenarios_view(self) -> ScenariosView | None:
        return self._views.get("scenarios")  # type: ignore[return-value]

    def on_unmount(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    @property
    def lab_is_up(self) -> bool:
        if self.snap is None:
            return True  # do not offer "Lab up" before we know
        return self.engine.mode != "lab" or self.snap.lab.startswith("lab is up")

    @property
    def tab(self) -> str:
        return self._tabs.active if self._tabs is not None else "inventory"

    def _topbar(self) -> None:
        text = Text.assemble((" containet ", "bold reverse"), " ")
        if self.snap is not None:
            text.append(self.snap.lab, "green" if self.lab_is_up else "bold red")
        else:
            text.append("reading the lab…", "dim")
        if self.sources:
            text.append("  ")
            self._dot(text, "docker", self.sources.get("docker"))
            hosts = sorted({k.split(":", 1)[1] for k in self.sources if ":" in k})
            for host in hosts:
                text.append(f"  {host}", "bold")
                self._dot(text, "nl", self.sources.get(f"netlink:{host}"))
                self._dot(text, "ovs", self.sources.get(f"ovs:{host}"))
        if self._bar is not None:  # kept: messages that arrive while quitting find no DOM to query
            self._bar.update(text)

    @staticmethod
    def _dot(text: Text, label: str, ok: bool | None) -> None:
        style = "green" if ok else "bold red" if ok is False else "dim"
        text.append(f" {label}{'●' if ok else '○'}" if ok is not False else f" {label}✗", style)

    def _show(self) -> None:
        self._topbar()
        self._show_inventory()
        if self.measure_view is not None and self.measure_view.is_attached:
            self.measure_view.show(self.snap)

    def _show_inventory(self) -> None:
        if self._inventory is not None and self._inventory.is_attached:
            self._inventory.show(self.snap, self.sources, self.lab_is_up, self.lab_busy)

    # --- live inventory ---------------------------------------------------------
    def _from_watcher(self, change: Change) -> None:
        """Called on a watcher thread."""
        self.post_message(Changed(change))

    def _from_watcher_state(self, state: SourceState) -> None:
        self.post_message(SourceChanged(state))

    def on_changed(self, message: Changed) -> None:
        self._queue(message.change)

    def on_source_changed(self, message: SourceChanged) -> None:
        st = message.state
        was = self.sources.get(st.key)
        self.sources[st.key] = st.connected
        if was is not None and was != st.connected:
            name = st.key.replace(":", " on ")
            if st.connected:
                self.notify(f"{name} is back", title="reconnected")
            else:
                self.notify(f"{name}: {st.detail}", title="disconnected", severity="warning")
        if was is not None:
            self._queue(st)  # gone or back: re-read what it covers (first connects add nothing)
        self._topbar()
        self._show_inventory()

    def _queue(self, item: Change | SourceState) -> None:
        self._pending.append(item)
        if self._timer is None:
            self._timer = self.set_timer(COALESCE, self._flush_changes)

    def _flush_changes(self) -> None:
        self._timer = None
        if self._collecting or self.snap is None:
            return  # picked up when the running collect (or the first snapshot) lands
        what = dirty(self._pending)
        self._pending.clear()
        if what:
            self._collecting = True
            self._collect(what)

    @work(thread=True, group="collect")
    def _collect(self, what: Dirty) -> None:
        assert self.snap is not None
        try:
            snap = self.engine.refresh(self.snap, what)
        except Exception as exc:  # noqa: BLE001 - keep the last good inventory
            self.call_from_thread(self.notify, str(exc), title="inventory", severity="error")
            snap = self.snap
        self.post_message(SnapshotReady(snap))

    def reload(self) -> None:
        """Read everything again (start, lab up/down, ctrl+r)."""
        self._collecting = True
        self._full()

    @work(thread=True, group="collect")
    def _full(self) -> None:
        try:
            snap = self.engine.snapshot()
        except Exception as exc:  # noqa: BLE001
            self.call_from_thread(self.notify, str(exc), title="inventory", severity="error")
            snap = self.snap or Snapshot(mode="lab", lab=f"cannot read the lab: {exc}")
        self.post_message(SnapshotReady(snap, full=True))

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.snap = message.snapshot
        self.collects += 1
        self._collecting = False
        if not self._mounted:
            return  # on_mount draws it
        self._show()
        if self.watcher is None:
            self.call_after_refresh(self._start_watcher)
        if self._pending and self._timer is None:
            self._timer = self.set_timer(COALESCE, self._flush_changes)
        if message.full and self.scenarios_view is not None:
            from .scenario import ScenarioPanel  # loaded already: the view is built

            for panel in self.query(ScenarioPanel):
                panel.refresh_status()
        self.refresh_bindings()

    def on_lab_changed(self, _message: LabChanged) -> None:
        self.reload()

    # --- lab --------------------------------------------------------------------
    @on(Button.Pressed, "#lab-up")
    def _lab_button(self) -> None:
        self.action_lab_up()

    def action_lab_up(self) -> None:
        if self.lab_busy:
            return
        self.lab_busy = "bringing the lab up…"
        self._show()
        self._lab("up")

    def action_lab_down(self) -> None:
        if self.lab_busy:
            return
        self.lab_busy = "taking the lab down…"
        self._show()
        self._lab("down")

    @work(thread=True, group="lab", exclusive=True)
    def _lab(self, what: str) -> None:
        def progress(msg: str) -> None:
            self.call_from_thread(self._lab_progress, msg)

        error = None
        try:
            if what == "up":
                self.engine.lab_up(progress=progress)
            else:
                self.engine.lab_down(progress=progress)
        except Exception as exc:  # noqa: BLE001 - shown, the app keeps running
            error = str(exc)
        self.call_from_thread(self._lab_done, what, error)

    def _lab_progress(self, msg: str) -> None:
        self.lab_busy = f"lab: {msg}"
        self._show_inventory()

    def _lab_done(self, what: str, error: str | None) -> None:
        self.lab_busy = ""
        if error:
            self.notify(error, title=f"lab {what} failed", severity="error", timeout=10)
        else:
            self.notify(f"lab is {what}", title="lab")
        self.post_message(LabChanged())

    # --- tabs and actions ---------------------------------------------------------
    async def action_tab(self, name: str) -> None:
        if self._tabs is not None:
            self._tabs.active = name
            await self._opened(name)

    @on(TabbedContent.TabActivated, "#tabs")
    async def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        await self._opened(event.pane.id or "")
        self.refresh_bindings()

    async def _opened(self, name: str) -> None:
        if name in ("scenarios", "measure"):
            await self.view(name)
        if name == "scenarios" and self.scenarios_view is not None:
            panel = self.scenarios_view.current
            if panel:
                panel.load()

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

    def action_reload(self) -> None:
        self.reload()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        sections = [
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
        self.push_screen(HelpScreen(sections))

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

    async def _measure(self, what: str) -> None:
        if self.tab != "measure":
            await self.action_tab("measure")
        view = self.measure_view
        if view is not None:
            view.stop() if what == "stop" else view.start(what)


def make_app(engine: EngineAPI, *, watch: bool = True, export_dir: str | Path | None = None) -> ContainetApp:
    """The app around an engine: a real Engine, or a fake one in tests."""
    return ContainetApp(engine, watch=watch, export_dir=export_dir)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="containet-tui", description="Container networking workbench (TUI).")
    p.add_argument("--serve", action="store_true", help="serve the app to a browser with textual-serve")
    p.add_argument("--host", default="127.0.0.1", help="--serve: address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="--serve: port (default 8000)")
    p.add_argument("--real", action="store_true", help="use this machine's OVS and docker (the seed's VMs)")
    p.add_argument("--real-host", default="host1", help="in real mode: which host this machine is")
    p.add_argument("--tunrc-dir", help="directory with <host>_tunrc files (default: the seed's)")
    p.add_argument("--mtu", type=int, help="container MTU (default: fit the tunnel)")
    return p


def serve_command(args: argparse.Namespace) -> str:
    """The command textual-serve runs per browser session (quoted: it goes through a shell)."""
    argv = [sys.executable, "-m", "screens.app"]
    if args.real:
        argv += ["--real", "--real-host", args.real_host]
    if args.tunrc_dir:
        argv += ["--tunrc-dir", args.tunrc_dir]
    if args.mtu:
        argv += ["--mtu", str(args.mtu)]
    return shlex.join(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.serve:
        from textual_serve.server import Server

        server = Server(serve_command(args), host=args.host, port=args.port, title="containet")
        server.serve()
        return 0
    from workbench.engine import Engine

    engine = Engine(
        "real" if args.real else "lab", tunrc_dir=args.tunrc_dir, mtu=args.mtu, real_host=args.real_host
    )
    make_app(engine).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
