"""What the doctor reads, and what it expects.

Facts are read live by `collect` (netlink, OVSDB, iptables, sysctls,
ofproto/trace, probes); `Expected` is what the active scenario's plan says the
path should be, handed in by the caller (the engine builds it from the plan).
Frozen dataclasses only: the checks judge these and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..actions import TUNNEL_OVERHEAD, UNDERLAY_MTU
from ..intents import ContainerRef
from ..links import LinkRow, VxlanRow
from .impaired import Flap, LinkImpair, UnderlayDrop


@dataclass(frozen=True)
class RouteFact:
    """The kernel's answer to `ip route get DST` in a namespace."""

    dst: str
    dev: str | None = None
    gateway: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ProbeFact:
    """A ping: payload size, don't-fragment, packets sent and answered."""

    size: int
    df: bool
    sent: int
    received: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.received > 0

    def describe(self) -> str:
        what = f"{self.size + 28} B" + (" DF" if self.df else "")
        extra = f" ({self.error})" if self.error else ""
        return f"{what} {self.received}/{self.sent}{extra}"


@dataclass(frozen=True)
class OvsPortFact:
    name: str
    bridge: str
    type: str = ""
    tag: int | None = None
    options: tuple[tuple[str, str], ...] = ()
    admin_state: str = ""
    link_state: str = ""
    error: str = ""
    stats: tuple[tuple[str, int], ...] = ()

    @property
    def remote_ip(self) -> str | None:
        return dict(self.options).get("remote_ip")

    @property
    def is_tunnel(self) -> bool:
        return self.type in TUNNEL_OVERHEAD or self.type in ("geneve", "stt")

    def stat(self, key: str) -> int:
        return dict(self.stats).get(key, 0)


@dataclass(frozen=True)
class FirewallFact:
    save: str = ""  # `iptables-save -c -t filter`
    bridge_nf: int | None = None  # net.bridge.bridge-nf-call-iptables; None: not there
    error: str | None = None


@dataclass(frozen=True)
class TraceFact:
    """`ovs-appctl ofproto/trace`: the flow asked about and OVS's decision."""

    bridge: str
    flow: str
    actions: str = ""  # the "Datapath actions:" line
    outputs: tuple[str, ...] = ()  # port names the frame leaves by
    tunnels: tuple[str, ...] = ()  # remote IPs it is tunnelled to
    notes: tuple[str, ...] = ()  # the "->" lines
    error: str | None = None

    @property
    def dropped(self) -> bool:
        return self.error is None and (not self.actions or self.actions == "drop")


@dataclass(frozen=True)
class HostFacts:
    name: str
    underlay_ip: str
    ns_ok: bool = True
    ovs_ok: bool = True
    error: str | None = None
    links: tuple[LinkRow, ...] = ()
    ovs_bridges: tuple[str, ...] = ()
    ovs_ports: tuple[OvsPortFact, ...] = ()
    firewall: FirewallFact | None = None
    underlay_route: str | None = None  # ovs/route/lookup of the peer's underlay address
    underlay_route_error: str | None = None
    underlay_ping: ProbeFact | None = None  # to the peer host's underlay address
    trace: TraceFact | None = None
    userspace: bool = True  # OVS's userspace datapath (netdev), not the kernel's
    vxlans: tuple[VxlanRow, ...] = ()  # kernel VXLAN devices
    peer_route: RouteFact | None = None  # the kernel's `ip route get` of the next host's underlay

    def vxlan(self, name: str | None) -> VxlanRow | None:
        return next((v for v in self.vxlans if v.link.name == name), None) if name else None

    def link(self, name: str | None) -> LinkRow | None:
        return next((lk for lk in self.links if lk.name == name), None) if name else None

    def port(self, name: str | None) -> OvsPortFact | None:
        return next((p for p in self.ovs_ports if p.name == name), None) if name else None

    def underlay_mtu(self) -> int:
        names = ("eth1", "br-phy") if self.vxlans else ("br-phy", "eth1")
        for name in names:
            row = self.link(name)
            if row is not None and row.mtu:
                return row.mtu
        return UNDERLAY_MTU


@dataclass(frozen=True)
class EndFacts:
    """One container of the pair, as read from inside and from docker."""

    name: str
    host: str
    running: bool
    eth0: LinkRow | None = None
    route: RouteFact | None = None  # to the other end
    host_veth: str = ""
    tx_checksum: bool | None = None  # tx checksum offload of eth0 (None: unknown)
    docker: str = ""  # its docker name ("": containet's own naming)

    @property
    def ref(self) -> ContainerRef:
        """How fixes name it: containet's name, or the docker name of a hand-built one."""
        return ContainerRef(self.name, self.docker) if self.docker else ContainerRef.ours(self.name)


