"""The raw ICMP socket containet pings with, and sockets born in other namespaces.

`StampedSocket` is icmplib's raw IPv4 ICMP socket, non-blocking, timed like iputils
ping (the send time right before `sendto`, the kernel's receive time from `recvmsg`),
with iputils' ICMP filter. `born_in` makes one socket (of any kind) inside each of a
list of namespaces; a socket keeps the namespace it was created in.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from icmplib import ICMPReply, ICMPv4Socket
from pyroute2 import netns

from ..errors import NotReady
from ..host import Place

ICMP_ECHO_REPLY = 0
#: ICMP types that carry our request back as an error (unreachable, time exceeded, ...)
ICMP_ERRORS = {3: "destination unreachable", 11: "time exceeded", 12: "parameter problem"}
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # linux/asm-generic/socket.h
SOL_RAW = getattr(socket, "SOL_RAW", 255)
ICMP_FILTER = 1  # linux/icmp.h: a raw ICMP socket's mask of types *not* to deliver
#: iputils' filter: deliver echo replies and the errors that quote a request, nothing else
PASSED_TYPES = (ICMP_ECHO_REPLY, 3, 4, 5, 11, 12)
FILTER_MASK = ~sum(1 << t for t in PASSED_TYPES) & 0xFFFFFFFF
TIMESPEC = struct.Struct("@qq")


def kernel_stamp_ns(ancdata: Sequence[tuple[int, int, bytes]]) -> int | None:
    """The SO_TIMESTAMPNS receive time (ns since the epoch) in recvmsg's ancillary data."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack_from(data)
            return sec * 1_000_000_000 + nsec
    return None


class StampedSocket(ICMPv4Socket):
    """icmplib's raw IPv4 ICMP socket, non-blocking, timed like iputils ping.

    icmplib builds the packet (`_create_packet`: header, checksum) and parses what
    comes back (`_parse_reply`: echo replies, and errors quoting our request); we take
    the send time right before `sendto` and the kernel's receive time from `recvmsg`."""

    __slots__ = ("bufsize",)

    def __init__(self, size: int, df: bool) -> None:
        super().__init__(privileged=True)
        raw = self._sock
        raw.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        raw.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", FILTER_MASK))
        if df:  # icmplib has no DF switch; the documented escape hatch is its socket
            raw.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
        raw.setblocking(False)
        # an echo reply is as big as our request; an error quotes a header and a bit
        self.bufsize = min(65_535, max(1024, size + 128))

    def fileno(self) -> int:
        return int(self._sock.fileno())

    def send_probe(self, address: tuple[str, int], ident: int, seq: int, payload: bytes) -> int:
        """Send one echo request to `address` ((ip, 0)); its send time (ns since the epoch).
        OSError if it cannot go. Nothing but the clock read sits between stamp and syscall."""
        packet = self._create_packet(ident, seq, payload)
        sendto = self._sock.sendto
        stamp = time.time_ns()
        sendto(packet, address)
        return stamp

    def receive_one(self) -> tuple[ICMPReply | None, int] | None:
        """The next packet waiting (parsed, or None if unparsable) and its receive time;
        None when nothing waits. OSError for an asynchronous socket error."""
        try:
            data, ancdata, _flags, addr = self._sock.recvmsg(self.bufsize, socket.CMSG_SPACE(TIMESPEC.size))
        except (BlockingIOError, InterruptedError):
            return None
        stamp = kernel_stamp_ns(ancdata) or time.time_ns()
        return self._parse_reply(packet=data, source=addr[0], current_time=stamp / 1e9), stamp


class Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=Closable)


def born_in(places: Sequence[Place], make: Callable[[], C]) -> list[C]:
    """make() once inside each place's namespace, in order (a socket keeps the
    namespace it was created in). One short-lived thread enters the namespaces one
    after the other (setns changes only that thread); the root namespace's are made
    here. On a failure, whatever was made is closed and the error raised."""
    made: list[C | None] = [make() if p.path is None else None for p in places]
    box: dict[str, BaseException] = {}

    def opener() -> None:
        try:
            for i, place in enumerate(places):
                if place.path is None:
                    continue
                if not os.path.exists(place.path):
                    raise NotReady(f"namespace {place.label} does not exist")
                netns.setns(place.path, flags=0)
                made[i] = make()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc

    if any(p.path is not None for p in places):
        thread = threading.Thread(target=opener, name="ns-open", daemon=True)
        thread.start()
        thread.join()
    done = [m for m in made if m is not None]
    if "error" in box or len(done) != len(places):
        for item in done:
            item.close()
        raise box.get("error") or NotReady("could not open the sockets")
    return done
