"""The Capture tab: pick where (typed, with the inventory's ports as suggestions),
start and stop a capture, a scrolling packet list with a filter box, Enter opens
a frame's X-ray, `w` writes the pcap. A path capture (both ends of a pair and
the underlay, merged in time order) starts from the Measure tab (`C`).

The engine's capture runs on its own threads; this view polls its ring a few
times a second and decodes only the frames it has not shown yet."""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.coordinate import Coordinate
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.timer import Timer
from textual.widgets import Button, DataTable, Input, Label, Static

from workbench.api import EngineAPI, LiveCapture, LivePathCapture
from workbench.capture import CaptureOptions, Frame, PathContext, Record, decode, write_file, xray
from workbench.inventory.model import Snapshot

POLL = 0.3  # seconds between looks at the capture's ring
MAX_ROWS = 1000  # rows kept in the list (the capture's ring keeps its own bound)
SECONDS = 600.0  # a capture started here ends by itself after this long
RING = 8 << 20


class XrayScreen(ModalScreen[None]):
    """One frame's X-ray: its headers, their bytes, what is left of the path MTU."""

    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close")]

    def __init__(self, title: str, text: Text) -> None:
        super().__init__()
        self.title_text = title
        self.body = text

    def compose(self) -> ComposeResult:
        with Vertical(id="script-box"):
            yield Label(Text(self.title_text, "bold"))
            with VerticalScroll():
                yield Static(self.body, id="xray-text")
            yield Label(Text("Esc closes", "dim"))

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)


def xray_text(frame: Frame, context: PathContext) -> Text:
    x = xray(frame, context)
    text = Text()
    for i, line in enumerate(x.lines()):
        if i:
            text.append("\n")
        style = "bold red" if x.too_big and line.strip().startswith("TOO BIG") else ""
        text.append(line, style)
    return text


