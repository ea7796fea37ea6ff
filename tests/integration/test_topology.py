"""workbench.topology on the real lab: the raw rtnetlink reader agrees with pyroute2,
and a container wired by hand (no marks, a veth named as containet never would)
is found on its host next to containet's own."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from tests_support import lab_host

from workbench import links
from workbench.marks import NS_PREFIX
from workbench.topology import AttachKind
from workbench.topology.discover import discover
from workbench.topology.rtnl import Rtnl

pytestmark = [pytest.mark.lab, pytest.mark.timeout(180)]

HAND = f"{NS_PREFIX}hand"  # docker name of the hand-built container (this instance's prefix)


def run(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, timeout=30).stdout.strip()


def _raw(ipr: object) -> list[tuple[object, ...]]:
    del ipr
    with Rtnl() as nl:
        addrs = nl.addresses()
        return [
            (
                r.index,
                r.name,
                r.kind,
                r.state,
                r.mtu,
                r.mac,
                r.master,
                r.peer_index,
                r.alias,
                tuple(addrs.get(r.index, ())),
            )
            for r in nl.links()
        ]


def _pyroute2(ipr: object) -> list[tuple[object, ...]]:
    rows = links.read_links(ipr)  # type: ignore[arg-type]
    by_name = {r.name: r.index for r in rows}
    return [
        (
            r.index,
            r.name,
            r.kind,
            r.state,
            r.mtu,
            r.mac,
            by_name.get(r.master) if r.master else None,
            r.peer_index,
            r.alias,
            r.addresses,
        )
        for r in rows
    ]


def test_rtnl_reads_what_pyroute2_reads(applied) -> None:  # type: ignore[no-untyped-def]
    engine = applied("exp1")
    for host in engine.hosts():
        assert host.place.netlink(_raw) == host.place.netlink(_pyroute2)


@pytest.fixture
def by_hand(applied) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """exp1 applied, and one more container on host2's docker0, wired with plain commands."""
    engine = applied("exp1")
    host2 = lab_host(engine, "host2")
    subprocess.run(["docker", "rm", "-f", HAND], capture_output=True, check=False)
    try:
        run("docker", "run", "-d", "--net=none", "--name", HAND, "containet/busybox", "sleep", "600")
        pid = run("docker", "inspect", "-f", "{{.State.Pid}}", HAND)
        ns = host2.netns or ""
        run("ip", "-n", ns, "link", "add", "handv", "type", "veth", "peer", "name", "eth0", "netns", pid)
        run("nsenter", "-t", pid, "-n", "ip", "addr", "add", "172.15.42.150/24", "dev", "eth0")
        run("nsenter", "-t", pid, "-n", "ip", "link", "set", "eth0", "up")
        run("ip", "-n", ns, "link", "set", "handv", "master", "docker0", "up")
        yield engine
    finally:
        subprocess.run(["docker", "rm", "-f", HAND], capture_output=True, check=False)


def test_a_hand_built_container_is_on_its_host(by_hand) -> None:  # type: ignore[no-untyped-def]
    topo = discover(by_hand.hosts())
    hand = topo.container(HAND)
    assert hand is not None and not hand.ours
    w = topo.wiring(hand)
    assert (w.host, w.host_veth, w.attached_to, w.ovs_bridge) == ("host2", "handv", "docker0", "br0")
    assert w.attachment is not None and w.attachment.kind is AttachKind.LINUX_BRIDGE
    assert [t.name for t in w.tunnels] == ["gre0"]
    assert topo.container("172.15.42.150") == hand and topo.container(hand.docker_id[:8]) == hand
    ours = topo.container("h1-a")
    assert ours is not None and ours.ours and topo.wiring(ours).host_veth == "cn-h1-a"
    assert topo.host_chain("host1", "host2") == ("host1", "host2")
    snap = by_hand.snapshot()
    c = snap.container(HAND)
    assert c is not None and (c.host, c.host_veth, c.attached_to, c.ours) == (
        "host2",
        "handv",
        "docker0",
        False,
    )
    assert snap.container("h1-a").ours  # type: ignore[union-attr]
