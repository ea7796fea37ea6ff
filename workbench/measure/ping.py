"""Ping from inside containers' network namespaces, with icmplib packets and iputils timing.

Each source gets a raw ICMP socket opened *inside* its namespace (a short-lived thread
enters the namespaces one after the other and opens them); a socket stays in the
namespace it was born in, so packets leave through the container's own eth0 exactly
as `nsenter -t PID -n ping` would send them. After that one event loop in the
calling thread drives every socket: no thread per source, no hop per probe.

Timing is iputils ping's: the send time is taken just before `sendto` (iputils stamps
the payload right before `sendmsg`), the receive time is the kernel's receive
timestamp (SO_TIMESTAMPNS in the ancillary data of `recvmsg`), not the moment Python
gets around to reading the socket. icmplib builds the echo requests and parses the
replies (its `ICMPv4Socket` packet helpers); only the clock and the syscalls are ours.
Like iputils, the socket carries an ICMP filter: echo requests that other containers
send to this one never wake us up.

One round sends one echo request to each destination of each source, waits for the
replies (at most `timeout` seconds, in slices of at most 0.2 s so that `cancel` is
noticed promptly), then sleeps out the interval. A single ping is the one source, one
destination case; pingall puts every source in one loop, so all its probes are in
flight together.

An unreachable destination costs `count * timeout` and is reported as 100% loss,
never a hang. Packets still in flight when the run is cancelled are not counted as
sent (they were neither answered nor timed out).
"""

from __future__ import annotations

import itertools
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from icmplib import ICMPReply, ICMPv4Socket
from icmplib.utils import random_byte_message
from pyroute2 import netns

from ..errors import BadInput, NotReady
from ..host import Place
from .stats import loss_pct, rtt_summary

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
SLICE = 0.2  # longest single blocking wait, so cancel is seen within it
#: at most this many packets read from one socket per wake-up (bounds the drain loop)
DRAIN_MAX = 256

_ids = itertools.count(os.getpid() * 7)
_ids_lock = threading.Lock()


def _next_id() -> int:
    """An ICMP identifier unique within this process (concurrent pingers share a netns)."""
    with _ids_lock:
        return next(_ids) & 0xFFFF


@dataclass(frozen=True)
class PingReply:
    """One probe: its sequence number (from 1) and round-trip time; rtt_ms None = lost."""

    seq: int
    rtt_ms: float | None


@dataclass(frozen=True)
class PingResult:
    src: str
    dst: str
    dst_ip: str
    sent: int
    received: int
    loss_pct: float
    min_ms: float | None
    avg_ms: float | None
    max_ms: float | None
    mdev_ms: float | None
    replies: tuple[PingReply, ...]
    #: distinct local or ICMP errors seen (e.g. "Message too long" with --df); extra to the contract
    errors: tuple[str, ...] = field(default=())

    @property
    def reachable(self) -> bool:
        return self.received > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Target:
    name: str
    ip: str


@dataclass(frozen=True)
class PingOptions:
    count: int = 4
    interval: float = 0.2
    size: int = 56
    df: bool = False
    timeout: float = 1.0

    def check(self) -> PingOptions:
        """Bounds that keep every run finite and every packet sendable; one-line errors."""
        if not 1 <= self.count <= 10_000:
            raise BadInput(f"bad count {self.count}: use 1 to 10000")
        if not 0.01 <= self.interval <= 60:
            raise BadInput(f"bad interval {self.interval}: use 0.01 to 60 seconds")
        if not 0 <= self.size <= 65_507:
            raise BadInput(f"bad size {self.size}: use 0 to 65507 bytes")
        if not 0.05 <= self.timeout <= 30:
            raise BadInput(f"bad timeout {self.timeout}: use 0.05 to 30 seconds")
        return self


def make_result(src: str, target: Target, replies: Sequence[PingReply], errors: Sequence[str]) -> PingResult:
    """Fold the probes of one destination into the iputils-style summary."""
    rtts = [r.rtt_ms for r in replies if r.rtt_ms is not None]
    lo, avg, hi, mdev = rtt_summary(rtts)
    return PingResult(
        src=src,
        dst=target.name,
        dst_ip=target.ip,
        sent=len(replies),
        received=len(rtts),
        loss_pct=loss_pct(len(replies), len(rtts)),
        min_ms=lo,
        avg_ms=avg,
        max_ms=hi,
        mdev_ms=mdev,
        replies=tuple(sorted(replies, key=lambda r: r.seq)),
        errors=tuple(dict.fromkeys(errors)),
    )


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


