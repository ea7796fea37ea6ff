"""Pilot tests of the Inventory tab with the fake engine: hosts, bridges, tunnel and
containers, live changes coalesced, sources that go and come back, Lab up."""

from __future__ import annotations

import threading

import pytest
from textual.widgets import Label

from screens.app import make_app
from screens.inventory import HostTree
from screens.widgets.topology import Topology, draw

from .conftest import SIZE, applied_all, label_text, tree_text, wait_for
from .fake_engine import FakeEngine

pytestmark = pytest.mark.asyncio


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


async def test_half_built_lab_banner_names_what_l_repairs() -> None:
    repair = "host1: ovs-vswitchd is not running: restart it on its database"
    fake = FakeEngine(repairs=(repair,))
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        assert app.query_one("#lab-banner").display
        line = label_text(app, "#lab-line")
        assert "half-built" in line and "nothing healthy is rebuilt" in line and repair in line, line
        assert "Repair (L)" in str(app.query_one("#lab-up").render())
        await pilot.press("L")
        await wait_for(pilot, lambda: "lab_up" in fake.calls and app.lab_is_up)
        await wait_for(pilot, lambda: not app.query_one("#lab-banner").display)


async def test_lab_up_button_works_with_the_mouse() -> None:
    fake = FakeEngine(lab_up_state=False)
    app = make_app(fake)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        await pilot.click("#lab-up")
        await wait_for(pilot, lambda: "lab_up" in fake.calls and app.lab_is_up)
