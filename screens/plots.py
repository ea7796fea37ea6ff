"""Plots with axes and units (textual-plotext): a ping's RTT over time and an iperf's
throughput per interval. The Measure tab draws one live while it runs; the history
keeps each run's Series and shows it again in a PlotScreen."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

#: throughput units, largest first: (name, bits per second)
UNITS = (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3), ("bit/s", 1.0))
RTT_COLOR = "cyan"
LOST_COLOR = "red"
BAR_COLOR = "green"


@dataclass
class Series:
    """One measurement as plotted. ping: x is when the probe was sent (s from the first),
    y its RTT in ms, None when no reply came. iperf: x is the middle of the interval
    (s), y its throughput in bit/s, `width` the interval's length."""

    kind: Literal["ping", "iperf"]
    title: str
    span: float  # the x axis runs from 0 to this (the run's planned duration)
    xs: list[float] = field(default_factory=list)
    ys: list[float | None] = field(default_factory=list)
    width: float = 1.0
    summary: str = ""

    def add(self, x: float, y: float | None) -> None:
        self.xs.append(x)
        self.ys.append(y)
        self.span = max(self.span, x)

    @property
    def got(self) -> list[float]:
        return [y for y in self.ys if y is not None]


def throughput_unit(top: float) -> tuple[str, float]:
    """The unit that shows `top` bit/s with at most three digits before the point."""
    return next(((name, scale) for name, scale in UNITS if top >= scale), UNITS[-1])


def nice_ticks(top: float, most: int = 5) -> list[float]:
    """0 and round steps (1, 2 or 5 × 10^k) up to the first at or above `top`, at most `most` + 1."""
    top = top if top > 0 else 1.0
    step = 10 ** math.floor(math.log10(top / most))
    step = next(step * m for m in (1, 2, 5, 10) if top / (step * m) <= most)
    return [round(k * step, 10) for k in range(math.ceil(top / step - 1e-9) + 1)]


def _yaxis(plt: Plot, top: float, rows: int) -> None:
    """Round ticks from 0, no more than half the canvas's rows: two ticks on one row and
    plotext shows either label, depending on the process (a snapshot would flicker)."""
    ticks = nice_ticks(top, most=max(1, min(5, (rows - 4) // 2)))
    plt.ylim(0, ticks[-1])
    plt.yticks(ticks, [f"{t:g}" for t in ticks])


def draw(plt: Plot, series: Series, rows: int = 24) -> None:
    """The series on a cleared plotext figure `rows` tall: its axes, units and points."""
    plt.xlim(0, max(series.span, 1e-3))
    plt.xlabel("time (s)")
    if series.kind == "ping":
        got = [(x, y) for x, y in zip(series.xs, series.ys, strict=True) if y is not None]
        lost = [x for x, y in zip(series.xs, series.ys, strict=True) if y is None]
        top = max((y for _x, y in got), default=1.0)
        if got:
            xs, ys = [x for x, _y in got], [y for _x, y in got]
            plt.plot(xs, ys, marker="braille", color=RTT_COLOR)
            plt.scatter(xs, ys, marker="●", color=RTT_COLOR)
        if lost:  # at 0 ms, in red
            plt.scatter(lost, [0.0] * len(lost), marker="x", color=LOST_COLOR)
        _yaxis(plt, top * 1.1, rows)
        plt.ylabel("RTT (ms)" + ("   x: no reply" if lost else ""))
    else:
        unit, scale = throughput_unit(max(series.got, default=1.0))
        bars = [(y or 0.0) / scale for y in series.ys]
        if series.xs:
            plt.bar(series.xs, bars, width=min(1.0, series.width * 0.8), color=BAR_COLOR, marker="hd")
            edges = sorted({0.0, *(x + side * series.width / 2 for x in series.xs for side in (-1, 1))})
            plt.xticks(edges, [f"{e:g}" for e in edges])  # the intervals' bounds
        _yaxis(plt, max(bars, default=1.0) * 1.05, rows)
        plt.ylabel(f"throughput ({unit})")


class MeasurePlot(PlotextPlot):
    """A Series drawn with its axes; `show` a new one, `refresh` after adding points."""

    DEFAULT_CSS = """
    MeasurePlot {
        height: 1fr;
        min-height: 6;
    }
    """

    def __init__(self, series: Series | None = None, *, hint: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.series = series
        self.hint = hint

    def show(self, series: Series | None) -> None:
        self.series = series
        self.refresh()

    def render(self) -> RenderResult:
        if self.series is None:
            return Text(self.hint, "dim")
        self.plt.clear_figure()
        draw(self.plt, self.series, self.size.height)
        return super().render()


class PlotScreen(ModalScreen[None]):
    """A run from the history, plotted again as it was."""

    BINDINGS = [Binding("escape,q,enter", "dismiss", "Close")]

    def __init__(self, series: Series, when: str = "") -> None:
        super().__init__()
        self.series = series
        self.when = when

    def compose(self) -> ComposeResult:
        with Vertical(id="plot-box"):
            yield Label(Text(f"{self.series.title}  {self.when}".rstrip(), "bold"))
            yield MeasurePlot(self.series, id="history-plot")
            yield Label(Text(self.series.summary))
            yield Label(Text("Esc closes", "dim"))

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
