"""The inventory model: pure, frozen data. Snapshots and live watchers both
produce these types, the CLI prints them and the TUI draws them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..topology.model import Keys, pick

if TYPE_CHECKING:
    from ..topology.facts import Facts


@dataclass(frozen=True)
class Iface:
    name: str
    kind: str = ""  # veth, bridge, tun, openvswitch, ...
    state: str = "UNKNOWN"
    mtu: int = 0
    mac: str = ""
    addresses: tuple[str, ...] = ()
    master: str | None = None  # linux bridge it is enslaved to


@dataclass(frozen=True)
class LinuxBridge:
    name: str
    state: str
    mtu: int
    addresses: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()


@dataclass(frozen=True)
class OvsPort:
    name: str
    type: str = ""  # "" (system), internal, gre, vxlan, ...
    tag: int | None = None
    options: tuple[tuple[str, str], ...] = ()
    ofport: int | None = None
    rx_packets: int = 0
    tx_packets: int = 0
    ours: bool = False
    qos_mbit: float | None = None  # linux-htb QoS max-rate on the port (traffic to its container)
    impaired: str = ""  # a tunnel's impairment or link state (workbench.impair), "" when none

    @property
    def remote_ip(self) -> str | None:
        return dict(self.options).get("remote_ip")

    @property
    def is_tunnel(self) -> bool:
        return self.type in ("gre", "vxlan", "geneve", "stt")


@dataclass(frozen=True)
class KernelTunnel:
    """A kernel tunnel device (a VXLAN device in a linux bridge: scenario kvxlan, or one
    made by hand with `ip link add ... type vxlan`)."""

    name: str
    type: str = "vxlan"
    bridge: str = ""  # the linux bridge it is a port of ("": none)
    vni: int | None = None
    remotes: tuple[str, ...] = ()  # where it floods to: `remote`, or one fdb entry each
    dst_port: int | None = None
    local_ip: str | None = None
    underlay: str | None = None  # the device it sends by (`dev`); None: the route decides
    mtu: int = 0
    state: str = "UNKNOWN"
    ours: bool = False

    def describe(self) -> str:
        """`vni 42 remote 10.0.0.4 dstport 4789 local 10.0.0.3 dev eth1 mtu 1450`."""
        bits = [f"vni {self.vni}", f"remote {','.join(self.remotes) or '-'}", f"dstport {self.dst_port}"]
        bits += [f"local {self.local_ip}"] if self.local_ip else []
        bits += [f"dev {self.underlay}"] if self.underlay else []
        return " ".join([*bits, f"mtu {self.mtu}"])


@dataclass(frozen=True)
class OvsBridge:
    name: str
    datapath_type: str = ""
    ports: tuple[OvsPort, ...] = ()
    ours: bool = False


@dataclass(frozen=True)
class Container:
    """A docker container as discovered (workbench.topology), whoever built it."""

    name: str  # containet's name for it when ours, else its docker name
    host: str  # the host its eth0's veth peer is on; "" when none of the lab's
    docker_name: str
    id: str  # short docker ID (12 hex digits)
    status: str
    pid: int
    interfaces: tuple[Iface, ...] = ()
    gateway: str | None = None
    host_veth: str | None = None  # host-side end of its veth pair
    attached_to: str | None = None  # linux bridge or OVS bridge the host side is a port of
    vlan: int | None = None
    cap_mbit: float | None = None  # QoS cap in force (see workbench.qos), both ways
    ours: bool = False  # containet built it (label containet=<mark> and a containet.name label)
    attach_kind: str | None = None  # "linux bridge" or "ovs bridge" (topology.AttachKind)
    reaches: str | None = None  # the OVS bridge its frames reach (br0 inside docker0 in exp1)
    full_id: str = ""
    meant_for: str = ""  # ours only: the host containet started it for (its label), wired or not
    impaired: str = ""  # its link's impairment or link state (workbench.impair), "" when none

    @property
    def ip(self) -> str | None:
        for iface in self.interfaces:
            if iface.name != "lo" and iface.addresses:
                return iface.addresses[0].split("/")[0]
        return None

    @property
    def mtu(self) -> int | None:
        for iface in self.interfaces:
            if iface.name == "eth0":
                return iface.mtu
        return None


@dataclass(frozen=True)
class HostView:
    name: str
    underlay_ip: str
    reachable: bool  # namespace/OVS answered
    ovs_connected: bool
    links: tuple[Iface, ...] = ()
    linux_bridges: tuple[LinuxBridge, ...] = ()
    ovs_bridges: tuple[OvsBridge, ...] = ()
    error: str | None = None
    kernel_tunnels: tuple[KernelTunnel, ...] = ()

    @property
    def tunnels(self) -> tuple[OvsPort, ...]:
        return tuple(p for b in self.ovs_bridges for p in b.ports if p.is_tunnel)


@dataclass(frozen=True)
class OvnPort:
    """A logical switch port: its addresses ("MAC IP"), NB's `up`, the chassis it is bound on."""

    name: str
    switch: str
    addresses: tuple[str, ...]
    up: bool
    chassis: str | None


