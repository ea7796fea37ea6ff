"""Engine.refresh (inventory.watch.recollect) on the real lab: what the app re-reads
after events matches a full snapshot, and only the named part is read again."""

from __future__ import annotations

import pytest

from workbench.inventory.model import Snapshot
from workbench.inventory.watch import Dirty

pytestmark = [pytest.mark.lab, pytest.mark.timeout(120)]


def _port(p: object) -> tuple[object, ...]:
    return (p.name, p.type, p.tag, p.options)  # type: ignore[attr-defined]


def _shape(snap: Snapshot) -> tuple[object, ...]:
    """Everything but the packet counters, which tick between two reads."""
    hosts = tuple(
        (
            h.name,
            h.reachable,
            h.ovs_connected,
            tuple((lk.name, lk.state, lk.mtu, lk.addresses, lk.master) for lk in h.links),
            h.linux_bridges,
            tuple((b.name, tuple(_port(p) for p in b.ports)) for b in h.ovs_bridges),
        )
        for h in snap.hosts
    )
    return hosts, snap.containers, snap.docker_connected, snap.errors


def test_refresh_of_everything_matches_a_snapshot(engine) -> None:  # type: ignore[no-untyped-def]
    engine.apply("exp1")
    full = engine.snapshot()
    names = frozenset(h.name for h in engine.hosts())
    fresh = engine.refresh(Snapshot(engine.mode, ""), Dirty(names, containers=True))
    assert _shape(fresh) == _shape(full)
    assert {c.name for c in fresh.containers} >= {"h1-a", "h2-a"}
    assert all(c.attached_to == "docker0" for c in fresh.containers)  # resolved against the new host views


def test_refresh_reads_only_what_it_is_told(engine) -> None:  # type: ignore[no-untyped-def]
    engine.apply("exp2")
    snap = engine.snapshot()
    one = engine.refresh(snap, Dirty(frozenset({"host1"}), containers=False))
    assert one.host("host2") is snap.host("host2")  # not read again
    assert one.host("host1") is not snap.host("host1")
    assert one.containers is snap.containers
    both = engine.refresh(snap, Dirty(frozenset(), containers=True))
    assert both.hosts == snap.hosts and both.containers is not snap.containers
    attached = {c.name: c.attached_to for c in snap.containers}
    assert {c.name: c.attached_to for c in both.containers} == attached
