"""The topology's nodes: what kinds of things there are (closed sets as enums),
their ids, and one frozen dataclass per kind. The graph and its queries are in
model.py, which re-exports all of this."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, TypeVar


class NodeKind(StrEnum):
    HOST = "host"
    CONTAINER = "container"
    LINK = "link"
    LINUX_BRIDGE = "linux-bridge"
    OVS_BRIDGE = "ovs-bridge"
    OVS_PORT = "ovs-port"
    TUNNEL = "tunnel"


class EdgeKind(StrEnum):
    IN = "in"  # link -> host or container whose namespace holds it; bridges -> their host
    VETH_PEER = "veth peer"  # link -> the other end of its veth pair (stored both ways)
    MASTER = "master"  # link -> the linux bridge it is enslaved to
    DEVICE = "device"  # linux bridge, OVS bridge or OVS port -> its netlink device (same namespace)
    PORT_OF = "port of"  # OVS port or tunnel -> its OVS bridge
    ATTACHED = "attached"  # container -> the host-side end of its veth
    RUNS_ON = "runs on"  # container -> the host its eth0's peer is on
    TUNNELS_TO = "tunnels to"  # tunnel -> the host whose underlay address is its remote_ip (each remote)


class AttachKind(StrEnum):
    """What a container's host-side veth is plugged into."""

    LINUX_BRIDGE = "linux bridge"
    OVS_BRIDGE = "ovs bridge"


class TunnelType(StrEnum):
    """OVS interface types that carry frames to another host."""

    GRE = "gre"
    VXLAN = "vxlan"
    GENEVE = "geneve"
    STT = "stt"
    ERSPAN = "erspan"
    IP6ERSPAN = "ip6erspan"
    IP6GRE = "ip6gre"
    LISP = "lisp"
    GTPU = "gtpu"
    BAREUDP = "bareudp"
    SRV6 = "srv6"


class LinkState(StrEnum):
    """Operational state of a link (RFC 2863, as netlink reports it)."""

    UP = "UP"
    DOWN = "DOWN"
    UNKNOWN = "UNKNOWN"
    LOWERLAYERDOWN = "LOWERLAYERDOWN"
    DORMANT = "DORMANT"
    NOTPRESENT = "NOTPRESENT"
    TESTING = "TESTING"

    @classmethod
    def of(cls, text: str) -> LinkState:
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN


class ContainerStatus(StrEnum):
    """docker's State.Status."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    RESTARTING = "restarting"
    REMOVING = "removing"
    EXITED = "exited"
    DEAD = "dead"

    @classmethod
    def of(cls, text: str) -> ContainerStatus:
        try:
            return cls(text)
        except ValueError:
            return cls.DEAD


Pairs = tuple[tuple[str, str], ...]


# --- node ids: unique, readable, stable across builds of the same facts --------------
def host_id(name: str) -> str:
    return f"host:{name}"


def container_id(docker_id: str) -> str:
    return f"container:{docker_id}"


def link_id(owner: str, index: int) -> str:
    """A link by its namespace's owner (a host or container node id) and ifindex."""
    return f"link:{owner}#{index}"


def linux_bridge_id(host: str, name: str) -> str:
    return f"linux-bridge:{host}/{name}"


def ovs_bridge_id(host: str, name: str) -> str:
    return f"ovs-bridge:{host}/{name}"


def ovs_port_id(host: str, name: str) -> str:
    """OVS port names are unique in one database (one per host)."""
    return f"ovs-port:{host}/{name}"


# --- nodes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Host:
    name: str
    underlay_ip: str
    reachable: bool = True  # its namespace answered netlink
    ovs_connected: bool = True  # its OVS database answered
    ours: bool = False  # a namespace containet made (alias of its lo)
    error: str | None = None
    node_kind: ClassVar[NodeKind] = NodeKind.HOST

    @property
    def id(self) -> str:
        return host_id(self.name)


