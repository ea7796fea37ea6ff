"""workbench.topology on recorded facts: attribution by veth ends and nsids, tunnels
by remote_ip, marks, lookups and host chains (pure: nothing here touches the machine)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from workbench import containers as dk
from workbench.cli import render_status
from workbench.inventory.collect import view
from workbench.marks import LABEL, LABEL_HOST, LABEL_NAME, MARK_VALUE
from workbench.topology import AttachKind, EdgeKind, Marks, Topology, TunnelType, build
from workbench.topology.facts import (
    ContainerFacts,
    Facts,
    HostFacts,
    LinkFact,
    NetnsFacts,
    NsidFact,
    OvsBridgeFact,
    OvsdbFacts,
    OvsInterfaceFact,
    OvsPortFact,
    from_json,
    to_json,
)

FIXTURE = Path(__file__).parent / "fixtures" / "topology_exp1_handbuilt.json"
#: the recording was made in a lab of instance "topo"
TOPO = Marks(value="topo", link_alias="containet:topo", ns_alias="containet:topo")
OURS = ((LABEL, MARK_VALUE), (LABEL_HOST, "host1"), (LABEL_NAME, "h1-a"))


# --- small builders of facts -------------------------------------------------------------
def lo() -> LinkFact:
    return LinkFact(1, "lo", addresses=("127.0.0.1/8",))


def veth(index: int, name: str, peer: int, nsid: int | None = 0, **kw: object) -> LinkFact:
    return LinkFact(index, name, "veth", "UP", 1500, peer_index=peer, link_netnsid=nsid, **kw)  # type: ignore[arg-type]


def host(
    name: str,
    inode: int,
    links: tuple[LinkFact, ...] = (),
    bridges: tuple[OvsBridgeFact, ...] = (),
    underlay: str | None = None,
    nsids: tuple[NsidFact, ...] = (),
) -> HostFacts:
    ip = underlay or f"10.0.0.{int(name[-1]) + 2}"
    return HostFacts(name, ip, NetnsFacts(inode, (lo(), *links), nsids), OvsdbFacts(bridges))


def container(
    cid: str,
    name: str,
    inode: int,
    links: tuple[LinkFact, ...] = (),
    nsids: tuple[NsidFact, ...] = (),
    labels: tuple[tuple[str, str], ...] = (),
) -> ContainerFacts:
    ns = NetnsFacts(inode, (lo(), *links), nsids, gateway="172.15.42.1")
    return ContainerFacts(cid, (name,), labels, "running", 100 + inode, ns)


def tunnel(name: str, remote: str, kind: str = "gre") -> OvsPortFact:
    return OvsPortFact(name, interfaces=(OvsInterfaceFact(name, kind, (("remote_ip", remote),)),))


def port(name: str, tag: int | None = None, ours: bool = False) -> OvsPortFact:
    ids = (("containet", MARK_VALUE),) if ours else ()
    return OvsPortFact(name, tag, ids, (OvsInterfaceFact(name),))


def br0(*ports: OvsPortFact) -> OvsBridgeFact:
    internal = OvsPortFact("br0", interfaces=(OvsInterfaceFact("br0", "internal"),))
    return OvsBridgeFact("br0", "netdev", (), (internal, *ports))


def cid(n: int) -> str:
    return f"{n:x}" * 64


# --- the recorded exp1, built by hand ------------------------------------------------------
@pytest.fixture(scope="module")
def exp1() -> Topology:
    return build(from_json(FIXTURE.read_text()), TOPO)


def test_recording_round_trips() -> None:
    facts = from_json(FIXTURE.read_text())
    assert from_json(to_json(facts)) == facts
    assert {c.name for c in facts.containers} == {"web1", "web2"}


def test_handbuilt_exp1_containers_on_their_hosts(exp1: Topology) -> None:
    for name, where, veth_name in (("web1", "host1", "vethw1"), ("web2", "host2", "vethw2")):
        c = exp1.container(name)
        assert c is not None and not c.ours
        w = exp1.wiring(c)
        assert (w.host, w.host_veth, w.attached_to, w.vlan) == (where, veth_name, "docker0", None)
        assert w.attachment is not None and w.attachment.kind is AttachKind.LINUX_BRIDGE
        assert w.ovs_bridge == "br0"  # br0 is a port of docker0
        assert [(t.name, t.type, t.remote_ip) for t in w.tunnels] == [
            ("gre0", TunnelType.GRE, "10.0.0.4" if where == "host1" else "10.0.0.3")
        ]
        assert exp1.containers_on(where) == (c,)
    assert exp1.unplaced() == ()


def test_handbuilt_exp1_graph_edges(exp1: Topology) -> None:
    web1 = exp1.container("web1")
    assert web1 is not None
    hv = exp1.host_veth(web1)
    assert hv is not None and hv.name == "vethw1"
    eth0 = exp1.peer(hv)
    assert eth0 is not None and eth0.name == "eth0" and eth0.owner == web1.id
    assert exp1.peer(eth0) == hv
    docker0 = exp1.master(hv)
    assert docker0 is not None and [m.name for m in exp1.members(docker0)] == ["br0", "vethw1"]
    (gre,) = exp1.tunnels("host1")
    target = exp1.tunnel_target(gre)
    assert target is not None and target.name == "host2"
    assert exp1.out(gre.id, EdgeKind.TUNNELS_TO) == (target,)


def test_handbuilt_exp1_marks(exp1: Topology) -> None:
    """The lab itself is containet's (instance topo); what was built by hand is not."""
    assert all(h.ours for h in exp1.hosts)
    for h in ("host1", "host2"):
        obr = {b.name: b for b in exp1.ovs_bridges(h)}
        assert obr["br-phy"].ours and not obr["br0"].ours
        assert not any(p.ours for p in exp1.ports(obr["br0"]))
        assert [b.ours for b in exp1.linux_bridges(h)] == [False]
    # seen from another instance, nothing of it is ours
    other = build(from_json(FIXTURE.read_text()), Marks(value="else", link_alias="x", ns_alias="x"))
    assert not any(getattr(n, "ours", False) for n in other.nodes)


