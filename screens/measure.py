"""Measure: ping / iperf between two containers, pingall, the path doctor. Ping and
iperf draw a plot with axes and units while they run (screens/plots.py), pingall a
matrix of every pair filled as the replies arrive (screens/matrix.py), where a picked
pair can be pinged, iperfed or doctored. The history table keeps every run, and Enter
on a row shows its plot, matrix or doctor report again."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, ContentSwitcher, DataTable, Input, Label, Log, Select, Static

from workbench.api import EngineAPI
from workbench.doctor import DoctorReport
from workbench.inventory.model import Snapshot
from workbench.measure.compare import CompareResult, format_compare
from workbench.measure.iperf_data import IperfInterval, IperfResult
from workbench.measure.ping import PingReply, PingResult
from workbench.measure.pingall import PingallResult

from .compare import ComparePathsScreen, compare_summary
from .dialogs import PairScreen
from .matrix import MatrixScreen, PingallGrid, cell_detail, provisional
from .messages import PingallCell, PingallDone
from .plots import MeasurePlot, PlotScreen, Series

PING_COUNT = 10
PING_INTERVAL = 0.2
IPERF_SECONDS = 3.0

Num = TypeVar("Num", int, float)


@dataclass(frozen=True)
class Settings:
    """What the settings row asks for; the engine checks the bounds (BadInput, shown as is)."""

    ping_count: int = PING_COUNT
    ping_interval: float = PING_INTERVAL
    iperf_seconds: float = IPERF_SECONDS
    iperf_parallel: int = 1
    udp: bool = False
    reverse: bool = False

    def ping_title(self) -> str:
        return f"{self.ping_count} × {self.ping_interval:g} s"

    def iperf_title(self) -> str:
        extra = f", {self.iperf_parallel} streams" if self.iperf_parallel != 1 else ""
        extra += ", reverse" if self.reverse else ""
        return f"{self.iperf_seconds:g} s {'UDP' if self.udp else 'TCP'}{extra}"


def parse_settings(fields: dict[str, str], udp: bool, reverse: bool) -> Settings:
    """The settings row's text as numbers; an empty field keeps its default. ValueError names the field."""
    d = Settings()

    def num(key: str, kind: Callable[[str], Num], default: Num, what: str) -> Num:
        text = fields.get(key, "").strip()
        if not text:
            return default
        try:
            return kind(text)
        except ValueError:
            wanted = "an integer" if kind is int else "a number"
            raise ValueError(f"{what}: {text!r} is not {wanted}") from None

    return Settings(
        ping_count=num("ping-count", int, d.ping_count, "ping count"),
        ping_interval=num("ping-interval", float, d.ping_interval, "ping interval"),
        iperf_seconds=num("iperf-seconds", float, d.iperf_seconds, "iperf duration"),
        iperf_parallel=num("iperf-parallel", int, d.iperf_parallel, "iperf streams"),
        udp=udp,
        reverse=reverse,
    )


def fmt_bps(bps: float | None) -> str:
    if bps is None:
        return "-"
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.2f} {unit}"
    return f"{bps:.0f} bit/s"


def fmt_ms(ms: float | None) -> str:
    return "-" if ms is None else f"{ms:.2f}"


def ping_summary(res: PingResult) -> str:
    return (
        f"{res.received}/{res.sent} replies, loss {res.loss_pct:.0f}%, "
        f"rtt min/avg/max {fmt_ms(res.min_ms)}/{fmt_ms(res.avg_ms)}/{fmt_ms(res.max_ms)} ms"
    )


def iperf_summary(res: IperfResult) -> str:
    text = f"{res.protocol.upper()} {fmt_bps(res.received_bps)} received, {fmt_bps(res.sent_bps)} sent"
    if res.retransmits:
        text += f", {res.retransmits} retransmits"
    return text


RUN_BUTTONS = ("ping", "iperf", "pingall", "doctor", "compare")
SETTING_INPUTS = ("ping-count", "ping-interval", "iperf-seconds", "iperf-parallel")