def open_sockets(places: Sequence[Place], opts: PingOptions) -> list[StampedSocket]:
    """A StampedSocket born in each place's namespace, in order.

    One short-lived thread enters the namespaces one after the other (setns changes
    only that thread; sockets keep the namespace they were created in); the root
    namespace's sockets are opened here, in the caller's namespace."""
    socks: list[StampedSocket | None] = [
        StampedSocket(opts.size, opts.df) if p.path is None else None for p in places
    ]
    box: dict[str, BaseException] = {}

    def opener() -> None:
        try:
            for i, place in enumerate(places):
                if place.path is None:
                    continue
                if not os.path.exists(place.path):
                    raise NotReady(f"namespace {place.label} does not exist")
                netns.setns(place.path, flags=0)
                socks[i] = StampedSocket(opts.size, opts.df)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc

    if any(p.path is not None for p in places):
        thread = threading.Thread(target=opener, name="ping-open", daemon=True)
        thread.start()
        thread.join()
    opened = [s for s in socks if s is not None]
    if "error" in box or len(opened) != len(places):
        for sock in opened:
            sock.close()
        raise box.get("error") or NotReady("could not open the ping sockets")
    return opened


@dataclass(frozen=True)
class Source:
    """A container that pings: its name, its namespace, its destinations."""

    name: str
    place: Place
    targets: tuple[Target, ...]


OnReply = Callable[[Target, PingReply], None]
OnProbe = Callable[[Source, Target, PingReply], None]
Cell = tuple[str, Target]


@dataclass
class _Probe:
    source: Source
    target: Target
    seq: int
    sent_ns: int


class Pinger:
    """The rounds of every source, in one event loop over one socket per source."""

    def __init__(
        self, sources: Sequence[Source], opts: PingOptions, on_probe: OnProbe | None, cancel: threading.Event
    ) -> None:
        self.sources = list(sources)
        self.opts = opts
        self.on_probe = on_probe
        self.cancel = cancel
        self.ids = {(s.name, t): _next_id() for s in self.sources for t in s.targets}
        self.payload = random_byte_message(opts.size)  # icmplib's filler, made once
        self.addresses = {t: (t.ip, 0) for s in self.sources for t in s.targets}
        self.replies: dict[Cell, list[PingReply]] = {cell: [] for cell in self.ids}
        self.errors: dict[Cell, list[str]] = {cell: [] for cell in self.ids}

    def run(self) -> None:
        socks = open_sockets([s.place for s in self.sources], self.opts)
        try:
            self._rounds(dict(zip(self.sources, socks, strict=True)))
        finally:
            for sock in socks:
                sock.close()

    def _rounds(self, socks: dict[Source, StampedSocket]) -> None:
        poller = select.poll()
        by_fd: dict[int, tuple[Source, StampedSocket]] = {}
        for source, sock in socks.items():
            poller.register(sock.fileno(), select.POLLIN)
            by_fd[sock.fileno()] = (source, sock)
        for seq in range(1, self.opts.count + 1):
            if self.cancel.is_set():
                return
            started = time.monotonic()
            self._round(poller, socks, by_fd, seq)
            if seq < self.opts.count:
                left = started + self.opts.interval - time.monotonic()
                if left > 0 and self.cancel.wait(left):
                    return

    def _record(self, source: Source, target: Target, reply: PingReply) -> None:
        self.replies[(source.name, target)].append(reply)
        if self.on_probe is not None:
            self.on_probe(source, target, reply)

    def _error(self, source: Source, target: Target, text: str) -> None:
        self.errors[(source.name, target)].append(text)

    def _round(
        self,
        poller: select.poll,
        socks: dict[Source, StampedSocket],
        by_fd: dict[int, tuple[Source, StampedSocket]],
        seq: int,
    ) -> None:
        pending: dict[tuple[int, int, int], _Probe] = {}  # (fd, id, seq)
        for source, sock in socks.items():
            fd = sock.fileno()
            for target in source.targets:
                ident = self.ids[(source.name, target)]
                try:
                    sent = sock.send_probe(self.addresses[target], ident, seq, self.payload)
                except OSError as exc:  # e.g. "Message too long" with DF, no route
                    self._error(source, target, exc.strerror or str(exc))
                    self._record(source, target, PingReply(seq, None))
                    continue
                pending[(fd, ident, seq)] = _Probe(source, target, seq, sent)
        deadline = time.monotonic() + self.opts.timeout
        while pending and not self.cancel.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _event in poller.poll(min(left, SLICE) * 1000.0):
                self._drain(fd, *by_fd[fd], pending)
        if self.cancel.is_set():
            return  # in flight when cancelled: neither answered nor timed out, not counted
        for probe in pending.values():
            self._record(probe.source, probe.target, PingReply(probe.seq, None))

    def _drain(
        self, fd: int, source: Source, sock: StampedSocket, pending: dict[tuple[int, int, int], _Probe]
    ) -> None:
        for _ in range(DRAIN_MAX):
            try:
                got = sock.receive_one()
            except OSError as exc:  # an asynchronous socket error, e.g. host unreachable
                text = exc.strerror or str(exc)
                for waiting in pending.values():
                    if waiting.source is source:
                        self._error(source, waiting.target, text)
                continue
            if got is None:
                return
            reply, received_ns = got
            if reply is None:
                continue
            probe = pending.get((fd, reply.id, reply.sequence))
            if probe is None:
                continue  # late (an earlier round's), or another pinger's
            if reply.type == ICMP_ECHO_REPLY and reply.source == probe.target.ip:
                del pending[(fd, reply.id, reply.sequence)]
                rtt = (received_ns - probe.sent_ns) / 1e6
                self._record(source, probe.target, PingReply(probe.seq, max(rtt, 0.0)))
            elif reply.type in ICMP_ERRORS:
                del pending[(fd, reply.id, reply.sequence)]
                self._error(source, probe.target, f"{ICMP_ERRORS[reply.type]} from {reply.source}")
                self._record(source, probe.target, PingReply(probe.seq, None))


