"""The topology as a typed graph: pure, frozen data and the queries users need.

Nodes are hosts, containers, links (every netlink device, in a host's or a
container's namespace), linux bridges, OVS bridges, OVS ports and tunnels (OVS
ports whose type is a tunnel). Edges are typed (`EdgeKind`) and point from the
dependent thing to what it depends on: a link is IN a namespace, a link has a
MASTER, a port is a PORT_OF a bridge, a tunnel TUNNELS_TO a host.

`workbench.topology.build.build(facts)` makes one from recorded facts; nothing
here reads the machine. Every node containet could have created says whether it
did (`ours`), from its marks, never from its name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from .nodes import (
    AttachKind,
    Container,
    ContainerStatus,
    EdgeKind,
    Host,
    Link,
    LinkState,
    LinuxBridge,
    N,
    Node,
    NodeKind,
    OvsBridge,
    OvsPort,
    Pairs,
    Tunnel,
    TunnelType,
    container_id,
    host_id,
    link_id,
    linux_bridge_id,
    ovs_bridge_id,
    ovs_port_id,
)

__all__ = [
    "AttachKind",
    "Attachment",
    "Container",
    "ContainerStatus",
    "Edge",
    "EdgeKind",
    "Host",
    "Keys",
    "Link",
    "LinkState",
    "LinuxBridge",
    "Node",
    "NodeKind",
    "OvsBridge",
    "OvsPort",
    "Pairs",
    "Topology",
    "Tunnel",
    "TunnelType",
    "Wiring",
    "container_id",
    "host_id",
    "link_id",
    "linux_bridge_id",
    "ovs_bridge_id",
    "ovs_port_id",
    "pick",
]


@dataclass(frozen=True)
class Edge:
    kind: EdgeKind
    src: str  # node id
    dst: str  # node id


@dataclass(frozen=True)
class Attachment:
    """What a container's host-side veth is plugged into."""

    kind: AttachKind
    bridge: str  # the linux bridge's or the OVS bridge's name
    port: OvsPort | None = None  # the OVS port, when the veth is one

    @property
    def vlan(self) -> int | None:
        return self.port.tag if self.port is not None else None


@dataclass(frozen=True)
class Wiring:
    """A container's place in the topology, in one answer."""

    host: str | None
    host_veth: str | None
    attachment: Attachment | None
    ovs_bridge: str | None  # the OVS bridge its frames reach
    tunnels: tuple[Tunnel, ...] = ()  # the tunnels on that OVS bridge

    @property
    def attached_to(self) -> str | None:
        return self.attachment.bridge if self.attachment else None

    @property
    def vlan(self) -> int | None:
        return self.attachment.vlan if self.attachment else None


# --- finding a container by what a user types ----------------------------------------
_HEX = re.compile(r"^[0-9a-f]{4,64}$")


@dataclass(frozen=True)
class Keys:
    """What a container can be named by."""

    name: str
    docker_name: str
    docker_id: str  # full, or as long as known
    addresses: tuple[str, ...]  # IPs, without the prefix length
    ours: bool


T = TypeVar("T")


def pick(who: str, items: Sequence[T], keys: Callable[[T], Keys]) -> T | None:
    """The item `who` names: containet name, docker name, IPv4 address, docker ID,
    or a unique ID prefix of at least 4 hex digits -- tried in that order. When one
    way names several, containet's own wins; a prefix naming several names none."""
    if not who:
        return None
    ks = [(item, keys(item)) for item in items]
    who_ip = who if _is_ipv4(who) else None
    ways: list[Callable[[Keys], bool]] = [
        lambda k: k.ours and k.name == who,
        lambda k: k.docker_name == who.removeprefix("/") or k.name == who,
        lambda k: who_ip is not None and who_ip in k.addresses,
        lambda k: k.docker_id == who.lower(),
    ]
    for way in ways:
        found = [(item, k) for item, k in ks if way(k)]
        if found:
            return next((item for item, k in found if k.ours), found[0][0])
    if _HEX.match(who.lower()):
        prefixed = [item for item, k in ks if k.docker_id.startswith(who.lower())]
        if len(prefixed) == 1:
            return prefixed[0]
    return None


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