class MeasureView(Vertical):
    """Pick two containers and the settings; Ping, Iperf, Pingall, Doctor; Stop cancels."""

    def __init__(self, engine: EngineAPI, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.engine = engine
        self.cancel: threading.Event | None = None
        self.running = ""
        self.series: Series | None = None  # the plot of the running (or last) ping / iperf
        self._names: tuple[str, ...] = ()
        self.clock = lambda: time.strftime("%H:%M:%S")  # history time stamps (tests pin it)
        self.reports: dict[str, DoctorReport] = {}  # history row key -> the doctor report it shows
        self.plots: dict[str, Series] = {}  # history row key -> the ping / iperf plot it shows
        self.matrices: dict[str, PingallResult] = {}  # history row key -> the pingall it shows
        self.compares: dict[str, CompareResult] = {}  # history row key -> the comparison it shows
        self._vlans: dict[str, int | None] = {}  # the running containers' VLAN tags (exp3)
        self._pingall_names: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        with Horizontal(classes="pick"):
            yield Label("from", classes="field")
            yield Select[str]([], prompt="from", id="src", allow_blank=True, compact=True)
            yield Label(" to", classes="field")
            yield Select[str]([], prompt="to", id="dst", allow_blank=True, compact=True)
        with Horizontal(id="settings"):
            yield Label("ping", classes="field")
            yield self._input("ping-count", str(PING_COUNT), "integer", "ping: how many echo requests", 5)
            yield Label("×", classes="unit")
            yield self._input("ping-interval", f"{PING_INTERVAL:g}", "number", "ping: seconds between", 5)
            yield Label("s │ iperf", classes="unit")
            yield self._input("iperf-seconds", f"{IPERF_SECONDS:g}", "number", "iperf: seconds", 4)
            yield Label("s ×", classes="unit")
            yield self._input("iperf-parallel", "1", "integer", "iperf: parallel streams", 3)
            yield Checkbox("UDP", id="iperf-udp", compact=True, tooltip="iperf: UDP instead of TCP")
            yield Checkbox("reverse", id="iperf-reverse", compact=True, tooltip="iperf: the server sends")
        with Horizontal(classes="buttons"):
            yield Button("Ping (p)", id="ping", variant="primary")
            yield Button("Iperf (t)", id="iperf", variant="success")
            yield Button("Pingall (a)", id="pingall")
            yield Button("Doctor (d)", id="doctor", variant="warning")
            yield Button("Compare (o)", id="compare")
            yield Button("Stop (x)", id="stop", variant="error", disabled=True)
        yield Label("pick two containers, then Ping, Iperf or Doctor", id="live-title")
        with ContentSwitcher(id="live", initial="plot"):
            yield MeasurePlot(hint="ping: RTT over time · iperf: throughput per interval", id="plot")
            yield PingallGrid(id="matrix")
            yield Static("", id="compare-view")
        yield Label("", id="live-stats")
        with Horizontal(id="measure-bottom"):
            yield Log(id="measure-log", max_lines=500)
            table: DataTable[Any] = DataTable(id="history", zebra_stripes=True, cursor_type="row")
            yield table

    @staticmethod
    def _input(wid: str, value: str, kind: str, tip: str, width: int) -> Input:
        box = Input(value, id=wid, type=kind, compact=True, tooltip=tip, select_on_focus=True)  # type: ignore[arg-type]
        box.styles.width = width
        return box

    def settings(self) -> Settings:
        """The settings row as numbers (ValueError: a field is not a number)."""
        fields = {wid: self.query_one(f"#{wid}", Input).value for wid in SETTING_INPUTS}
        udp = self.query_one("#iperf-udp", Checkbox).value
        return parse_settings(fields, udp, self.query_one("#iperf-reverse", Checkbox).value)

    def on_mount(self) -> None:
        table = self.query_one("#history", DataTable)
        # every width given: DataTable sizes an auto-width column on its next idle, and a
        # frame drawn before that stays cached, cut to the header's width, until a cell changes
        table.add_column("at", key="at", width=8)
        table.add_column("test", key="test", width=7)
        table.add_column("path", key="path", width=16)
        table.add_column("result", key="result", width=80)
        self.show(getattr(self.app, "snap", None))  # built on first open: start from what the app has

    # --- containers ---------------------------------------------------------
    def show(self, snap: Snapshot | None) -> None:
        running = [c for c in snap.containers if c.status == "running"] if snap else []
        self._vlans = {c.name: c.vlan for c in running}
        # the engine's pingall order (by host, then name): the grid's rows do not move at its end
        self._pingall_names = tuple(c.name for c in sorted(running, key=lambda c: (c.host, c.name)) if c.ip)
        names = tuple(c.name for c in running)
        if names == self._names:
            return
        self._names = names
        for sid, pick in (("#src", 0), ("#dst", 1)):
            sel = self.query_one(sid, Select)
            old = sel.value
            sel.set_options([(n, n) for n in names])
            if isinstance(old, str) and old in names:
                sel.value = old
            elif len(names) > pick:
                sel.value = names[pick if pick == 0 else len(names) - 1]

    def _pair(self) -> tuple[str, str] | None:
        src = self.query_one("#src", Select).value
        dst = self.query_one("#dst", Select).value
        if not isinstance(src, str) or not isinstance(dst, str):
            self.app.notify("pick two containers first", severity="warning")
            return None
        if src == dst:
            self.app.notify("pick two different containers", severity="warning")
            return None
        return src, dst

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        """Enter ends the edit: the keys (p, t, d ...) act again."""
        event.stop()
        self.app.set_focus(None)

    # --- running --------------------------------------------------------------
    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "stop":
            self.stop()
        elif event.button.id:
            self.start(event.button.id)

    def start(self, what: str) -> None:
        if self.running:
            self.app.notify(f"{self.running} is running: Stop [x] first", severity="warning")
            return
        try:
            opts = self.settings()
        except ValueError as exc:
            self.app.notify(str(exc), title="settings", severity="error")
            return
        pair = None
        if what != "pingall":
            pair = self._pair()
            if pair is None:
                return
        if what == "doctor" and pair:
            self._doctor(*pair)
            return
        if what == "compare" and pair:
            self._ask_paths(pair, opts)
            return
        cancel = self._begin(what)
        if what == "ping" and pair:
            title = f"ping {pair[0]} → {pair[1]}  ({opts.ping_title()})"
            self._plot(Series("ping", title, span=(opts.ping_count - 1) * opts.ping_interval))
            self._ping(pair[0], pair[1], opts, cancel)
        elif what == "iperf" and pair:
            title = f"iperf {pair[0]} → {pair[1]}  ({opts.iperf_title()})"
            self._plot(Series("iperf", title, span=opts.iperf_seconds))
            self._iperf(pair[0], pair[1], opts, cancel)
        else:
            self._title("pingall: every container to every other, against the scenario")
            self.query_one("#measure-log", Log).write_line("pingall")
            grid = self.query_one("#matrix", PingallGrid)
            grid.begin(self._pingall_names, provisional(self._pingall_names, self._vlans))
            self.query_one("#live", ContentSwitcher).current = "matrix"
            grid.table.focus()  # arrows walk the cells at once
            self._pingall(cancel)
        self._stats("")

    def _begin(self, what: str) -> threading.Event:
        """A run starts: Stop is live, the other buttons wait for its end (`_finish`)."""
        self.running = what
        self.cancel = threading.Event()
        self.query_one("#stop", Button).disabled = False
        for bid in RUN_BUTTONS:
            self.query_one(f"#{bid}", Button).disabled = True
        return self.cancel

    def stop(self) -> None:
        if self.cancel is not None:
            self.cancel.set()
            self._stats("stopping…", "yellow")

    def _title(self, text: str) -> None:
        self.query_one("#live-title", Label).update(Text(text, "bold"))

    def _stats(self, text: str, style: str = "") -> None:
        self.query_one("#live-stats", Label).update(Text(text, style))

    def _plot(self, series: Series) -> None:
        """A new run's plot, empty: its points arrive as the run goes."""
        self.series = series
        self.query_one("#live", ContentSwitcher).current = "plot"
        self._title(series.title)
        self.query_one("#measure-log", Log).write_line(series.title)
        self.query_one("#plot", MeasurePlot).show(series)

    def _point(self, x: float, y: float | None) -> None:
        if self.series is not None:
            self.series.add(x, y)
            self.query_one("#plot", MeasurePlot).refresh()

    def _doctor(self, src: str, dst: str) -> None:
        from .doctor import DoctorScreen

        self.app.push_screen(DoctorScreen(self.engine, src, dst), self._doctor_done)

    def _doctor_done(self, report: DoctorReport | None) -> None:
        if report is None:
            return  # closed before it finished, or the run failed (the screen said why)
        bad = report.first_failure
        if bad is None:
            result = Text(f"OK: every hop ({len(report.checks)} checks)", "green")
        else:
            result = Text(f"✗ {bad.hop}: {bad.name}", "red")
        result.append(" (enter: open)", "dim")
        key = self._history("doctor", f"{report.src}→{report.dst}", result)
        self.reports[key] = report

    # --- compare -------------------------------------------------------------------
    def _ask_paths(self, pair: tuple[str, str], opts: Settings) -> None:
        active = self.engine.active()
        applied = active.scenario if active else None
        paths = [(name, mod.TITLE) for name, mod in self.engine.scenarios.items()]

        def picked(names: list[str] | None) -> None:
            if names is None or self.running:
                return
            cancel = self._begin("compare")
            self._title(f"compare {pair[0]} → {pair[1]} over {', '.join(names)}, beside the veth ceiling")
            self.query_one("#measure-log", Log).write_line(
                f"compare {pair[0]} → {pair[1]}: {', '.join(names)}"
            )
            self._stats("")
            self._compare(pair[0], pair[1], names, opts.iperf_seconds, cancel)

        self.app.push_screen(ComparePathsScreen(pair[0], pair[1], paths, applied), picked)

    @work(thread=True, group="measure")
    def _compare(self, src: str, dst: str, paths: list[str], seconds: float, cancel: threading.Event) -> None:
        log = self.query_one("#measure-log", Log)

        def progress(line: str) -> None:
            self.app.call_from_thread(log.write_line, f"  {line}")

        try:
            res = self.engine.compare(
                src, dst, paths=paths, seconds=seconds, progress=progress, cancel=cancel
            )
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self._failed, "compare", f"{src}→{dst}", str(exc))
            return
        self.app.call_from_thread(self._compare_done, res, cancel.is_set())

    def _compare_done(self, result: CompareResult, cancelled: bool) -> None:
        self._show_compare(result)
        key = self._done("compare", f"{result.src}→{result.dst}", compare_summary(result), cancelled)
        self.compares[key] = result

    def _show_compare(self, result: CompareResult) -> None:
        self.query_one("#compare-view", Static).update(Text(format_compare(result)))
        self.query_one("#live", ContentSwitcher).current = "compare-view"

    @on(DataTable.RowSelected, "#history")
    def _reopen(self, event: DataTable.RowSelected) -> None:
        key = str(event.row_key.value)
        when = f"at {self.query_one('#history', DataTable).get_cell(key, 'at')}"
        if key in self.plots:
            self.app.push_screen(PlotScreen(self.plots[key], when))
        if key in self.compares:
            self._show_compare(self.compares[key])
        if key in self.matrices:
            result = self.matrices[key]
            self.app.push_screen(
                MatrixScreen(result, when), lambda pair: self._offer(pair, result) if pair else None
            )
        report = self.reports.get(key)
        if report is not None:
            from .doctor import DoctorScreen

            screen = DoctorScreen(self.engine, report.src, report.dst, report=report)
            self.app.push_screen(screen, lambda new: None if new is report else self._doctor_done(new))

    @work(thread=True, group="measure")
    def _ping(self, src: str, dst: str, opts: Settings, cancel: threading.Event) -> None:
        def reply(r: PingReply) -> None:
            self.app.call_from_thread(self._ping_reply, r, opts.ping_interval)

        try:
            res = self.engine.ping(
                src, dst, count=opts.ping_count, interval=opts.ping_interval, on_reply=reply, cancel=cancel
            )
        except Exception as exc:  # noqa: BLE001 - shown, the UI keeps running
            self.app.call_from_thread(self._failed, "ping", f"{src}→{dst}", str(exc))
            return
        self.app.call_from_thread(self._done, "ping", f"{src}→{dst}", ping_summary(res), cancel.is_set())

    def _ping_reply(self, r: PingReply, interval: float) -> None:
        log = self.query_one("#measure-log", Log)
        log.write_line(f"  seq {r.seq}: " + ("no reply" if r.rtt_ms is None else f"{r.rtt_ms:.3f} ms"))
        self._point((r.seq - 1) * interval, r.rtt_ms)
        got, sent = (self.series.got, len(self.series.ys)) if self.series is not None else ([], 0)
        if got:
            self._stats(
                f"rtt {fmt_ms(got[-1])} ms · min/avg/max {min(got):.2f}/{sum(got) / len(got):.2f}/"
                f"{max(got):.2f} ms · loss {100.0 * (sent - len(got)) / sent:.0f}%"
            )

    @work(thread=True, group="measure")
    def _iperf(self, src: str, dst: str, opts: Settings, cancel: threading.Event) -> None:
        def interval(iv: IperfInterval) -> None:
            self.app.call_from_thread(self._iperf_interval, iv)

        try:
            res = self.engine.iperf(
                src,
                dst,
                seconds=opts.iperf_seconds,
                parallel=opts.iperf_parallel,
                udp=opts.udp,
                reverse=opts.reverse,
                on_interval=interval,
                cancel=cancel,
            )
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self._failed, "iperf", f"{src}→{dst}", str(exc))
            return
        self.app.call_from_thread(self._done, "iperf", f"{src}→{dst}", iperf_summary(res), cancel.is_set())

    def _iperf_interval(self, iv: IperfInterval) -> None:
        if self.series is not None:
            self.series.width = iv.end - iv.start
        self._point((iv.start + iv.end) / 2, iv.bits_per_second)
        self.query_one("#measure-log", Log).write_line(
            f"  {iv.start:4.1f}-{iv.end:4.1f} s  {fmt_bps(iv.bits_per_second)}"
            + (f"  retr {iv.retransmits}" if iv.retransmits else "")
        )
        self._stats(f"now {fmt_bps(iv.bits_per_second)}")

    @work(thread=True, group="measure")
    def _pingall(self, cancel: threading.Event) -> None:
        """The cells come as messages (post_message does not block the engine's thread:
        pacing the probes is its business), then the result, in the same queue."""

        def cell(src: str, dst: str, res: PingResult) -> None:
            self.post_message(PingallCell(src, dst, res))

        try:
            res = self.engine.pingall(count=1, timeout=1.0, on_result=cell, cancel=cancel)
        except Exception as exc:  # noqa: BLE001
            self.app.call_from_thread(self._failed, "pingall", "all pairs", str(exc))
            return
        self.post_message(PingallDone(res, cancel.is_set()))

    def on_pingall_cell(self, message: PingallCell) -> None:
        message.stop()
        self.query_one("#matrix", PingallGrid).add(message.src, message.dst, message.result)

    def on_pingall_done(self, message: PingallDone) -> None:
        message.stop()
        res = message.result
        self.query_one("#matrix", PingallGrid).show(res)
        ok = sum(res.passed(s, d) for s, d in res.pairs)
        summary = f"{ok}/{len(res.pairs)} pairs {'as expected' if res.all_passed else 'NOT as expected'}"
        summary += f", {res.lost} probe{'s' if res.lost != 1 else ''} lost"  # where a reply was due
        path = f"{len(res.names)} containers"
        key = self._done("pingall", path, summary, message.cancelled, ok=res.all_passed)
        self.matrices[key] = res

    @on(PingallGrid.PairChosen, "#matrix")
    def _chosen(self, event: PingallGrid.PairChosen) -> None:
        event.stop()
        self._offer((event.src, event.dst), self.query_one("#matrix", PingallGrid).result)

    def _offer(self, pair: tuple[str, str], result: PingallResult) -> None:
        """Ping, iperf or doctor a pair of the matrix: the picked pair becomes (src, dst)."""
        if self.running:
            self.app.notify(f"{self.running} is running: Stop [x] first", severity="warning")
            return

        def picked(what: str | None) -> None:
            if what is None:
                return
            if not {*pair} <= set(self._names):
                self.app.notify(f"{' or '.join(pair)} is not running any more", severity="warning")
                return
            self.query_one("#src", Select).value, self.query_one("#dst", Select).value = pair
            self.start(what)

        self.app.push_screen(PairScreen(*pair, cell_detail(result, *pair)), picked)

    def _finish(self) -> None:
        self.running = ""
        self.cancel = None
        self.query_one("#stop", Button).disabled = True
        for bid in RUN_BUTTONS:
            self.query_one(f"#{bid}", Button).disabled = False

    def _done(self, kind: str, path: str, summary: str, cancelled: bool, ok: bool = True) -> str:
        """The run is over: its summary, and its row in the history (whose key is returned)."""
        self._finish()
        note = " (stopped)" if cancelled else ""
        self._stats(summary + note, "yellow" if cancelled else "bold green" if ok else "bold red")
        self.query_one("#measure-log", Log).write_line(f"= {summary}{note}")
        series = self.series if kind in ("ping", "iperf") else None
        result = Text(summary + note)
        if series is not None:
            series.summary = summary + note
            result.append(" (enter: plot)", "dim")
        if kind == "pingall":
            result.append(" (enter: matrix)", "dim")
        if kind == "compare":
            result.append(" (enter: table)", "dim")
        key = self._history(kind, path, result)
        if series is not None:
            self.plots[key] = series
        return key

    def _failed(self, kind: str, path: str, error: str) -> None:
        self._finish()
        if kind == "pingall":
            self.query_one("#matrix", PingallGrid).fail(error)
        self._stats(f"✗ {error}", "bold red")
        self.query_one("#measure-log", Log).write_line(f"! {error}")
        self._history(kind, path, Text(f"✗ {error}", "red"))

    def _history(self, kind: str, path: str, result: Text) -> str:
        table = self.query_one("#history", DataTable)
        key = str(table.row_count)
        table.add_row(self.clock(), kind, path, result, key=key)
        table.move_cursor(row=table.row_count - 1)
        return key
