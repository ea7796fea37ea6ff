"""Pilot tests of the Measure tab with the fake engine: ping and iperf with their
plots, stats and history (whose rows show the plot again), Stop, errors, the
settings row. The pingall matrix: test_matrix.py."""

from __future__ import annotations

import threading

import pytest
from rich.text import Text
from textual.widgets import Button, Checkbox, DataTable, Input, Label
from textual_plotext.plot import Plot

from screens.app import ContainetApp, make_app
from screens.measure import parse_settings
from screens.plots import MeasurePlot, PlotScreen, Series, draw, throughput_unit

from .conftest import SIZE, applied_all, measure_ready, wait_for
from .fake_engine import FakeEngine

pytestmark = pytest.mark.asyncio


async def test_ping_plots_rtt_over_time_and_the_history_shows_it_again(fake: FakeEngine) -> None:
    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view = await measure_ready(pilot, app)
        await pilot.press("p")
        await wait_for(pilot, lambda: not view.running and "ping:h1-a:h2-a" in fake.calls)
        series = view.series
        assert series is not None and series.kind == "ping"
        assert series.xs == pytest.approx([0.0, 0.2, 0.4, 0.6])  # when each probe went (count 10 × 0.2 s)
        assert series.ys == [0.61, 0.55, None, 0.72]  # RTT in ms; None: no reply
        assert series.span == pytest.approx(1.8)  # the x axis: the whole run as planned
        assert app.query_one("#plot", MeasurePlot).series is series
        stats = str(app.query_one("#live-stats", Label).render())
        assert "3/4 replies" in stats and "loss 25%" in stats and "0.55/0.63/0.72" in stats
        table = app.query_one("#history", DataTable)
        assert table.row_count == 1
        assert "h1-a→h2-a" in str(table.get_row_at(0)[2])
        assert "(enter: plot)" in str(table.get_row_at(0)[3])

        await pilot.press("t")  # another run: the history keeps the first one's plot
        await wait_for(pilot, lambda: not view.running and table.row_count == 2)
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PlotScreen))
        shown = app.screen
        assert isinstance(shown, PlotScreen) and shown.series is series
        assert series.summary.startswith("3/4 replies")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PlotScreen))


async def test_iperf_and_pingall_buttons(fake: FakeEngine) -> None:
    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view = await measure_ready(pilot, app)
        await pilot.click("#iperf")
        await wait_for(pilot, lambda: not view.running and "iperf:h1-a:h2-a" in fake.calls)
        assert view.series is not None and view.series.kind == "iperf"
        assert view.series.xs == [0.5, 1.5, 2.5]  # the middle of each 1 s interval
        assert view.series.ys == [1.2e9, 1.3e9, 1.25e9]  # bit/s (the plot picks its unit)
        assert "Gbit/s" in str(app.query_one("#live-stats", Label).render())
        await pilot.click("#pingall")
        await wait_for(pilot, lambda: not view.running and "pingall" in fake.calls)
        assert "2/2 pairs as expected" in str(app.query_one("#live-stats", Label).render())
        assert app.query_one("#history", DataTable).row_count == 2


async def test_stop_cancels_a_running_measurement(fake: FakeEngine) -> None:
    applied_all(fake)
    fake.block = threading.Event()  # replies never come until cancelled
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view = await measure_ready(pilot, app)
        await pilot.press("p")
        await wait_for(pilot, lambda: view.running == "ping")
        assert app.check_action("measure", ("stop",)) is True
        assert app.query_one("#ping", Button).disabled
        await pilot.press("x")
        await wait_for(pilot, lambda: not view.running)
        assert "(stopped)" in str(app.query_one("#live-stats", Label).render())


async def test_measure_error_is_shown(fake: FakeEngine) -> None:
    applied_all(fake)
    fake.measure_error = "h2-a is not running"
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view = await measure_ready(pilot, app)
        await pilot.press("p")
        await wait_for(pilot, lambda: not view.running and "ping:h1-a:h2-a" in fake.calls)
        assert "✗ h2-a is not running" in str(app.query_one("#live-stats", Label).render())


async def test_measure_needs_two_containers(fake: FakeEngine) -> None:
    app = make_app(fake)  # nothing applied: no containers
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await pilot.press("p")
        await pilot.pause()
        assert not any(c.startswith("ping") for c in fake.calls)


async def test_parse_settings_defaults_and_errors() -> None:
    s = parse_settings({"ping-count": "", "ping-interval": " 0.5 "}, udp=True, reverse=False)
    assert (s.ping_count, s.ping_interval, s.iperf_seconds, s.iperf_parallel) == (10, 0.5, 3.0, 1)
    assert s.udp and not s.reverse
    assert s.ping_title() == "10 × 0.5 s" and s.iperf_title() == "3 s UDP"
    with pytest.raises(ValueError, match="iperf streams: '2.5' is not an integer"):
        parse_settings({"iperf-parallel": "2.5"}, udp=False, reverse=False)


