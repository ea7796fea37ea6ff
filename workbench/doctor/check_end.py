"""Checks of one end of the path: the container (eth0, address, route, MTU,
checksum offload) and its veth on the host (up, bridge or OVS port, VLAN tag,
MTU pair)."""

from __future__ import annotations

import ipaddress

from ..intents import (
    Address,
    Enslave,
    LinkUp,
    NeighboursRetried,
    OvsPort,
    PortTag,
    Route,
    SetMtu,
    TxChecksumOff,
)
from ..links import LinkRow
from .facts import DoctorFacts, EndFacts, EndPlan, OvsPortFact
from .model import Out, Status
from .path import host_plan, path_mtu_limit


def _carrier(row: LinkRow) -> str:
    return "carrier" if row.state in ("UP", "UNKNOWN") else f"no carrier ({row.state})"


def check_container(out: Out, f: DoctorFacts, end: EndFacts, plan: EndPlan, other_ip: str | None) -> None:
    hop = f"container {end.name} ({end.host})"
    if not end.running:
        out.add(hop, "running", Status.FAIL, "the container is not running", out.redo(end.host, f.scenario))
        return
    eth0 = end.eth0
    if eth0 is None:
        out.add(
            hop, "eth0", Status.FAIL, "no eth0 inside: the veth pair is gone", out.redo(end.host, f.scenario)
        )
        return
    if not eth0.admin_up:
        out.add(
            hop,
            "eth0 up",
            Status.FAIL,
            f"eth0 is administratively DOWN (state {eth0.state})",
            out.fix(
                f"bring eth0 up in {end.name}",
                LinkUp(end.host, "eth0", end.ref),
                NeighboursRetried(end.host, "eth0", end.ref),
            ),
        )
    elif eth0.state not in ("UP", "UNKNOWN"):
        out.add(hop, "eth0 up", Status.WARN, f"eth0 is up but has {_carrier(eth0)}: the host side is down")
    else:
        out.add(hop, "eth0 up", Status.OK, f"eth0 UP, {_carrier(eth0)}, mac {eth0.mac}")
    # address in the right subnet
    addrs = [a for a in eth0.addresses if ":" not in a]
    want = plan.cidr
    if not addrs:
        fix = (
            out.fix(
                f"give {end.name} its address {want}",
                Address(end.host, end.ref, want),
            )
            if want
            else None
        )
        out.add(hop, "address", Status.FAIL, "eth0 has no IPv4 address", fix)
    elif want and want not in addrs:
        out.add(
            hop,
            "address",
            Status.FAIL,
            f"eth0 has {', '.join(addrs)}, the scenario gives it {want}",
            out.fix(
                f"give {end.name} its address {want}",
                Address(end.host, end.ref, want),
            ),
        )
    elif f.subnet and not any(_in_net(a.split("/")[0], f.subnet) for a in addrs):
        out.add(hop, "address", Status.FAIL, f"eth0 has {', '.join(addrs)}, outside the subnet {f.subnet}")
    else:
        out.add(
            hop, "address", Status.OK, f"eth0 {', '.join(addrs)}" + (f" in {f.subnet}" if f.subnet else "")
        )
    # route to the other end
    route = end.route
    if route is None or other_ip is None:
        out.add(hop, "route", Status.WARN, "route not read (the other end has no address)")
    elif route.error:
        net = str(ipaddress.ip_interface(addrs[0]).network) if addrs else (f.subnet or "")
        ops = [Route(end.host, end.ref, net)]
        if plan.gateway:
            ops.append(Route(end.host, end.ref, "0.0.0.0/0", plan.gateway))
        out.add(
            hop,
            "route",
            Status.FAIL,
            f"no route to {other_ip}: {route.error}",
            out.fix(f"restore {end.name}'s routes", *ops) if net else None,
        )
    elif route.dev != "eth0":
        out.add(hop, "route", Status.FAIL, f"{other_ip} is routed via {route.dev}, not eth0")
    else:
        via = f" via {route.gateway}" if route.gateway else " (on-link)"
        out.add(hop, "route", Status.OK, f"{other_ip} dev eth0{via}")
    check_mtu(out, f, end, hop)
    check_offload(out, f, end, hop)


