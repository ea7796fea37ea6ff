"""Links, addresses and routes with pyroute2.

Every function takes an open IPRoute as first argument; callers run them in
the right namespace with `Place.netlink(fn, ...)`.
"""

from __future__ import annotations

import errno
import ipaddress
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from .errors import WorkbenchError


@dataclass(frozen=True)
class LinkRow:
    """What netlink says about one link: plain data for the inventory."""

    index: int
    name: str
    kind: str  # bridge, veth, tun, openvswitch, "" for a physical one
    state: str  # UP, DOWN, UNKNOWN, LOWERLAYERDOWN
    admin_up: bool
    mtu: int
    mac: str
    master: str | None
    addresses: tuple[str, ...]  # CIDR strings
    peer_index: int | None  # veth: the peer's ifindex (in the peer's namespace)
    alias: str | None = None  # ifalias: containet marks the links it creates with it


def index_of(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def must_index(ipr: IPRoute, name: str) -> int:
    idx = index_of(ipr, name)
    if idx is None:
        raise WorkbenchError(f"no link named {name}")
    return idx


def read_links(ipr: IPRoute) -> list[LinkRow]:
    links = list(ipr.get_links())
    names = {msg["index"]: msg.get("ifname") for msg in links}
    addrs = _addresses(ipr)
    return [_row(msg, names.get(msg.get("master")) if msg.get("master") else None, addrs) for msg in links]


def link_row(ipr: IPRoute, name: str) -> LinkRow | None:
    """One link, asked of the kernel by name (no dump of every link)."""
    try:
        msg = ipr.link("get", ifname=name)[0]
    except NetlinkError as exc:
        if exc.code == 19:  # ENODEV
            return None
        raise
    master = msg.get("master")
    master_name = None
    if master:
        try:
            master_name = ipr.link("get", index=master)[0].get("ifname")
        except NetlinkError:
            master_name = None  # gone meanwhile
    return _row(msg, master_name, _addresses(ipr, msg["index"]))


def _addresses(ipr: IPRoute, index: int | None = None) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    query = {"family": 2} if index is None else {"family": 2, "index": index}
    for msg in ipr.get_addr(**query):
        found.setdefault(msg["index"], []).append(f"{msg.get('address')}/{msg['prefixlen']}")
    return found


def _row(msg: Any, master: str | None, addrs: dict[int, list[str]]) -> LinkRow:
    return LinkRow(
        index=msg["index"],
        name=msg.get("ifname"),
        kind=msg.get(("linkinfo", "kind")) or "",
        state=msg.get("operstate") or "UNKNOWN",
        admin_up=bool(msg["flags"] & 1),
        mtu=msg.get("mtu") or 0,
        mac=msg.get("address") or "",
        master=master,
        addresses=tuple(addrs.get(msg["index"], [])),
        peer_index=msg.get("link"),
        alias=msg.get("ifalias"),
    )


def add_bridge(ipr: IPRoute, name: str, mtu: int | None = None, mark: str | None = None) -> None:
    """Create a bridge unless one exists; `mark` (the ifalias) only on one we create."""
    if index_of(ipr, name) is None:
        ipr.link("add", ifname=name, kind="bridge")
        if mark:
            set_alias(ipr, name, mark)
    if mtu:
        ipr.link("set", index=must_index(ipr, name), mtu=mtu)


def set_alias(ipr: IPRoute, name: str, alias: str) -> None:
    ipr.link("set", index=must_index(ipr, name), ifalias=alias)


def delete_address(ipr: IPRoute, name: str, cidr: str) -> None:
    idx = index_of(ipr, name)
    if idx is None:
        return
    iface = ipaddress.ip_interface(cidr)
    try:
        ipr.addr("del", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    except NetlinkError as exc:
        if exc.code not in (99, 19):  # EADDRNOTAVAIL, ENODEV: already gone
            raise


def delete_link(ipr: IPRoute, name: str) -> bool:
    idx = index_of(ipr, name)
    if idx is None:
        return False
    try:
        ipr.link("del", index=idx)
    except NetlinkError as exc:
        if exc.code != 19:  # ENODEV: gone meanwhile
            raise
    return True


def set_up(ipr: IPRoute, name: str, up: bool = True) -> None:
    ipr.link("set", index=must_index(ipr, name), state="up" if up else "down")


NUD_INCOMPLETE = 0x01
NUD_FAILED = 0x20


def unresolved_neighbours(ipr: IPRoute, name: str) -> list[str]:
    """Addresses on `name` whose neighbour entry is INCOMPLETE or FAILED: asked for
    while the link could not answer. The next packet to them gets "Destination Host
    Unreachable" until the kernel gives up on the entry, though the link is fine now."""
    index = index_of(ipr, name)
    if index is None:
        return []
    return [
        str(msg.get_attr("NDA_DST"))
        for msg in ipr.neigh("dump", ifindex=index)
        if msg["state"] & (NUD_INCOMPLETE | NUD_FAILED) and msg.get_attr("NDA_DST")
    ]


def forget_neighbours(ipr: IPRoute, name: str, addresses: list[str]) -> None:
    """Delete these neighbour entries on `name` (gone already: fine)."""
    index = must_index(ipr, name)
    for dst in addresses:
        try:
            ipr.neigh("del", ifindex=index, dst=dst)
        except NetlinkError as exc:
            if exc.code != errno.ENOENT:
                raise


def set_mtu(ipr: IPRoute, name: str, mtu: int) -> None:
    ipr.link("set", index=must_index(ipr, name), mtu=mtu)


def set_master(ipr: IPRoute, name: str, master: str | None) -> None:
    ipr.link("set", index=must_index(ipr, name), master=must_index(ipr, master) if master else 0)


def add_address(ipr: IPRoute, name: str, cidr: str) -> None:
    iface = ipaddress.ip_interface(cidr)
    try:
        ipr.addr(
            "add",
            index=must_index(ipr, name),
            address=str(iface.ip),
            prefixlen=iface.network.prefixlen,
        )
    except NetlinkError as exc:
        if exc.code != 17:  # EEXIST: already there
            raise


def add_veth_into(
    ipr: IPRoute,
    name: str,
    peer: str,
    pid: int,
    mtu: int,
    *,
    master: str | None = None,
    alias: str | None = None,
    peer_mac: str | None = None,
) -> None:
    """veth `name` here (on `master`, with ifalias `alias`, up), its peer created
    directly in the namespace of `pid` (with `peer_mac`, or a random MAC): two
    netlink requests in all."""
    extra = {"master": must_index(ipr, master)} if master else {}
    inside: dict[str, Any] = {"ifname": peer, "net_ns_pid": pid, "mtu": mtu}
    if peer_mac:
        inside["address"] = peer_mac
    ipr.link(
        "add",
        ifname=name,
        kind="veth",
        mtu=mtu,
        peer=inside,
        **extra,
    )
    settings = {"ifalias": alias} if alias else {}
    ipr.link("set", index=must_index(ipr, name), state="up", **settings)


def configure_iface(ipr: IPRoute, name: str, cidr: str, gateway: str | None, mtu: int) -> None:
    """Inside a container: MTU, address, up, default route (and lo up)."""
    idx = must_index(ipr, name)
    ipr.link("set", index=idx, mtu=mtu, state="up")
    iface = ipaddress.ip_interface(cidr)
    try:
        ipr.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    except NetlinkError as exc:
        if exc.code != 17:  # EEXIST: already there
            raise
    ipr.link("set", index=1, state="up")  # lo is ifindex 1 in every namespace
    if gateway:
        try:
            ipr.route("add", dst="0.0.0.0/0", gateway=gateway, oif=idx)
        except NetlinkError as exc:
            if exc.code != 17:
                raise


def default_gateway(ipr: IPRoute) -> str | None:
    for route in ipr.get_routes(family=2):
        if route["dst_len"] == 0 and route.get("gateway"):
            return str(route.get("gateway"))
    return None


def tx_checksum(name: str, enable: bool | None = None) -> bool:
    """Read (and with `enable`, set) tx checksum offload of `name` in the calling
    thread's namespace (ethtool ioctl; run it through Place.call)."""
    from pyroute2.ethtool import Ethtool

    eth = Ethtool()
    try:
        features = eth.get_features(name)
        feature = features.features["tx-checksum-ip-generic"]
        if enable is not None and feature.enable != enable:
            feature.enable = enable
            eth.set_features(name, features)
            feature = eth.get_features(name).features["tx-checksum-ip-generic"]
        return bool(feature.enable)
    finally:
        eth.close()


# --- kernel VXLAN devices --------------------------------------------------------------
ZERO_MAC = "00:00:00:00:00:00"  # the fdb entry a VXLAN device floods unknown destinations by


@dataclass(frozen=True)
class VxlanRow:
    """What netlink says about a kernel VXLAN device: its link and IFLA_VXLAN_* data,
    and the remotes it floods to (the all-zeros fdb entries: `remote` and `bridge fdb
    append`)."""

    link: LinkRow
    vni: int | None
    group: str | None  # IFLA_VXLAN_GROUP: the `remote` it was created with (unicast)
    local: str | None
    port: int | None
    underlay: str | None  # IFLA_VXLAN_LINK's name: the device it sends by
    remotes: tuple[str, ...]


def vxlan_row(ipr: IPRoute, name: str) -> VxlanRow | None:
    """A VXLAN device by name (None: no such link, or not a VXLAN device)."""
    row = link_row(ipr, name)
    if row is None or row.kind != "vxlan":
        return None
    msg = ipr.link("get", index=row.index)[0]
    data = msg.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_DATA")
    get = data.get_attr if data is not None else (lambda _k: None)
    lower = get("IFLA_VXLAN_LINK")
    underlay = None
    if lower:
        try:
            underlay = ipr.link("get", index=lower)[0].get("ifname")
        except NetlinkError:
            underlay = None
    return VxlanRow(
        link=row,
        vni=get("IFLA_VXLAN_ID"),
        group=get("IFLA_VXLAN_GROUP"),
        local=get("IFLA_VXLAN_LOCAL"),
        port=get("IFLA_VXLAN_PORT"),
        underlay=underlay,
        remotes=flood_remotes(ipr, row.index),
    )


def flood_remotes(ipr: IPRoute, index: int) -> tuple[str, ...]:
    """The destinations of a VXLAN device's all-zeros fdb entries, in the kernel's order."""
    return tuple(dict.fromkeys(dst for dst, _via in _flood_entries(ipr, index)))


def _flood_entries(ipr: IPRoute, index: int) -> list[tuple[str, int | None]]:
    """(dst, NDA_IFINDEX) of each all-zeros entry. Dumped whole and filtered here: a
    dump filtered by ifindex leaves out entries whose own NDA_IFINDEX is another link
    (an entry `ip link set ... type vxlan remote` makes on a device with `dev`)."""
    out = []
    for msg in ipr.fdb("dump"):
        if msg["ifindex"] == index and msg.get_attr("NDA_LLADDR") == ZERO_MAC and msg.get_attr("NDA_DST"):
            out.append((str(msg.get_attr("NDA_DST")), msg.get_attr("NDA_IFINDEX")))
    return out


def add_vxlan(
    ipr: IPRoute,
    name: str,
    vni: int,
    local: str,
    port: int,
    mtu: int,
    *,
    remote: str | None = None,
    underlay: str | None = None,
    mark: str | None = None,
) -> None:
    """A VXLAN device (unicast `remote`, or none: flood entries are added with
    `append_remote`), with ifalias `mark`."""
    spec: dict[str, Any] = {
        "ifname": name,
        "kind": "vxlan",
        "vxlan_id": vni,
        "vxlan_local": local,
        "vxlan_port": port,
        "mtu": mtu,
    }
    if remote:
        spec["vxlan_group"] = remote
    if underlay:
        spec["vxlan_link"] = must_index(ipr, underlay)
    ipr.link("add", **spec)
    if mark:
        set_alias(ipr, name, mark)


def set_vxlan_remote(ipr: IPRoute, name: str, remote: str) -> None:
    """`ip link set NAME type vxlan remote REMOTE`: a point-to-point device's remote."""
    ipr.link("set", index=must_index(ipr, name), kind="vxlan", vxlan_group=remote)


def append_remote(ipr: IPRoute, name: str, remote: str) -> None:
    """`bridge fdb append 00:00:00:00:00:00 dev NAME dst REMOTE` (there already: fine)."""
    try:
        ipr.fdb("append", ifindex=must_index(ipr, name), lladdr=ZERO_MAC, dst=remote)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise


def delete_remote(ipr: IPRoute, name: str, remote: str) -> None:
    """`bridge fdb del 00:00:00:00:00:00 dev NAME dst REMOTE [via DEV]` (gone already: fine)."""
    index = index_of(ipr, name)
    if index is None:
        return
    for dst, via in _flood_entries(ipr, index):
        if dst != remote:
            continue
        extra = {"NDA_IFINDEX": via} if via else {}
        try:
            ipr.fdb("del", ifindex=index, lladdr=ZERO_MAC, dst=remote, **extra)
        except NetlinkError as exc:
            if exc.code not in (errno.ENOENT, errno.ENODEV):
                raise
