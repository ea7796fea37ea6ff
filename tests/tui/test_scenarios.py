"""Pilot tests of the Scenarios tab with the fake engine: next, back, run all, undo
by key and button, a step's detail and time, a failure and its rollback, export."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from textual.widgets import Button, DataTable, Label
from textual.widgets.data_table import ColumnKey

from screens.app import make_app
from screens.dialogs import ScriptScreen
from screens.scenario import ScenarioPanel

from .conftest import SIZE, panel, wait_for
from .fake_data import STEPS
from .fake_engine import FakeEngine

pytestmark = pytest.mark.asyncio


async def test_scenario_keys_next_back_run_all_undo(fake: FakeEngine) -> None:
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(panel(app).steps))
        p = panel(app)
        assert p.states == ["pending"] * len(STEPS)
        await pilot.press("n")
        await wait_for(pilot, lambda: not p.busy and p.states[0] == "verified")
        assert p.states[1] == "pending"
        assert "applied step 1" in str(p.query_one("#status", Label).render())
        await pilot.press("r")
        await wait_for(pilot, lambda: not p.busy and p.states == ["verified"] * len(STEPS))
        assert fake.calls[-1] == "apply:exp1" or "apply:exp1" in fake.calls
        await pilot.press("b")
        await wait_for(pilot, lambda: not p.busy and p.states[-1] == "pending")
        await pilot.press("u")
        await wait_for(pilot, lambda: not p.busy and p.states == ["pending"] * len(STEPS))
        assert [c for c in fake.calls if ":" in c and not c.startswith("refresh")] == [
            "next:exp1",
            "apply:exp1",
            "back:exp1",
            "undo:exp1",
        ]


async def test_scenario_buttons_and_step_detail(fake: FakeEngine) -> None:
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(panel(app).steps))
        p = panel(app)
        detail = str(p.query_one("#detail").render())
        assert "Containers plug into a linux bridge." in detail
        assert "$ ip link add docker0 type bridge" in detail
        await pilot.click("#panel-exp1 #next")
        await wait_for(pilot, lambda: "next:exp1" in fake.calls and not p.busy)
        await pilot.click("#panel-exp1 #all")
        await wait_for(pilot, lambda: "apply:exp1" in fake.calls and not p.busy)
        assert p.states == ["verified"] * len(STEPS)
        await pilot.click("#panel-exp1 #undo")
        await wait_for(pilot, lambda: "undo:exp1" in fake.calls and not p.busy)
        assert p.states == ["pending"] * len(STEPS)


async def test_long_step_shows_running_then_applied() -> None:
    fake = FakeEngine(step_gate=threading.Event())  # the step runs until the test lets it end
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(panel(app).steps))
        p = panel(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: p.states[0] == "running")
        assert "step 1: linux bridge docker0" in str(p.query_one("#status", Label).render())
        assert p.query_one("#next", Button).disabled
        assert fake.step_gate is not None
        fake.step_gate.set()
        await wait_for(pilot, lambda: p.states[0] == "verified")
        assert p.seconds[0] >= 0.0


async def test_failed_step_shows_error_and_rollback() -> None:
    fake = FakeEngine(fail_at=2)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(panel(app).steps))
        p = panel(app)
        await pilot.press("r")
        await wait_for(pilot, lambda: not p.busy and "apply:exp1" in fake.calls)
        status = str(p.query_one("#status", Label).render())
        assert "RTNETLINK answers: File exists" in status and "rolled back" in status
        assert p.states[0] == "rolled back" and p.states[1] == "rolled back"
        assert p.states[2] in ("failed", "rolled back")
        assert "failed" in p.messages[2] or "rolled back" in p.messages[2]
        detail = str(p.query_one("#detail").render())
        assert "RTNETLINK" in detail
        assert not p.query_one("#all", Button).disabled  # the UI is usable again


async def test_scenario_tabs_switch_with_brackets(fake: FakeEngine) -> None:
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(panel(app).steps))
        await pilot.press("right_square_bracket")
        await wait_for(pilot, lambda: panel(app).scenario == "exp2" and bool(panel(app).steps))
        await pilot.press("left_square_bracket", "left_square_bracket")
        await wait_for(pilot, lambda: panel(app).scenario == "exp3")


async def test_export_button_in_the_panel(fake: FakeEngine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(fake, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(panel(app).steps))
        await pilot.click("#panel-exp1 #export")
        await wait_for(pilot, lambda: isinstance(app.screen, ScriptScreen))
        assert (tmp_path / "containet-exp1.sh").exists()


async def test_export_writes_script_and_shows_it(fake: FakeEngine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(fake, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(panel(app).steps))
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ScriptScreen))
        script = (tmp_path / "containet-exp1.sh").read_text()
        assert script.startswith("#!/bin/bash") and "ovs-vsctl add-br br0" in script
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, ScriptScreen))


async def test_scenario_error_when_lab_is_down() -> None:
    fake = FakeEngine(lab_up_state=False)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(panel(app).steps))
        p = panel(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: not p.busy and "next:exp1" in fake.calls)
        assert "lab is down" in str(p.query_one("#status", Label).render())


async def test_step_titles_are_whole_from_the_first_frame(fake: FakeEngine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The title column is sized as the rows arrive, not on the table's next idle: a frame
    drawn in between was cached with the titles cut to the header's width ("linu", "dock")
    until a cell changed (issue 13)."""
    widths: list[int] = []
    loaded = ScenarioPanel._loaded

    def spy(self: ScenarioPanel, *args: Any) -> None:
        loaded(self, *args)  # then look, before anything else runs
        table = self.query_one("#steps", DataTable)
        widths.append(table.columns[ColumnKey("title")].get_render_width(table))

    monkeypatch.setattr(ScenarioPanel, "_loaded", spy)
    app = make_app(fake)
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(panel(app).steps))
        longest = max(len(title) for _host, title, _why, _cmd in STEPS)
        assert widths == [longest + 2]  # the title and the cell's padding
        table = panel(app).query_one("#steps", DataTable)
        width = sum(c.get_render_width(table) for c in table.columns.values())
        assert width <= table.scrollable_content_region.width  # every column fits in 100 columns