def check_mtu(out: Out, f: DoctorFacts, end: EndFacts, hop: str) -> None:
    assert end.eth0 is not None
    mtu = end.eth0.mtu
    limit, why = path_mtu_limit(f)
    probes = ", ".join(p.describe() for p in (f.small, f.big) if p is not None)
    if limit is None:
        out.add(hop, "MTU", Status.OK, f"eth0 MTU {mtu} ({why})")
        return
    if mtu <= limit:
        out.add(hop, "MTU", Status.OK, f"eth0 MTU {mtu} fits {limit} ({why})")
        return
    trap = (
        " — the MTU trap: ping works, TCP stalls"
        if f.small is not None and f.small.ok and f.big is not None and not f.big.ok
        else ""
    )
    if f.small is not None and not f.small.ok:
        # too big for the tunnel, but not why even small pings fail: let the real cause come first
        out.add(
            hop,
            "MTU",
            Status.WARN,
            f"eth0 MTU {mtu} > {limit} that fits {why}: fix it after the hop that stops small pings",
        )
        return
    ops = []
    for e in (f.src, f.dst):
        if e.eth0 is not None and e.eth0.mtu > limit:
            ops.append(SetMtu(e.host, "eth0", limit, e.ref))
            ops.append(SetMtu(e.host, e.host_veth, limit))
    out.add(
        hop,
        "MTU",
        Status.FAIL,
        f"eth0 MTU {mtu} > {limit} that fits {why}: full-size frames are lost in the tunnel"
        + (f" (probes: {probes}){trap}" if probes else ""),
        out.fix(f"set the MTU to {limit} on both containers and their host sides", *ops),
    )


def check_offload(out: Out, f: DoctorFacts, end: EndFacts, hop: str) -> None:
    """A container on a port of OVS's userspace datapath must checksum its own
    frames: OVS forwards them as they are, so a TCP checksum left to the "NIC"
    is never filled in, and TCP dies while ping (checksummed in software) works."""
    host = f.hosts.get(end.host)
    if host is None or not host.userspace or host.port(end.host_veth) is None or end.tx_checksum is None:
        return
    if not end.tx_checksum:
        out.add(hop, "checksums", Status.OK, "tx checksum offload off: eth0 computes its own checksums")
        return
    out.add(
        hop,
        "checksums",
        Status.FAIL,
        "tx checksum offload is on, and its port is on OVS's userspace datapath, which forwards "
        "frames as they are: TCP checksums are never filled in (ping works, TCP dies)",
        out.fix(
            f"turn tx checksum offload off in {end.name}",
            TxChecksumOff(end.host, end.ref),
        ),
    )


