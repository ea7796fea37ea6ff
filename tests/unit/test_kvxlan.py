"""Scenario kvxlan without root: its plan, the tunrc's VNI, the kernel VXLAN device in
the topology and the doctor's checks of it (issue 17)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scenarios import kvxlan
from workbench.doctor.facts import (
    DoctorFacts,
    EndFacts,
    EndPlan,
    FirewallFact,
    HostFacts,
    HostPlan,
    ProbeFact,
    RouteFact,
    VxlanPlan,
)
from workbench.doctor.model import Status
from workbench.doctor.report import build_report
from workbench.errors import BadInput
from workbench.host import Host, Place
from workbench.intents import Enslave, KernelUnderlay, TunnelsCarry, VxlanDevice, VxlanRemote
from workbench.lab import handed_to_kernel, lab_host
from workbench.links import LinkRow, VxlanRow
from workbench.marks import IPT_COMMENT
from workbench.setup import Setup, default_containers, shipped_tunrc
from workbench.topology.build import build
from workbench.topology.facts import Facts, LinkFact, NetnsFacts, VxlanFact
from workbench.topology.facts import HostFacts as TopoHost
from workbench.tunrc import TunrcError, parse_text, validate


def lab_setup(count: int = 2) -> Setup:
    hosts = tuple(lab_host(f"host{i}", i) for i in range(1, count + 1))
    return Setup(
        hosts=hosts,
        tunrc={h.name: shipped_tunrc(h.name, count) for h in hosts},
        containers=default_containers(hosts, "172.15.42.0/24"),
        peers={h.name: h.underlay_ip for h in hosts},
    )


def test_two_hosts_follow_the_seed_through_the_kernel() -> None:
    plan = kvxlan.plan(lab_setup())
    ids = [s.id for s in plan.steps]
    assert ids[:5] == [
        "host1/underlay:eth1",
        "host1/bridge:docker0",
        "host1/vxlan:vxlan0",
        "host1/enslave:vxlan0",
        "host1/iptables",
    ]
    dev = plan.steps[2].intent
    assert isinstance(dev, VxlanDevice)
    assert (dev.vni, dev.local, dev.remotes, dev.port, dev.mtu, dev.underlay) == (
        42,
        "10.0.0.3",
        ("10.0.0.4",),
        4789,
        1450,
        "eth1",
    )
    assert plan.steps[2].commands[0].text == (
        "ip link add vxlan0 type vxlan id 42 local 10.0.0.3 remote 10.0.0.4 dstport 4789 dev eth1"
    )
    handover = plan.steps[0].intent
    assert isinstance(handover, KernelUnderlay) and handover.cidr == "10.0.0.3/24"
    assert [c.text for c in plan.steps[0].commands][1:] == [
        "ovs-vsctl del-port br-phy eth1",
        "ip addr del 10.0.0.3/24 dev br-phy",
        "ip addr add 10.0.0.3/24 dev eth1",
        "ip link set eth1 up",
    ]
    assert any("-i docker0 -o docker0" in c.text for c in plan.steps[4].commands)  # no br0 here
    plumbs = [s for s in plan.steps if "plumb:" in s.id]
    assert len(plumbs) == 4 and all("mtu 1450" in s.commands[0].text for s in plumbs)
    assert all(s.why.endswith(".") and s.commands for s in plan.steps)
    assert plan.expect == {"all_talk": True}
    ready = plan.steps[-1].intent
    assert isinstance(ready, TunnelsCarry) and ready.readiness and ready.host == ""
    # each tunnel both ways (the hosts' first containers), then each other container's port
    assert [(h, c.name, ip) for h, c, ip in ready.probes] == [
        ("host1", "h1-a", "172.15.42.101"),
        ("host2", "h2-a", "172.15.42.100"),
        ("host1", "h1-b", "172.15.42.101"),
        ("host2", "h2-b", "172.15.42.100"),
    ]


def test_three_hosts_flood_to_every_other_host_without_spanning_tree() -> None:
    plan = kvxlan.plan(lab_setup(3))
    devs = [s.intent for s in plan.steps if isinstance(s.intent, VxlanDevice)]
    assert [(d.host, d.remotes) for d in devs] == [
        ("host1", ("10.0.0.4", "10.0.0.5")),
        ("host2", ("10.0.0.3", "10.0.0.5")),
        ("host3", ("10.0.0.3", "10.0.0.4")),
    ]
    texts = [c.text for c in plan.step("host1/vxlan:vxlan0").commands]
    assert "remote" not in texts[0]
    assert "bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 10.0.0.4" in texts
    assert "bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst 10.0.0.5" in texts
    assert not any("rstp" in s.id for s in plan.steps)
    ready = plan.steps[-1].intent
    assert isinstance(ready, TunnelsCarry) and len(ready.probes) == 3 * 2 + 3  # host pairs, then the b's
    assert "no loop" in plan.step("host1/vxlan:vxlan0").why


def test_real_mode_has_no_handover_and_lets_the_route_pick_the_device() -> None:
    real = Host("host1", 1, "10.0.0.3", Place.root(), "unix:/var/run/openvswitch/db.sock", real=True)
    setup = Setup(hosts=(real,), tunrc={"host1": shipped_tunrc("host1")})
    plan = kvxlan.plan(setup)
    assert not any(isinstance(s.intent, KernelUnderlay) for s in plan.steps)
    dev = plan.step("host1/vxlan:vxlan0").intent
    assert isinstance(dev, VxlanDevice) and dev.underlay is None and dev.remotes == ("10.0.0.4",)


def test_tunrc_names_the_device_and_the_vni() -> None:
    setup = lab_setup()
    rcs = {h: replace(rc, tun_type="vxlan", tun_if="vx7", vni=7) for h, rc in setup.tunrc.items()}
    plan = kvxlan.plan(replace(setup, tunrc=rcs))
    dev = plan.step("host1/vxlan:vx7").intent
    assert isinstance(dev, VxlanDevice) and dev.vni == 7


def test_tunrcs_that_disagree_on_the_vni_are_refused() -> None:
    setup = lab_setup()
    rcs = dict(setup.tunrc, host2=replace(setup.tunrc["host2"], vni=43))
    with pytest.raises(BadInput, match="disagree on the VNI.*host1 VNI=42, host2 VNI=43"):
        kvxlan.plan(replace(setup, tunrc=rcs))


SEED = "\n".join(
    f"export {k}='{v}'"
    for k, v in (
        ("BRIDGE_NAME", "docker0"),
        ("BRIDGE_ADDRESS", "172.15.42.1/24"),
        ("SUBNET", "172.15.42.0/24"),
        ("OVS_BRIDGE", "br0"),
        ("TUN_IF", "gre0"),
        ("TUN_TYPE", "gre"),
        ("REMOTE_IP", "10.0.0.4"),
    )
)


def test_vni_is_optional_and_validated() -> None:
    assert validate(parse_text(SEED)).vni == 42
    assert validate(parse_text(SEED + "\nexport VNI='4096'")).vni == 4096
    for bad in ("0", "16777216", "abc", "-1"):
        with pytest.raises(TunrcError, match=rf"rc: VNI='{bad}' is not a VXLAN network identifier"):
            validate(parse_text(SEED + f"\nexport VNI='{bad}'"), "rc")
    rc = validate(parse_text(SEED + "\nexport VNI='9'"))
    assert validate(parse_text(rc.render())) == rc


def test_br_phy_mark_says_the_underlay_is_the_kernels() -> None:
    assert handed_to_kernel([{"name": "br-phy", "external_ids": {"containet-underlay": "kernel"}}])
    assert not handed_to_kernel([{"name": "br-phy", "external_ids": {"containet": "1"}}])
    assert not handed_to_kernel([])


def _vx_link(
    index: int, remotes: tuple[str, ...], vni: int = 42, alias: str | None = IPT_COMMENT
) -> LinkFact:
    return LinkFact(
        index,
        "vxlan0",
        "vxlan",
        "UNKNOWN",
        1450,
        master=3,
        alias=alias,
        vxlan=VxlanFact(vni, None, "10.0.0.3", 4789, 2, remotes),
    )


def test_topology_and_inventory_show_a_kernel_vxlan_device() -> None:
    from workbench.inventory.collect import view

    ns = NetnsFacts(
        1,
        (
            LinkFact(2, "eth1", "veth", "UP", 1500, addresses=("10.0.0.3/24",)),
            LinkFact(3, "docker0", "bridge", "UP", 1450),
            _vx_link(4, ("10.0.0.4", "10.0.0.5")),
        ),
    )
    facts = Facts(
        hosts=(
            TopoHost("host1", "10.0.0.3", ns),
            TopoHost("host2", "10.0.0.4", NetnsFacts(2)),
            TopoHost("host3", "10.0.0.5", NetnsFacts(3)),
        )
    )
    topo = build(facts)
    (tun,) = topo.kernel_tunnels("host1")
    assert (tun.kernel, tun.bridge, tun.vni, tun.remotes, tun.underlay, tun.ours) == (
        True,
        "docker0",
        42,
        ("10.0.0.4", "10.0.0.5"),
        "eth1",
        True,
    )
    assert [h.name for h in topo.tunnel_targets(tun)] == ["host2", "host3"]
    assert topo.host_chain("host1", "host3") == ("host1", "host3")
    assert topo.tunnels("host1") == ()  # OVS tunnel ports only
    kt = view(topo).host("host1").kernel_tunnels[0]  # type: ignore[union-attr]
    assert kt.describe() == "vni 42 remote 10.0.0.4,10.0.0.5 dstport 4789 local 10.0.0.3 dev eth1 mtu 1450"


# --- the doctor ------------------------------------------------------------------------
def _row(
    name: str, *, kind: str = "veth", master: str | None = None, addr: str = "", mtu: int = 1450
) -> LinkRow:
    return LinkRow(1, name, kind, "UP", True, mtu, "02:00:00:00:00:01", master, (addr,) if addr else (), None)


def _vxlan(remote: str, vni: int = 42, local: str = "10.0.0.3") -> VxlanRow:
    link = replace(_row("vxlan0", kind="vxlan", master="docker0"), alias=IPT_COMMENT)
    return VxlanRow(link, vni, remote, local, 4789, "eth1", (remote,))


def _host(name: str, ip: str, peer: str, veth: str, **vx: object) -> HostFacts:
    links = (
        _row(veth, master="docker0"),
        _row("eth1", addr=f"{ip}/24", mtu=1500),
        _row("docker0", kind="bridge", addr="172.15.42.1/24"),
        _row("vxlan0", kind="vxlan", master="docker0"),
    )
    return HostFacts(
        name,
        ip,
        links=links,
        firewall=FirewallFact("*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n", 0),
        underlay_ping=ProbeFact(56, False, 2, 2),
        vxlans=(_vxlan(peer, local=ip, **vx),),  # type: ignore[arg-type]
        peer_route=RouteFact(peer, "eth1"),
    )


def doctor_facts(*, planned: bool = True, h1: dict | None = None, h2: dict | None = None) -> DoctorFacts:
    hosts = {
        "host1": _host("host1", "10.0.0.3", "10.0.0.4", "cn-h1-a", **(h1 or {})),
        "host2": _host("host2", "10.0.0.4", "10.0.0.3", "cn-h2-a", **(h2 or {})),
    }

    def end(name: str, host: str, ip: str, other: str) -> EndFacts:
        return EndFacts(
            name, host, True, _row("eth0", addr=f"{ip}/24"), RouteFact(other, "eth0"), f"cn-{name}"
        )

    plans = {
        h: HostPlan(
            "docker0",
            "br0",
            (),
            VxlanPlan("vxlan0", 42, (peer,), 4789, ip, 1450, "eth1") if planned else None,
        )
        for h, ip, peer in (("host1", "10.0.0.3", "10.0.0.4"), ("host2", "10.0.0.4", "10.0.0.3"))
    }
    ep = EndPlan(None, "docker0", False, None, False, "172.15.42.1") if planned else EndPlan()
    return DoctorFacts(
        src=end("h1-a", "host1", "172.15.42.100", "172.15.42.101"),
        dst=end("h2-a", "host2", "172.15.42.101", "172.15.42.100"),
        src_ip="172.15.42.100",
        dst_ip="172.15.42.101",
        hosts=hosts,
        src_plan=ep,
        dst_plan=ep,
        host_plans=plans if planned else {h: HostPlan() for h in plans},
        scenario="kvxlan" if planned else None,
        subnet="172.15.42.0/24",
        small=ProbeFact(56, False, 2, 2),
        big=ProbeFact(1422, True, 2, 2),
        underlays=("10.0.0.3", "10.0.0.4"),
    )


@pytest.mark.parametrize("planned", [True, False])
def test_a_healthy_kernel_path_is_walked_without_ovs(planned: bool) -> None:
    report = build_report(doctor_facts(planned=planned))
    assert report.ok, report.summary
    assert "tunnel vxlan0 (host1)" in report.hops and "tunnel vxlan0 (host2)" in report.hops
    assert not any(h.startswith("OVS") for h in report.hops)
    assert any(c.name == "vxlan0 in docker0" for c in report.checks)
    mtu = next(c for c in report.checks if c.name == "MTU")
    assert "fits 1450 (VXLAN over a 1500 underlay)" in mtu.evidence


@pytest.mark.parametrize("planned", [True, False])
def test_wrong_vni_is_the_first_failure(planned: bool) -> None:
    first = build_report(doctor_facts(planned=planned, h2={"vni": 43})).first_failure
    assert first is not None and first.name == "VNI"
    # planned: the end that is not the scenario's; by hand: the first end, made like the other
    assert first.hop == ("tunnel vxlan0 (host2)" if planned else "tunnel vxlan0 (host1)")
    assert "43" in first.evidence and "42" in first.evidence
    assert first.fix is not None
    kinds = [type(i) for i in first.fix.intents]
    assert kinds[:2] == [VxlanDevice, Enslave]
    assert (first.fix_command or "").startswith("ip link del vxlan0; ip link add vxlan0 type vxlan id")


def test_wrong_remote_is_the_first_failure() -> None:
    f = doctor_facts()
    h1 = f.hosts["host1"]
    wrong = replace(h1.vxlans[0], group="10.0.0.99", remotes=("10.0.0.99",))
    f = replace(f, hosts={**f.hosts, "host1": replace(h1, vxlans=(wrong,))})
    first = build_report(f).first_failure
    assert first is not None and (first.hop, first.name) == ("tunnel vxlan0 (host1)", "remote")
    assert "10.0.0.99" in first.evidence and "10.0.0.4" in first.evidence
    assert first.fix is not None and isinstance(first.fix.intents[0], VxlanRemote)
    assert first.fix_command == (
        "ip link set vxlan0 type vxlan remote 10.0.0.4; "
        "bridge fdb del 00:00:00:00:00:00 dev vxlan0 dst 10.0.0.99"
    )


def test_missing_underlay_route_names_the_tunnel() -> None:
    f = doctor_facts()
    h1 = replace(f.hosts["host1"], peer_route=RouteFact("10.0.0.4", error="Network is unreachable"))
    first = build_report(replace(f, hosts={**f.hosts, "host1": h1})).first_failure
    assert first is not None and (first.hop, first.name) == ("tunnel vxlan0 (host1)", "underlay route")
    assert "no route to 10.0.0.4" in first.evidence


def test_a_vxlan_device_out_of_its_bridge_is_named() -> None:
    f = doctor_facts()
    h1 = f.hosts["host1"]
    links = tuple(replace(lk, master=None) if lk.name == "vxlan0" else lk for lk in h1.links)
    first = build_report(replace(f, hosts={**f.hosts, "host1": replace(h1, links=links)})).first_failure
    assert first is not None and (first.hop, first.name) == ("docker0 (host1)", "vxlan0 in docker0")
    assert first.fix_command is not None and first.fix_command.startswith("ip link set vxlan0 master docker0")
    assert first.status == Status.FAIL
