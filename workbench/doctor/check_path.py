"""Checks of the path between the ends: linux bridges, the firewall, OVS
(bridge, ports, ofproto/trace) and each tunnel (type, remote_ip, underlay)."""

from __future__ import annotations

from ..intents import AcceptBridged, Enslave, InterfaceType, LabUp, LinkUp, TunnelRemote
from .facts import DoctorFacts
from .iptables import forward_verdict, parse_iptables_save, policy_drops
from .model import Out, Status
from .path import host_plan, kernel_path, kernel_tunnel, path_tunnel, plan_tunnels


def check_linux_bridge(out: Out, f: DoctorFacts, host_name: str, bridge: str) -> None:
    host = f.hosts[host_name]
    hop = f"{bridge} ({host_name})"
    row = host.link(bridge)
    if row is None:
        out.add(hop, "exists", Status.FAIL, f"no bridge {bridge}", out.redo(host_name, f.scenario))
        return
    if not row.admin_up:
        out.add(
            hop,
            "up",
            Status.FAIL,
            f"{bridge} is DOWN",
            out.fix(
                f"bring {bridge} up",
                LinkUp(host_name, bridge),
            ),
        )
    else:
        out.add(
            hop, "up", Status.OK, f"{bridge} UP, mtu {row.mtu}, {', '.join(row.addresses) or 'no address'}"
        )
    if f.cross_host:
        vxlan = kernel_tunnel(f, host_name, bridge) if kernel_path(f) else None
        plan = host_plan(f, host_name)
        if kernel_path(f):  # the kernel's VXLAN device is the bridge's way out
            uplink = vxlan.link.name if vxlan else (plan.vxlan.name if plan.vxlan else "vxlan0")
            what = "the tunnel"
        else:
            uplink, what = plan.ovs_bridge, "OVS and the tunnel"
        obr = host.link(uplink)
        if obr is None and kernel_path(f):
            out.add(
                hop,
                f"{uplink} in {bridge}",
                Status.FAIL,
                f"no VXLAN device {uplink}: {bridge} cannot reach {what}",
                out.redo(host_name, f.scenario),
            )
        elif obr is None or obr.master != bridge:
            now = "missing" if obr is None else (f"in {obr.master}" if obr.master else "in no bridge")
            out.add(
                hop,
                f"{uplink} in {bridge}",
                Status.FAIL,
                f"{uplink} is {now}: {bridge} cannot reach {what}",
                out.fix(
                    f"put {uplink} into {bridge}",
                    Enslave(host_name, uplink, bridge),
                ),
            )
        elif not obr.admin_up:
            out.add(
                hop,
                f"{uplink} in {bridge}",
                Status.FAIL,
                f"{uplink} is in {bridge} but DOWN",
                out.fix(
                    f"bring {uplink} up",
                    LinkUp(host_name, uplink),
                ),
            )
        else:
            out.add(hop, f"{uplink} in {bridge}", Status.OK, f"{uplink} is a port of {bridge}, UP")
    check_firewall(out, f, host_name, bridge, hop)


def check_firewall(out: Out, f: DoctorFacts, host_name: str, bridge: str | None, hop: str) -> None:
    fw = f.hosts[host_name].firewall
    if fw is None:
        return
    if bridge is None:
        policy = parse_iptables_save(fw.save)[0].get("FORWARD", "?") if not fw.error else "?"
        out.add(
            hop,
            "firewall",
            Status.OK,
            "not on this path: OVS's userspace datapath forwards without netfilter "
            f"(FORWARD policy {policy})",
        )
        return
    if fw.bridge_nf is None:
        out.add(
            hop,
            "firewall",
            Status.WARN,
            "bridge netfilter unknown (br_netfilter not loaded: net.bridge.bridge-nf-call-iptables "
            "missing); bridged frames then bypass iptables",
        )
        return
    if fw.bridge_nf == 0:
        out.add(hop, "firewall", Status.OK, "bridge-nf-call-iptables=0: bridged frames skip iptables FORWARD")
        return
    if fw.error:
        out.add(
            hop, "firewall", Status.WARN, f"bridge-nf-call-iptables=1 but iptables unreadable: {fw.error}"
        )
        return
    verdict = forward_verdict(fw.save, bridge, f.src_ip, f.dst_ip)
    back = forward_verdict(fw.save, bridge, f.dst_ip, f.src_ip)
    assert verdict is not None and back is not None
    dropped = policy_drops(fw.save)
    note = f" ({dropped} packets hit the policy)" if dropped else ""
    if not verdict.accept or not back.accept:
        by = verdict.by if not verdict.accept else back.by
        out.add(
            hop,
            "firewall",
            Status.FAIL,
            f"bridge-nf-call-iptables=1 sends frames bridged on {bridge} through iptables, and "
            f"{by} drops them{note} (or: sysctl -w net.bridge.bridge-nf-call-iptables=0)",
            out.fix(
                f"accept frames bridged on {bridge} in FORWARD",
                AcceptBridged(host_name, bridge),
            ),
        )
        return
    caveats = "; ".join(verdict.caveats)
    out.add(
        hop,
        "firewall",
        Status.WARN if caveats else Status.OK,
        f"bridge-nf-call-iptables=1, FORWARD accepts (decided by {verdict.by})"
        + (f"; {caveats}" if caveats else ""),
    )