class FlowsScreen(ModalScreen[None]):
    """A host's OVS bridges: OpenFlow rules and datapath flows with their counters,
    read again every second (on a worker thread)."""

    BINDINGS = [Binding("escape,q,f", "dismiss", "Close")]

    def __init__(self, engine: EngineAPI, host: str) -> None:
        super().__init__()
        self.engine = engine
        self.host = host
        self.reads = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="script-box"):
            yield Label(Text(f"OVS flows on {self.host} (live, every second)", "bold"))
            with VerticalScroll():
                yield Static("reading…", id="flows-text")
            yield Label(Text("Esc closes", "dim"))

    def on_mount(self) -> None:
        self._read()
        self.set_interval(1.0, self._read)

    @work(thread=True, group="flows", exclusive=True)
    def _read(self) -> None:
        try:
            text = "\n\n".join("\n".join(f.lines(width=160)) for f in self.engine.flows(self.host))
        except Exception as exc:  # noqa: BLE001 - shown in place of the flows
            text = f"cannot read the flows: {exc}"
        self.app.call_from_thread(self._show, text)

    def _show(self, text: str) -> None:
        if self.is_attached:
            self.reads += 1
            self.query_one("#flows-text", Static).update(Text(text))

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class CaptureView(Vertical):
    DEFAULT_CSS = """
    CaptureView #cap-controls { height: 3; }
    CaptureView #cap-where { width: 28; }
    CaptureView #cap-filter { width: 1fr; }
    CaptureView #cap-show { width: 22; }
    CaptureView #cap-status { height: 1; padding: 0 1; }
    CaptureView #cap-list { height: 1fr; }
    """

    def __init__(self, engine: EngineAPI, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.engine = engine
        self.capture: LiveCapture | None = None
        self.path: LivePathCapture | None = None
        self.context = PathContext()
        self.contexts: dict[str, PathContext] = {}
        self.label = ""
        self.rows: dict[str, tuple[str, Record, Frame]] = {}  # row key -> (where, record, frame)
        self._seen: set[tuple[str, int]] = set()
        self._first: float | None = None  # the first frame's time: the list's zero
        self._timer: Timer | None = None
        self._status = ""
        self.export_dir = Path.cwd()

    def compose(self) -> ComposeResult:
        with Horizontal(id="cap-controls"):
            yield Input(placeholder="where: h1-a, host1:eth1", id="cap-where", compact=True)
            yield Input(placeholder="capture filter (tcpdump), e.g. icmp", id="cap-filter", compact=True)
            yield Input(placeholder="show only…", id="cap-show", compact=True)
            yield Button("Start (s)", id="cap-start", compact=True, variant="success")
            yield Button("Stop (x)", id="cap-stop", compact=True, variant="error")
            yield Button("pcap (w)", id="cap-write", compact=True)
        yield Label("pick where, then Start: frames appear below; Enter on one: its X-ray", id="cap-status")
        table: DataTable[Text | str] = DataTable(id="cap-list", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        table = self.query_one("#cap-list", DataTable)
        table.add_columns("#", "time", "where", "bytes", "frame")
        export = getattr(self.app, "export_dir", None)
        if export is not None:
            self.export_dir = Path(export)

    # --- what the app asks ---------------------------------------------------------
    @property
    def running(self) -> bool:
        live = self.capture or self.path
        return bool(live is not None and live.running)

    def show(self, snap: Snapshot | None) -> None:
        """The inventory's places as suggestions for `where`."""
        if snap is None:
            return
        places = [c.name for c in snap.containers if c.status == "running"]
        for h in snap.hosts:
            places.append(f"{h.name}:eth1")
            places += [f"{h.name}:{b.name}" for b in h.linux_bridges]
            places += [f"{h.name}:{p.name}" for b in h.ovs_bridges for p in b.ports]
        self.query_one("#cap-where", Input).suggester = SuggestFromList(places, case_sensitive=True)

    def start(self, where: str | None = None) -> None:
        where = (where if where is not None else self.query_one("#cap-where", Input).value).strip()
        if not where:
            self._say("type where to capture first (a container, HOST:IFACE)", "yellow")
            return
        self.query_one("#cap-where", Input).value = where
        self._stop_now()
        self._reset(where)
        self._open(where, self.query_one("#cap-filter", Input).value.strip())

    def start_path(self, src: str, dst: str) -> None:
        self._stop_now()
        self._reset(f"{src} → {dst}")
        self._open_path(src, dst, self.query_one("#cap-filter", Input).value.strip())

    def stop(self) -> None:
        if self.running:
            self._stop()

    def flows(self) -> None:
        """The OVS flows of the host being captured on (or of the where box's host)."""
        host = None
        if self.capture is not None:
            host = self.capture.target.host
        elif self.path is not None:
            host = self.path.targets[0].host
        if host is None:
            where = self.query_one("#cap-where", Input).value.strip()
            host = where.split(":", 1)[0] if ":" in where else None
        if host is None:
            self._say("capture first (or type HOST:... in where): f shows that host's OVS flows", "yellow")
            return
        self.app.push_screen(FlowsScreen(self.engine, host))

    def write(self) -> Path | None:
        """The frames shown (in time order) as a pcap file in the export directory."""
        recs = [rec for _w, rec, _f in self.rows.values()]
        if not recs:
            self._say("nothing to write yet", "yellow")
            return None
        name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in self.label) or "capture"
        path = self.export_dir / f"containet-{name}-{time.strftime('%H%M%S')}.pcap"
        count = write_file(str(path), sorted(recs, key=lambda r: r.time))
        self.app.notify(f"{count} frame(s) written to {path}", title="pcap")
        return path

    # --- workers -------------------------------------------------------------------------
    def _reset(self, label: str) -> None:
        self.label = label
        self.rows.clear()
        self._seen.clear()
        self._first = None
        self.query_one("#cap-list", DataTable).clear()

    @work(thread=True, group="capture", exclusive=True)
    def _open(self, where: str, filt: str) -> None:
        self.app.call_from_thread(self._say, f"starting on {where}…", "yellow")
        try:
            cap = self.engine.open_capture(
                where, CaptureOptions(count=0, seconds=SECONDS, filter=filt, ring_bytes=RING)
            )
        except Exception as exc:  # noqa: BLE001 - shown in the status line
            self.app.call_from_thread(self._say, f"capture failed: {exc}", "bold red")
            return
        self.app.call_from_thread(self._started, cap, None)

    @work(thread=True, group="capture", exclusive=True)
    def _open_path(self, src: str, dst: str, filt: str) -> None:
        self.app.call_from_thread(self._say, f"starting on the path {src} → {dst}…", "yellow")
        try:
            opts = CaptureOptions(count=0, seconds=SECONDS, filter=filt, ring_bytes=RING)
            cap = self.engine.open_path_capture(src, dst, opts)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self._say, f"capture failed: {exc}", "bold red")
            return
        self.app.call_from_thread(self._started, None, cap)

    def _started(self, cap: LiveCapture | None, path: LivePathCapture | None) -> None:
        self.capture, self.path = cap, path
        targets = [cap.target] if cap is not None else (path.targets if path is not None else [])
        self.contexts = {t.label: t.context for t in targets}
        where = ", ".join(self.contexts)
        self._say(f"capturing on {where}: x stops, w writes the pcap, Enter on a frame: its X-ray", "green")
        if self._timer is None:
            self._timer = self.set_interval(POLL, self._poll)
        self._poll()

    def _stop_now(self) -> None:
        live = self.capture or self.path
        if live is not None and live.running:
            live.stop()
        self.capture = self.path = None

    @work(thread=True, group="capture-stop")
    def _stop(self) -> None:
        live = self.capture or self.path
        if live is not None:
            live.stop()
        self.app.call_from_thread(self._poll)

    def on_unmount(self) -> None:
        self._stop_now()

    # --- the list ----------------------------------------------------------------------
    def _records(self) -> list[tuple[str, Record]]:
        if self.capture is not None:
            label = self.capture.target.label
            return [(label, r) for r in self.capture.records()]
        if self.path is not None:
            return self.path.records()
        return []

    def _poll(self) -> None:
        table = self.query_one("#cap-list", DataTable)
        show = self.query_one("#cap-show", Input).value.strip().lower()
        new = [(w, r) for w, r in self._records() if (w, r.index) not in self._seen]
        at_end = table.cursor_row >= table.row_count - 1
        for where, rec in new:
            self._seen.add((where, rec.index))
            frame = decode(rec.data, rec.wire_len, rec.time, rec.index)
            key = f"{where}#{rec.index}"
            self.rows[key] = (where, rec, frame)
            if not show or show in frame.summary.lower() or show in where.lower():
                table.add_row(*self._cells(where, rec, frame), key=key)
        while table.row_count > MAX_ROWS:
            first = table.coordinate_to_cell_key(Coordinate(0, 0)).row_key
            self.rows.pop(str(first.value), None)
            table.remove_row(first)
        if new and at_end and table.row_count:
            table.move_cursor(row=table.row_count - 1)
        live = self.capture or self.path
        if live is not None and not live.running and self._timer is not None:
            self._timer.stop()
            self._timer = None
            self._say(f"stopped: {len(self.rows)} frame(s) from {self.label}; w writes them", "")

    def _t0(self, rec: Record) -> float:
        if self._first is None:
            self._first = rec.time
        return self._first

    def _cells(self, where: str, rec: Record, frame: Frame) -> tuple[str, str, str, str, Text]:
        ctx = self.contexts.get(where, self.context)
        x = xray(frame, ctx)
        summary = Text(frame.summary)
        if x.too_big:
            summary.append("  TOO BIG", "bold red")
        return (
            str(rec.index),
            f"{rec.time - self._t0(rec):10.6f}",  # seconds since the capture's first frame
            where,
            str(rec.wire_len),
            summary,
        )

    @on(Input.Changed, "#cap-show")
    def _refilter(self, event: Input.Changed) -> None:
        table = self.query_one("#cap-list", DataTable)
        table.clear()
        show = event.value.strip().lower()
        for key, (where, rec, frame) in self.rows.items():
            if not show or show in frame.summary.lower() or show in where.lower():
                table.add_row(*self._cells(where, rec, frame), key=key)

    @on(Input.Submitted, "#cap-where")
    @on(Input.Submitted, "#cap-filter")
    def _submitted(self, _event: Input.Submitted) -> None:
        self.start()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cap-start":
            self.start()
        elif event.button.id == "cap-stop":
            self.stop()
        elif event.button.id == "cap-write":
            self.write()

    @on(DataTable.RowSelected, "#cap-list")
    def _selected(self, event: DataTable.RowSelected) -> None:
        found = self.rows.get(str(event.row_key.value))
        if found is None:
            return
        where, _rec, frame = found
        title = f"X-ray: frame {frame.index} on {where}"
        self.app.push_screen(XrayScreen(title, xray_text(frame, self.contexts.get(where, self.context))))

    def _say(self, text: str, style: str) -> None:
        self._status = text
        self.query_one("#cap-status", Label).update(Text(text, style))