@dataclass(frozen=True)
class OvnSwitch:
    name: str
    ports: tuple[OvnPort, ...]


@dataclass(frozen=True)
class OvnChassis:
    """A chassis in SB: its encapsulation, whether its ovn-controller runs (None: not a
    lab host, unknown), the ports bound on it, its Geneve tunnels (remote IPs) and, in
    the lab, what the controller's monitor says of its crashes ("" none)."""

    name: str
    encap: str
    encap_ip: str
    controller: bool | None
    ports: tuple[str, ...]
    tunnels: tuple[str, ...]
    crashes: str = ""


@dataclass(frozen=True)
class OvnView:
    """OVN as its databases say: central's host and daemons, switches, chassis."""

    central: str
    nb: str
    sb: str
    northd: bool
    switches: tuple[OvnSwitch, ...] = ()
    chassis: tuple[OvnChassis, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    mode: str  # "lab" or "real"
    lab: str  # one-line lab health
    #: a half-built lab: what `lab up` will repair, one line per fault ("host1: ... : restart it")
    lab_repairs: tuple[str, ...] = ()
    hosts: tuple[HostView, ...] = ()
    containers: tuple[Container, ...] = ()
    docker_connected: bool = True
    errors: tuple[str, ...] = field(default=())
    #: OVN, where a scenario runs it (None: no OVN central in the lab)
    ovn: OvnView | None = None

    def host(self, name: str) -> HostView | None:
        return next((h for h in self.hosts if h.name == name), None)

    #: the facts this snapshot was built from, so a refresh re-reads only what changed
    facts: Facts | None = field(default=None, compare=False, repr=False)

    def container(self, who: str) -> Container | None:
        """By containet name, docker name, IPv4 address, docker ID or unique ID prefix."""
        return pick(who, self.containers, _keys)

    def containers_on(self, host: str) -> tuple[Container, ...]:
        """The containers discovered on `host`."""
        return tuple(c for c in self.containers if c.host == host)

    def unplaced(self) -> tuple[Container, ...]:
        """Containers on none of the lab's hosts (containet's own, not wired yet or stopped)."""
        return tuple(c for c in self.containers if not c.host)

    def shown_on(self, host: str) -> tuple[Container, ...]:
        """What a view of `host` lists: its containers, then containet's own that were
        started for it but have no network into it (yet)."""
        return self.containers_on(host) + tuple(c for c in self.unplaced() if c.meant_for == host)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(replace(self, facts=None))
        out.pop("facts", None)
        if out.get("ovn") is None:
            out.pop("ovn", None)  # as it was before OVN: no key
        return out


def _keys(c: Container) -> Keys:
    ips = tuple(a.split("/")[0] for i in c.interfaces if i.name != "lo" for a in i.addresses)
    return Keys(c.name, c.docker_name, c.full_id or c.id, ips, c.ours)