def test_exp1_inventory_view(exp1: Topology) -> None:
    snap = view(exp1, "lab", "lab is up")
    web1 = snap.container("web1")
    assert web1 is not None
    assert (web1.host, web1.host_veth, web1.attached_to, web1.ours) == ("host1", "vethw1", "docker0", False)
    assert (web1.attach_kind, web1.reaches, web1.ip) == ("linux bridge", "br0", "172.15.42.110")
    assert snap.container(web1.full_id[:6]) is web1 and snap.container("172.15.42.111").name == "web2"  # type: ignore[union-attr]
    text = render_status(snap)
    row = next(line for line in text.splitlines() if "web2" in line)
    assert "vethw2" in row and "docker0" in row and "not containet's" in row
    assert text.index("web2") > text.index("host2  underlay")
    assert "facts" not in snap.to_dict()


# --- exp2 by hand: the veth is an OVS port, tagged ------------------------------------------
def exp2_facts() -> Facts:
    h1 = host(
        "host1",
        11,
        (veth(5, "vethx1", 2, 1), LinkFact(6, "br0", "tun")),
        (br0(port("vethx1", 10), tunnel("gre0", "10.0.0.4")),),
    )
    h2 = host("host2", 12, (LinkFact(5, "br0", "tun"),), (br0(tunnel("gre0", "10.0.0.3")),))
    c = container(
        cid(1), "x1", 21, (veth(2, "eth0", 5, 0, addresses=("172.15.42.120/24",)),), (NsidFact(0, 11),)
    )
    return Facts((h1, h2), (c,))


