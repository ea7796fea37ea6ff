"""Pilot tests with a fake engine: every screen and action, no root, no lab."""

from __future__ import annotations

import threading

import pytest
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Sparkline, Tree

from screens.app import ContainetApp, make_app
from screens.dialogs import HelpScreen, ScriptScreen
from screens.doctor import DoctorScreen
from screens.inventory import HostTree, InventoryView
from screens.measure import MeasureView, parse_settings
from screens.scenario import ScenariosView
from screens.widgets.topology import Topology, draw

from .conftest import wait_for
from .fake_engine import STEPS, FakeEngine

pytestmark = pytest.mark.asyncio

SIZE = (100, 32)


def tree_text(app: ContainetApp, host: str) -> str:
    tree = app.query_one(f"#tree-{host}", HostTree)
    out = []

    def walk(node) -> None:  # type: ignore[no-untyped-def]
        out.append(str(node.label))
        for child in node.children:
            walk(child)

    walk(tree.root)
    return "\n".join(out)


def label_text(app: ContainetApp, selector: str) -> str:
    return str(app.query_one(selector, Label).render())


def applied_all(engine: FakeEngine) -> None:
    engine.applied["exp1"] = [True] * len(STEPS)


def panel(app: ContainetApp):  # type: ignore[no-untyped-def]
    current = app.query_one(ScenariosView).current
    assert current is not None
    return current


# --- inventory ------------------------------------------------------------------
async def test_inventory_shows_hosts_bridges_tunnel_containers(fake: FakeEngine) -> None:
    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snap is not None and "h1-a" in tree_text(app, "host1"))
        t1 = tree_text(app, "host1")
        assert "docker0" in t1 and "172.15.42.1/24" in t1
        assert "gre0 gre remote_ip 10.0.0.4" in t1
        assert "172.15.42.100" in t1 and "mtu 1450" in t1 and "docker0" in t1
        assert "h2-a" in tree_text(app, "host2")
        drawing = draw(app.snap, 100).plain
        assert "GRE" in drawing and "h1-a" in drawing and "h2-a" in drawing
        assert "lab is up" in label_text(app, "#topbar")
        assert not app.query_one("#lab-banner").display


async def test_live_changes_are_coalesced_and_shown_without_refresh_key(fake: FakeEngine) -> None:
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snap is not None and fake.watcher is not None)
        assert "h1-a" not in tree_text(app, "host1")
        applied_all(fake)  # the lab changed behind the app's back...
        watcher = fake.watcher
        assert watcher is not None and watcher.started

        def burst() -> None:  # ...and the sources report it, from their own threads
            for _ in range(30):
                watcher.emit("netlink", "host1")
            watcher.emit("docker")

        before = app.collects
        seen = len(fake.calls)
        thread = threading.Thread(target=burst)
        thread.start()
        thread.join()
        await wait_for(pilot, lambda: "h1-a" in tree_text(app, "host1"))
        await pilot.pause(0.3)
        refreshes = [c for c in fake.calls[seen:] if c.startswith("refresh:")]
        assert 1 <= len(refreshes) <= 3, refreshes  # 31 events, one or two re-collects
        assert refreshes[0] == "refresh:host1:1"
        assert app.collects - before == len(refreshes)
        assert "snapshot" in fake.calls and fake.calls.count("snapshot") == 1  # no full re-read
    assert watcher.stopped


async def test_disconnected_source_is_shown_and_reconnects(fake: FakeEngine) -> None:
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.sources.get("docker") is True)
        fake.docker_up = False
        assert fake.watcher is not None
        fake.watcher.state("docker", None, False, "dockerd is not answering")
        fake.watcher.state("ovs", "host2", False, "database socket missing")
        await wait_for(pilot, lambda: app.snap is not None and not app.snap.docker_connected)
        top = label_text(app, "#topbar")
        assert "docker✗" in top and "ovs✗" in top
        assert "docker is disconnected" in str(app.query_one(Topology).render())
        assert "ovs ○" in str(app.query_one("#tree-host2", HostTree).border_subtitle)
        fake.docker_up = True
        fake.watcher.state("docker", None, True)
        fake.watcher.state("ovs", "host2", True)
        await wait_for(pilot, lambda: app.snap is not None and app.snap.docker_connected)
        assert "docker●" in label_text(app, "#topbar")
        assert "✗" not in label_text(app, "#topbar")