@dataclass(frozen=True)
class EndPlan:
    """What the active scenario says about one container (None: no scenario knows it)."""

    cidr: str | None = None
    attach: str | None = None  # bridge the host side joins
    ovs: bool = False
    vlan: int | None = None
    vlan_known: bool = False
    gateway: str | None = None


@dataclass(frozen=True)
class VxlanPlan:
    """A kernel VXLAN device the plan creates (scenario kvxlan)."""

    name: str
    vni: int
    remotes: tuple[str, ...]
    port: int
    local: str
    mtu: int
    underlay: str | None = None


@dataclass(frozen=True)
class HostPlan:
    linux_bridge: str | None = None  # exp1: docker0
    ovs_bridge: str = "br0"
    tunnels: tuple[tuple[str, str, str], ...] = ()  # (port, type, remote_ip) the plan creates
    vxlan: VxlanPlan | None = None  # kvxlan: the kernel VXLAN device in the linux bridge


@dataclass(frozen=True)
class DoctorFacts:
    src: EndFacts
    dst: EndFacts
    src_ip: str | None
    dst_ip: str | None
    hosts: dict[str, HostFacts]
    src_plan: EndPlan = field(default_factory=EndPlan)
    dst_plan: EndPlan = field(default_factory=EndPlan)
    host_plans: dict[str, HostPlan] = field(default_factory=dict)
    scenario: str | None = None
    subnet: str | None = None
    small: ProbeFact | None = None
    big: ProbeFact | None = None
    route: tuple[str, ...] = ()  # the hosts a frame crosses, src's first (see tunnel_route)
    flaps: tuple[Flap, ...] = ()  # host-side veths whose carrier changed while the doctor ran
    underlay_drops: tuple[UnderlayDrop, ...] = ()  # random drops toward hosts in the lab's underlay
    underlay_ns: str = ""
    impairs: tuple[LinkImpair, ...] = ()  # how each end's link is shaped (port state, netem, drops)
    underlays: tuple[str, ...] = ()  # every host's underlay address, on the path or not

    @property
    def cross_host(self) -> bool:
        return self.src.host != self.dst.host

    @property
    def hosts_on_path(self) -> tuple[str, ...]:
        if len(self.route) >= 2 and self.route[0] == self.src.host and self.route[-1] == self.dst.host:
            return self.route
        return tuple(dict.fromkeys((self.src.host, self.dst.host)))

    def next_host(self, host: str) -> str | None:
        path = self.hosts_on_path
        i = path.index(host) if host in path else -1
        return path[i + 1] if 0 <= i < len(path) - 1 else None

    def previous_host(self, host: str) -> str | None:
        path = self.hosts_on_path
        i = path.index(host) if host in path else -1
        return path[i - 1] if i > 0 else None


def tunnel_route(
    src: str, dst: str, underlay: Mapping[str, str], remotes: Mapping[str, Iterable[str]]
) -> tuple[str, ...]:
    """The hosts a frame crosses from host `src` to host `dst`: the shortest chain of
    tunnels, each host's tunnel remotes (underlay addresses) naming the next host.
    Direct where src has a tunnel to dst; through host1 in a star. (src, dst) when no
    chain is known, so a missing tunnel is still looked for where it should be."""
    if src == dst:
        return (src,)
    by_ip = {ip: host for host, ip in underlay.items()}
    came_from: dict[str, str] = {src: src}
    frontier = [src]
    while frontier and dst not in came_from:
        nxt = []
        for host in frontier:
            for peer in sorted({by_ip[r] for r in remotes.get(host, ()) if r in by_ip}):
                if peer not in came_from:
                    came_from[peer] = host
                    nxt.append(peer)
        frontier = nxt
    if dst not in came_from:
        return (src, dst)
    path = [dst]
    while path[-1] != src:
        path.append(came_from[path[-1]])
    return tuple(reversed(path))


@dataclass(frozen=True)
class Expected:
    """What the active scenario's plan says: its name and subnet, each container's plan
    and each host's (empty: no scenario applied, or none readable)."""

    scenario: str | None = None
    subnet: str | None = None
    ends: Mapping[str, EndPlan] = field(default_factory=dict)
    hosts: Mapping[str, HostPlan] = field(default_factory=dict)

    def end(self, container: str) -> EndPlan:
        return self.ends.get(container, EndPlan())
