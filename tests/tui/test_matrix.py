"""Pilot tests of the pingall matrix in the Measure tab, with the fake engine: the grid
fills cell by cell, the verdicts against the scenario (exp3's VLANs, the failure
switch), the re-run key, Stop, a picked cell's ping / iperf / doctor, the history's
matrix, and 40 containers."""

from __future__ import annotations

import threading

import pytest
from textual.widgets import ContentSwitcher, DataTable, Label, Select

from screens.app import ContainetApp, make_app
from screens.dialogs import PairScreen
from screens.doctor import DoctorScreen
from screens.matrix import MatrixScreen, MatrixTable, PingallGrid
from screens.measure import MeasureView
from workbench.measure.pingall import Verdict

from .conftest import SIZE, wait_for
from .fake_data import STEPS
from .fake_engine import FakeEngine

pytestmark = pytest.mark.asyncio

PAIRS = [(s, d) for s in ("h1-a", "h1-b", "h2-a", "h2-b") for d in ("h1-a", "h1-b", "h2-a", "h2-b") if s != d]


def four(scenario: str = "exp1", **knobs: object) -> FakeEngine:
    """h1-a, h1-b on host1 and h2-a, h2-b on host2, the scenario applied."""
    fake = FakeEngine(per_host=2, **knobs)  # type: ignore[arg-type]
    fake.applied[scenario] = [True] * len(STEPS)
    return fake


async def measure(pilot, app: ContainetApp, count: int = 4) -> tuple[MeasureView, PingallGrid]:  # type: ignore[no-untyped-def]
    await pilot.press("3")
    view = app.query_one(MeasureView)
    await wait_for(pilot, lambda: len(view._names) == count)
    return view, app.query_one("#matrix", PingallGrid)


def marks(grid: PingallGrid) -> dict[tuple[str, str], str]:
    """What each cell shows: its mark (+ . ! X ?)."""
    return {(s, d): grid.table.get_cell(s, d).plain.strip() for s, d in grid.result.pairs}


def label(app: ContainetApp, selector: str) -> str:
    return str(app.query_one(selector, Label).render())


async def test_the_grid_fills_cell_by_cell_as_replies_arrive() -> None:
    fake = four(pingall_gate=threading.Semaphore(0))
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view, grid = await measure(pilot, app)
        await pilot.press("a")
        await wait_for(pilot, lambda: view.running == "pingall" and len(grid.result.names) == 4)
        assert app.query_one("#live", ContentSwitcher).current == "matrix"
        assert set(marks(grid).values()) == {"?"}  # every pair: not measured yet
        assert fake.pingall_gate is not None
        for k in range(1, 4):  # one reply at a time
            fake.pingall_gate.release()
            await wait_for(pilot, lambda k=k: len(grid.result.cells) == k)  # type: ignore[misc]
            shown = marks(grid)
            assert [shown[p] for p in PAIRS[:k]] == ["+"] * k
            assert [shown[p] for p in PAIRS[k:]] == ["?"] * (12 - k)
        await wait_for(pilot, lambda: "3/12 measured" in label(app, "#matrix-summary"))
        fake.pingall_gate.release(12)
        await wait_for(pilot, lambda: not view.running)
        assert set(marks(grid).values()) == {"+"}
        summary = label(app, "#matrix-summary")
        assert "pingall (exp1): 4 containers, 12 pairs" in summary and "12 expected reach" in summary
        assert "measured" not in summary and "0 probes lost" in summary
        history = app.query_one("#history", DataTable)
        assert "12/12 pairs as expected" in str(history.get_row_at(0)[3])
        assert grid.table.has_focus  # the arrows walk the cells at once


async def test_the_rerun_key_measures_again_from_scratch() -> None:
    fake = four()
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view, grid = await measure(pilot, app)
        await pilot.press("a")
        await wait_for(pilot, lambda: not view.running and "pingall" in fake.calls)
        assert set(marks(grid).values()) == {"+"}
        fake.pingall_gate = threading.Semaphore(0)
        await pilot.press("a")  # with the matrix focused too
        await wait_for(pilot, lambda: view.running == "pingall" and set(marks(grid).values()) == {"?"})
        assert fake.calls.count("pingall") == 2
        fake.pingall_gate.release(12)
        await wait_for(pilot, lambda: not view.running and set(marks(grid).values()) == {"+"})
        assert app.query_one("#history", DataTable).row_count == 2


async def test_stop_leaves_the_rest_not_measured() -> None:
    fake = four(pingall_gate=threading.Semaphore(2))
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view, grid = await measure(pilot, app)
        await pilot.press("a")
        await wait_for(pilot, lambda: len(grid.result.cells) == 2)
        await pilot.press("x")
        await wait_for(pilot, lambda: not view.running)
        assert list(marks(grid).values()).count("?") == 10
        assert "2/12 measured" in label(app, "#matrix-summary")
        assert "(stopped)" in str(app.query_one("#history", DataTable).get_row_at(0)[3])