def _in_net(ip: str, net: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(net, strict=False)
    except ValueError:
        return False


def check_veth(out: Out, f: DoctorFacts, end: EndFacts, plan: EndPlan, other: EndFacts) -> None:
    host = f.hosts[end.host]
    veth = end.host_veth
    hop = f"veth {veth} ({end.host})"
    row = host.link(veth)
    if row is None:
        out.add(hop, "exists", Status.FAIL, f"no link {veth} on {end.host}", out.redo(end.host, f.scenario))
        return
    if not row.admin_up:
        out.add(
            hop,
            "up",
            Status.FAIL,
            f"{veth} is DOWN on {end.host} (container side: {end.eth0.state if end.eth0 else '-'})",
            out.fix(
                f"bring {veth} up on {end.host}",
                LinkUp(end.host, veth),
                NeighboursRetried(end.host, "eth0", end.ref),
            ),
        )
    else:
        out.add(hop, "up", Status.OK, f"{veth} UP, {_carrier(row)}")
    port = host.port(veth)
    attach = plan.attach
    if plan.ovs or (attach is None and port is not None):
        bridge = attach or (port.bridge if port else host_plan(f, end.host).ovs_bridge)
        if port is None or port.bridge != bridge:
            now = f"a port of {port.bridge}" if port else "not an OVS port"
            out.add(
                hop,
                "OVS port",
                Status.FAIL,
                f"{veth} is {now}, should be a port of OVS {bridge}",
                out.fix(
                    f"add {veth} to {bridge}",
                    OvsPort(end.host, bridge, veth, plan.vlan),
                ),
            )
        else:
            bad = port.admin_state == "down" or port.link_state == "down"
            state = f"admin {port.admin_state or '?'}, link {port.link_state or '?'}"
            out.add(hop, "OVS port", Status.WARN if bad else Status.OK, f"port of OVS {bridge} ({state})")
            other_plan = f.dst_plan if end is f.src else f.src_plan
            check_tag(out, hop, end, plan, port, f.hosts[other.host].port(other.host_veth), other, other_plan)
    else:
        want = attach or host_plan(f, end.host).linux_bridge
        if want and row.master != want:
            out.add(
                hop,
                "bridge",
                Status.FAIL,
                f"{veth} is {'in ' + row.master if row.master else 'in no bridge'}, should be in {want}",
                out.fix(
                    f"put {veth} into {want}",
                    Enslave(end.host, veth, want),
                ),
            )
        elif row.master is None:
            out.add(hop, "bridge", Status.FAIL, f"{veth} is in no bridge")
        else:
            out.add(hop, "bridge", Status.OK, f"enslaved to {row.master}")
    if end.eth0 is not None:
        if row.mtu < end.eth0.mtu:
            out.add(
                hop,
                "MTU pair",
                Status.FAIL,
                f"{veth} MTU {row.mtu} < eth0 MTU {end.eth0.mtu}: bigger frames die on the veth",
                out.fix(f"set {veth} MTU to {end.eth0.mtu}", SetMtu(end.host, veth, end.eth0.mtu)),
            )
        elif row.mtu > end.eth0.mtu:
            out.add(hop, "MTU pair", Status.WARN, f"{veth} MTU {row.mtu}, eth0 MTU {end.eth0.mtu}")
        else:
            out.add(hop, "MTU pair", Status.OK, f"both ends MTU {row.mtu}")


def check_tag(
    out: Out,
    hop: str,
    end: EndFacts,
    plan: EndPlan,
    port: OvsPortFact,
    other_port: OvsPortFact | None,
    other: EndFacts,
    other_plan: EndPlan,
) -> None:
    have = port.tag
    if plan.vlan_known and have != plan.vlan:
        want = plan.vlan
        op = PortTag(end.host, port.name, want)
        out.add(
            hop,
            "VLAN tag",
            Status.FAIL,
            f"tag {_tag(have)}, the scenario gives {end.name} {_tag(want)}",
            out.fix(f"set {port.name}'s tag to {_tag(want)}", op),
        )
        return
    if other_port is not None and other_port.tag != have:
        if other_plan.vlan_known and other_port.tag != other_plan.vlan:
            out.add(hop, "VLAN tag", Status.OK, f"tag {_tag(have)} as planned ({other.name}'s port is not)")
            return
        out.add(
            hop,
            "VLAN tag",
            Status.FAIL,
            f"tag {_tag(have)}, {other.name} is on {_tag(other_port.tag)}: different VLANs do not talk"
            + (" (isolated by design in this scenario)" if plan.vlan_known else ""),
        )
        return
    out.add(hop, "VLAN tag", Status.OK, f"tag {_tag(have)}" + (" as planned" if plan.vlan_known else ""))


def _tag(tag: int | None) -> str:
    return "none (untagged)" if tag is None else str(tag)