@dataclass(frozen=True)
class Container:
    docker_id: str  # the full ID
    docker_name: str
    name: str  # containet's name for it when ours, else its docker name
    status: ContainerStatus
    pid: int
    ours: bool  # label containet=<mark> and a containet.name label
    labels: Pairs = ()
    addresses: tuple[str, ...] = ()  # IPv4 CIDRs of its links other than lo, eth0 first
    gateway: str | None = None
    cap_mbit: float | None = None  # tbf on its eth0 (see workbench.qos)
    error: str | None = None  # its namespace could not be read
    node_kind: ClassVar[NodeKind] = NodeKind.CONTAINER

    @property
    def id(self) -> str:
        return container_id(self.docker_id)

    @property
    def short_id(self) -> str:
        return self.docker_id[:12]

    @property
    def ip(self) -> str | None:
        return self.addresses[0].split("/")[0] if self.addresses else None

    @property
    def label_host(self) -> str | None:
        """The host containet meant it for (its label), for ours only: a hint, never
        the attribution (that is `Topology.host_of`)."""
        return dict(self.labels).get("containet.host") if self.ours else None


@dataclass(frozen=True)
class Link:
    owner: str  # node id of the host or container whose namespace holds it
    index: int
    name: str
    kind: str = ""  # the kernel's link kind (open set): veth, bridge, tun, vxlan, "" (physical)...
    state: LinkState = LinkState.UNKNOWN
    mtu: int = 0
    mac: str = ""
    addresses: tuple[str, ...] = ()
    master: str | None = None  # name of the device it is enslaved to (a linux bridge, ovs-system...)
    alias: str | None = None
    ours: bool = False  # ifalias is containet's mark
    node_kind: ClassVar[NodeKind] = NodeKind.LINK

    @property
    def id(self) -> str:
        return link_id(self.owner, self.index)


@dataclass(frozen=True)
class LinuxBridge:
    host: str
    name: str
    state: LinkState = LinkState.UNKNOWN
    mtu: int = 0
    addresses: tuple[str, ...] = ()
    ours: bool = False
    node_kind: ClassVar[NodeKind] = NodeKind.LINUX_BRIDGE

    @property
    def id(self) -> str:
        return linux_bridge_id(self.host, self.name)


@dataclass(frozen=True)
class OvsBridge:
    host: str
    name: str
    datapath_type: str = ""
    ours: bool = False
    node_kind: ClassVar[NodeKind] = NodeKind.OVS_BRIDGE

    @property
    def id(self) -> str:
        return ovs_bridge_id(self.host, self.name)


@dataclass(frozen=True)
class OvsPort:
    host: str
    bridge: str
    name: str
    type: str = ""  # the Interface type as OVSDB says it (open set): "" (system), internal, patch...
    tag: int | None = None
    options: Pairs = ()
    ofport: int | None = None
    rx_packets: int = 0
    tx_packets: int = 0
    qos_mbit: float | None = None  # max-rate of the port's QoS (linux-htb), traffic toward it
    ours: bool = False
    node_kind: ClassVar[NodeKind] = NodeKind.OVS_PORT

    @property
    def id(self) -> str:
        return ovs_port_id(self.host, self.name)


def kernel_tunnel_id(host: str, name: str) -> str:
    return f"kernel-tunnel:{host}/{name}"


@dataclass(frozen=True)
class Tunnel:
    """An OVS tunnel port, or (kernel=True) a kernel tunnel device such as a VXLAN
    device in a linux bridge: then `bridge` is that bridge ("" for none), `remotes` its
    flood list, `options` in OVS's words (key, dst_port, local_ip, remote_ip)."""

    host: str
    bridge: str
    name: str
    type: TunnelType
    remote_ip: str | None = None
    options: Pairs = ()
    tag: int | None = None
    ofport: int | None = None
    rx_packets: int = 0
    tx_packets: int = 0
    ours: bool = False
    kernel: bool = False
    remotes: tuple[str, ...] = ()  # kernel: every destination it floods to
    vni: int | None = None  # kernel: VXLAN network identifier
    dst_port: int | None = None  # kernel: UDP destination port
    local_ip: str | None = None  # kernel: source address
    underlay: str | None = None  # kernel: the device it sends by (`dev`), None: the route decides
    mtu: int = 0
    state: LinkState = LinkState.UNKNOWN
    node_kind: ClassVar[NodeKind] = NodeKind.TUNNEL

    @property
    def id(self) -> str:
        return kernel_tunnel_id(self.host, self.name) if self.kernel else ovs_port_id(self.host, self.name)


Node = Host | Container | Link | LinuxBridge | OvsBridge | OvsPort | Tunnel
N = TypeVar("N", Host, Container, Link, LinuxBridge, OvsBridge, OvsPort, Tunnel)
