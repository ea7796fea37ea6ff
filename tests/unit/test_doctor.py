"""The doctor's pure logic: facts in, checks out (no root, no lab)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from workbench.doctor.collect import route_lookup_text
from workbench.doctor.facts import (
    DoctorFacts,
    EndFacts,
    EndPlan,
    FirewallFact,
    HostFacts,
    HostPlan,
    OvsPortFact,
    ProbeFact,
    RouteFact,
    TraceFact,
    tunnel_route,
)
from workbench.doctor.format import format_report
from workbench.doctor.iptables import forward_verdict
from workbench.doctor.model import MtuHop, Status
from workbench.doctor.mtu import growing_sizes, mtu_verdict, next_probe
from workbench.doctor.report import build_report
from workbench.doctor.trace import parse_dp_ports, parse_trace
from workbench.intents import AcceptBridged, LabUp, LinkUp, PairTalks, Route, SetMtu, TunnelRemote
from workbench.links import LinkRow


def link(
    name: str, *, up: bool = True, mtu: int = 1462, master: str | None = None, addr: str = ""
) -> LinkRow:
    return LinkRow(
        index=1,
        name=name,
        kind="veth",
        state="UP" if up else "DOWN",
        admin_up=up,
        mtu=mtu,
        mac="02:00:00:00:00:01",
        master=master,
        addresses=(addr,) if addr else (),
        peer_index=None,
    )


SAVE_ACCEPT = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
SEED_RULES = (
    "[0:0] -A FORWARD -o br0 -m conntrack --ctstate RELATED,ESTABLISHED "
    '-m comment --comment "containet" -j ACCEPT\n'
    '[0:0] -A FORWARD -i br0 ! -o br0 -m comment --comment "containet" -j ACCEPT\n'
    '[0:0] -A FORWARD -i br0 -o br0 -m comment --comment "containet" -j ACCEPT\n'
)
SAVE_DROP = f"*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [7:588]\n:OUTPUT ACCEPT [0:0]\n{SEED_RULES}COMMIT\n"


def host(
    name: str, ip: str, peer_ip: str, *, exp1: bool, veth: str, veth_kw: dict | None = None
) -> HostFacts:
    kw = veth_kw or {}
    links = [
        link(veth, master="docker0" if exp1 else None, **kw),
        link("br-phy", mtu=1500, addr=f"{ip}/24"),
        link("br0", master="docker0" if exp1 else None, mtu=1500),
    ]
    if exp1:
        links.append(link("docker0", addr="172.15.42.1/24"))
    ports = [
        OvsPortFact(
            "gre0", "br0", "gre", options=(("remote_ip", peer_ip),), admin_state="up", link_state="up"
        ),
        OvsPortFact("br0", "br0", "internal", admin_state="up", link_state="up"),
    ]
    if not exp1:
        ports.append(OvsPortFact(veth, "br0", "", admin_state="up", link_state="up"))
    return HostFacts(
        name,
        ip,
        links=tuple(links),
        ovs_bridges=("br-phy", "br0"),
        ovs_ports=tuple(ports),
        firewall=FirewallFact(SAVE_ACCEPT, 1),
        underlay_route=f"src {ip} dev br-phy",
        underlay_ping=ProbeFact(56, False, 2, 2),
    )


def facts(exp1: bool = True, *, vlan: bool = False) -> DoctorFacts:
    h1 = host("host1", "10.0.0.3", "10.0.0.4", exp1=exp1, veth="cn-h1-a")
    h2 = host("host2", "10.0.0.4", "10.0.0.3", exp1=exp1, veth="cn-h2-a")
    if vlan:
        h1 = replace(
            h1, ovs_ports=tuple(replace(p, tag=10) if p.name == "cn-h1-a" else p for p in h1.ovs_ports)
        )
        h2 = replace(
            h2, ovs_ports=tuple(replace(p, tag=10) if p.name == "cn-h2-a" else p for p in h2.ovs_ports)
        )
    src = EndFacts(
        "h1-a",
        "host1",
        True,
        link("eth0", addr="172.15.42.100/24"),
        RouteFact("172.15.42.101", "eth0"),
        "cn-h1-a",
    )
    dst = EndFacts(
        "h2-a",
        "host2",
        True,
        link("eth0", addr="172.15.42.101/24"),
        RouteFact("172.15.42.100", "eth0"),
        "cn-h2-a",
    )

    def plan(cidr: str) -> EndPlan:
        if exp1:
            return EndPlan(cidr, "docker0", False, None, False, "172.15.42.1")
        return EndPlan(cidr, "br0", True, 10 if vlan else None, True, "172.15.42.1")

    hp = {
        h: HostPlan("docker0" if exp1 else None, "br0", (("gre0", "gre", peer),))
        for h, peer in (("host1", "10.0.0.4"), ("host2", "10.0.0.3"))
    }
    return DoctorFacts(
        src=src,
        dst=dst,
        src_ip="172.15.42.100",
        dst_ip="172.15.42.101",
        hosts={"host1": h1, "host2": h2},
        src_plan=plan("172.15.42.100/24"),
        dst_plan=plan("172.15.42.101/24"),
        host_plans=hp,
        scenario="exp1" if exp1 else ("exp3" if vlan else "exp2"),
        subnet="172.15.42.0/24",
        small=ProbeFact(56, False, 2, 2),
        big=ProbeFact(1434, True, 2, 2),
    )


def with_host(f: DoctorFacts, name: str, **changes: object) -> DoctorFacts:
    hosts = dict(f.hosts)
    hosts[name] = replace(hosts[name], **changes)  # type: ignore[arg-type]
    return replace(f, hosts=hosts)


@pytest.mark.parametrize("exp1", [True, False])
def test_healthy_pair_is_all_ok(exp1: bool) -> None:
    report = build_report(facts(exp1))
    assert report.ok and report.first_failure is None
    assert {c.status for c in report.checks} == {Status.OK}
    hops = report.hops
    assert hops[0] == "container h1-a (host1)" and hops[-1] == "end to end"
    assert ("docker0 (host1)" in hops) == exp1
    assert (
        hops.index("tunnel gre0 (host1)") < hops.index("tunnel gre0 (host2)") < hops.index("OVS br0 (host2)")
    )
    assert "every hop is OK" in format_report(report)
    assert report.to_dict()["ok"] is True


def test_host_side_veth_down_is_the_first_failure() -> None:
    f = facts()
    h1 = f.hosts["host1"]
    down = tuple(replace(lk, admin_up=False, state="DOWN") if lk.name == "cn-h1-a" else lk for lk in h1.links)
    f = with_host(f, "host1", links=down)
    assert f.src.eth0 is not None
    f = replace(f, src=replace(f.src, eth0=replace(f.src.eth0, state="LOWERLAYERDOWN")))
    first = build_report(f).first_failure
    assert first is not None and first.hop == "veth cn-h1-a (host1)" and first.name == "up"
    assert first.fix is not None and isinstance(first.fix.intents[0], LinkUp)
    assert first.fix_command == "ip link set cn-h1-a up; ip neigh flush dev eth0 nud incomplete nud failed"
    carrier = build_report(f).checks[0]
    assert carrier.status == Status.WARN and "host side is down" in carrier.evidence


def test_every_fix_ends_when_the_pair_talks_again() -> None:
    """A fix returns when traffic flows (as `scenario apply` does): its last intent
    pings the destination from the source until it answers; its commands are the fix's."""
    f = facts()
    f = replace(f, src=replace(f.src, route=RouteFact("172.15.42.101", error="Network is unreachable")))
    fixes = [c for c in build_report(f).checks if c.fix is not None]
    assert fixes
    for check in fixes:
        assert check.fix is not None
        last = check.fix.intents[-1]
        assert isinstance(last, PairTalks) and last.readiness
        assert (last.src.name, last.dst_ip) == ("h1-a", "172.15.42.101")
        assert "ping" not in (check.fix_command or "")


