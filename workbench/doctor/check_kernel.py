"""Checks of a kernel VXLAN tunnel (scenario kvxlan, or a device built by hand with
`ip link add ... type vxlan`): the device, its VNI and UDP port against the other
end's, its flood list against the other host's underlay address, its local address,
and the kernel's route and reach to the other host."""

from __future__ import annotations

from ..intents import Enslave, Intent, LabUp, LinkUp, VxlanDevice, VxlanRemote
from ..links import VxlanRow
from ..marks import IPT_COMMENT
from .check_path import check_underlay_reach
from .facts import DoctorFacts
from .impaired import check_underlay_loss
from .model import Out, Status
from .path import host_plan, kernel_tunnel


def remade(host: str, row: VxlanRow, vni: int, port: int) -> tuple[Intent, ...]:
    """The device made again with `vni` and `port` (the kernel changes neither in place),
    the rest as it is, back in its bridge."""
    dev = VxlanDevice(
        host,
        row.link.name,
        vni,
        row.local or "",
        row.remotes or ((row.group,) if row.group else ()),
        row.link.mtu,
        row.underlay,
        port,
        mark=row.link.alias == IPT_COMMENT,
        replace=True,
    )
    return (dev, Enslave(host, row.link.name, row.link.master)) if row.link.master else (dev,)


def kernel_walk(out: Out, f: DoctorFacts) -> None:
    """Both ends of each kernel tunnel on the way (no OVS on this path)."""
    path = f.hosts_on_path
    for a, b in zip(path, path[1:], strict=False):
        for here, there, outbound in ((a, b, True), (b, a, False)):
            row = kernel_tunnel(f, here, host_plan(f, here).linux_bridge)
            check_underlay_loss(out, f, here, row.link.name if row else "?")
            check_kernel_tunnel(out, f, here, there, outbound)


def check_kernel_tunnel(out: Out, f: DoctorFacts, host_name: str, peer_name: str, outbound: bool) -> None:
    host, peer = f.hosts[host_name], f.hosts[peer_name]
    bridge = host_plan(f, host_name).linux_bridge
    row = kernel_tunnel(f, host_name, bridge)
    plan = host_plan(f, host_name).vxlan
    name = row.link.name if row else (plan.name if plan else "vxlan0")
    hop = f"tunnel {name} ({host_name})"
    if row is None:
        out.add(
            hop,
            "device",
            Status.FAIL,
            f"no kernel VXLAN device {name} on {host_name}",
            out.redo(host_name, f.scenario),
        )
        return
    other = kernel_tunnel(f, peer_name, host_plan(f, peer_name).linux_bridge)
    if not row.link.admin_up:
        out.add(
            hop, "up", Status.FAIL, f"{name} is DOWN", out.fix(f"bring {name} up", LinkUp(host_name, name))
        )
    else:
        out.add(hop, "device", Status.OK, f"vxlan {name}, mtu {row.link.mtu}, UP")
    _vni_and_port(out, f, hop, host_name, peer_name, row, other)
    remotes = row.remotes or ((row.group,) if row.group else ())
    known = {h.underlay_ip for h in f.hosts.values()} | set(f.underlays)
    if peer.underlay_ip not in remotes:
        wrong = next((r for r in remotes if r not in known), None)
        said = ", ".join(remotes) or "nowhere"
        out.add(
            hop,
            "remote",
            Status.FAIL,
            f"{name} floods to {said}, but {peer_name}'s underlay address is {peer.underlay_ip}: "
            f"frames for {peer_name} never reach it",
            out.fix(
                f"make {name} send to {peer.underlay_ip}",
                VxlanRemote(host_name, name, peer.underlay_ip, wrong, unicast=len(remotes) <= 1),
            ),
        )
    else:
        stray = [r for r in remotes if r not in known]
        if stray:
            out.add(
                hop,
                "remote",
                Status.WARN,
                f"floods to {peer.underlay_ip} and also to {', '.join(stray)}, which is no host's",
            )
        else:
            out.add(
                hop,
                "remote",
                Status.OK,
                f"floods to {', '.join(remotes)}: {peer.underlay_ip} is {peer_name}'s underlay address",
            )
    if row.local and row.local != host.underlay_ip:
        out.add(
            hop,
            "local",
            Status.FAIL,
            f"local {row.local}, but {host_name}'s underlay address is {host.underlay_ip}: "
            f"{peer_name} answers to an address {host_name} does not have",
            out.redo(host_name, f.scenario),
        )
    if not outbound:
        return
    route = host.peer_route
    if route is not None and (route.error or route.dev is None):
        out.add(
            hop,
            "underlay route",
            Status.FAIL,
            f"the kernel has no route to {peer.underlay_ip}: {route.error or 'no device'}",
            out.fix("rebuild the lab's underlay (lab up repairs it)", LabUp(host_name)),
        )
    elif route is not None and row.underlay and route.dev != row.underlay:
        out.add(
            hop,
            "underlay route",
            Status.FAIL,
            f"{peer.underlay_ip} is routed by {route.dev}, but {name} sends by {row.underlay} only",
            out.fix("rebuild the lab's underlay (lab up repairs it)", LabUp(host_name)),
        )
    elif route is not None:
        via = f" via {route.gateway}" if route.gateway else " (on-link)"
        out.add(hop, "underlay route", Status.OK, f"{peer.underlay_ip} dev {route.dev}{via}")
    check_underlay_reach(out, f, hop, host_name, peer_name)


def _vni_and_port(
    out: Out, f: DoctorFacts, hop: str, host_name: str, peer_name: str, row: VxlanRow, other: VxlanRow | None
) -> None:
    """VNI and UDP port: the scenario's when one is applied, else the other end's."""
    plan = host_plan(f, host_name).vxlan
    want_vni = plan.vni if plan else (other.vni if other else row.vni)
    want_port = plan.port if plan else (other.port if other else row.port)
    theirs = f", {peer_name}'s end has VNI {other.vni}" if other else ""
    if row.vni != want_vni and want_vni is not None:
        by = "the scenario's" if plan else f"{peer_name}'s end's"
        out.add(
            hop,
            "VNI",
            Status.FAIL,
            f"VNI {row.vni}, but {by} is {want_vni}{theirs if plan else ''}: "
            "frames arrive with a VNI no device here takes, and are dropped",
            out.fix(
                f"make {row.link.name} again with VNI {want_vni}",
                *remade(host_name, row, want_vni, row.port or 0),
            ),
        )
    else:
        out.add(hop, "VNI", Status.OK, f"VNI {row.vni}" + (f", as {peer_name}'s end" if other else ""))
    if row.port != want_port and want_port is not None:
        out.add(
            hop,
            "dstport",
            Status.FAIL,
            f"UDP port {row.port}, but the other end listens on {want_port}",
            out.fix(
                f"make {row.link.name} again with dstport {want_port}",
                *remade(host_name, row, row.vni or 0, want_port),
            ),
        )