async def test_lab_down_offers_lab_up() -> None:
    fake = FakeEngine(lab_up_state=False)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        assert app.query_one("#lab-banner").display
        assert "lab is down" in str(app.query_one("#lab-line", Label).render())
        assert "UNREACHABLE" in tree_text(app, "host1")
        await pilot.press("L")
        await wait_for(pilot, lambda: "lab_up" in fake.calls and app.lab_is_up)
        await wait_for(pilot, lambda: not app.query_one("#lab-banner").display)
        assert fake.calls.count("snapshot") == 2  # the lab came up: everything read again


async def test_lab_up_button_works_with_the_mouse() -> None:
    fake = FakeEngine(lab_up_state=False)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        await pilot.click("#lab-up")
        await wait_for(pilot, lambda: "lab_up" in fake.calls and app.lab_is_up)


# --- scenarios -------------------------------------------------------------------
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
    fake = FakeEngine(step_delay=0.4)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_for(pilot, lambda: bool(panel(app).steps))
        p = panel(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: p.states[0] == "running")
        assert "step 1: linux bridge docker0" in str(p.query_one("#status", Label).render())
        assert p.query_one("#next", Button).disabled
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


# --- measure ---------------------------------------------------------------------
async def _measure_ready(pilot, app: ContainetApp) -> MeasureView:  # type: ignore[no-untyped-def]
    await pilot.press("3")
    view = app.query_one(MeasureView)
    await wait_for(pilot, lambda: view._names == ("h1-a", "h2-a"))
    return view


async def test_ping_shows_replies_sparkline_stats_and_history(fake: FakeEngine) -> None:
    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view = await _measure_ready(pilot, app)
        await pilot.press("p")
        await wait_for(pilot, lambda: not view.running and "ping:h1-a:h2-a" in fake.calls)
        assert app.query_one("#spark", Sparkline).data == [0.61, 0.55, 0.0, 0.72]
        stats = str(app.query_one("#live-stats", Label).render())
        assert "3/4 replies" in stats and "loss 25%" in stats and "0.55/0.63/0.72" in stats
        table = app.query_one("#history", DataTable)
        assert table.row_count == 1
        assert "h1-a→h2-a" in str(table.get_row_at(0)[2])


async def test_iperf_and_pingall_buttons(fake: FakeEngine) -> None:
    applied_all(fake)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view = await _measure_ready(pilot, app)
        await pilot.click("#iperf")
        await wait_for(pilot, lambda: not view.running and "iperf:h1-a:h2-a" in fake.calls)
        assert app.query_one("#spark", Sparkline).data == [1.2e9, 1.3e9, 1.25e9]
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
        view = await _measure_ready(pilot, app)
        await pilot.press("p")
        await wait_for(pilot, lambda: view.running == "ping")
        assert app.check_action("stop", ()) is True
        assert app.query_one("#ping", Button).disabled
        await pilot.press("x")
        await wait_for(pilot, lambda: not view.running)
        assert "(stopped)" in str(app.query_one("#live-stats", Label).render())


async def test_measure_error_is_shown(fake: FakeEngine) -> None:
    applied_all(fake)
    fake.measure_error = "h2-a is not running"
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        view = await _measure_ready(pilot, app)
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
        view = await _measure_ready(pilot, app)
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
        view = await _measure_ready(pilot, app)
        await _set(pilot, app, "ping-count", "0")
        await pilot.press("p")
        await wait_for(pilot, lambda: not view.running and "ping:h1-a:h2-a" in fake.calls)
        assert "✗ bad count 0: use 1 to 10000" in str(app.query_one("#live-stats", Label).render())
        app.query_one("#iperf-parallel", Input).value = "1e"  # not an integer: refused before the engine
        seen = len(fake.calls)
        await pilot.click("#iperf")
        await pilot.pause()
        assert not view.running and len(fake.calls) == seen


# --- doctor ------------------------------------------------------------------------
def _doctor(app: ContainetApp) -> DoctorScreen:
    assert isinstance(app.screen, DoctorScreen)
    return app.screen


async def test_doctor_shows_hops_and_applies_the_fix(fake: FakeEngine) -> None:
    applied_all(fake)
    fake.veth_down = True
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await _measure_ready(pilot, app)
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
        await _measure_ready(pilot, app)
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


# --- keys, help, palette, cli ------------------------------------------------------
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