def test_no_route_names_the_container() -> None:
    f = facts()
    f = replace(f, src=replace(f.src, route=RouteFact("172.15.42.101", error="Network is unreachable")))
    first = build_report(f).first_failure
    assert first is not None and first.hop == "container h1-a (host1)" and first.name == "route"
    assert [type(i) for i in first.fix.intents] == [Route, Route, PairTalks]  # type: ignore[union-attr]
    assert "ip route add 172.15.42.0/24 dev eth0" in (first.fix_command or "")


def test_wrong_remote_ip_names_the_tunnel() -> None:
    f = facts(exp1=False)
    h1 = f.hosts["host1"]
    ports = tuple(
        replace(p, options=(("remote_ip", "10.0.0.9"),)) if p.name == "gre0" else p for p in h1.ovs_ports
    )
    first = build_report(with_host(f, "host1", ovs_ports=ports)).first_failure
    assert first is not None and first.hop == "tunnel gre0 (host1)" and first.name == "remote_ip"
    assert "10.0.0.9" in first.evidence and "10.0.0.4" in first.evidence
    assert first.fix_command == "ovs-vsctl set interface gre0 options:remote_ip=10.0.0.4"


def test_wrong_vlan_tag_names_the_port_not_the_correct_end() -> None:
    f = facts(exp1=False, vlan=True)
    f = replace(f, small=ProbeFact(56, False, 2, 0), big=ProbeFact(1430, True, 2, 0))
    h2 = f.hosts["host2"]
    f = with_host(
        f, "host2", ovs_ports=tuple(replace(p, tag=20) if p.name == "cn-h2-a" else p for p in h2.ovs_ports)
    )
    report = build_report(f)
    first = report.first_failure
    assert first is not None and first.hop == "veth cn-h2-a (host2)" and first.name == "VLAN tag"
    assert first.fix_command == "ovs-vsctl set port cn-h2-a tag=10"
    src_tag = next(c for c in report.checks if c.hop == "veth cn-h1-a (host1)" and c.name == "VLAN tag")
    assert src_tag.status == Status.OK


