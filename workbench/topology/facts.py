"""The raw facts a topology is built from, as frozen dataclasses.

What netlink says in every host's and every running container's namespace,
what each host's OVS database holds, and what docker says of every container.
`workbench.topology.discover` reads them from the machine; tests write them by
hand or load a recording (`to_json` / `from_json`). Nothing is interpreted here:
no attribution, no marks -- that is `build`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from typing import Any

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class VxlanFact:
    """A kernel VXLAN device's IFLA_VXLAN_* data and its flood list (the destinations
    of its all-zeros fdb entries: `remote`, `bridge fdb append`)."""

    vni: int | None = None
    group: str | None = None  # IFLA_VXLAN_GROUP: the unicast `remote` it was made with
    local: str | None = None
    port: int | None = None  # UDP destination port
    link: int | None = None  # IFLA_VXLAN_LINK: ifindex of the underlay device (`dev`)
    remotes: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinkFact:
    """One netlink link (RTM_NEWLINK) as its namespace sees it."""

    index: int
    name: str
    kind: str = ""  # IFLA_INFO_KIND: veth, bridge, tun, vxlan, "" for a physical one
    state: str = "UNKNOWN"  # IFLA_OPERSTATE
    mtu: int = 0
    mac: str = ""
    master: int | None = None  # IFLA_MASTER: ifindex of its bridge, same namespace
    addresses: tuple[str, ...] = ()  # IPv4 CIDRs
    peer_index: int | None = None  # IFLA_LINK: a veth's peer ifindex (in the peer's namespace)
    link_netnsid: int | None = None  # IFLA_LINK_NETNSID: the peer's namespace, as an nsid of this one
    alias: str | None = None  # IFLA_IFALIAS
    vxlan: VxlanFact | None = None  # kind vxlan: its tunnel data


@dataclass(frozen=True)
class NsidFact:
    """In the namespace holding this fact, `nsid` names the namespace `inode`
    (RTM_GETNSID); None: that namespace has no id there, so no link's peer is in it."""

    nsid: int | None
    inode: int


@dataclass(frozen=True)
class NetnsFacts:
    """One network namespace: its identity, links, default route and the ids it
    gives to the other namespaces of interest."""

    inode: int  # st_ino of its nsfs file: the namespace's identity on this machine
    links: tuple[LinkFact, ...] = ()
    nsids: tuple[NsidFact, ...] = ()
    gateway: str | None = None  # IPv4 default route


@dataclass(frozen=True)
class OvsQosFact:
    type: str = ""
    other_config: Pairs = ()


@dataclass(frozen=True)
class OvsInterfaceFact:
    name: str
    type: str = ""  # "" (system), internal, gre, vxlan, patch, ...
    options: Pairs = ()
    ofport: int | None = None
    statistics: tuple[tuple[str, int], ...] = ()
    external_ids: Pairs = ()


@dataclass(frozen=True)
class OvsPortFact:
    name: str
    tag: int | None = None
    external_ids: Pairs = ()
    interfaces: tuple[OvsInterfaceFact, ...] = ()
    qos: OvsQosFact | None = None


@dataclass(frozen=True)
class OvsBridgeFact:
    name: str
    datapath_type: str = ""
    external_ids: Pairs = ()
    ports: tuple[OvsPortFact, ...] = ()


@dataclass(frozen=True)
class OvsdbFacts:
    """One OVS database: its bridges, their ports and interfaces (references resolved)."""

    bridges: tuple[OvsBridgeFact, ...] = ()


@dataclass(frozen=True)
class HostFacts:
    """An emulated host (a namespace) or this machine (real mode)."""

    name: str
    underlay_ip: str
    netns: NetnsFacts | None = None  # None: the namespace is missing or did not answer
    ovs: OvsdbFacts | None = None  # None: the database did not answer
    netns_error: str | None = None
    ovs_error: str | None = None


@dataclass(frozen=True)
class ContainerFacts:
    """One docker container, whoever made it."""

    id: str  # full ID
    names: tuple[str, ...]  # docker names, without the leading '/'
    labels: Pairs = ()
    status: str = ""  # created, running, exited, ...
    pid: int = 0
    netns: NetnsFacts | None = None  # running ones: its namespace
    cap_mbit: float | None = None  # tbf rate on its eth0
    error: str | None = None  # its namespace could not be read

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.id[:12]


@dataclass(frozen=True)
class Facts:
    hosts: tuple[HostFacts, ...] = ()
    containers: tuple[ContainerFacts, ...] = ()
    docker_error: str | None = None  # None: docker answered

    def host(self, name: str) -> HostFacts | None:
        return next((h for h in self.hosts if h.name == name), None)


# --- recordings ----------------------------------------------------------------------
def to_json(facts: Facts) -> str:
    return json.dumps(dataclasses.asdict(facts), indent=1, sort_keys=True)


def from_json(text: str) -> Facts:
    return _decode(Facts, json.loads(text))


def _decode(tp: Any, value: Any) -> Any:
    """JSON (as dataclasses.asdict wrote it) back into the annotated types."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(inner, value)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(
            **{
                f.name: _decode(hints[f.name], value[f.name])
                for f in dataclasses.fields(tp)
                if f.name in value
            }
        )
    return value
