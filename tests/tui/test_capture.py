"""The Capture tab with the fake engine: start on a place, frames listed (the one
too big for the tunnel marked), Enter opens the X-ray, w writes a pcap that reads
back, x stops; a bad place is one status line; `C` in Measure captures the picked
pair's path; live rates in the inventory."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Label

from screens.app import make_app
from screens.capture import CaptureView, FlowsScreen, XrayScreen
from workbench.capture import read_file

from .conftest import SIZE, applied_all, measure_ready, tree_text, wait_for
from .fake_engine import FakeEngine

pytestmark = pytest.mark.asyncio


def _status(app) -> str:  # type: ignore[no-untyped-def]
    return str(app.query_one("#cap-status", Label).render())


async def _open(pilot, app) -> CaptureView:  # type: ignore[no-untyped-def]
    await pilot.press("5")
    await wait_for(pilot, lambda: app.capture_view is not None and app.capture_view.is_mounted)
    view = app.capture_view
    assert isinstance(view, CaptureView)
    return view


async def test_capture_lists_frames_xray_write_and_stop(fake: FakeEngine, tmp_path: Path) -> None:
    applied_all(fake)
    app = make_app(fake, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        view = await _open(pilot, app)
        where = app.query_one("#cap-where", Input)
        where.focus()
        where.value = "host1:eth1"
        await pilot.press("enter")
        table = app.query_one("#cap-list", DataTable)
        await wait_for(pilot, lambda: table.row_count == 5)
        assert "capture:host1:eth1:" in fake.calls and "capturing on host1:eth1" in _status(app)
        rows = [" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]
        assert "GRE 10.0.0.3 > 10.0.0.4 | 172.15.42.100 > 172.15.42.101 ICMP echo request" in rows[0]
        assert "TOO BIG" in rows[4] and "TOO BIG" not in rows[0]
        # Enter on the last frame: its X-ray says it does not fit the GRE tunnel
        table.focus()
        table.move_cursor(row=4)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, XrayScreen))
        text = str(app.screen.query_one("#xray-text").render())
        assert "TOO BIG for the GRE" in text and "TCP" in text
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, XrayScreen))
        # w writes the pcap; it reads back frame for frame
        await pilot.press("w")
        await wait_for(pilot, lambda: any(tmp_path.glob("*.pcap")))
        pcap = next(tmp_path.glob("*.pcap"))
        assert len(read_file(str(pcap))) == 5
        # the filter box narrows the list
        show = app.query_one("#cap-show", Input)
        show.value = "reply"
        await wait_for(pilot, lambda: table.row_count == 2)
        show.value = ""
        await wait_for(pilot, lambda: table.row_count == 5)
        # f: the host's OVS flows, read again every second
        table.focus()
        await pilot.press("f")
        await wait_for(pilot, lambda: isinstance(app.screen, FlowsScreen) and app.screen.reads >= 1)
        assert "NORMAL" in str(app.screen.query_one("#flows-text").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, FlowsScreen))
        # x stops the capture
        table.focus()
        assert app.check_action("measure", ("stop",)) is True
        await pilot.press("x")
        await wait_for(pilot, lambda: not view.running and "stopped" in _status(app))


async def test_bad_place_is_one_status_line(fake: FakeEngine) -> None:
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        view = await _open(pilot, app)
        view.start("nosuch")
        await wait_for(pilot, lambda: "capture failed" in _status(app))
        assert "unknown container 'nosuch'" in _status(app) and not view.running


async def test_capture_path_from_measure(fake: FakeEngine) -> None:
    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        view = await measure_ready(pilot, app)
        from textual.widgets import Select

        view.query_one("#src", Select).value = "h1-a"
        view.query_one("#dst", Select).value = "h2-a"
        await pilot.press("C")
        await wait_for(pilot, lambda: "capture_path:h1-a:h2-a" in fake.calls)
        assert app.tab == "capture"
        table = app.query_one("#cap-list", DataTable)
        await wait_for(pilot, lambda: table.row_count == 4)
        places = [str(table.get_row_at(i)[2]) for i in range(4)]
        assert places == ["h1-a", "host1:eth1", "h2-a", "h1-a"]


async def test_capture_path_from_the_doctor(fake: FakeEngine) -> None:
    from screens.doctor import DoctorScreen

    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        await measure_ready(pilot, app)
        app.push_screen(DoctorScreen(fake, "h1-a", "h2-a"))
        await wait_for(pilot, lambda: isinstance(app.screen, DoctorScreen) and app.screen.report is not None)
        await pilot.press("c")
        await wait_for(pilot, lambda: "capture_path:h1-a:h2-a" in fake.calls)
        await wait_for(pilot, lambda: app.tab == "capture")


async def test_inventory_shows_live_rates(fake: FakeEngine) -> None:
    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: bool(app.rates))
        await wait_for(pilot, lambda: "↓1.2 Mb/s 120p/s" in tree_text(app, "host1"))
    assert app.rate_watcher is None  # stopped with the app
