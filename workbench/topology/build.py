"""Facts -> Topology: a pure function, and the rules it follows.

* A container belongs to the host whose namespace holds the peer of its eth0
  veth (any veth when it has no eth0), whoever created it. Veth ends are matched
  by ifindex pairs -- this end's IFLA_LINK is the peer's index and the peer's
  IFLA_LINK is this end's index -- and, where the facts say it, by namespace ids:
  a link's IFLA_LINK_NETNSID names the peer's namespace as an nsid of its own,
  and the namespace's nsid table (RTM_GETNSID) turns that into a namespace
  inode. When more than one namespace fits and no nsid decides, no host is
  claimed: a wrong host is worse than none.
* A tunnel port's remote_ip is matched to the host whose underlay address it is
  (the configured one first, else a unique address on one host's links).
* `ours` comes from the marks only: docker label containet=<mark> *and* a
  containet.name label for containers, ifalias for links, external_ids for OVS
  rows, the alias of lo for a host's namespace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..marks import IPT_COMMENT, LABEL, LABEL_NAME, MARK_VALUE, NS_ALIAS, OVS_MARK
from .facts import ContainerFacts, Facts, HostFacts, LinkFact, NetnsFacts, OvsPortFact
from .model import (
    Container,
    ContainerStatus,
    Edge,
    EdgeKind,
    Host,
    Link,
    LinkState,
    LinuxBridge,
    Node,
    OvsBridge,
    OvsPort,
    Topology,
    Tunnel,
    TunnelType,
    container_id,
    host_id,
    link_id,
    linux_bridge_id,
)

TUNNEL_TYPES = frozenset(t.value for t in TunnelType)


@dataclass(frozen=True)
class Marks:
    """The mark values that make something containet's (default: this instance's)."""

    value: str = MARK_VALUE  # docker label `containet`, OVS external_ids `containet`
    link_alias: str = IPT_COMMENT  # ifalias of the links containet creates
    ns_alias: str = NS_ALIAS  # alias of lo in the namespaces containet creates
    label: str = LABEL
    label_name: str = LABEL_NAME
    ovs_key: str = OVS_MARK

    def container(self, labels: Iterable[tuple[str, str]]) -> bool:
        d = dict(labels)
        return d.get(self.label) == self.value and bool(d.get(self.label_name))

    def ovs(self, external_ids: Iterable[tuple[str, str]]) -> bool:
        return dict(external_ids).get(self.ovs_key) == self.value


@dataclass
class _Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[Edge, None] = field(default_factory=dict)  # ordered set
    errors: list[str] = field(default_factory=list)

    def add(self, node: Node) -> None:
        self.nodes.setdefault(node.id, node)

    def edge(self, kind: EdgeKind, src: str, dst: str) -> None:
        self.edges.setdefault(Edge(kind, src, dst), None)


def build(facts: Facts, marks: Marks | None = None) -> Topology:
    """The topology these facts describe (pure: no I/O, same facts -> same graph)."""
    marks = marks or Marks()
    g = _Graph()
    spaces: dict[str, NetnsFacts] = {}  # owner node id -> its namespace
    for hf in facts.hosts:
        _host(g, hf, marks)
        if hf.netns is not None:
            spaces[host_id(hf.name)] = hf.netns
    for cf in facts.containers:
        if cf.netns is not None:
            spaces[container_id(cf.id)] = cf.netns
    for owner, ns in spaces.items():
        for lf in ns.links:
            g.add(_link(owner, lf, ns, marks))
            g.edge(EdgeKind.IN, link_id(owner, lf.index), owner)
    for hf in facts.hosts:
        if hf.netns is not None:
            _linux_bridges(g, hf.name, hf.netns, marks)
    peers = _veth_peers(spaces)
    for (a, ai), (b, bi) in peers.items():
        g.edge(EdgeKind.VETH_PEER, link_id(a, ai), link_id(b, bi))
    owner_of_ip = _underlay_owners(facts.hosts)
    for hf in facts.hosts:
        if hf.ovs is not None:
            _ovs(g, hf, owner_of_ip, marks)
        if hf.netns is not None:
            _kernel_tunnels(g, hf.name, hf.netns, owner_of_ip, marks)
    for cf in facts.containers:
        _container(g, cf, peers, marks)
    if facts.docker_error:
        g.errors.append(facts.docker_error)
    return Topology(
        nodes=tuple(g.nodes.values()),
        edges=tuple(g.edges),
        docker_connected=facts.docker_error is None,
        errors=tuple(g.errors),
    )


# --- hosts, links, bridges ------------------------------------------------------------
def _host(g: _Graph, hf: HostFacts, marks: Marks) -> None:
    lo = next((lk for lk in hf.netns.links if lk.name == "lo"), None) if hf.netns else None
    error = hf.netns_error or (f"ovs: {hf.ovs_error}" if hf.ovs_error else None)
    g.add(
        Host(
            name=hf.name,
            underlay_ip=hf.underlay_ip,
            reachable=hf.netns is not None,
            ovs_connected=hf.ovs is not None,
            ours=lo is not None and lo.alias == marks.ns_alias,
            error=error,
        )
    )
    if error:
        g.errors.append(f"{hf.name}: {error}")


def _link(owner: str, lf: LinkFact, ns: NetnsFacts, marks: Marks) -> Link:
    master = next((m.name for m in ns.links if m.index == lf.master), None) if lf.master else None
    return Link(
        owner=owner,
        index=lf.index,
        name=lf.name,
        kind=lf.kind,
        state=LinkState.of(lf.state),
        mtu=lf.mtu,
        mac=lf.mac,
        addresses=lf.addresses,
        master=master,
        alias=lf.alias,
        ours=lf.alias == marks.link_alias,
    )


def _linux_bridges(g: _Graph, host: str, ns: NetnsFacts, marks: Marks) -> None:
    owner = host_id(host)
    kinds = {lf.index: lf for lf in ns.links}
    for lf in ns.links:
        if lf.kind == "bridge":
            br = LinuxBridge(
                host, lf.name, LinkState.of(lf.state), lf.mtu, lf.addresses, lf.alias == marks.link_alias
            )
            g.add(br)
            g.edge(EdgeKind.IN, br.id, owner)
            g.edge(EdgeKind.DEVICE, br.id, link_id(owner, lf.index))
    for lf in ns.links:
        master = kinds.get(lf.master) if lf.master else None
        if master is not None and master.kind == "bridge":
            g.edge(EdgeKind.MASTER, link_id(owner, lf.index), linux_bridge_id(host, master.name))


# --- veth pairs ----------------------------------------------------------------------
End = tuple[str, int]  # (owner node id, ifindex)


def _veth_peers(spaces: dict[str, NetnsFacts]) -> dict[End, End]:
    """Every veth end whose peer is found, mapped to that peer (both directions). A
    pair counts only when each end fits the other and nothing else."""
    by_inode: dict[int, str] = {}
    for owner, ns in spaces.items():
        if ns.inode:
            by_inode[ns.inode] = "" if ns.inode in by_inode else owner  # "" = two owners: unusable
    links = {owner: {lf.index: lf for lf in ns.links} for owner, ns in spaces.items()}
    fits: dict[End, list[End]] = {}
    for owner, ns in spaces.items():
        for lf in ns.links:
            if lf.kind == "veth" and lf.peer_index is not None:
                fits[(owner, lf.index)] = _candidates(owner, lf, spaces, links, by_inode)
    return {end: found[0] for end, found in fits.items() if len(found) == 1 and fits.get(found[0]) == [end]}


def _named(ns: NetnsFacts, nsid: int | None, by_inode: dict[int, str]) -> tuple[str | None, set[str]]:
    """What the facts of `ns` say about the namespace `nsid` names there: its owner
    ("" for a namespace with no known owner, None when the facts do not say) and the
    owners it is not (namespaces asked about that have another id, or none, there)."""
    if nsid is None:
        return None, set()
    inode = next((n.inode for n in ns.nsids if n.nsid == nsid), None)
    if inode is not None:
        return by_inode.get(inode, ""), set()
    return None, {by_inode[n.inode] for n in ns.nsids if by_inode.get(n.inode)}


def _candidates(
    owner: str,
    lf: LinkFact,
    spaces: dict[str, NetnsFacts],
    links: dict[str, dict[int, LinkFact]],
    by_inode: dict[int, str],
) -> list[End]:
    """Where the peer of veth `lf` (in `owner`'s namespace) may be."""
    peer_index = lf.peer_index if lf.peer_index is not None else -1

    def fits(other: str) -> bool:
        peer = links[other].get(peer_index)
        if peer is None or peer.kind != "veth" or peer.peer_index != lf.index:
            return False
        if other == owner:
            return peer.link_netnsid is None
        back, not_there = _named(spaces[other], peer.link_netnsid, by_inode)
        return (back is None or back == owner) and owner not in not_there  # no contradiction

    if lf.link_netnsid is None:  # the peer is in the same namespace
        return [(owner, peer_index)] if fits(owner) else []
    there, not_there = _named(spaces[owner], lf.link_netnsid, by_inode)
    if there is not None:  # the nsid says where: check the pair there
        return [(there, peer_index)] if there and fits(there) else []
    return [(o, peer_index) for o in spaces if o != owner and o not in not_there and fits(o)]


# --- OVS ------------------------------------------------------------------------------
def _underlay_owners(hosts: Iterable[HostFacts]) -> dict[str, str]:
    """Underlay IP -> host: the configured addresses, then addresses on exactly one host."""
    hosts = list(hosts)
    out = {h.underlay_ip: h.name for h in hosts if h.underlay_ip}
    seen: dict[str, set[str]] = {}
    for h in hosts:
        for lf in h.netns.links if h.netns else ():
            for cidr in lf.addresses:
                seen.setdefault(cidr.split("/")[0], set()).add(h.name)
    for ip, owners in seen.items():
        if ip not in out and len(owners) == 1:
            out[ip] = next(iter(owners))
    return out


def _ovs(g: _Graph, hf: HostFacts, owner_of_ip: dict[str, str], marks: Marks) -> None:
    assert hf.ovs is not None
    owner = host_id(hf.name)
    names = {lf.name: lf.index for lf in hf.netns.links} if hf.netns else {}
    for bf in hf.ovs.bridges:
        br = OvsBridge(hf.name, bf.name, bf.datapath_type, marks.ovs(bf.external_ids))
        g.add(br)
        g.edge(EdgeKind.IN, br.id, owner)
        if bf.name in names:
            g.edge(EdgeKind.DEVICE, br.id, link_id(owner, names[bf.name]))
        for pf in bf.ports:
            port = _port(hf.name, bf.name, pf, marks)
            g.add(port)
            g.edge(EdgeKind.PORT_OF, port.id, br.id)
            if isinstance(port, Tunnel):
                target = owner_of_ip.get(port.remote_ip or "")
                if target is not None:
                    g.edge(EdgeKind.TUNNELS_TO, port.id, host_id(target))
            elif pf.name in names:
                g.edge(EdgeKind.DEVICE, port.id, link_id(owner, names[pf.name]))


def _port(host: str, bridge: str, pf: OvsPortFact, marks: Marks) -> OvsPort | Tunnel:
    iface = pf.interfaces[0] if pf.interfaces else None
    stats = dict(iface.statistics) if iface else {}
    options = tuple(sorted(iface.options)) if iface else ()
    ours = marks.ovs(pf.external_ids)
    itype = iface.type if iface else ""
    if itype in TUNNEL_TYPES:
        return Tunnel(
            host=host,
            bridge=bridge,
            name=pf.name,
            type=TunnelType(itype),
            remote_ip=dict(options).get("remote_ip"),
            options=options,
            tag=pf.tag,
            ofport=iface.ofport if iface else None,
            rx_packets=int(stats.get("rx_packets", 0)),
            tx_packets=int(stats.get("tx_packets", 0)),
            ours=ours,
        )
    rate = float(dict(pf.qos.other_config).get("max-rate", 0) or 0) if pf.qos else 0.0
    return OvsPort(
        host=host,
        bridge=bridge,
        name=pf.name,
        type=itype,
        tag=pf.tag,
        options=options,
        ofport=iface.ofport if iface else None,
        rx_packets=int(stats.get("rx_packets", 0)),
        tx_packets=int(stats.get("tx_packets", 0)),
        qos_mbit=rate / 1e6 or None,
        ours=ours,
    )


def _kernel_tunnels(g: _Graph, host: str, ns: NetnsFacts, owner_of_ip: dict[str, str], marks: Marks) -> None:
    """Kernel VXLAN devices: a tunnel each, in its host, to every host it floods to."""
    owner = host_id(host)
    by_index = {lf.index: lf for lf in ns.links}
    for lf in ns.links:
        vx = lf.vxlan
        if lf.kind != "vxlan" or vx is None:
            continue
        master = by_index.get(lf.master) if lf.master else None
        under = by_index.get(vx.link) if vx.link else None
        remotes = vx.remotes or ((vx.group,) if vx.group else ())
        options = {"key": str(vx.vni), "dst_port": str(vx.port), "local_ip": vx.local or ""}
        if remotes:
            options["remote_ip"] = ",".join(remotes)
        tun = Tunnel(
            host=host,
            bridge=master.name if master is not None else "",
            name=lf.name,
            type=TunnelType.VXLAN,
            remote_ip=remotes[0] if remotes else None,
            options=tuple(sorted((k, v) for k, v in options.items() if v)),
            ours=lf.alias == marks.link_alias,
            kernel=True,
            remotes=remotes,
            vni=vx.vni,
            dst_port=vx.port,
            local_ip=vx.local,
            underlay=under.name if under is not None else None,
            mtu=lf.mtu,
            state=LinkState.of(lf.state),
        )
        g.add(tun)
        g.edge(EdgeKind.IN, tun.id, owner)
        g.edge(EdgeKind.DEVICE, tun.id, link_id(owner, lf.index))
        for remote in remotes:
            target = owner_of_ip.get(remote)
            if target is not None:
                g.edge(EdgeKind.TUNNELS_TO, tun.id, host_id(target))


# --- containers ---------------------------------------------------------------------
def _container(g: _Graph, cf: ContainerFacts, peers: dict[End, End], marks: Marks) -> None:
    ours = marks.container(cf.labels)
    labels = dict(cf.labels)
    node = Container(
        docker_id=cf.id,
        docker_name=cf.name,
        name=labels[marks.label_name] if ours else cf.name,
        status=ContainerStatus.of(cf.status),
        pid=cf.pid,
        ours=ours,
        labels=tuple(sorted(cf.labels)),
        addresses=_addresses(cf.netns),
        gateway=cf.netns.gateway if cf.netns else None,
        cap_mbit=cf.cap_mbit,
        error=cf.error,
    )
    g.add(node)
    if cf.netns is None:
        return
    veths = sorted(
        (lf for lf in cf.netns.links if lf.kind == "veth"), key=lambda lf: (lf.name != "eth0", lf.index)
    )
    placed = False
    for lf in veths:
        peer = peers.get((node.id, lf.index))
        if peer is None or not peer[0].startswith("host:"):
            continue
        g.edge(EdgeKind.ATTACHED, node.id, link_id(*peer))
        if not placed:
            g.edge(EdgeKind.RUNS_ON, node.id, peer[0])
            placed = True


def _addresses(ns: NetnsFacts | None) -> tuple[str, ...]:
    if ns is None:
        return ()
    ordered = sorted((lf for lf in ns.links if lf.name != "lo"), key=lambda lf: (lf.name != "eth0", lf.index))
    return tuple(a for lf in ordered for a in lf.addresses)