def check_ovs(out: Out, f: DoctorFacts, host_name: str, entry: str | None, deliver: str | None) -> None:
    """OVS bridge state, the ports the path uses, and the flow trace verdict."""
    host = f.hosts[host_name]
    bridge = host_plan(f, host_name).ovs_bridge
    hop = f"OVS {bridge} ({host_name})"
    if not host.ovs_ok:
        out.add(
            hop,
            "ovs",
            Status.FAIL,
            f"Open vSwitch not answering: {host.error or 'disconnected'}",
            out.fix(
                "restart the lab's Open vSwitch (lab up repairs a half-built lab)",
                LabUp(host_name),
            ),
        )
        return
    if bridge not in host.ovs_bridges:
        out.add(hop, "bridge", Status.FAIL, f"no OVS bridge {bridge}", out.redo(host_name, f.scenario))
        return
    link = host.link(bridge)
    out.add(hop, "bridge", Status.OK, f"{bridge} present" + (f", tap {link.state}" if link else ""))
    for name in dict.fromkeys(p for p in (entry, deliver) if p):
        port = host.port(name)
        if port is None:
            continue
        counters = (
            f"rx {port.stat('rx_packets')} tx {port.stat('tx_packets')} "
            f"drops {port.stat('rx_dropped') + port.stat('tx_dropped')} "
            f"errors {port.stat('rx_errors') + port.stat('tx_errors')}"
        )
        bad = port.error or port.admin_state == "down" or port.link_state == "down"
        errs = port.stat("rx_errors") + port.stat("tx_errors")
        status = Status.WARN if bad or errs else Status.OK
        detail = f"error {port.error!r}, " if port.error else ""
        out.add(
            hop,
            f"port {name}",
            status,
            f"{detail}admin {port.admin_state or '?'}, link {port.link_state or '?'}, {counters}",
        )
    check_trace(out, f, host_name, hop, deliver)


def check_trace(out: Out, f: DoctorFacts, host_name: str, hop: str, deliver: str | None) -> None:
    trace = f.hosts[host_name].trace
    if trace is None:
        return
    if trace.error:
        out.add(hop, "ofproto/trace", Status.WARN, f"trace failed: {trace.error}")
        return
    where = ", ".join(trace.outputs) or "nowhere"
    tun = f" (tunnelled to {', '.join(trace.tunnels)})" if trace.tunnels else ""
    flood = " by flooding" if any("flooding" in n for n in trace.notes) else ""
    if trace.dropped:
        miss = next((n for n in trace.notes if n.startswith("neighbor cache miss")), None)
        if trace.tunnels and miss:  # not OVS's choice: the tunnel's far end does not answer ARP
            where = ", ".join(trace.tunnels)
            out.add(
                hop,
                "ofproto/trace",
                Status.WARN,
                f"frame heads for the tunnel to {where}, but {miss}: see the tunnel",
            )
            return
        out.add(
            hop,
            "ofproto/trace",
            Status.FAIL,
            f"OVS drops the frame: Datapath actions: {trace.actions or 'none'}",
        )
        return
    if deliver is None:  # toward the tunnel
        if trace.tunnels:
            out.add(hop, "ofproto/trace", Status.OK, f"frame leaves by {where}{tun}{flood}")
        else:
            out.add(hop, "ofproto/trace", Status.FAIL, f"frame never reaches a tunnel: goes to {where}")
        return
    if deliver in trace.outputs:
        out.add(hop, "ofproto/trace", Status.OK, f"frame is delivered to {deliver}{flood}")
        return
    # not delivered: if the port itself is wrong, its own check says so below; do not blame OVS twice
    out.add(
        hop,
        "ofproto/trace",
        Status.WARN,
        f"frame goes to {where}, not {deliver}: see the checks of {deliver}",
    )