def test_handbuilt_exp2_ovs_port_with_tag() -> None:
    topo = build(exp2_facts())
    c = topo.container("x1")
    assert c is not None
    w = topo.wiring(c)
    assert (w.host, w.host_veth, w.attached_to, w.vlan, w.ovs_bridge) == ("host1", "vethx1", "br0", 10, "br0")
    assert w.attachment is not None and w.attachment.kind is AttachKind.OVS_BRIDGE
    assert [t.name for t in w.tunnels] == ["gre0"]
    snap = view(topo)
    assert snap.container("x1").vlan == 10  # type: ignore[union-attr]


# --- the same peer ifindex in two hosts -------------------------------------------------
def twin_hosts(container_nsids: tuple[NsidFact, ...], host1_nsids: tuple[NsidFact, ...] = ()) -> Topology:
    """host1 and host2 both hold a veth index 9 whose peer index is 2; the container's
    eth0 is index 2 with peer index 9: the ifindex pairs fit both."""
    h1 = host("host1", 11, (veth(9, "vethA", 2, 0),), nsids=host1_nsids)
    h2 = host("host2", 12, (veth(9, "vethB", 2, 0),))
    c = container(cid(1), "web", 21, (veth(2, "eth0", 9, 0),), container_nsids)
    return build(Facts((h1, h2), (c,)))


def test_nsid_decides_between_two_hosts_with_the_same_ifindex() -> None:
    for inode, where, name in ((12, "host2", "vethB"), (11, "host1", "vethA")):
        topo = twin_hosts((NsidFact(0, inode),))
        c = topo.container("web")
        assert c is not None
        assert topo.wiring(c).host == where and topo.wiring(c).host_veth == name


def test_without_nsids_two_fitting_hosts_claim_none() -> None:
    topo = twin_hosts(())
    c = topo.container("web")
    assert c is not None and topo.host_of(c) is None and c in topo.unplaced()


def test_a_host_side_nsid_rules_a_host_out() -> None:
    """host1's veth says its peer is in namespace 99 (not the container's): host2 it is."""
    topo = twin_hosts((), host1_nsids=(NsidFact(0, 99),))
    c = topo.container("web")
    assert c is not None and topo.wiring(c).host == "host2"


def test_an_nsid_naming_an_unknown_namespace_claims_no_host() -> None:
    topo = twin_hosts((NsidFact(0, 77),))
    c = topo.container("web")
    assert c is not None and topo.host_of(c) is None


def test_a_container_of_another_lab_with_the_same_ifindex_pair_is_no_rival() -> None:
    """A container whose eth0 peer is in a namespace that is none of our hosts (another
    lab's host) has the same ifindex pair as ours: its nsids exclude our hosts."""
    h1 = host("host1", 11, (veth(9, "vethA", 2, 0),))
    ours = container(cid(1), "web", 21, (veth(2, "eth0", 9, 0),), (NsidFact(0, 11),))
    stray = container(cid(2), "stray", 22, (veth(2, "eth0", 9, 0),), (NsidFact(None, 11),))
    topo = build(Facts((h1,), (ours, stray)))
    web, other = topo.container("web"), topo.container("stray")
    assert web is not None and other is not None
    assert topo.wiring(web).host_veth == "vethA" and topo.host_of(other) is None
    # without the stray's nsids nothing tells them apart: no guess for either
    assert ours.netns is not None and stray.netns is not None
    blind = build(
        Facts(
            (h1,),
            (
                replace(ours, netns=replace(ours.netns, nsids=())),
                replace(stray, netns=replace(stray.netns, nsids=())),
            ),
        )
    )
    assert all(blind.host_of(c) is None for c in blind.containers)