async def _set(pilot, app: ContainetApp, wid: str, text: str) -> None:  # type: ignore[no-untyped-def]
    """Type into a settings field as a user does: click, replace, Enter."""
    await pilot.click(f"#{wid}")
    box = app.query_one(f"#{wid}", Input)
    box.value = ""
    await pilot.press(*text, "enter")
    assert box.value == text


async def test_settings_row_reaches_ping_and_iperf(fake: FakeEngine) -> None:
    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:  # the smallest terminal it is made for
        view = await measure_ready(pilot, app)
        for wid in ("ping-count", "ping-interval", "iperf-seconds", "iperf-parallel", "iperf-udp"):
            widget = app.query_one(f"#{wid}")
            assert widget.region.height == 1 and widget.region.right <= 80, (wid, widget.region)
        await _set(pilot, app, "ping-count", "3")
        await _set(pilot, app, "ping-interval", "0.5")
        await pilot.press("p")
        await wait_for(pilot, lambda: not view.running and "ping" in fake.last)
        assert fake.last["ping"] == {"count": 3, "interval": 0.5}
        assert "(3 × 0.5 s)" in str(app.query_one("#live-title", Label).render())

        await _set(pilot, app, "iperf-seconds", "5")
        await _set(pilot, app, "iperf-parallel", "4")
        await pilot.click("#iperf-udp")
        await pilot.click("#iperf-reverse")
        assert app.query_one("#iperf-udp", Checkbox).value and app.query_one("#iperf-reverse", Checkbox).value
        await pilot.press("t")
        await wait_for(pilot, lambda: not view.running and "iperf" in fake.last)
        assert fake.last["iperf"] == {"seconds": 5.0, "parallel": 4, "udp": True, "reverse": True}
        assert "5 s UDP, 4 streams, reverse" in str(app.query_one("#live-title", Label).render())
        assert "UDP" in str(app.query_one("#live-stats", Label).render())


async def test_settings_the_engine_refuses_are_shown(fake: FakeEngine) -> None:
    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view = await measure_ready(pilot, app)
        await _set(pilot, app, "ping-count", "0")
        await pilot.press("p")
        await wait_for(pilot, lambda: not view.running and "ping:h1-a:h2-a" in fake.calls)
        assert "✗ bad count 0: use 1 to 10000" in str(app.query_one("#live-stats", Label).render())
        app.query_one("#iperf-parallel", Input).value = "1e"  # not an integer: refused before the engine
        seen = len(fake.calls)
        await pilot.click("#iperf")
        await pilot.pause()
        assert not view.running and len(fake.calls) == seen


async def test_plots_have_axes_and_units() -> None:
    assert throughput_unit(1.3e9) == ("Gbit/s", 1e9) and throughput_unit(612e6) == ("Mbit/s", 1e6)
    assert throughput_unit(0.0) == ("bit/s", 1.0)
    ping = Series("ping", "ping a → b", span=0.6, xs=[0.0, 0.2, 0.4], ys=[0.5, None, 0.7])
    iperf = Series("iperf", "iperf a → b", span=2.0, xs=[0.5, 1.5], ys=[612e6, 948e6])
    for series, ylabel in ((ping, "RTT (ms)   x: no reply"), (iperf, "throughput (Mbit/s)")):
        plt = Plot()
        draw(plt, series)
        plt.plotsize(60, 12)
        text = Text.from_ansi(plt.build()).plain
        assert ylabel in text and "time (s)" in text, text


async def test_compare_asks_for_paths_and_shows_the_table_beside_the_ceiling(fake: FakeEngine) -> None:
    from screens.compare import ComparePathsScreen
    from textual.widgets import Static

    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view = await measure_ready(pilot, app)
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, ComparePathsScreen))
        dialog = app.screen
        assert isinstance(dialog, ComparePathsScreen)
        assert dialog.ticked() == ["exp1"]  # the applied scenario, measured where it stands
        dialog.query_one("#path-exp2", Checkbox).value = True
        await pilot.press("enter")
        await wait_for(pilot, lambda: not view.running and any(c.startswith("compare:") for c in fake.calls))
        assert "compare:h1-a:h2-a:exp1,exp2" in fake.calls
        shown = str(app.query_one("#compare-view", Static).render())
        assert "ceiling" in shown and "20.00 Gbit/s" in shown
        assert "exp2" in shown and "0.050" in shown  # a share of the ceiling
        assert "exp1 applied again at the end" in shown
        table = app.query_one("#history", DataTable)
        assert table.row_count == 1
        row = table.get_row_at(0)
        assert row[1] == "compare" and "exp1 0.040, exp2 0.050" in str(row[3])

        await pilot.press("o")  # cancelled: nothing runs
        await wait_for(pilot, lambda: isinstance(app.screen, ComparePathsScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ComparePathsScreen))
        assert sum(c.startswith("compare:") for c in fake.calls) == 1