# --- the graph --------------------------------------------------------------------
@dataclass(frozen=True)
class Topology:
    """Hosts, containers, links, bridges, ports, tunnels and how they connect."""

    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()
    docker_connected: bool = True
    errors: tuple[str, ...] = ()

    # indexes, made on first use (frozen dataclass: cached_property writes __dict__)
    @cached_property
    def _by_id(self) -> dict[str, Node]:
        return {n.id: n for n in self.nodes}

    @cached_property
    def _out(self) -> dict[tuple[str, EdgeKind], tuple[str, ...]]:
        out: dict[tuple[str, EdgeKind], list[str]] = {}
        for e in self.edges:
            out.setdefault((e.src, e.kind), []).append(e.dst)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def _in(self) -> dict[tuple[str, EdgeKind], tuple[str, ...]]:
        out: dict[tuple[str, EdgeKind], list[str]] = {}
        for e in self.edges:
            out.setdefault((e.dst, e.kind), []).append(e.src)
        return {k: tuple(v) for k, v in out.items()}

    # --- generic ---
    def node(self, node_id: str) -> Node | None:
        return self._by_id.get(node_id)

    def out(self, node_id: str, kind: EdgeKind) -> tuple[Node, ...]:
        """The nodes `node_id` points to along edges of `kind`."""
        return tuple(self._by_id[i] for i in self._out.get((node_id, kind), ()) if i in self._by_id)

    def into(self, node_id: str, kind: EdgeKind) -> tuple[Node, ...]:
        """The nodes pointing to `node_id` along edges of `kind`."""
        return tuple(self._by_id[i] for i in self._in.get((node_id, kind), ()) if i in self._by_id)

    def of_type(self, cls: type[N]) -> tuple[N, ...]:
        return tuple(n for n in self.nodes if isinstance(n, cls))

    def _first(self, nodes: Iterable[Node], cls: type[N]) -> N | None:
        return next((n for n in nodes if isinstance(n, cls)), None)

    # --- hosts ---
    @property
    def hosts(self) -> tuple[Host, ...]:
        return self.of_type(Host)

    def host(self, name: str) -> Host | None:
        found = self.node(host_id(name))
        return found if isinstance(found, Host) else None

    def links(self, owner: Host | Container | str) -> tuple[Link, ...]:
        """The links in a host's or container's namespace, by ifindex."""
        oid = owner if isinstance(owner, str) else owner.id
        return tuple(sorted((n for n in self.into(oid, EdgeKind.IN) if isinstance(n, Link)), key=_index))

    def link(self, host: str, name: str) -> Link | None:
        return next((lk for lk in self.links(host_id(host)) if lk.name == name), None)

    def linux_bridges(self, host: str) -> tuple[LinuxBridge, ...]:
        return tuple(n for n in self.into(host_id(host), EdgeKind.IN) if isinstance(n, LinuxBridge))

    def ovs_bridges(self, host: str) -> tuple[OvsBridge, ...]:
        return tuple(n for n in self.into(host_id(host), EdgeKind.IN) if isinstance(n, OvsBridge))

    def ports(self, bridge: OvsBridge) -> tuple[OvsPort | Tunnel, ...]:
        """An OVS bridge's ports, tunnels included, by name."""
        found = [n for n in self.into(bridge.id, EdgeKind.PORT_OF) if isinstance(n, OvsPort | Tunnel)]
        return tuple(sorted(found, key=lambda p: p.name))

    def members(self, bridge: LinuxBridge) -> tuple[Link, ...]:
        """The links enslaved to a linux bridge, by name."""
        found = [n for n in self.into(bridge.id, EdgeKind.MASTER) if isinstance(n, Link)]
        return tuple(sorted(found, key=lambda lk: lk.name))

    def master(self, link: Link) -> LinuxBridge | None:
        return self._first(self.out(link.id, EdgeKind.MASTER), LinuxBridge)

    def peer(self, link: Link) -> Link | None:
        """The other end of a veth pair, wherever it is."""
        return self._first(self.out(link.id, EdgeKind.VETH_PEER), Link)

    def device(self, node: LinuxBridge | OvsBridge | OvsPort) -> Link | None:
        return self._first(self.out(node.id, EdgeKind.DEVICE), Link)

    def tunnels(self, host: str) -> tuple[Tunnel, ...]:
        """Every tunnel port on the host's OVS bridges."""
        return tuple(p for br in self.ovs_bridges(host) for p in self.ports(br) if isinstance(p, Tunnel))

    def kernel_tunnels(self, host: str) -> tuple[Tunnel, ...]:
        """The host's kernel tunnel devices (VXLAN devices), by name."""
        found = [n for n in self.into(host_id(host), EdgeKind.IN) if isinstance(n, Tunnel)]
        return tuple(sorted(found, key=lambda t: t.name))

    def tunnel_target(self, tunnel: Tunnel) -> Host | None:
        """The host whose underlay address is the tunnel's remote_ip."""
        return self._first(self.out(tunnel.id, EdgeKind.TUNNELS_TO), Host)

    def tunnel_targets(self, tunnel: Tunnel) -> tuple[Host, ...]:
        """Every host the tunnel reaches (a kernel VXLAN device floods to several)."""
        return tuple(n for n in self.out(tunnel.id, EdgeKind.TUNNELS_TO) if isinstance(n, Host))

    def host_chain(self, src: str, dst: str) -> tuple[str, ...]:
        """The hosts a frame crosses from host `src` to host `dst`, following
        tunnels-to edges, shortest first (ties by host name): (src, dst) when a tunnel
        joins them, (src, hub, dst) through a star's hub; (src,) when src is dst,
        () when no chain of tunnels leads there."""
        if src == dst:
            return (src,) if self.host(src) else ()
        came_from: dict[str, str] = {src: src}
        frontier = [src]
        while frontier and dst not in came_from:
            nxt = []
            for name in frontier:
                tuns = self.tunnels(name) + self.kernel_tunnels(name)
                targets = {t.name for tun in tuns for t in self.tunnel_targets(tun)}
                for peer in sorted(targets):
                    if peer not in came_from:
                        came_from[peer] = name
                        nxt.append(peer)
            frontier = nxt
        if dst not in came_from:
            return ()
        path = [dst]
        while path[-1] != src:
            path.append(came_from[path[-1]])
        return tuple(reversed(path))

    # --- containers ---
    @property
    def containers(self) -> tuple[Container, ...]:
        return self.of_type(Container)

    def container(self, who: str) -> Container | None:
        """By containet name, docker name, IPv4 address, docker ID or unique ID prefix."""
        return pick(who, self.containers, _container_keys)

    def host_of(self, container: Container) -> Host | None:
        return self._first(self.out(container.id, EdgeKind.RUNS_ON), Host)

    def containers_on(self, host: str) -> tuple[Container, ...]:
        found = [n for n in self.into(host_id(host), EdgeKind.RUNS_ON) if isinstance(n, Container)]
        return tuple(sorted(found, key=lambda c: c.name))

    def unplaced(self) -> tuple[Container, ...]:
        """Containers with no veth into a known host."""
        return tuple(c for c in self.containers if self.host_of(c) is None)

    def host_veth(self, container: Container) -> Link | None:
        """The host-side end of its eth0 veth (on the host it runs on)."""
        return self._first(self.out(container.id, EdgeKind.ATTACHED), Link)

    def interfaces(self, container: Container) -> tuple[Link, ...]:
        return self.links(container)

    def attachment(self, container: Container) -> Attachment | None:
        veth = self.host_veth(container)
        return None if veth is None else self.attachment_of(veth)

    def attachment_of(self, link: Link) -> Attachment | None:
        """What a host link is plugged into: its linux bridge, or the OVS bridge of
        the port it is."""
        br = self.master(link)
        if br is not None:
            return Attachment(AttachKind.LINUX_BRIDGE, br.name)
        port = self._first(self.into(link.id, EdgeKind.DEVICE), OvsPort)
        if port is not None:
            return Attachment(AttachKind.OVS_BRIDGE, port.bridge, port)
        return None

    def reaches(self, container: Container) -> OvsBridge | None:
        """The OVS bridge the container's frames reach: its port's bridge, or an OVS
        bridge plugged into its linux bridge (the seed's Exp1: br0 inside docker0)."""
        veth = self.host_veth(container)
        if veth is None:
            return None
        att = self.attachment_of(veth)
        if att is None:
            return None
        owner = self._first(self.out(veth.id, EdgeKind.IN), Host)
        if owner is None:
            return None
        host = owner.name
        if att.kind is AttachKind.OVS_BRIDGE:
            found = self.node(ovs_bridge_id(host, att.bridge))
            return found if isinstance(found, OvsBridge) else None
        lbr = self.master(veth)
        assert lbr is not None
        for member in self.members(lbr):
            for dev in (member, self.peer(member)):
                if dev is None:
                    continue
                owned = self.into(dev.id, EdgeKind.DEVICE)
                obr = self._first(owned, OvsBridge)
                if obr is None:
                    port = self._first(owned, OvsPort)
                    found = self.node(ovs_bridge_id(host, port.bridge)) if port else None
                    obr = found if isinstance(found, OvsBridge) else None
                if obr is not None:
                    return obr
        return None

    def wiring(self, container: Container) -> Wiring:
        host = self.host_of(container)
        veth = self.host_veth(container)
        obr = self.reaches(container)
        tunnels = tuple(p for p in self.ports(obr) if isinstance(p, Tunnel)) if obr else ()
        lbr = self.master(veth) if veth is not None and obr is None else None
        if lbr is not None and host is not None:  # kvxlan: a kernel tunnel in its linux bridge
            tunnels = tuple(t for t in self.kernel_tunnels(host.name) if t.bridge == lbr.name)
        return Wiring(
            host=host.name if host else None,
            host_veth=veth.name if veth else None,
            attachment=self.attachment(container),
            ovs_bridge=obr.name if obr else None,
            tunnels=tunnels,
        )


def _index(link: Link) -> int:
    return link.index


def _container_keys(c: Container) -> Keys:
    return Keys(c.name, c.docker_name, c.docker_id, tuple(a.split("/")[0] for a in c.addresses), c.ours)
