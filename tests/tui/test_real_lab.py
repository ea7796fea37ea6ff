"""The TUI on the real lab: apply exp1 from the Scenarios panel, watch the
containers appear in the inventory from events (no refresh key), ping; the
doctor finds a veth taken down behind the app's back and its fix repairs it."""

from __future__ import annotations

import subprocess

import pytest
from tests_support import lab_host
from textual.widgets import DataTable, Select

from screens.app import make_app
from screens.doctor import DoctorScreen
from screens.measure import MeasureView
from screens.scenario import ScenariosView
from workbench.marks import host_veth

from .conftest import label_text, tree_text, wait_for

pytestmark = [pytest.mark.lab, pytest.mark.asyncio, pytest.mark.timeout(180)]


async def test_apply_exp1_live_inventory_and_ping(engine) -> None:  # type: ignore[no-untyped-def]
    app = make_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.snap is not None, timeout=20)
        await wait_for(
            pilot, lambda: all(app.sources.get(k) for k in ("docker", "netlink:host1", "ovs:host1")), 20
        )
        assert "h1-a" not in tree_text(app, "host1")
        full_reads = app.collects

        await pilot.press("2")
        panel = app.query_one(ScenariosView).current
        assert panel is not None and panel.scenario == "exp1"
        await wait_for(pilot, lambda: bool(panel.steps), timeout=20)
        await pilot.press("r")
        await wait_for(pilot, lambda: panel.busy == "", timeout=90)
        assert all(s == "verified" for s in panel.states), (panel.states, panel.messages)

        # the containers show up from docker/netlink/OVS events: nobody asked for a refresh
        await wait_for(
            pilot,
            lambda: (
                "h1-a" in tree_text(app, "host1")
                and "172.15.42." in tree_text(app, "host1")
                and "h2-a" in tree_text(app, "host2")
            ),
            timeout=15,
        )
        assert app.collects > full_reads
        assert "gre" in tree_text(app, "host1") and "remote_ip" in tree_text(app, "host1")

        await pilot.press("3")
        view = app.query_one(MeasureView)
        await wait_for(pilot, lambda: len(view._names) >= 2, timeout=10)
        await pilot.press("p")
        await wait_for(pilot, lambda: view.running == "", timeout=30)
        stats = str(app.query_one("#live-stats").render())
        assert "replies" in stats and "loss" in stats, stats
        assert view.series is not None and view.series.got  # the RTT plot has points


async def test_doctor_finds_a_downed_veth_and_its_fix_repairs_it(engine) -> None:  # type: ignore[no-untyped-def]
    engine.apply("exp1")
    host1 = lab_host(engine, "host1")
    assert host1.netns is not None  # a lab host: its own namespace
    veth = host_veth("h1-a")
    # break the path in this run's own lab: h1-a's host side goes down
    subprocess.run(["ip", "-n", host1.netns, "link", "set", veth, "down"], check=True, timeout=10)
    app = make_app(engine)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.snap is not None, timeout=20)
        await pilot.press("3")
        view = app.query_one(MeasureView)
        await wait_for(pilot, lambda: {"h1-a", "h2-a"} <= set(view._names), timeout=10)
        app.query_one("#src", Select).value = "h1-a"
        app.query_one("#dst", Select).value = "h2-a"
        await pilot.press("d")
        await wait_for(
            pilot, lambda: isinstance(app.screen, DoctorScreen) and app.screen.report is not None, timeout=30
        )
        doc = app.screen
        assert isinstance(doc, DoctorScreen) and doc.report is not None
        bad = doc.report.first_failure
        assert bad is not None and veth in bad.hop and bad.fix is not None, doc.report.summary
        assert "✗ FAIL" in str(doc.query_one("#doctor-detail").render())

        await pilot.press("f")  # Engine.doctor_fix, then the doctor runs again
        await wait_for(
            pilot,
            lambda: bool(doc.applied) and not doc.busy and doc.report is not None and doc.report.ok,
            timeout=30,
        )
        assert "every hop is OK" in str(doc.query_one("#doctor-summary").render())
        state = subprocess.run(
            ["ip", "-n", host1.netns, "-o", "link", "show", veth], capture_output=True, text=True, timeout=10
        ).stdout
        assert "state UP" in state or ",UP" in state, state
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, DoctorScreen))
        table = app.query_one("#history", DataTable)
        assert str(table.get_row_at(table.row_count - 1)[1]) == "doctor"


