"""The inventory model: pure, frozen data. Snapshots and live watchers both
produce these types, the CLI prints them and the TUI draws them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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

    @property
    def remote_ip(self) -> str | None:
        return dict(self.options).get("remote_ip")

    @property
    def is_tunnel(self) -> bool:
        return self.type in ("gre", "vxlan", "geneve", "stt")


@dataclass(frozen=True)
class OvsBridge:
    name: str
    datapath_type: str = ""
    ports: tuple[OvsPort, ...] = ()
    ours: bool = False


@dataclass(frozen=True)
class Container:
    name: str
    host: str
    docker_name: str
    id: str
    status: str
    pid: int
    interfaces: tuple[Iface, ...] = ()
    gateway: str | None = None
    host_veth: str | None = None  # host-side end of its veth pair
    attached_to: str | None = None  # linux bridge or OVS bridge the host side is a port of
    vlan: int | None = None
    cap_mbit: float | None = None  # QoS cap in force (see workbench.qos), both ways

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

    @property
    def tunnels(self) -> tuple[OvsPort, ...]:
        return tuple(p for b in self.ovs_bridges for p in b.ports if p.is_tunnel)


@dataclass(frozen=True)
class Snapshot:
    mode: str  # "lab" or "real"
    lab: str  # one-line lab health
    hosts: tuple[HostView, ...] = ()
    containers: tuple[Container, ...] = ()
    docker_connected: bool = True
    errors: tuple[str, ...] = field(default=())

    def host(self, name: str) -> HostView | None:
        return next((h for h in self.hosts if h.name == name), None)

    def container(self, name_or_ip: str) -> Container | None:
        for c in self.containers:
            if name_or_ip in (c.name, c.docker_name, c.ip):
                return c
        return None

    def containers_on(self, host: str) -> tuple[Container, ...]:
        return tuple(c for c in self.containers if c.host == host)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