async def test_verdicts_against_exp3_vlans_and_the_failure_switch() -> None:
    # a, b on VLAN 10 and 20: h1-a -> h2-a should reach (flipped: fails),
    # h1-a -> h2-b should not (flipped: reaches)
    fake = four("exp3", pingall_flip=frozenset({("h1-a", "h2-a"), ("h1-a", "h2-b")}))
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view, grid = await measure(pilot, app)
        await pilot.press("a")
        await wait_for(pilot, lambda: not view.running and "pingall" in fake.calls)
        verdict = grid.result.verdict
        assert verdict("h1-a", "h2-a") == Verdict.UNEXPECTED_FAILURE
        assert verdict("h1-a", "h2-b") == Verdict.UNEXPECTED_REACH
        assert verdict("h1-a", "h1-b") == Verdict.ISOLATED and verdict("h1-b", "h2-b") == Verdict.REACH
        shown = marks(grid)
        assert (shown[("h1-a", "h2-a")], shown[("h1-a", "h2-b")], shown[("h1-a", "h1-b")]) == ("X", "!", ".")
        # the cursor is on the first pair not as expected, and the line under the legend says why
        assert grid.pair_at(grid.table.cursor_coordinate) == ("h1-a", "h2-a")
        detail = label(app, "#matrix-cell")
        assert "h1-a → h2-a" in detail and "unexpected failure" in detail and "should reach" in detail
        assert "no reply to 2 probes" in detail
        assert "10/12 pairs NOT as expected" in label(app, "#live-stats")


async def test_a_picked_cell_offers_ping_iperf_and_doctor_for_its_pair() -> None:
    fake = four()
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view, grid = await measure(pilot, app)
        await pilot.press("a")
        await wait_for(pilot, lambda: not view.running and "pingall" in fake.calls)
        assert grid.pair_at(grid.table.cursor_coordinate) == ("h1-a", "h1-b")
        await pilot.press("down", "right", "enter")  # h1-b -> h2-a
        await wait_for(pilot, lambda: isinstance(app.screen, PairScreen))
        assert "expected reach" in str(app.screen.query_one(".about", Label).render())
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DoctorScreen) and app.screen.report is not None)
        assert "doctor:h1-b:h2-a" in fake.calls
        assert (app.query_one("#src", Select).value, app.query_one("#dst", Select).value) == ("h1-b", "h2-a")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DoctorScreen))

        # one click on a cell picks it: h2-b (row 4) -> h1-a (the first column after the names)
        from_width = grid.table.columns[grid.table.ordered_columns[0].key].width
        await pilot.click(MatrixTable, offset=(from_width + 1, 4))
        await wait_for(pilot, lambda: isinstance(app.screen, PairScreen))
        await pilot.press("p")
        await wait_for(pilot, lambda: "ping:h2-b:h1-a" in fake.calls and not view.running)
        assert app.query_one("#live", ContentSwitcher).current == "plot"

        await pilot.press("a")  # back to the matrix; Escape in the offer does nothing
        await wait_for(pilot, lambda: not view.running and fake.calls.count("pingall") == 2)
        grid.table.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PairScreen))
        seen = len(fake.calls)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PairScreen))
        assert len(fake.calls) == seen


async def test_the_history_shows_a_pingall_matrix_again() -> None:
    fake = four(pingall_flip=frozenset({("h2-a", "h1-b")}))
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view, grid = await measure(pilot, app)
        await pilot.press("a")
        await wait_for(pilot, lambda: not view.running and "pingall" in fake.calls)
        result = grid.result
        history = app.query_one("#history", DataTable)
        assert "(enter: matrix)" in str(history.get_row_at(0)[3])
        history.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MatrixScreen))
        shown = app.screen.query_one(PingallGrid)
        assert shown.result is result and shown.result.verdict("h2-a", "h1-b") == Verdict.UNEXPECTED_FAILURE
        await pilot.press("enter")  # the cursor is on that failure: pick it
        await wait_for(pilot, lambda: isinstance(app.screen, PairScreen))
        offer = app.screen
        assert isinstance(offer, PairScreen) and (offer.src, offer.dst) == ("h2-a", "h1-b")
        await pilot.press("t")
        await wait_for(pilot, lambda: "iperf:h2-a:h1-b" in fake.calls and not view.running)


async def test_forty_containers_stay_readable_numbered_and_scrolling() -> None:
    fake = FakeEngine(per_host=20)
    fake.applied["exp2"] = [True] * len(STEPS)
    app = make_app(fake)
    async with app.run_test(size=(100, 32)) as pilot:
        view, grid = await measure(pilot, app, count=40)
        await pilot.press("a")
        await wait_for(pilot, lambda: not view.running and "pingall" in fake.calls, timeout=30)
        assert len(grid.result.cells) == 40 * 39 and set(marks(grid).values()) == {"+"}
        table = grid.table
        heads = [c.label.plain.strip() for c in table.ordered_columns[1:]]
        assert heads == [str(k) for k in range(1, 41)]  # numbered: 40 names do not fit
        assert table.get_cell("h2-t", table.ordered_columns[0].key).plain == "40 h2-t"
        assert table.virtual_size.width > table.size.width and table.virtual_size.height > table.size.height
        table.move_cursor(row=39, column=39)  # h2-t -> h2-s: scrolled into view
        await wait_for(pilot, lambda: table.scroll_y > 0 and table.scroll_x > 0)
        assert "h2-t → h2-s" in label(app, "#matrix-cell")


async def test_a_pingall_that_fails_says_why() -> None:
    fake = four(measure_error="pingall needs at least two running containers")
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view, grid = await measure(pilot, app)
        await pilot.press("a")
        await wait_for(pilot, lambda: not view.running and "pingall" in fake.calls)
        assert not grid.running and "✗ pingall needs at least two" in label(app, "#matrix-cell")
        assert "✗ pingall needs" in str(app.query_one("#history", DataTable).get_row_at(0)[3])