async def test_hand_built_containers_show_on_their_host_marked(engine) -> None:  # type: ignore[no-untyped-def]
    """The seed's Exp1 built by hand with plain commands (no scenario, no marks): the
    inventory shows each container under the host its veth peer lives on, with its
    attachment, visibly marked as not built by containet."""
    import handbuilt as hb

    from workbench.marks import INSTANCE

    hb.teardown(INSTANCE, prefix="tu")
    try:
        web1, web2 = hb.exp1_gre(INSTANCE, mtu=1462, prefix="tu")
        app = make_app(engine)
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_for(pilot, lambda: app.snap is not None, timeout=20)
            await wait_for(
                pilot,
                lambda: web1.name in tree_text(app, "host1") and web2.name in tree_text(app, "host2"),
                timeout=20,
            )
            one, two = tree_text(app, "host1"), tree_text(app, "host2")
            line1 = next(line for line in one.splitlines() if web1.name in line)
            line2 = next(line for line in two.splitlines() if web2.name in line)
            assert "(not containet's)" in line1 and "(not containet's)" in line2, (line1, line2)
            assert web2.name not in one and web1.name not in two
            assert web1.host_veth in one and "→ docker0 → br0" in line1, one
    finally:
        hb.teardown(INSTANCE, prefix="tu")


async def test_crash_banner_names_the_repair_and_l_keeps_the_experiment(engine) -> None:  # type: ignore[no-untyped-def]
    """exp1 applied, the app open: host1's ovs-vswitchd dies (kill -9, as a crash). The
    banner names what L will repair; L restarts that daemon alone, the Scenarios panel
    verifies its steps again by itself, no container is recreated, and pingall is clean."""
    import os
    import signal

    engine.apply("exp1")
    ids = {c.name: c.full_id for c in engine.snapshot().containers}
    run_dir = lab_host(engine, "host1").run_dir
    assert run_dir is not None
    pidfile = run_dir / "ovs-vswitchd.pid"
    app = make_app(engine)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(pilot, lambda: app.snap is not None, timeout=20)
        await wait_for(pilot, lambda: bool(app.sources.get("ovs:host1")), timeout=20)
        await pilot.press("2")
        panel = app.query_one(ScenariosView).current
        assert panel is not None and panel.scenario == "exp1"
        await wait_for(pilot, lambda: bool(panel.states) and set(panel.states) == {"verified"}, timeout=30)

        reads: list[str] = []  # the panel's status reads, from here on
        status = engine.status

        def counted(name: str) -> list[bool]:
            reads.append(name)
            return status(name)  # type: ignore[no-any-return]

        engine.status = counted
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
        banner = app.query_one("#lab-banner")
        await wait_for(pilot, lambda: banner.display and bool(app.snap and app.snap.lab_repairs), timeout=20)
        line = label_text(app, "#lab-line")
        assert "host1: ovs-vswitchd is not running" in line, line
        assert "host2" not in line, line  # the healthy host is not touched
        assert "Repair (L)" in str(app.query_one("#lab-up").render())

        seen = len(reads)
        await pilot.press("L")
        await wait_for(pilot, lambda: not banner.display and app.lab_busy == "", timeout=60)
        await wait_for(pilot, lambda: len(reads) > seen, timeout=30)  # re-verified, unasked
        await wait_for(pilot, lambda: set(panel.states) == {"verified"}, timeout=30)

    assert {c.name: c.full_id for c in engine.snapshot().containers} == ids  # nothing recreated
    matrix = engine.pingall()
    assert matrix.all_passed, matrix.to_dict()
