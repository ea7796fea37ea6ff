"""`containet-tui`: the Textual face of the workbench.

    make_app(engine)  builds the app around an engine (tests inject a fake one)
    main()            parses --serve/--host/--port/--real and runs it (session.run: how
                      the process ends when its browser tab or terminal closes, or on SIGTERM)

Engine work runs in thread workers; live changes arrive from the engine's
watcher as messages, are coalesced, and only the affected part is re-read.
The app is typed against workbench.api.EngineAPI: the real Engine or the test fake.

ContainetApp (here: layout, tabs, live inventory) derives from AppActions
(actions.py: what the keys, the palette and help do), which derives from
LabControl (lab.py: the top bar, Lab up / Lab down), a Textual App.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.timer import Timer
from textual.widget import AwaitMount, Widget
from textual.widgets import Footer, Label, TabbedContent, TabPane

from workbench.api import EngineAPI, LiveWatcher
from workbench.inventory.model import Snapshot
from workbench.inventory.watch import Change, Dirty, SourceState, dirty

from .actions import AppActions
from .inventory import InventoryView
from .keymap import bindings
from .messages import Changed, SnapshotReady, SourceChanged

if TYPE_CHECKING:  # built on first open (start-up time): imported there
    from workbench.capture.rates import RateTable

    from .capture import CaptureView
    from .measure import MeasureView
    from .scenario import ScenariosView

#: a burst of changes within this window is re-collected once
COALESCE = 0.1
#: how long the app waits for its watcher's threads when it ends (they are daemons)
WATCHER_STOP = 1.0


class ContainetApp(AppActions):
    CSS_PATH = "app.tcss"
    TITLE = "containet"
    SUB_TITLE = "container networking workbench"

    BINDINGS = bindings()  # every key, its help and its palette entry: screens/keymap.py

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
        self.rates: RateTable = {}  # per-port rates, live (workbench.capture.rates)
        self.rate_watcher: LiveWatcher | None = None

    # --- layout ---------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Label("", id="topbar")
        with TabbedContent(id="tabs", initial="inventory"):
            with TabPane("Inventory [1]", id="inventory"):
                yield InventoryView(id="inventory-view")
            yield TabPane("Scenarios [2]", id="scenarios")
            yield TabPane("Measure [3]", id="measure")
            yield TabPane("Faults [4]", id="faults")
            yield TabPane("Capture [5]", id="capture")
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
            self._start_rates()

    def _start_rates(self) -> None:
        """Per-port rates, sampled once a second on the sampler's own thread."""
        try:
            self.rate_watcher = self.engine.rates(self._from_rates)
            self.rate_watcher.start()
        except Exception:  # noqa: BLE001 - no rates (lab down): the inventory shows none
            self.rate_watcher = None

    def _from_rates(self, table: RateTable) -> None:
        """Called on the sampler's thread (or, for a first table, on the app's own)."""
        if not self.is_running:
            return
        try:
            self.call_from_thread(self._show_rates, table)
        except RuntimeError:  # already on the app's thread
            self._show_rates(table)

    def _show_rates(self, table: RateTable) -> None:
        self.rates = table
        self._show_inventory()

    async def view(self, name: str) -> Widget:
        """The Scenarios or Measure view, built and mounted on first use."""
        if name not in self._views:
            if name == "scenarios":
                from .scenario import ScenariosView

                widget: Widget = ScenariosView(self.engine, id="scenarios-view")
            elif name == "faults":
                from .faults import FaultsView

                widget = FaultsView(self.engine, id="faults-view")
            elif name == "capture":
                from .capture import CaptureView

                widget = CaptureView(self.engine, id="capture-view")
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

    @property
    def capture_view(self) -> CaptureView | None:
        return self._views.get("capture")  # type: ignore[return-value]

    def on_unmount(self) -> None:
        """The app ends: a running measurement is cancelled (its worker then returns
        within a fraction of a second and ends its child processes), the watcher's
        threads are stopped."""
        cancel = getattr(self.measure_view, "cancel", None)  # set while a measurement runs
        if cancel is not None:
            cancel.set()
        if self.watcher is not None:
            self.watcher.stop(timeout=WATCHER_STOP)
            self.watcher = None
        if self.rate_watcher is not None:
            self.rate_watcher.stop(timeout=WATCHER_STOP)
            self.rate_watcher = None

    @property
    def tab(self) -> str:
        return self._tabs.active if self._tabs is not None else "inventory"

    def _show(self) -> None:
        self._topbar()
        self._show_inventory()
        if self.measure_view is not None and self.measure_view.is_attached:
            self.measure_view.show(self.snap)
        if self.capture_view is not None and self.capture_view.is_attached:
            self.capture_view.show(self.snap)

    def _show_inventory(self) -> None:
        if self._inventory is not None and self._inventory.is_attached:
            self._inventory.show(self.snap, self.sources, self.lab_is_up, self.lab_busy, self.rates)

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

    # --- tabs ---------------------------------------------------------------------
    async def action_tab(self, name: str) -> None:
        if self._tabs is not None:
            self._tabs.active = name
            await self._opened(name)

    @on(TabbedContent.TabActivated, "#tabs")
    async def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        await self._opened(event.pane.id or "")
        self.refresh_bindings()

    async def _opened(self, name: str) -> None:
        if name in ("scenarios", "measure", "faults", "capture"):
            await self.view(name)
        if name == "capture" and self.capture_view is not None:
            self.capture_view.show(self.snap)
        if name == "scenarios" and self.scenarios_view is not None:
            panel = self.scenarios_view.current
            if panel:
                panel.load()


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

    from .session import run

    engine = Engine(
        "real" if args.real else "lab", tunrc_dir=args.tunrc_dir, mtu=args.mtu, real_host=args.real_host
    )
    # ends when its browser tab or terminal closes, or on SIGTERM: see session.py
    return run(make_app(engine))


if __name__ == "__main__":
    sys.exit(main())
