"""Pilot tests of the Faults tab with the fake engine: the catalogue, inject and revert
by key and button, the hidden fault and its reveal, a link's impairment set and cleared,
bad input shown as one line."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Select

from screens.app import make_app
from screens.faults import FaultsView

from .conftest import SIZE, applied_all, wait_for
from .fake_engine import FakeEngine

pytestmark = pytest.mark.asyncio


def view(app) -> FaultsView:  # type: ignore[no-untyped-def]
    return app.query_one(FaultsView)  # type: ignore[no-any-return]


async def test_catalogue_inject_revert_hidden_reveal(fake: FakeEngine) -> None:
    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: bool(app.query(FaultsView)))
        v = view(app)
        table = v.query_one("#fault-table", DataTable)
        assert table.row_count == 8 and v.selected == "mtu-blackhole"
        assert "ip link set eth0 mtu 1500" in str(v.query_one("#fault-detail").render())
        await pilot.press("down")  # vlan-mismatch
        await pilot.press("i")
        await wait_for(pilot, lambda: not v.busy and "fault_inject:vlan-mismatch:False" in fake.calls)
        await wait_for(pilot, lambda: table.get_cell("vlan-mismatch", "state") == "INJECTED")
        await pilot.press("i")  # twice: the engine refuses, one line
        await wait_for(pilot, lambda: not v.busy and "injected already" in v.last)
        await pilot.press("v")
        await wait_for(pilot, lambda: not v.busy and v.last == "reverted vlan-mismatch")
        await wait_for(pilot, lambda: table.get_cell("vlan-mismatch", "state") == "")
        await pilot.click("#hidden")
        await wait_for(pilot, lambda: not v.busy and "hidden" in v.last)
        assert all(table.get_cell(f.name, "state") == "" for f in v.faults)  # nothing gives it away
        await wait_for(
            pilot, lambda: "a hidden fault is injected" in str(v.query_one("#impair-state").render())
        )
        await pilot.press("y")
        await wait_for(pilot, lambda: not v.busy and v.last == "the hidden fault is mtu-blackhole")


async def test_impair_a_picked_link(fake: FakeEngine) -> None:
    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: bool(app.query(FaultsView)))
        v = view(app)
        select = v.query_one("#impair-target", Select)
        await wait_for(pilot, lambda: len(select._options) > 1)  # noqa: SLF001
        await pilot.click("#impair-set")  # no link picked yet: said, nothing called
        await wait_for(pilot, lambda: not v.busy and "pick a link first" in v.last)
        select.value = "h1-a"
        v.query_one("#imp-delay", Input).value = "20"
        v.query_one("#imp-loss", Input).value = "10"
        await pilot.click("#impair-set")
        await wait_for(pilot, lambda: not v.busy and v.last.startswith("h1-a: delay 20 ms, loss 10%"))
        assert "h1-a: delay 20 ms, loss 10% [substitute]" in str(v.query_one("#impair-state").render())
        v.query_one("#imp-loss", Input).value = "150"
        await pilot.click("#impair-set")
        await wait_for(pilot, lambda: not v.busy and "--loss is a percentage" in v.last)
        assert fake.impaired["h1-a"].loss == 10  # unchanged
        await pilot.click("#impair-clear")
        await wait_for(pilot, lambda: not v.busy and v.last == "h1-a: cleared" and not fake.impaired)
