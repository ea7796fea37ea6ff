"""WHERE to capture, resolved against the discovered topology.

    h1-a            a container: its eth0, inside its namespace
    host1:eth1      a kernel device in a host's namespace (a host-side veth, a
                    bridge, eth1 the underlay NIC, br-phy)
    host1:gre0      an OVS port with no kernel device (a tunnel port of the
                    userspace datapath): mirrored to a marked internal port

Each target knows what the path adds to its frames (`PathContext`), so the X-ray
can tell a frame that will not fit the tunnel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import BadInput, NotReady
from ..host import Host, Place
from ..lab import NIC
from ..portio import is_xdp
from ..topology.model import Topology
from ..topology.nodes import Container, OvsPort, Tunnel, host_id
from .xray import PathContext

_IFNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,15}$")
UNDERLAY_MTU = 1500


@dataclass(frozen=True)
class MirrorSpec:
    """An OVS port to see through a mirror: which host's OVS, which bridge."""

    host: Host
    bridge: str
    port: str


@dataclass(frozen=True)
class Target:
    where: str  # as the user typed it
    label: str  # "h1-a eth0", "host1:eth1", "host1:gre0 (mirror)"
    host: str | None
    place: Place
    iface: str  # the kernel device tcpdump opens (the mirror's port, for a mirror)
    context: PathContext
    mirror: MirrorSpec | None = None


def _underlay_mtu(topology: Topology, host: str) -> int:
    link = topology.link(host, NIC)
    return link.mtu if link is not None and link.mtu else UNDERLAY_MTU


def _tunnel_type(topology: Topology, host: str, bridge: str | None) -> str | None:
    every = topology.tunnels(host) + topology.kernel_tunnels(host)  # OVS's ports, the kernel's devices
    tunnels = [t for t in every if bridge is None or t.bridge == bridge]
    return str(tunnels[0].type) if tunnels else None


def container_target(topology: Topology, c: Container, where: str) -> Target:
    if c.status != "running" or not c.pid:
        raise NotReady(f"container {c.name} is not running: nothing to capture on")
    wiring = topology.wiring(c)
    host = wiring.host
    tunnel = str(wiring.tunnels[0].type) if wiring.tunnels else None
    ctx = PathContext(
        tunnel=tunnel,
        underlay_mtu=_underlay_mtu(topology, host) if host else UNDERLAY_MTU,
        tag=wiring.vlan is not None,
        where=f"{c.name} eth0",
    )
    return Target(where, f"{c.name} eth0", host, Place.of_pid(c.pid, c.name), "eth0", ctx)


def resolve(where: str, hosts: Sequence[Host], topology: Topology) -> Target:
    """A Target for WHERE, or BadInput (one line) naming what there is."""
    where = where.strip()
    by_name = {h.name: h for h in hosts}
    if ":" not in where:
        c = topology.container(where) if where else None
        if c is not None:
            return container_target(topology, c, where)
        if where in by_name:
            raise BadInput(f"{where} is a host: say which of its ports, e.g. {where}:{NIC}")
        names = ", ".join(sorted(c.name for c in topology.containers if topology.host_of(c))) or "none"
        raise BadInput(f"unknown container {where!r} (have: {names}; or HOST:IFACE, e.g. host1:{NIC})")
    host_name, _, iface = where.partition(":")
    host = by_name.get(host_name)
    if host is None:
        raise BadInput(f"unknown host {host_name!r} in {where!r} (have: {', '.join(by_name)})")
    if not _IFNAME.match(iface):
        raise BadInput(f"bad interface name {iface!r}: up to 15 letters, digits, '.', '-', '_' or '@'")
    link = topology.link(host_name, iface)
    port = _ovs_port(topology, host_name, iface)
    xdp = port is not None and is_xdp(port.type)  # OVS takes its frames before the kernel's taps
    if link is not None and not xdp:
        return Target(where, where, host_name, host.place, iface, _link_context(topology, host_name, iface))
    if port is not None:
        tunnel = (
            str(port.type) if isinstance(port, Tunnel) else _tunnel_type(topology, host_name, port.bridge)
        )
        ctx = PathContext(tunnel, _underlay_mtu(topology, host_name), False, where)
        spec = MirrorSpec(host, port.bridge, port.name)
        return Target(where, f"{where} (mirror)", host_name, host.place, "", ctx, spec)
    have = sorted(lk.name for lk in topology.links(host_id(host_name)) if lk.name != "lo")
    have += sorted(p.name for br in topology.ovs_bridges(host_name) for p in topology.ports(br))
    raise BadInput(
        f"{host_name} has no device or OVS port {iface!r} (have: {', '.join(dict.fromkeys(have)) or 'none'})"
    )


def _ovs_port(topology: Topology, host: str, name: str) -> OvsPort | Tunnel | None:
    for br in topology.ovs_bridges(host):
        for p in topology.ports(br):
            if p.name == name:
                return p
    return None


def _link_context(topology: Topology, host: str, iface: str) -> PathContext:
    """A host-side veth of a container: that container's path; the underlay NIC and
    br-phy: frames already wrapped (no projection); a bridge: the host's tunnel."""
    mtu = _underlay_mtu(topology, host)
    for c in topology.containers_on(host):
        veth = topology.host_veth(c)
        if veth is not None and veth.name == iface:
            ctx = container_target(topology, c, iface).context if c.pid else PathContext()
            return PathContext(ctx.tunnel, mtu, ctx.tag, f"{host}:{iface}")
    port = _ovs_port(topology, host, iface)
    if iface == NIC or (port is not None and any(p.name == NIC for p in _siblings(topology, host, port))):
        return PathContext(None, mtu, False, f"{host}:{iface}")
    tag = port is not None and isinstance(port, OvsPort) and port.tag is not None
    return PathContext(_tunnel_type(topology, host, None), mtu, tag, f"{host}:{iface}")


def _siblings(topology: Topology, host: str, port: OvsPort | Tunnel) -> tuple[OvsPort | Tunnel, ...]:
    for br in topology.ovs_bridges(host):
        if br.name == port.bridge:
            return topology.ports(br)
    return ()
