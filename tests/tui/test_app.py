"""Pilot tests of the app as a whole with the fake engine: the tabs, which keys act
where, help, the command palette, quitting. Each tab has its own test module:
test_inventory, test_scenarios, test_measure, test_doctor."""

from __future__ import annotations

import pytest

from screens.app import make_app
from screens.dialogs import HelpScreen
from screens.inventory import InventoryView
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
        assert app.check_action("next_step", ()) is False
        assert app.check_action("ping", ()) is False
        assert app.check_action("lab_up", ()) is False  # the lab is up
        await pilot.press("2")
        assert app.check_action("next_step", ()) is True
        await pilot.press("3")
        assert app.check_action("ping", ()) is True and app.check_action("stop", ()) is False
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
            for verb in ("next step", "back one step", "run all", "undo", "export script"):
                assert f"{name}: {verb}" in titles
        for what in ("ping", "iperf", "pingall", "doctor", "stop"):
            assert f"Measure: {what}" in titles
        cmd = next(c for c in app.get_system_commands(app.screen) if c.title == "exp2: run all")
        cmd.callback()
        await wait_for(pilot, lambda: "apply:exp2" in fake.calls)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "CommandPalette"


async def test_quit_stops_the_watcher(fake: FakeEngine) -> None:
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: fake.watcher is not None)
        await pilot.press("q")
    assert fake.watcher is not None and fake.watcher.stopped