# --- no network at all ----------------------------------------------------------------
def test_a_container_without_network_is_listed_with_no_host() -> None:
    bare = container(cid(3), "bare", 23)
    stopped = ContainerFacts(cid(4), ("cn-h1-a",), OURS, "exited")
    topo = build(Facts((host("host1", 11),), (bare, stopped)))
    for name in ("bare", "h1-a"):
        c = topo.container(name)
        assert c is not None and topo.host_of(c) is None
        w = topo.wiring(c)
        assert (w.host, w.host_veth, w.attachment, w.ovs_bridge, w.tunnels) == (None, None, None, None, ())
    assert {c.name for c in topo.unplaced()} == {"bare", "h1-a"}
    snap = view(topo)
    # the inventory keeps containet's own (shown on the host it was started for), not strays
    assert [c.name for c in snap.containers] == ["h1-a"]
    assert [c.name for c in snap.shown_on("host1")] == ["h1-a"] and snap.containers_on("host1") == ()
    assert "stopped (started for host1): `scenario apply` runs and wires it again" in render_status(snap)


# --- tunnels --------------------------------------------------------------------------
def test_tunnels_go_to_the_host_owning_their_remote_ip() -> None:
    h1 = host(
        "host1",
        11,
        bridges=(br0(tunnel("gre0-host2", "10.0.0.4"), tunnel("vx-host3", "192.168.9.5", "vxlan")),),
    )
    h2 = host("host2", 12, bridges=(br0(tunnel("gre0", "10.0.0.3"), tunnel("gre-nowhere", "10.0.0.99")),))
    # host3's configured underlay is something else; 192.168.9.5 sits on one of its links
    h3 = host(
        "host3", 13, (LinkFact(4, "br-phy", "tun", addresses=("192.168.9.5/24",)),), underlay="10.9.9.9"
    )
    topo = build(Facts((h1, h2, h3)))
    targets = {
        t.name: (tt.name if (tt := topo.tunnel_target(t)) else None)
        for h in ("host1", "host2")
        for t in topo.tunnels(h)
    }
    assert targets == {"gre0-host2": "host2", "vx-host3": "host3", "gre0": "host1", "gre-nowhere": None}
    assert {t.type for t in topo.tunnels("host1")} == {TunnelType.GRE, TunnelType.VXLAN}


def chain_topology(pairs: list[tuple[str, str]]) -> Topology:
    names = ("host1", "host2", "host3")
    ip = {n: f"10.0.0.{i + 3}" for i, n in enumerate(names)}
    ports: dict[str, list[OvsPortFact]] = {n: [] for n in names}
    for a, b in pairs:
        ports[a].append(tunnel(f"gre0-{b}", ip[b]))
        ports[b].append(tunnel(f"gre0-{a}", ip[a]))
    return build(Facts(tuple(host(n, 11 + i, bridges=(br0(*ports[n]),)) for i, n in enumerate(names))))


def test_host_chain_star_and_mesh() -> None:
    star = chain_topology([("host1", "host2"), ("host1", "host3")])
    assert star.host_chain("host2", "host3") == ("host2", "host1", "host3")
    assert star.host_chain("host1", "host3") == ("host1", "host3")
    assert star.host_chain("host2", "host2") == ("host2",)
    mesh = chain_topology([("host1", "host2"), ("host1", "host3"), ("host2", "host3")])
    assert mesh.host_chain("host2", "host3") == ("host2", "host3")
    assert mesh.host_chain("host3", "host1") == ("host3", "host1")
    apart = chain_topology([("host1", "host2")])
    assert apart.host_chain("host1", "host3") == ()
    assert apart.host_chain("host1", "nowhere") == ()


# --- marks ---------------------------------------------------------------------------------
def test_ours_needs_the_mark_and_a_name_label() -> None:
    image_only = ((LABEL, MARK_VALUE),)  # what a container run by hand from our image used to carry
    other_instance = ((LABEL, MARK_VALUE + "x"), (LABEL_NAME, "h1-a"))
    facts = Facts(
        (),
        (
            ContainerFacts(cid(1), ("cn-h1-a",), OURS, "running"),
            ContainerFacts(cid(2), ("byhand",), image_only, "running"),
            ContainerFacts(cid(3), ("cn-x-h1-a",), other_instance, "running"),
            ContainerFacts(cid(5), ("plain",), (("containet.image", "1"),), "running"),
        ),
    )
    topo = build(facts)
    ours = {c.docker_name: (c.ours, c.name) for c in topo.containers}
    assert ours == {
        "cn-h1-a": (True, "h1-a"),
        "byhand": (False, "byhand"),
        "cn-x-h1-a": (False, "cn-x-h1-a"),
        "plain": (False, "plain"),
    }
    assert [dk.is_ours(dict(c.labels)) for c in facts.containers] == [True, False, False, False]
    h1a = topo.container("h1-a")
    assert h1a is not None and h1a.label_host == "host1"


