"""The kernel's IPv4 neighbour (ARP) table, which every namespace of the machine shares.

All of the lab's hosts and containers live on one kernel, and its neighbour table
holds at most `gc_thresh3` entries (1024 by default) for every namespace together:
beyond that, resolving one more neighbour fails ("neighbor table overflow!") and the
packet waiting for it is dropped. A pair that talks needs an entry at each end, so
40 containers talking all to all need 1560 entries, 80 need 6320: more than the whole
machine holds, whatever the network does. (On separate machines each has its own.)

So pingall lets a pair's probes go only while the table has room for the pair's two
entries (keeping a reserve for the rest of the machine), and when it has none, deletes
entries between members whose probes are over -- never a static entry, never one for
an address outside pingall's members. At the end it leaves the entries, as any ping
would, unless the table is past `gc_thresh2`, where the kernel starts collecting by
force. `NeighbourCache` does the deleting with one raw netlink socket per member
namespace: a dump when it opens, then RTM_DELNEIGH requests sent in one write per
namespace. Measured: 40 containers over 2 hosts, all to all, lost 1100 of 1560 pairs to
"neighbor table overflow" before; none with this.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..host import Place
from .icmp import born_in

GC_THRESH2 = Path("/proc/sys/net/ipv4/neigh/default/gc_thresh2")
GC_THRESH3 = Path("/proc/sys/net/ipv4/neigh/default/gc_thresh3")
ARP_STAT = Path("/proc/net/stat/arp_cache")
#: entries left free for everyone else on the machine while pingall runs
RESERVE = 128

NETLINK_ROUTE = 0
RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWNEIGH = 29, 30, 28
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NDA_DST = 1
NLMSG = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NDMSG = struct.Struct("=BBHiHBB")  # family, pad, pad, ifindex, state, flags, type
RTATTR = struct.Struct("=HH")  # len, type
NUD_PERMANENT = 0x80
WRITE_MAX = 32 * 1024  # bytes of requests per write
TIMEOUT = 2.0  # seconds a netlink answer may take


@dataclass(frozen=True)
class TableUse:
    """The machine's IPv4 neighbour table: its limit, entries in use, and how many times
    so far an entry could not be made because it was full (summed over CPUs)."""

    limit: int
    entries: int
    fulls: int

    def room(self) -> int:
        """Entries free, but for a reserve for the rest of the machine (may be < 0)."""
        return self.limit - self.entries - RESERVE


def table_use() -> TableUse | None:
    """Read in the root namespace (the `default` limits exist only there); None when the
    kernel does not say."""
    try:
        limit = int(GC_THRESH3.read_text())
        rows = [line.split() for line in ARP_STAT.read_text().splitlines()[1:] if line.strip()]
        head = ARP_STAT.read_text().split()
    except (OSError, ValueError):
        return None
    if not rows or "table_fulls" not in head:
        return None
    col = head.index("table_fulls")
    return TableUse(limit, int(rows[0][0], 16), sum(int(r[col], 16) for r in rows if len(r) > col))


class _Netlink:
    """A NETLINK_ROUTE socket born in one namespace: its IPv4 neighbours and devices."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.sock.settimeout(TIMEOUT)
        self.devices = [i for i, name in socket.if_nameindex() if name != "lo"]

    def close(self) -> None:
        self.sock.close()

    def neighbours(self) -> dict[str, int]:
        """The IPv4 addresses this namespace has an entry for, with its NUD state."""
        req = NLMSG.pack(NLMSG.size + NDMSG.size, RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        self.sock.send(req + NDMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0))
        found: dict[str, int] = {}
        done = False
        while not done:
            done = parse_dump(self.sock.recv(65536), found)
        return found

    def delete(self, ips: Iterable[str]) -> None:
        """RTM_DELNEIGH for each address on each device, a few writes of up to 32 KB; the
        kernel's answers (ENOENT where a device had none) are read and dropped."""
        msgs = delete_requests(ips, self.devices)
        per_write = max(1, WRITE_MAX // len(msgs[0])) if msgs else 1
        for at in range(0, len(msgs), per_write):
            self.sock.send(b"".join(msgs[at : at + per_write]))
            self._drain()

    def _drain(self) -> None:
        self.sock.settimeout(0)
        try:
            while self.sock.recv(65536):
                pass
        except BlockingIOError:
            pass
        except OSError as exc:  # a full receive buffer (ENOBUFS) loses only answers
            if exc.errno != errno.ENOBUFS:
                raise
        finally:
            self.sock.settimeout(TIMEOUT)


def parse_dump(data: bytes, found: dict[str, int]) -> bool:
    """Add the (address, NUD state) of each RTM_NEWNEIGH message in `data` to `found`;
    True when the dump is over (NLMSG_DONE or an error)."""
    at = 0
    while at + NLMSG.size <= len(data):
        length, kind, _flags, _seq, _pid = NLMSG.unpack_from(data, at)
        if kind in (NLMSG_DONE, NLMSG_ERROR) or length < NLMSG.size:
            return True
        if kind == RTM_NEWNEIGH and length >= NLMSG.size + NDMSG.size:
            state = NDMSG.unpack_from(data, at + NLMSG.size)[4]
            for ip in _dst(data[at + NLMSG.size + NDMSG.size : at + length]):
                found[ip] = state
        at += (length + 3) & ~3
    return False


def delete_requests(ips: Iterable[str], devices: Iterable[int]) -> list[bytes]:
    """One RTM_DELNEIGH message per (address, device), 36 bytes each."""
    body = []
    for ip in ips:
        attr = RTATTR.pack(RTATTR.size + 4, NDA_DST) + ipaddress.IPv4Address(ip).packed
        for dev in devices:
            nd = NDMSG.pack(socket.AF_INET, 0, 0, dev, 0, 0, 0)
            head = NLMSG.pack(NLMSG.size + len(nd) + len(attr), RTM_DELNEIGH, NLM_F_REQUEST, 0, 0)
            body.append(head + nd + attr)
    return body


def _dst(attrs: bytes) -> list[str]:
    at, out = 0, []
    while at + RTATTR.size <= len(attrs):
        length, kind = RTATTR.unpack_from(attrs, at)
        if length < RTATTR.size:
            break
        if kind == NDA_DST and length == RTATTR.size + 4:
            out.append(str(ipaddress.IPv4Address(attrs[at + RTATTR.size : at + length])))
        at += (length + 3) & ~3
    return out


class NeighbourCache:
    """The members' neighbour caches, for pingall: the entries between members that may
    go (`pool`: learned ones, found when it opens or made by pingall since; never a
    static one) and deleting them when the table needs room (`release`)."""

    def __init__(self, places: Mapping[str, Place], ips: Mapping[str, str]) -> None:
        self.ips = dict(ips)
        names = list(places)
        self._nl = dict(zip(names, born_in([places[n] for n in names], _Netlink), strict=True))
        members = set(self.ips.values())
        self.pool: dict[str, set[str]] = {}
        for name, nl in self._nl.items():
            self.pool[name] = {
                ip for ip, state in nl.neighbours().items() if ip in members and not state & NUD_PERMANENT
            }

    @property
    def pooled(self) -> int:
        return sum(len(ips) for ips in self.pool.values())

    def ended(self, a: str, b: str) -> None:
        """The probes between a and b are over: their two entries may go."""
        self.pool.setdefault(a, set()).add(self.ips[b])
        self.pool.setdefault(b, set()).add(self.ips[a])

    def release(self, most: int | None = None) -> int:
        """Delete up to `most` pooled entries (all when None), the namespaces with the
        most first, one write each; returns how many it asked to delete."""
        done = 0
        for name in sorted(self.pool, key=lambda n: -len(self.pool[n])):
            ips = self.pool[name]
            if not ips or (most is not None and done >= most) or name not in self._nl:
                continue
            take = sorted(ips) if most is None else sorted(ips)[: most - done]
            self._nl[name].delete(take)
            ips.difference_update(take)
            done += len(take)
        return done

    def settle(self) -> int:
        """At the end: when the machine's table is past `gc_thresh2` (where the kernel
        starts collecting entries by force), delete every pooled entry; below it, keep
        them, as any ping would. Returns how many it deleted."""
        use = table_use()
        try:
            busy = use is not None and use.entries >= int(GC_THRESH2.read_text())
        except (OSError, ValueError):
            busy = True
        return self.release() if busy else 0

    def close(self) -> None:
        for nl in self._nl.values():
            nl.close()
        self._nl.clear()

    def __enter__(self) -> NeighbourCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