def test_mtu_trap_names_the_mtu_and_fixes_both_ends() -> None:
    f = facts()
    assert f.src.eth0 is not None and f.dst.eth0 is not None
    f = replace(
        f,
        src=replace(f.src, eth0=replace(f.src.eth0, mtu=1500)),
        dst=replace(f.dst, eth0=replace(f.dst.eth0, mtu=1500)),
        big=ProbeFact(1472, True, 2, 0),
    )
    first = build_report(f).first_failure
    assert first is not None and first.hop == "container h1-a (host1)" and first.name == "MTU"
    assert "1500 > 1462" in first.evidence and "ping works, TCP stalls" in first.evidence
    intents = [i for i in first.fix.intents if isinstance(i, SetMtu)]  # type: ignore[union-attr]
    assert len(intents) == len(first.fix.intents) - 1  # type: ignore[union-attr]
    assert {(i.container.name if i.container else "host", i.link, i.mtu) for i in intents} == {
        ("h1-a", "eth0", 1462),
        ("host", "cn-h1-a", 1462),
        ("h2-a", "eth0", 1462),
        ("host", "cn-h2-a", 1462),
    }


def test_vlan_tag_costs_four_bytes_of_mtu() -> None:
    f = facts(exp1=False, vlan=True)
    first = build_report(f).first_failure
    assert first is not None and first.name == "MTU" and "1462 > 1458" in first.evidence


def test_mtu_is_only_a_warning_when_small_pings_fail_too() -> None:
    f = facts(exp1=False, vlan=True)
    f = replace(f, small=ProbeFact(56, False, 2, 0))
    mtu = next(c for c in build_report(f).checks if c.name == "MTU")
    assert mtu.status == Status.WARN


def test_forward_drop_with_bridge_netfilter_names_the_firewall() -> None:
    f = with_host(facts(), "host2", firewall=FirewallFact(SAVE_DROP, 1))
    first = build_report(f).first_failure
    assert first is not None and first.hop == "docker0 (host2)" and first.name == "firewall"
    assert "FORWARD policy DROP" in first.evidence and "7 packets" in first.evidence
    assert isinstance(first.fix.intents[0], AcceptBridged)  # type: ignore[union-attr]
    # bridge netfilter off: the same rules do not matter
    off = with_host(facts(), "host2", firewall=FirewallFact(SAVE_DROP, 0))
    assert build_report(off).ok
    unknown = with_host(facts(), "host2", firewall=FirewallFact(SAVE_DROP, None))
    fw = next(c for c in build_report(unknown).checks if c.name == "firewall" and "host2" in c.hop)
    assert fw.status == Status.WARN


