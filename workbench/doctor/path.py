"""Where the path goes: the plan of a host, the tunnel between two hosts, the
port a container's frames enter OVS by, its linux bridge, and the largest MTU
the tunnel carries. Pure queries on the facts, shared by the checks, the
reading (traces) and the MTU measurement."""

from __future__ import annotations

from ..actions import TUNNEL_OVERHEAD, UNDERLAY_MTU
from ..links import VxlanRow
from .facts import DoctorFacts, EndFacts, EndPlan, HostPlan, OvsPortFact

VLAN_TAG = 4  # bytes of an 802.1Q header


def host_plan(f: DoctorFacts, host: str) -> HostPlan:
    return f.host_plans.get(host, HostPlan())


def plan_tunnels(f: DoctorFacts, host: str) -> tuple[tuple[str, str, str], ...]:
    return host_plan(f, host).tunnels


def path_tunnel(f: DoctorFacts, host: str, peer: str) -> OvsPortFact | None:
    """The tunnel port `host` uses toward `peer`: the planned one, else by remote_ip, else the only one."""
    facts = f.hosts.get(host)
    peer_facts = f.hosts.get(peer)
    if facts is None:
        return None
    bridge = host_plan(f, host).ovs_bridge
    mine = [p for p in facts.ovs_ports if p.is_tunnel and p.bridge == bridge]
    if peer_facts is not None:
        for port, _t, remote in plan_tunnels(f, host):
            if remote == peer_facts.underlay_ip:
                found = facts.port(port)
                if found is not None:
                    return found
        for p in mine:
            if p.remote_ip == peer_facts.underlay_ip:
                return p
        for p in facts.ovs_ports:  # on another bridge: OVN's Geneve ports on br-int
            if p.is_tunnel and p.remote_ip == peer_facts.underlay_ip:
                return p
    return mine[0] if len(mine) == 1 else None


def kernel_tunnel(f: DoctorFacts, host: str, bridge: str | None = None) -> VxlanRow | None:
    """The kernel VXLAN device `host` tunnels by: the planned one, else one in `bridge`
    (the end's linux bridge), else the only one."""
    facts = f.hosts.get(host)
    if facts is None:
        return None
    plan = host_plan(f, host).vxlan
    if plan is not None:
        return facts.vxlan(plan.name)
    inside = [v for v in facts.vxlans if bridge is not None and v.link.master == bridge]
    if inside:
        return inside[0]
    return facts.vxlans[0] if len(facts.vxlans) == 1 else None


def kernel_path(f: DoctorFacts) -> bool:
    """The hosts are joined by the kernel (a VXLAN device in the linux bridge: kvxlan, or
    built by hand), not by OVS."""
    if not f.cross_host:
        return False
    if host_plan(f, f.src.host).vxlan is not None:
        return True
    if host_plan(f, f.src.host).tunnels:
        return False
    host = f.hosts.get(f.src.host)
    row = host.link(f.src.host_veth) if host is not None else None
    return row is not None and row.master is not None and kernel_tunnel(f, f.src.host, row.master) is not None


def ovs_entry(f: DoctorFacts, end: EndFacts, plan: EndPlan) -> str | None:
    """The OVS port a container's frames enter or leave by."""
    host = f.hosts[end.host]
    port = host.port(end.host_veth)
    if port is not None:
        return port.name
    if plan.ovs:
        return end.host_veth
    return host_plan(f, end.host).ovs_bridge  # exp1: br0's own port, inside docker0


def linux_bridge(f: DoctorFacts, end: EndFacts, plan: EndPlan) -> str | None:
    if plan.ovs:
        return None
    if plan.attach:
        return plan.attach
    row = f.hosts[end.host].link(end.host_veth)
    if row is not None and row.master and f.hosts[end.host].port(end.host_veth) is None:
        return row.master
    return host_plan(f, end.host).linux_bridge


def path_mtu_limit(f: DoctorFacts) -> tuple[int | None, str]:
    """The largest container MTU the path carries, and why."""
    if not f.cross_host:
        return None, "same host: no tunnel"
    tun = path_tunnel(f, f.src.host, f.next_host(f.src.host) or f.dst.host)
    host = f.hosts.get(f.src.host)
    kind = tun.type if tun else next((t for _p, t, _r in plan_tunnels(f, f.src.host)), "gre")
    if kernel_path(f):
        kind = "vxlan"
    if kind not in TUNNEL_OVERHEAD:
        return None, f"{kind} tunnel"
    under = host.underlay_mtu() if host else UNDERLAY_MTU
    # an access port's tag travels inside the tunnel: 4 more bytes of 802.1Q header
    tagged = any(
        (p := f.hosts[e.host].port(e.host_veth)) is not None and p.tag is not None
        for e in (f.src, f.dst)
        if e.host in f.hosts
    )
    if tagged:
        return under - TUNNEL_OVERHEAD[
            kind
        ] - VLAN_TAG, f"{kind.upper()} + 802.1Q tag over a {under} underlay"
    return under - TUNNEL_OVERHEAD[kind], f"{kind.upper()} over a {under} underlay"
