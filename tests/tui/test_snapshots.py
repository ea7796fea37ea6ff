"""Snapshot tests (pytest-textual-snapshot) of the main screens, fake engine.

Update after a deliberate UI change: pytest tests/tui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from screens.app import make_app
from screens.doctor import DoctorScreen
from screens.measure import MeasureView
from screens.scenario import ScenariosView

from .conftest import wait_for
from .fake_data import STEPS
from .fake_engine import FakeEngine


def _applied() -> FakeEngine:
    fake = FakeEngine()
    fake.applied["exp1"] = [True] * len(STEPS)
    return fake


def _inventory_ready(app):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_for(pilot, lambda: app.snap is not None and app.collects >= 1)
        await pilot.pause(0.2)

    return run_before


def test_inventory_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = make_app(_applied())
    assert snap_compare(app, terminal_size=(80, 24), run_before=_inventory_ready(app))


def test_inventory_projector(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = make_app(_applied())
    assert snap_compare(app, terminal_size=(160, 45), run_before=_inventory_ready(app))


def test_inventory_lab_down(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = make_app(FakeEngine(lab_up_state=False))
    assert snap_compare(app, terminal_size=(80, 24), run_before=_inventory_ready(app))


def test_scenario_failure(snap_compare) -> None:  # type: ignore[no-untyped-def]
    fake = FakeEngine(fail_at=2)
    app = make_app(fake)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(app.query_one(ScenariosView).current.steps))  # type: ignore[union-attr]
        await pilot.press("r")
        panel = app.query_one(ScenariosView).current
        await wait_for(pilot, lambda: "apply:exp1" in fake.calls and not panel.busy)  # type: ignore[union-attr]
        app.clear_notifications()
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def _scenarios_first_view(app):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_for(pilot, lambda: app.snap is not None)
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(app.query_one(ScenariosView).current.steps))  # type: ignore[union-attr]
        # no pause: the first frame with the steps must show their whole titles

    return run_before


def test_scenarios_first_view_100(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = make_app(FakeEngine())
    assert snap_compare(app, terminal_size=(100, 30), run_before=_scenarios_first_view(app))


def test_scenarios_first_view_160(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = make_app(FakeEngine())
    assert snap_compare(app, terminal_size=(160, 45), run_before=_scenarios_first_view(app))


def test_measure_after_ping(snap_compare) -> None:  # type: ignore[no-untyped-def]
    fake = _applied()
    app = make_app(fake)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("3")
        view = app.query_one(MeasureView)
        view.clock = lambda: "12:00:00"
        await wait_for(pilot, lambda: len(view._names) == 2)
        await pilot.press("p")
        await wait_for(pilot, lambda: "ping:h1-a:h2-a" in fake.calls and not view.running)
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def _measured(app, fake: FakeEngine, key: str, call: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("3")
        view = app.query_one(MeasureView)
        view.clock = lambda: "12:00:00"
        await wait_for(pilot, lambda: len(view._names) == 2)
        await pilot.press(key)
        await wait_for(pilot, lambda: call in fake.calls and not view.running)
        await pilot.pause(0.2)

    return run_before


def test_ping_plot(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """RTT (ms) over time (s) for 10 probes 0.2 s apart, the 6th lost (a red x at 0 ms)."""
    fake = _applied()
    fake.ping_rtts = (0.61, 0.55, 0.58, 0.83, 0.64, None, 0.52, 0.57, 1.12, 0.6)
    app = make_app(fake)
    assert snap_compare(app, terminal_size=(100, 30), run_before=_measured(app, fake, "p", "ping:h1-a:h2-a"))


def test_iperf_plot(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """Throughput (Mbit/s) per 1 s interval over 3 s: bars of 612, 948 and 873."""
    fake = _applied()
    fake.iperf_bps = (612e6, 948e6, 873e6)
    app = make_app(fake)
    assert snap_compare(app, terminal_size=(100, 30), run_before=_measured(app, fake, "t", "iperf:h1-a:h2-a"))


def _four(scenario: str, flip: frozenset[tuple[str, str]] = frozenset()) -> FakeEngine:
    fake = FakeEngine(per_host=2, pingall_flip=flip)  # h1-a, h1-b, h2-a, h2-b
    fake.applied[scenario] = [True] * len(STEPS)
    return fake


def _pingall(app, fake: FakeEngine):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("3")
        view = app.query_one(MeasureView)
        view.clock = lambda: "12:00:00"
        await wait_for(pilot, lambda: len(view._names) == 4)
        await pilot.press("a")
        await wait_for(pilot, lambda: "pingall" in fake.calls and not view.running)
        await pilot.pause(0.2)

    return run_before


def test_matrix_exp1_all_reach(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """4 containers, every pair a green +; the cursor (reversed) on h1-a -> h1-b."""
    fake = _four("exp1")
    app = make_app(fake)
    assert snap_compare(app, terminal_size=(100, 32), run_before=_pingall(app, fake))


def test_matrix_exp3_isolation(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """VLAN 10 (h1-a, h2-a) and 20 (h1-b, h2-b): green + within a VLAN, blue . across."""
    fake = _four("exp3")
    app = make_app(fake)
    assert snap_compare(app, terminal_size=(100, 32), run_before=_pingall(app, fake))


def test_matrix_unexpected_failure(snap_compare) -> None:  # type: ignore[no-untyped-def]
    """exp1 with h1-b -> h2-a failing: one red X, the cursor on it and its line explained."""
    fake = _four("exp1", frozenset({("h1-b", "h2-a")}))
    app = make_app(fake)
    assert snap_compare(app, terminal_size=(100, 32), run_before=_pingall(app, fake))


def test_help(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = make_app(FakeEngine())

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_for(pilot, lambda: app.snap is not None)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_doctor_80x24(snap_compare) -> None:  # type: ignore[no-untyped-def]
    fake = _applied()
    fake.veth_down = True
    app = make_app(fake)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.press("3")
        view = app.query_one(MeasureView)
        await wait_for(pilot, lambda: len(view._names) == 2)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, DoctorScreen) and app.screen.report is not None)
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_faults_tab(snap_compare) -> None:  # type: ignore[no-untyped-def]
    fake = _applied()
    fake.injected["forward-drop"] = False
    app = make_app(fake)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        from screens.faults import FaultsView

        await pilot.press("4")
        await wait_for(pilot, lambda: bool(app.query(FaultsView)))
        view = app.query_one(FaultsView)
        await wait_for(pilot, lambda: "backend" in str(view.query_one("#impair-state").render()))
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=(140, 40), run_before=run_before)


def _captured(app, xray: bool):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_for(pilot, lambda: app.snap is not None)
        await pilot.press("5")
        await wait_for(pilot, lambda: app.capture_view is not None and app.capture_view.is_mounted)
        app.capture_view.start("host1:eth1")
        await wait_for(pilot, lambda: len(app.capture_view.rows) == 5)
        if xray:
            from textual.widgets import DataTable

            table = app.query_one("#cap-list", DataTable)
            table.focus()
            table.move_cursor(row=4)
            await pilot.press("enter")
        await pilot.pause(0.2)

    return run_before


def test_capture_list(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = make_app(_applied())
    assert snap_compare(app, terminal_size=(120, 30), run_before=_captured(app, xray=False))


def test_capture_xray_too_big(snap_compare) -> None:  # type: ignore[no-untyped-def]
    app = make_app(_applied())
    assert snap_compare(app, terminal_size=(120, 34), run_before=_captured(app, xray=True))