def test_forward_verdict_walks_rules_and_user_chains() -> None:
    assert forward_verdict(SAVE_DROP, "docker0", "1.1.1.1", "1.1.1.2") is not None
    assert not forward_verdict(SAVE_DROP, "docker0", None, None).accept  # type: ignore[union-attr]
    assert forward_verdict(SAVE_DROP, "br0", None, None).accept  # type: ignore[union-attr]
    save = (
        "*filter\n:FORWARD DROP [0:0]\n:USER - [0:0]\n"
        "-A FORWARD -j USER\n-A USER -s 172.15.42.0/24 -j ACCEPT\nCOMMIT\n"
    )
    assert forward_verdict(save, "docker0", "172.15.42.100", "172.15.42.101").accept  # type: ignore[union-attr]
    assert not forward_verdict(save, "docker0", "10.1.1.1", "172.15.42.101").accept  # type: ignore[union-attr]
    tcp_only = "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -p tcp -j ACCEPT\nCOMMIT\n"
    assert not forward_verdict(tcp_only, "docker0", None, None).accept  # type: ignore[union-attr]
    plus = "*filter\n:FORWARD DROP [0:0]\n-A FORWARD -i dock+ -j ACCEPT\nCOMMIT\n"
    assert forward_verdict(plus, "docker0", None, None).accept  # type: ignore[union-attr]


def test_parse_trace_maps_datapath_ports_and_tunnels() -> None:
    dp = parse_dp_ports(
        "netdev@ovs-netdev: hit:1 missed:2\n  br0:\n    br0 65534/3: (tap)\n    gre0 1/4: (gre)\n"
    )
    assert dp == {3: "br0", 4: "gre0"}
    text = (
        "     -> tunneling to 10.0.0.4 via br-phy\n"
        "Datapath actions: tnl_push(tnl_port(4),header(size=38,type=3,eth(dst=a,src=b,dl_type=0x0800),"
        "ipv4(src=10.0.0.3,dst=10.0.0.4,proto=47)),out_port(1)),3\n"
    )
    t = parse_trace("br0", "in_port=LOCAL", text, dp)
    assert t.outputs == ("gre0", "br0") and t.tunnels == ("10.0.0.4",) and not t.dropped
    assert parse_trace("br0", "x", "Datapath actions: drop\n", dp).dropped


def test_trace_drop_fails_the_ovs_hop() -> None:
    f = facts(exp1=False)
    f = with_host(f, "host1", trace=TraceFact("br0", "in_port=cn-h1-a", "drop"))
    first = build_report(f).first_failure
    assert first is not None and first.hop == "OVS br0 (host1)" and first.name == "ofproto/trace"


NEIGHBOR_MISS = (
    "     -> output to native tunnel\n"
    "     -> tunneling to 10.0.0.9 via br-phy\n"
    "     -> neighbor cache miss for 10.0.0.9 on bridge br-phy, sending ARP request\n"
    "Datapath actions: drop\n"
)


def test_a_tunnel_whose_far_end_does_not_answer_arp_is_blamed_not_ovs() -> None:
    f = facts()
    wrong = tuple(
        replace(p, options=(("remote_ip", "10.0.0.9"),)) if p.name == "gre0" else p
        for p in f.hosts["host1"].ovs_ports
    )
    trace = parse_trace("br0", "in_port=LOCAL", NEIGHBOR_MISS, {})
    assert trace.dropped and trace.tunnels == ("10.0.0.9",)
    report = build_report(with_host(f, "host1", ovs_ports=wrong, trace=trace))
    ovs_hop = [c for c in report.checks if c.hop == "OVS br0 (host1)" and c.name == "ofproto/trace"]
    assert ovs_hop[0].status == Status.WARN and "neighbor cache miss" in ovs_hop[0].evidence
    first = report.first_failure
    assert first is not None and (first.hop, first.name) == ("tunnel gre0 (host1)", "remote_ip")
    assert first.fix is not None and isinstance(first.fix.intents[0], TunnelRemote)


def test_tunnel_route() -> None:
    underlay = {"host1": "10.0.0.3", "host2": "10.0.0.4", "host3": "10.0.0.5"}
    star = {"host1": ["10.0.0.4", "10.0.0.5"], "host2": ["10.0.0.3"], "host3": ["10.0.0.3"]}
    mesh = {
        "host1": ["10.0.0.4", "10.0.0.5"],
        "host2": ["10.0.0.3", "10.0.0.5"],
        "host3": ["10.0.0.3", "10.0.0.4"],
    }
    assert tunnel_route("host2", "host3", underlay, star) == ("host2", "host1", "host3")
    assert tunnel_route("host1", "host3", underlay, star) == ("host1", "host3")
    assert tunnel_route("host2", "host3", underlay, mesh) == ("host2", "host3")
    assert tunnel_route("host2", "host3", underlay, {}) == ("host2", "host3")  # nothing planned: look direct
    assert tunnel_route("host2", "host2", underlay, star) == ("host2",)