def check_tunnel(out: Out, f: DoctorFacts, host_name: str, peer_name: str, outbound: bool) -> None:
    host, peer = f.hosts[host_name], f.hosts[peer_name]
    hop_port = path_tunnel(f, host_name, peer_name)
    planned = next((t for t in plan_tunnels(f, host_name) if t[2] == peer.underlay_ip), None)
    name = hop_port.name if hop_port else (planned[0] if planned else "?")
    hop = f"tunnel {name} ({host_name})"
    if not host.ovs_ok:
        out.add(
            hop,
            "ovs",
            Status.FAIL,
            f"Open vSwitch on {host_name} is not answering: {host.error or 'disconnected'}",
            out.fix(
                "restart the lab's Open vSwitch (lab up repairs a half-built lab)",
                LabUp(host_name),
            ),
        )
        return
    if hop_port is None:
        out.add(
            hop,
            "tunnel port",
            Status.FAIL,
            f"no tunnel port toward {peer_name} ({peer.underlay_ip}) on {host_plan(f, host_name).ovs_bridge}",
            out.redo(host_name, f.scenario),
        )
        return
    want_type = planned[1] if planned else None
    peer_port = path_tunnel(f, peer_name, host_name)
    if want_type and hop_port.type != want_type:
        out.add(
            hop,
            "type",
            Status.FAIL,
            f"type {hop_port.type}, the scenario uses {want_type}",
            out.fix(
                f"make {name} a {want_type} port",
                InterfaceType(host_name, name, want_type),
            ),
        )
    elif peer_port is not None and peer_port.type != hop_port.type:
        out.add(hop, "type", Status.FAIL, f"type {hop_port.type}, {peer_name}'s end is {peer_port.type}")
    else:
        out.add(hop, "type", Status.OK, f"{hop_port.type}" + (f", as {peer_name}'s end" if peer_port else ""))
    remote = hop_port.remote_ip
    if remote != peer.underlay_ip:
        out.add(
            hop,
            "remote_ip",
            Status.FAIL,
            f"options:remote_ip={remote}, but {peer_name}'s underlay address is {peer.underlay_ip}",
            out.fix(
                f"point {name} at {peer.underlay_ip}",
                TunnelRemote(host_name, name, peer.underlay_ip),
            ),
        )
    else:
        out.add(hop, "remote_ip", Status.OK, f"remote_ip={remote} is {peer_name}'s underlay address")
    if hop_port.error:
        out.add(hop, "interface", Status.WARN, f"OVS reports: {hop_port.error}")
    if not outbound:
        return
    if host.underlay_route_error:
        out.add(
            hop,
            "underlay route",
            Status.FAIL,
            f"OVS has no route to {peer.underlay_ip}: {host.underlay_route_error}",
            out.fix(
                "rebuild the lab's underlay (lab up repairs it)",
                LabUp(host_name),
            ),
        )
    elif host.underlay_route is not None:
        out.add(hop, "underlay route", Status.OK, f"{peer.underlay_ip}: {host.underlay_route}")
    check_underlay_reach(out, f, hop, host_name, peer_name)


def check_underlay_reach(out: Out, f: DoctorFacts, hop: str, host_name: str, peer_name: str) -> None:
    """The host's ping of the next host's underlay address (OVS's tunnel or the kernel's)."""
    host, peer = f.hosts[host_name], f.hosts[peer_name]
    ping = host.underlay_ping
    if ping is None:
        return
    if ping.ok:
        out.add(hop, "underlay reach", Status.OK, f"{host_name} -> {peer.underlay_ip}: {ping.describe()}")
        return
    out.add(
        hop,
        "underlay reach",
        Status.FAIL,
        f"{host_name} cannot reach {peer_name}'s underlay {peer.underlay_ip}: {ping.describe()}",
        out.fix(
            "rebuild the lab's underlay (lab up repairs it)",
            LabUp(host_name),
        ),
    )