def ping_sources(
    sources: Sequence[Source],
    opts: PingOptions,
    *,
    on_probe: OnProbe | None = None,
    cancel: threading.Event | None = None,
) -> dict[Cell, PingResult]:
    """Ping every source's targets from inside its namespace, all in one loop;
    a PingResult per (source name, target), partial if cancelled."""
    opts.check()
    pinger = Pinger(sources, opts, on_probe, cancel or threading.Event())
    pinger.run()
    return {
        (s.name, t): make_result(s.name, t, pinger.replies[(s.name, t)], pinger.errors[(s.name, t)])
        for s in pinger.sources
        for t in s.targets
    }


def ping_from(
    place: Place,
    src: str,
    targets: Sequence[Target],
    opts: PingOptions,
    *,
    on_reply: OnReply | None = None,
    cancel: threading.Event | None = None,
) -> dict[Target, PingResult]:
    """Ping every target from inside `place`; a PingResult per target (partial if cancelled)."""
    source = Source(src, place, tuple(dict.fromkeys(targets)))
    relay: OnProbe | None = None
    if on_reply is not None:
        callback = on_reply

        def relay(_s: Source, target: Target, reply: PingReply) -> None:
            callback(target, reply)

    results = ping_sources([source], opts, on_probe=relay, cancel=cancel)
    return {t: results[(src, t)] for t in source.targets}


# --- printing helpers (CLI) ---------------------------------------------------
def format_reply(dst: str, size: int, reply: PingReply) -> str:
    if reply.rtt_ms is None:
        return f"no reply from {dst}: icmp_seq={reply.seq}"
    return f"{size + 8} bytes from {dst}: icmp_seq={reply.seq} time={reply.rtt_ms:.3f} ms"


def format_summary(result: PingResult) -> str:
    lines = [
        f"--- {result.dst} ({result.dst_ip}) ping statistics, from {result.src} ---",
        f"{result.sent} packets transmitted, {result.received} received, {result.loss_pct:.0f}% packet loss",
    ]
    if result.received:
        lines.append(
            f"rtt min/avg/max/mdev = {result.min_ms:.3f}/{result.avg_ms:.3f}/"
            f"{result.max_ms:.3f}/{result.mdev_ms:.3f} ms"
        )
    lines += [f"note: {e}" for e in result.errors]
    return "\n".join(lines)