def star_facts() -> DoctorFacts:
    """h2-a on host2 to h3-a on host3, the hosts joined only through host1."""
    ips = {"host1": "10.0.0.3", "host2": "10.0.0.4", "host3": "10.0.0.5"}
    peers = {"host1": ("host2", "host3"), "host2": ("host1",), "host3": ("host1",)}
    hosts, plans = {}, {}
    for name, ip in ips.items():
        base = host(name, ip, "", exp1=True, veth=f"cn-{name[0]}{name[-1]}-a")
        tunnels = tuple(
            OvsPortFact(
                f"gre0-{p}", "br0", "gre", options=(("remote_ip", ips[p]),), admin_state="up", link_state="up"
            )
            for p in peers[name]
        )
        hosts[name] = replace(base, ovs_ports=tunnels + tuple(p for p in base.ovs_ports if p.name != "gre0"))
        plans[name] = HostPlan("docker0", "br0", tuple((f"gre0-{p}", "gre", ips[p]) for p in peers[name]))
    f = facts()
    src = replace(f.src, name="h2-a", host="host2", host_veth="cn-h2-a")
    dst = replace(f.dst, name="h3-a", host="host3", host_veth="cn-h3-a")
    route = tunnel_route("host2", "host3", ips, {h: [t[2] for t in plans[h].tunnels] for h in plans})
    return replace(f, src=src, dst=dst, hosts=hosts, host_plans=plans, route=route)


def test_a_path_through_a_third_host_is_walked_not_misread() -> None:
    report = build_report(star_facts())
    assert report.ok, format_report(report)
    hops = report.hops
    walk = [
        "tunnel gre0-host1 (host2)",
        "tunnel gre0-host2 (host1)",
        "OVS br0 (host1)",
        "tunnel gre0-host3 (host1)",
    ]
    walk += ["tunnel gre0-host1 (host3)", "OVS br0 (host3)"]
    assert [h for h in hops if h in walk] == walk


def test_a_wrong_tunnel_on_the_host_in_between_is_the_first_failure() -> None:
    f = star_facts()
    h1 = f.hosts["host1"]
    wrong = tuple(
        replace(p, options=(("remote_ip", "10.0.0.9"),)) if p.name == "gre0-host3" else p
        for p in h1.ovs_ports
    )
    first = build_report(with_host(f, "host1", ovs_ports=wrong)).first_failure
    assert first is not None and (first.hop, first.name) == ("tunnel gre0-host3 (host1)", "remote_ip")
    assert first.fix is not None and first.fix.intents[0] == TunnelRemote("host1", "gre0-host3", "10.0.0.5")


def test_ovs_down_is_named_with_lab_up_fix() -> None:
    f = with_host(facts(), "host2", ovs_ok=False, error="ovs: cannot reach")
    first = build_report(f).first_failure
    assert first is not None and first.hop == "tunnel gre0 (host2)" and "not answering" in first.evidence
    assert first.fix is not None and isinstance(first.fix.intents[0], LabUp)


def test_path_mtu_search_helpers() -> None:
    assert growing_sizes(1462) == [576, 1280, 1400, 1450, 1462]
    assert growing_sizes(1000) == [576, 1000]
    assert next_probe(1450, 1500) == 1475 and next_probe(1462, 1463) is None
    hops = (MtuHop("h1-a eth0", 1500), MtuHop("tunnel (GRE)", 1462))
    ok, text = mtu_verdict(hops, 1462, 1462, 1500, "GRE over a 1500 underlay")
    assert not ok and "TCP stalls" in text
    assert mtu_verdict(hops, 1462, 1462, 1462, "GRE")[0]
    assert not mtu_verdict(hops, 1462, None, 1462, "GRE")[0]


def test_statuses_are_the_three_words() -> None:
    assert (Status.OK, Status.FAIL, Status.WARN) == ("ok", "fail", "warn")


def test_underlay_route_on_link_has_no_gateway() -> None:
    """OVS prints `gateway ::` for an on-link route: the doctor says on-link instead."""
    assert route_lookup_text("src 10.0.0.3\ngateway ::\ndev br-phy\n") == "dev br-phy src 10.0.0.3 (on-link)"
    assert route_lookup_text("src 10.0.0.3\ndev br-phy\n") == "dev br-phy src 10.0.0.3 (on-link)"
    assert route_lookup_text("src 10.0.0.3\ngateway 10.0.0.1\ndev br-phy\n") == (
        "via 10.0.0.1 dev br-phy src 10.0.0.3"
    )
    assert route_lookup_text("Not found\n") == "Not found"
