"""A small read-only rtnetlink client: the few dumps discovery needs, parsed for
just the attributes it reads.

pyroute2 decodes every attribute of every message through an event loop: about
10 ms of CPU per namespace here, most of what an inventory took. These requests
are the same kernel dumps (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE, RTM_GETQDISC)
and one RTM_GETNSID, parsed with struct: well under a millisecond. The socket
belongs to the namespace of the thread that opens it, so open it inside
`Place.call`.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

NETLINK_ROUTE = 0
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE, RTM_GETNEIGH, RTM_GETQDISC, RTM_GETNSID = 18, 22, 26, 30, 38, 90
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_IFALIAS, IFLA_EXT_MASK, IFLA_LINK_NETNSID = 16, 18, 20, 29, 37
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_VXLAN_ID, IFLA_VXLAN_GROUP, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL, IFLA_VXLAN_PORT = 1, 2, 3, 4, 15
AF_BRIDGE = 7
NDA_DST, NDA_LLADDR = 1, 2
RTEXT_FILTER_SKIP_STATS = 1 << 3
IFA_ADDRESS = 1
RTA_GATEWAY = 5
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_TBF_PARMS, TCA_TBF_RATE64 = 1, 4
NETNSA_NSID, NETNSA_FD = 1, 3
OPERSTATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_ATTR = struct.Struct("=HH")  # rtattr: len, type


@dataclass(frozen=True)
class RawLink:
    index: int
    name: str
    kind: str
    state: str
    mtu: int
    mac: str
    master: int | None
    peer_index: int | None
    link_netnsid: int | None
    alias: str | None
    vxlan: RawVxlan | None = None


@dataclass(frozen=True)
class RawVxlan:
    vni: int | None
    group: str | None
    local: str | None
    port: int | None
    link: int | None


def _ip(value: memoryview | None) -> str | None:
    return None if value is None or len(value) != 4 else socket.inet_ntoa(bytes(value))


def _vxlan(data: memoryview) -> RawVxlan:
    a = _attrs(data)
    port = a.get(IFLA_VXLAN_PORT)
    return RawVxlan(
        vni=_u32(a.get(IFLA_VXLAN_ID)),
        group=_ip(a.get(IFLA_VXLAN_GROUP)),
        local=_ip(a.get(IFLA_VXLAN_LOCAL)),
        port=None if port is None else int(struct.unpack_from("!H", port)[0]),  # network order
        link=_u32(a.get(IFLA_VXLAN_LINK)) or None,
    )


def _attrs(data: bytes | memoryview, offset: int = 0) -> dict[int, memoryview]:
    """Attributes from `offset` on (the last of a type wins; none repeat in what we read)."""
    view = memoryview(data)
    out = {}
    while offset + 4 <= len(view):
        length, kind = _ATTR.unpack_from(view, offset)
        if length < 4:
            break
        out[kind & 0x3FFF] = view[offset + 4 : offset + length]  # without NLA_F_NESTED / BYTEORDER
        offset += (length + 3) & ~3
    return out


def _str(value: memoryview | None) -> str | None:
    return None if value is None else bytes(value).split(b"\0", 1)[0].decode(errors="replace")


def _u32(value: memoryview | None) -> int | None:
    return None if value is None else int(struct.unpack_from("=I", value)[0])


class Rtnl:
    """One NETLINK_ROUTE socket in the calling thread's namespace."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self, kind: int, body: bytes, flags: int = NLM_F_REQUEST | NLM_F_DUMP
    ) -> Iterator[memoryview]:
        """Send one request; yield each answer's payload (after the nlmsghdr)."""
        self.seq += 1
        self.sock.send(_HDR.pack(_HDR.size + len(body), kind, flags, self.seq, 0) + body)
        while True:
            data = memoryview(self.sock.recv(1 << 20))
            offset = 0
            while offset + _HDR.size <= len(data):
                length, mtype, _flags, seq, _pid = _HDR.unpack_from(data, offset)
                if length < _HDR.size:
                    return
                payload = data[offset + _HDR.size : offset + length]
                offset += (length + 3) & ~3
                if seq != self.seq:
                    continue
                if mtype == NLMSG_DONE:
                    return
                if mtype == NLMSG_ERROR:
                    code = struct.unpack_from("=i", payload)[0]
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    return  # an ack
                yield payload
                if not flags & NLM_F_DUMP:
                    return

    def links(self) -> list[RawLink]:
        body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, 0, 0, 0)
        body += _ATTR.pack(8, IFLA_EXT_MASK) + struct.pack("=I", RTEXT_FILTER_SKIP_STATS)
        out = []
        for msg in self.request(RTM_GETLINK, body):
            index = struct.unpack_from("=i", msg, 4)[0]
            a = _attrs(msg, 16)
            info = _attrs(a[IFLA_LINKINFO]) if IFLA_LINKINFO in a else {}
            state = a.get(IFLA_OPERSTATE)
            nsid = a.get(IFLA_LINK_NETNSID)
            mac = a.get(IFLA_ADDRESS)
            kind = _str(info.get(IFLA_INFO_KIND)) or ""
            out.append(
                RawLink(
                    index=index,
                    name=_str(a.get(IFLA_IFNAME)) or "",
                    kind=kind,
                    state=OPERSTATES[state[0]]
                    if state is not None and state[0] < len(OPERSTATES)
                    else "UNKNOWN",
                    mtu=_u32(a.get(IFLA_MTU)) or 0,
                    mac=":".join(f"{b:02x}" for b in bytes(mac)) if mac is not None else "",
                    master=_u32(a.get(IFLA_MASTER)) or None,
                    peer_index=_u32(a.get(IFLA_LINK)),
                    link_netnsid=None if nsid is None else int(struct.unpack_from("=i", nsid)[0]),
                    alias=_str(a.get(IFLA_IFALIAS)),
                    vxlan=_vxlan(info[IFLA_INFO_DATA])
                    if kind == "vxlan" and IFLA_INFO_DATA in info
                    else None,
                )
            )
        return out

    def flood_remotes(self) -> dict[int, list[str]]:
        """Each bridge port's all-zeros fdb destinations by ifindex (a VXLAN device's
        flood list): RTM_GETNEIGH of family AF_BRIDGE."""
        out: dict[int, list[str]] = {}
        for msg in self.request(RTM_GETNEIGH, struct.pack("=BxxxiHBB", AF_BRIDGE, 0, 0, 0, 0)):
            index = struct.unpack_from("=i", msg, 4)[0]
            a = _attrs(msg, 12)
            dst = _ip(a.get(NDA_DST))
            if dst is not None and bytes(a.get(NDA_LLADDR) or b"") == bytes(6):
                found = out.setdefault(index, [])
                if dst not in found:
                    found.append(dst)
        return out

    def addresses(self) -> dict[int, list[str]]:
        """IPv4 CIDRs by ifindex."""
        out: dict[int, list[str]] = {}
        for msg in self.request(RTM_GETADDR, struct.pack("=BBBBI", socket.AF_INET, 0, 0, 0, 0)):
            _family, prefixlen, _flags, _scope, index = struct.unpack_from("=BBBBI", msg)
            addr = _attrs(msg, 8).get(IFA_ADDRESS)
            if addr is not None:
                out.setdefault(index, []).append(f"{socket.inet_ntoa(bytes(addr))}/{prefixlen}")
        return out

    def default_gateway(self) -> str | None:
        found = None
        for msg in self.request(
            RTM_GETROUTE, struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        ):
            gw = _attrs(msg, 12).get(RTA_GATEWAY)
            if found is None and msg[1] == 0 and gw is not None:
                found = socket.inet_ntoa(bytes(gw))  # read on: the dump must be drained
        return found

    def tbf_rate(self, index: int) -> float | None:
        """The rate of a tbf qdisc on link `index`, in Mbit/s."""
        found = None
        for msg in self.request(RTM_GETQDISC, struct.pack("=BxxxiIII", socket.AF_UNSPEC, index, 0, 0, 0)):
            if found is not None or struct.unpack_from("=i", msg, 4)[0] != index:
                continue
            a = _attrs(msg, 20)
            if _str(a.get(TCA_KIND)) != "tbf" or TCA_OPTIONS not in a:
                continue
            opts = _attrs(a[TCA_OPTIONS])
            rate64 = opts.get(TCA_TBF_RATE64)
            if rate64 is not None:
                rate = int(struct.unpack_from("=Q", rate64)[0])
            elif TCA_TBF_PARMS in opts:
                rate = int(struct.unpack_from("=I", opts[TCA_TBF_PARMS], 8)[0])  # tc_ratespec.rate
            else:
                continue
            found = rate * 8 / 1e6
        return found

    def nsid(self, path: str) -> int | None:
        """The nsid this namespace gives the namespace at `path`; None when it has none."""
        fd = os.open(path, os.O_RDONLY)
        try:
            body = struct.pack("=Bxxx", socket.AF_UNSPEC) + _ATTR.pack(8, NETNSA_FD) + struct.pack("=I", fd)
            for msg in self.request(RTM_GETNSID, body, NLM_F_REQUEST):
                value = _attrs(msg, 4).get(NETNSA_NSID)
                nsid = None if value is None else int(struct.unpack_from("=i", value)[0])
                return None if nsid is None or nsid < 0 else nsid
        finally:
            os.close(fd)
        return None
