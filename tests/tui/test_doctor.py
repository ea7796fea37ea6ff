"""Pilot tests of the path doctor with the fake engine: hops and checks, the fix and
the run after it, the history row that reopens a report, errors, closing early."""

from __future__ import annotations

import pytest
from textual.widgets import Button, DataTable, Tree

from screens.app import ContainetApp, make_app
from screens.doctor import DoctorScreen

from .conftest import SIZE, applied_all, measure_ready, wait_for
from .fake_engine import FakeEngine

pytestmark = pytest.mark.asyncio


def _doctor(app: ContainetApp) -> DoctorScreen:
    assert isinstance(app.screen, DoctorScreen)
    return app.screen


async def test_doctor_shows_hops_and_applies_the_fix(fake: FakeEngine) -> None:
    applied_all(fake)
    fake.veth_down = True
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await measure_ready(pilot, app)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DoctorScreen) and app.screen.report is not None)
        doc = _doctor(app)
        assert "doctor:h1-a:h2-a" in fake.calls
        tree = doc.query_one("#doctor-tree", Tree)
        hops = [str(n.label) for n in tree.root.children]
        assert hops[0].startswith("! WARN 1. container h1-a") and hops[1].startswith("✗ FAIL 2. veth cn-h1-a")
        assert all("OK" in h for h in hops[2:-1]) and "FAIL" in hops[-1]
        assert not tree.root.children[2].is_expanded  # OK hops stay folded
        await wait_for(pilot, lambda: tree.cursor_node is not None and tree.cursor_node.data is not None)
        detail = str(doc.query_one("#doctor-detail").render())
        assert "cn-h1-a is DOWN on host1" in detail and "fix: ip -n cn-host1 link set cn-h1-a up" in detail
        assert "f applies: bring cn-h1-a up on host1" in detail
        assert "first broken hop is veth cn-h1-a" in str(doc.query_one("#doctor-summary").render())
        assert not doc.query_one("#doctor-fix", Button).disabled

        await pilot.press("f")
        await wait_for(pilot, lambda: "doctor_fix:LinkUp" in fake.calls)
        await wait_for(pilot, lambda: doc.report is not None and doc.report.ok and not doc.busy)
        assert fake.calls.count("doctor:h1-a:h2-a") == 2  # checked again after the fix
        assert doc.applied == ["bring cn-h1-a up on host1: ip link set cn-h1-a up"]
        assert "every hop is OK" in str(doc.query_one("#doctor-summary").render())
        assert doc.query_one("#doctor-fix", Button).disabled  # nothing left to fix

        await pilot.press("p")  # a dialog is open: nothing starts behind it
        assert not any(c.startswith("ping") for c in fake.calls)
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DoctorScreen))
        table = app.query_one("#history", DataTable)
        assert table.row_count == 1 and str(table.get_row_at(0)[1]) == "doctor"
        assert "OK: every hop" in str(table.get_row_at(0)[3])

        # the history row opens that report again, as it was (no new run); closing adds nothing
        table.focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, DoctorScreen) and app.screen.report is not None)
        assert _doctor(app).report is doc.report and fake.calls.count("doctor:h1-a:h2-a") == 2
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DoctorScreen))
        assert table.row_count == 1


async def test_doctor_error_and_close_while_running(fake: FakeEngine) -> None:
    applied_all(fake)
    fake.doctor_error = "container h2-a is not running (or has no address)"
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await measure_ready(pilot, app)
        await pilot.click("#doctor")
        await wait_for(
            pilot,
            lambda: (
                isinstance(app.screen, DoctorScreen)
                and "not running" in str(app.screen.query_one("#doctor-summary").render())
            ),
        )
        assert _doctor(app).query_one("#doctor-fix", Button).disabled
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DoctorScreen))
        assert app.query_one("#history", DataTable).row_count == 0

        fake.doctor_error = None
        fake.doctor_delay = 0.5
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DoctorScreen))
        await pilot.press("escape")  # closed before the report arrives: it is dropped quietly
        await pilot.pause(0.8)
        assert not isinstance(app.screen, DoctorScreen) and app.is_running
        assert fake.calls.count("doctor:h1-a:h2-a") == 2
