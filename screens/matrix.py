"""The pingall matrix: rows from, columns to, a colored cell per ordered pair, judged
against what the scenario expects (workbench.measure.pingall.Verdict), filled cell
by cell as the replies arrive. Arrows and Enter, or a click, pick a pair (PairChosen).

The engine's verdict needs the scenario's expectation, which comes with the result,
at the end; while the run goes, `provisional` guesses it from the containers' VLAN
tags (exp3's rule; everyone reaches everyone otherwise), and the result replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label
from textual.widgets.data_table import ColumnKey

from workbench.measure.ping import PingResult
from workbench.measure.pingall import PingallResult, Verdict

Pair = tuple[str, str]

#: each verdict's mark in its cell (those of `containet pingall`: readable without color)
MARK = {
    Verdict.REACH: "+",
    Verdict.ISOLATED: ".",
    Verdict.UNEXPECTED_REACH: "!",
    Verdict.UNEXPECTED_FAILURE: "X",
    Verdict.UNMEASURED: "?",
}
#: what the legend calls each verdict, and its cell's style
LEGEND: dict[Verdict, tuple[str, str]] = {
    Verdict.REACH: ("expected reach", "bold white on #1e7b34"),
    Verdict.ISOLATED: ("expected isolation", "bold white on #2f5d9b"),
    Verdict.UNEXPECTED_REACH: ("unexpected reach", "bold black on #e8a317"),
    Verdict.UNEXPECTED_FAILURE: ("unexpected failure", "bold white on #c62828"),
    Verdict.UNMEASURED: ("not measured yet", "#9a9a9a on #3a3a3a"),
}
LEGEND_LINES = (
    (Verdict.REACH, Verdict.ISOLATED, Verdict.UNMEASURED),
    (Verdict.UNEXPECTED_REACH, Verdict.UNEXPECTED_FAILURE),
)
SELF_STYLE = "#6a6a6a"
#: the summary line's count of each measured verdict
COUNT_STYLE = {
    Verdict.REACH: "",
    Verdict.ISOLATED: "",
    Verdict.UNEXPECTED_REACH: "bold #e8a317",
    Verdict.UNEXPECTED_FAILURE: "bold red",
}
#: beyond this many columns the heads are numbers, not names (as `containet pingall`)
NAMES_FIT = 120
FROM = "\0from"  # the key of the first column (the row's name): no container's name


def provisional(names: Sequence[str], vlans: Mapping[str, int | None]) -> dict[Pair, bool]:
    """The expectation until the engine's result brings its own: containers that carry
    a VLAN tag reach only their own tag (exp3); the others everyone."""
    out: dict[Pair, bool] = {}
    for s in names:
        for d in names:
            if s != d:
                a, b = vlans.get(s), vlans.get(d)
                out[(s, d)] = a is None or b is None or a == b
    return out


def legend() -> Text:
    """Two lines: what is as expected (and what is not measured yet), then what is not."""
    text = Text()
    for line in LEGEND_LINES:
        for verdict in line:
            label, style = LEGEND[verdict]
            text.append(f" {MARK[verdict]} ", style)
            text.append(f" {label}   ")
        text.append("\n" if line is LEGEND_LINES[0] else "")
    text.append("Enter or click: ping, iperf or doctor · a: again", "dim")
    return text


def cell_detail(result: PingallResult, src: str, dst: str) -> Text:
    """One line on a pair: its verdict, what it was expected to do, what its probes got."""
    verdict = result.verdict(src, dst)
    label, style = LEGEND[verdict]
    text = Text.assemble((f"{src} → {dst}", "bold"), ": ", (f" {label} ", style))
    want = result.expected.get((src, dst))
    if want is not None:
        text.append(f" (should {'reach' if want else 'be isolated'})", "dim")
    cell = result.cells.get((src, dst))
    if cell is not None and cell.reachable:
        avg = f", {cell.avg_ms:.2f} ms" if cell.avg_ms is not None else ""
        text.append(f" · {cell.received}/{cell.sent} probes answered{avg}")
    elif cell is not None:
        text.append(f" · no reply to {cell.sent} probe{'s' if cell.sent != 1 else ''}")
    return text


class MatrixTable(DataTable[Text]):
    """A DataTable whose first click on a cell picks it (DataTable's needs a second), and
    whose cursor reverses the cell: it keeps the verdict's color."""

    DEFAULT_CSS = """
    MatrixTable > .datatable--cursor, MatrixTable:focus > .datatable--cursor {
        text-style: reverse bold;
    }
    """

    class Clicked(Message):
        def __init__(self, coordinate: Coordinate) -> None:
            super().__init__()
            self.coordinate = coordinate

    def on_click(self, event: events.Click) -> None:
        # runs before DataTable's own handler moves the cursor; a click on the
        # highlighted cell is DataTable's CellSelected
        row, col = event.style.meta.get("row"), event.style.meta.get("column")
        if not (isinstance(row, int) and isinstance(col, int) and row >= 0 and col >= 0):
            return  # a head, or outside the cells
        if Coordinate(row, col) != self.cursor_coordinate:
            self.post_message(self.Clicked(Coordinate(row, col)))


class PingallGrid(Vertical):
    """The matrix with its summary line, its legend and the highlighted pair's detail."""

    class PairChosen(Message):
        def __init__(self, grid: PingallGrid, src: str, dst: str) -> None:
            super().__init__()
            self.grid = grid
            self.src = src
            self.dst = dst

        @property
        def control(self) -> PingallGrid:
            return self.grid

    def __init__(self, result: PingallResult | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.result = result or PingallResult((), {}, {}, None)
        self.running = False
        self.tally: dict[Verdict, int] = {}
        self._stale = False  # the summary line lags the cells (redrawn by a timer: cheap per cell)

    def compose(self) -> ComposeResult:
        yield Label("", id="matrix-summary")
        yield Label(legend(), id="matrix-legend")
        yield Label("", id="matrix-cell")
        yield MatrixTable(
            id="matrix-table",
            cursor_type="cell",
            cell_padding=0,
            fixed_columns=1,
        )

    def on_mount(self) -> None:
        if self.result.names:
            self.show(self.result)
        self.set_interval(0.1, self._catch_up)

    def _catch_up(self) -> None:
        if self._stale:
            self._summary()

    @property
    def table(self) -> MatrixTable:
        return self.query_one(MatrixTable)

    # --- filling ------------------------------------------------------------------
    def begin(self, names: Sequence[str], expected: dict[Pair, bool]) -> None:
        """A new run: every cell "not measured yet"."""
        self.running = True
        self.result = PingallResult(tuple(names), {}, dict(expected), None)
        self._build()

    def add(self, src: str, dst: str, cell: PingResult) -> None:
        """One pair's probes are over."""
        if src not in self.result.names or dst not in self.result.names:
            names = self.result.names + tuple(n for n in (src, dst) if n not in self.result.names)
            self.result = PingallResult(names, self.result.cells, self.result.expected, None)
            self._build()  # someone the inventory did not have yet
        self.result.cells[(src, dst)] = cell  # this grid's own dict: the engine's comes at the end
        verdict = self.result.verdict(src, dst)
        self.tally[verdict] = self.tally.get(verdict, 0) + 1
        self.tally[Verdict.UNMEASURED] -= 1
        self.table.update_cell(src, dst, self._cell(src, dst))
        self._stale = True
        if self.table.cursor_coordinate == self._coordinate(src, dst):
            self._detail()

    def show(self, result: PingallResult, running: bool = False) -> None:
        """The engine's result: its names, cells and expectation, every cell judged again."""
        self.running = running
        same = result.names == self.result.names
        at = self.table.cursor_coordinate
        self.result = result
        self._build()
        bad = next(((s, d) for s, d in result.pairs if not result.passed(s, d)), None)
        if bad is not None and not running:  # the first pair not as expected, explained
            at = Coordinate(*self._coordinate(*bad))
        elif not same:
            return
        self.table.move_cursor(row=at.row, column=at.column)
        self._detail()

    def fail(self, error: str) -> None:
        """The run ended without a result: what was measured stays, and why it stopped."""
        self.running = False
        self._summary()
        self.query_one("#matrix-cell", Label).update(Text(f"✗ {error}", "bold red"))

    # --- drawing ------------------------------------------------------------------
    def _build(self) -> None:
        names = self.result.names
        table = self.table
        table.clear(columns=True)
        wide = max((len(n) for n in names), default=1)
        numbered = len(names) * (wide + 1) + wide + 2 > NAMES_FIT
        label = len(f"{len(names)} ") * numbered + max(wide, len("from \\ to"))
        table.add_column(Text("from \\ to", "dim"), key=FROM, width=label + 1)
        for k, name in enumerate(names, 1):
            head = Text(str(k).rjust(2) if numbered else name.center(wide), "bold")
            table.add_column(head, key=name, width=(2 if numbered else wide) + 1)
        for k, src in enumerate(names, 1):
            row = Text(f"{k:>{len(str(len(names)))}} {src}" if numbered else src, "bold")
            table.add_row(row, *(self._cell(src, dst) for dst in names), key=src)
        self.tally = {v: 0 for v in Verdict}
        for s, d in self.result.pairs:
            self.tally[self.result.verdict(s, d)] += 1
        if names:
            table.move_cursor(row=0, column=2 if len(names) > 1 else 1)
        self._summary()
        self._detail()

    def _cell(self, src: str, dst: str) -> Text:
        width = self.table.columns[ColumnKey(dst)].width - 1  # and a gap
        if src == dst:
            return Text("·".center(width) + " ", SELF_STYLE)
        verdict = self.result.verdict(src, dst)
        return Text.assemble((MARK[verdict].center(width), LEGEND[verdict][1]), " ")

    def _coordinate(self, src: str, dst: str) -> tuple[int, int]:
        names = self.result.names
        return names.index(src), names.index(dst) + 1

    def pair_at(self, coordinate: Coordinate) -> Pair | None:
        names = self.result.names
        row, col = coordinate.row, coordinate.column - 1
        if 0 <= row < len(names) and 0 <= col < len(names) and row != col:
            return names[row], names[col]
        return None

    def _summary(self) -> None:
        self._stale = False
        result, tally = self.result, self.tally
        n = len(result.names)
        pairs = n * (n - 1)
        text = Text("pingall", "bold")
        text.append(f" ({result.scenario})" if result.scenario else "")
        text.append(f": {n} containers, {pairs} pairs")
        measured = pairs - tally.get(Verdict.UNMEASURED, 0)
        if self.running or measured < pairs:
            text.append(f" · {measured}/{pairs} measured", "bold yellow" if self.running else "yellow")
        for verdict, style in COUNT_STYLE.items():
            if tally.get(verdict):
                text.append(" · ")
                text.append(f"{tally[verdict]} {LEGEND[verdict][0]}", style)
        if not self.running and result.cells:  # lost: where a reply was due (not across VLANs)
            text.append(f" · {result.lost} probe{'s' if result.lost != 1 else ''} lost")
            if result.recovered:
                text.append(f", {len(result.recovered)} pairs answered only a retry")
        if not self.running and result.converging:
            text.append(f"\nspanning tree still converging ({result.converging}): run it again", "yellow")
        self.query_one("#matrix-summary", Label).update(text)

    def _detail(self) -> None:
        pair = self.pair_at(self.table.cursor_coordinate) if self.result.names else None
        self.query_one("#matrix-cell", Label).update(cell_detail(self.result, *pair) if pair else "")

    # --- picking --------------------------------------------------------------------
    @on(DataTable.CellHighlighted, "#matrix-table")
    def _highlighted(self, event: DataTable.CellHighlighted) -> None:
        event.stop()
        self._detail()

    @on(DataTable.CellSelected, "#matrix-table")
    def _selected(self, event: DataTable.CellSelected) -> None:
        event.stop()
        self._choose(event.coordinate)

    @on(MatrixTable.Clicked)
    def _clicked(self, event: MatrixTable.Clicked) -> None:
        event.stop()
        self._choose(event.coordinate)

    def _choose(self, coordinate: Coordinate) -> None:
        pair = self.pair_at(coordinate)
        if pair is not None:
            self.post_message(self.PairChosen(self, *pair))


class MatrixScreen(ModalScreen[Pair | None]):
    """A pingall from the history, as it ended; picking a pair dismisses with it."""

    BINDINGS = [Binding("escape,q", "close", "Close")]

    def __init__(self, result: PingallResult, when: str = "") -> None:
        super().__init__()
        self.result = result
        self.when = when

    def compose(self) -> ComposeResult:
        with Vertical(id="matrix-box"):
            yield Label(Text(f"pingall {self.when}".rstrip(), "bold"))
            yield PingallGrid(self.result, id="history-matrix")
            yield Label(Text("Esc closes", "dim"))

    def on_mount(self) -> None:
        self.query_one(MatrixTable).focus()

    @on(PingallGrid.PairChosen)
    def _chosen(self, event: PingallGrid.PairChosen) -> None:
        event.stop()
        self.dismiss((event.src, event.dst))

    def action_close(self) -> None:
        self.dismiss(None)
