"""Pilot tests of the app as a whole with the fake engine: the tabs, which keys act
where, help, the command palette, quitting. Each tab has its own test module:
test_inventory, test_scenarios, test_measure, test_doctor."""

from __future__ import annotations

import pytest
from textual.binding import Binding

from screens.app import make_app
from screens.dialogs import HelpScreen
from screens.inventory import InventoryView
from screens.keymap import ACTIONS, help_sections
from screens.measure import MeasureView
from screens.scenario import ScenariosView

from .conftest import SIZE, applied_all, panel, wait_for
from .fake_engine import FakeEngine

pytestmark = pytest.mark.asyncio


async def test_scenarios_and_measure_tabs_are_built_on_first_open(fake: FakeEngine) -> None:
    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snap is not None and fake.watcher is not None)
        assert not app.query(ScenariosView) and not app.query(MeasureView)  # start-up builds neither
        await pilot.press("3")
        view = app.query_one(MeasureView)
        await wait_for(pilot, lambda: view._names == ("h1-a", "h2-a"))  # it starts from the app's inventory
        assert not app.query(ScenariosView)
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(panel(app).steps))
        await pilot.press("3", "2")
        assert len(app.query(ScenariosView)) == 1 and len(app.query(MeasureView)) == 1  # built once


async def test_bindings_follow_the_tab(fake: FakeEngine) -> None:
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        assert app.check_action("step", ("next",)) is False
        assert app.check_action("measure", ("ping",)) is False
        assert app.check_action("lab_up", ()) is False  # the lab is up
        await pilot.press("2")
        assert app.check_action("step", ("next",)) is True
        await pilot.press("3")
        assert app.check_action("measure", ("ping",)) is True
        assert app.check_action("measure", ("stop",)) is False
        await pilot.press("1")
        assert app.query_one(InventoryView).display


async def test_help_screen(fake: FakeEngine) -> None:
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_command_palette_has_every_action(fake: FakeEngine) -> None:
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for want in ("Lab up", "Lab down", "Show inventory", "Show scenarios", "Show measure", "Help"):
            assert want in titles
        for name in fake.scenarios:
            for verb in ("next step", "back", "run all", "undo", "export"):
                assert f"{name}: {verb}" in titles
        for what in ("ping", "iperf", "pingall", "doctor", "stop"):
            assert f"Measure: {what}" in titles
        cmd = next(c for c in app.get_system_commands(app.screen) if c.title == "exp2: run all")
        cmd.callback()
        await wait_for(pilot, lambda: "apply:exp2" in fake.calls)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "CommandPalette"


async def test_one_table_feeds_bindings_help_and_palette(fake: FakeEngine) -> None:
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        keys = {b.key: b.action for b in app.BINDINGS if isinstance(b, Binding)}
        helped = {key for _area, rows in help_sections() for key, _text in rows}
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for act in ACTIONS:
            assert keys[act.key] == act.call  # the binding
            assert act.key_text in helped  # the help screen
            if act.palette:  # the palette (per scenario for the scenario's actions)
                assert (act.palette_title("exp1") if act.per_scenario else act.palette_title()) in titles
        assert len(keys) == len(ACTIONS)


async def test_quit_stops_the_watcher(fake: FakeEngine) -> None:
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: fake.watcher is not None)
        await pilot.press("q")
    assert fake.watcher is not None and fake.watcher.stopped