def test_links_and_ovs_rows_are_ours_by_their_marks() -> None:
    marks = Marks()
    h = host(
        "host1",
        11,
        (
            LinkFact(5, "docker0", "bridge", alias=marks.link_alias),
            LinkFact(6, "mybr", "bridge", alias="mine"),
        ),
        (OvsBridgeFact("br0", "netdev", (("containet", MARK_VALUE),), (port("p1", ours=True), port("p2"))),),
    )
    topo = build(Facts((h,)))
    assert {b.name: b.ours for b in topo.linux_bridges("host1")} == {"docker0": True, "mybr": False}
    (obr,) = topo.ovs_bridges("host1")
    assert obr.ours and {p.name: p.ours for p in topo.ports(obr)} == {"p1": True, "p2": False}


# --- finding a container ---------------------------------------------------------------
def lookup_topology() -> Topology:
    h1 = host("host1", 11, (veth(5, "cn-h1-a", 2), veth(6, "vethw", 3, 1)))
    ours = container(
        "abcd1234" + "0" * 56,
        "cn-test-h1-a",
        21,
        (veth(2, "eth0", 5, addresses=("172.15.42.100/24",)),),
        (NsidFact(0, 11),),
        OURS,
    )
    byhand = container(
        "abce5678" + "1" * 56,
        "h1-a",
        22,
        (veth(3, "eth0", 6, addresses=("172.15.42.110/24",)),),
        (NsidFact(0, 11),),
    )
    return build(Facts((h1,), (ours, byhand)))


def test_container_lookups() -> None:
    topo = lookup_topology()
    by = {w: (c.docker_name if (c := topo.container(w)) else None) for w in (
        "h1-a",  # containet's name wins over a hand-built container's docker name
        "cn-test-h1-a",
        "/cn-test-h1-a",
        "172.15.42.110",
        "abcd1234" + "0" * 56,
        "abcd12340000",
        "abcd",
        "ABCE5",
        "abc",  # a prefix naming both
        "ab",  # too short
        "172.15.42.99",
        "nobody",
    )}  # fmt: skip
    assert by == {
        "h1-a": "cn-test-h1-a",
        "cn-test-h1-a": "cn-test-h1-a",
        "/cn-test-h1-a": "cn-test-h1-a",
        "172.15.42.110": "h1-a",
        "abcd1234" + "0" * 56: "cn-test-h1-a",
        "abcd12340000": "cn-test-h1-a",
        "abcd": "cn-test-h1-a",
        "ABCE5": "h1-a",
        "abc": None,
        "ab": None,
        "172.15.42.99": None,
        "nobody": None,
    }
    snap = view(topo)
    assert {
        w: (s.docker_name if (s := snap.container(w)) else None) for w in ("h1-a", "abce", "172.15.42.100")
    } == {
        "h1-a": "cn-test-h1-a",
        "abce": "h1-a",
        "172.15.42.100": "cn-test-h1-a",
    }
    hand = snap.container("abce")
    assert hand is not None and (hand.host, hand.host_veth, hand.ours) == ("host1", "vethw", False)


def test_build_is_pure_and_repeatable() -> None:
    facts = from_json(FIXTURE.read_text())
    assert build(facts, TOPO) == build(facts, TOPO)
    assert build(replace(facts, docker_error="dockerd is not answering")).docker_connected is False
