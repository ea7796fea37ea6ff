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
replies (each at most `timeout` seconds, in slices of at most 0.2 s so that `cancel`
is noticed promptly), then sleeps out the interval. A single ping is the one source,
one destination case; pingall puts every source in one loop, its probes paced (see
`Pacing`: a burst of a thousand probes and their ARP floods through a userspace
datapath loses many) and let go by a `Gate` (room in the kernel's neighbour table).

An unreachable destination costs `count * timeout` and is reported as 100% loss,
never a hang. Packets still in flight when the run is cancelled are not counted as
sent (they were neither answered nor timed out).
"""

from __future__ import annotations

import itertools
import os
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from icmplib.utils import random_byte_message

from ..errors import BadInput
from ..host import Place
from .icmp import FILTER_MASK as FILTER_MASK
from .icmp import ICMP_ECHO_REPLY as ICMP_ECHO_REPLY
from .icmp import ICMP_ERRORS as ICMP_ERRORS
from .icmp import SO_TIMESTAMPNS as SO_TIMESTAMPNS
from .icmp import TIMESPEC as TIMESPEC
from .icmp import StampedSocket as StampedSocket
from .icmp import born_in as born_in
from .icmp import kernel_stamp_ns as kernel_stamp_ns
from .stats import loss_pct, rtt_summary

SLICE = 0.2  # longest single blocking wait, so cancel is seen within it
#: the smoothed RTT a paced run starts from (see Pacing), seconds
INITIAL_RTT = 0.1
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


def open_sockets(places: Sequence[Place], opts: PingOptions) -> list[StampedSocket]:
    """A StampedSocket born in each place's namespace, in order."""
    return born_in(places, lambda: StampedSocket(opts.size, opts.df))


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
    deadline: float  # time.monotonic() after which it counts as lost
    quiet: bool = False  # expected to go unanswered (see Pinger.quiet)


@dataclass(frozen=True)
class Pacing:
    """How a many-source run (pingall) keeps from flooding the datapath it measures.

    At most `window` probes sent recently wait for their reply: a reply frees a place
    at once (so the pace follows the network), a probe still unanswered after twice
    the smoothed round-trip time (at least `young` seconds) keeps waiting for its
    timeout but no longer holds a place (so destinations that never answer cost no
    pace, and a datapath that slows down -- RTTs growing as its queues fill -- slows
    the sender down with it). And at most `in_flight` probes that should be answered
    wait at once, young or not: when the datapath stalls (replies stop), so does the
    sender, and at most that many probes are lost to the stall. Measured with 30
    containers and cold ARP caches: all at once lost 334 of 870 probes, a window of 32
    none. `retries`: how many more probes pingall sends, later, to a pair that answered
    none of its own (one lost probe does not make a pair unreachable). Without a
    Pacing (a single ping), every probe of a round is sent at once."""

    window: int = 32
    young: float = 0.02
    retries: int = 2
    in_flight: int = 128

    def check(self) -> Pacing:
        bad = not 1 <= self.window <= self.in_flight <= 65536 or not 0 <= self.retries <= 5
        if bad or not 0 < self.young <= 1:
            raise BadInput(f"bad pacing {self}: 1 <= window <= in_flight, retries 0-5, young 0-1 s")
        return self


class Gate(Protocol):
    """Lets a probe go or holds it back (pingall: room in the neighbour table), and
    hears when each probe is over (answered, failed or timed out)."""

    def admit(self, source: str, target: str, force: bool) -> bool:
        """May this probe go now? `force`: nothing else is in flight, it must."""
        ...

    def finished(self, source: str, target: str) -> None: ...


def interleaved(sources: Sequence[Source]) -> list[tuple[Source, Target]]:
    """Every (source, target), the sources taking turns: each source's first target,
    then each one's second, ... (pingall rotates each source's targets, so at any
    moment the probes in flight go to different destinations)."""
    out = []
    for k in range(max((len(s.targets) for s in sources), default=0)):
        out += [(s, s.targets[k]) for s in sources if k < len(s.targets)]
    return out


class Pinger:
    """The rounds of every source, in one event loop over one socket per source."""

    def __init__(
        self,
        sources: Sequence[Source],
        opts: PingOptions,
        on_probe: OnProbe | None,
        cancel: threading.Event,
        pacing: Pacing | None = None,
        order: Sequence[tuple[Source, Target]] | None = None,
        first_seq: int = 1,
        gate: Gate | None = None,
        quiet: frozenset[tuple[str, str]] = frozenset(),
    ) -> None:
        self.sources = list(sources)
        self.opts = opts
        self.on_probe = on_probe
        self.cancel = cancel
        self.pacing = pacing
        self.order = list(order) if order is not None else interleaved(self.sources)
        self.first_seq = first_seq
        self.gate = gate
        self.quiet = quiet  # (source, target name): no reply expected (pingall: isolation)
        self._loud = 0  # pending probes that should be answered
        self.ids = {(s.name, t): _next_id() for s in self.sources for t in s.targets}
        self.payload = random_byte_message(opts.size)  # icmplib's filler, made once
        self.addresses = {t: (t.ip, 0) for s in self.sources for t in s.targets}
        self.replies: dict[Cell, list[PingReply]] = {cell: [] for cell in self.ids}
        self.errors: dict[Cell, list[str]] = {cell: [] for cell in self.ids}
        # the round in progress: probes waiting for a reply (in send order), and those
        # of them sent less than `pacing.young` seconds ago
        self._pending: dict[tuple[int, int, int], _Probe] = {}  # (fd, id, seq)
        self._young: dict[tuple[int, int, int], float] = {}
        # smoothed RTT of the replies so far, seconds (as TCP's, gain 1/8); until the first
        # reply, a guess on the slow side: a busy userspace datapath answers in ~0.1 s
        self._srtt = INITIAL_RTT

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
        window = self.pacing.window if self.pacing else None
        last = self.first_seq + self.opts.count - 1
        for seq in range(self.first_seq, last + 1):
            if self.cancel.is_set():
                return
            started = time.monotonic()
            self._round(poller, socks, by_fd, self.order, seq, window)
            if seq < last:
                left = started + self.opts.interval - time.monotonic()
                if left > 0 and self.cancel.wait(left):
                    return

    def _record(self, source: Source, target: Target, reply: PingReply) -> None:
        self.replies[(source.name, target)].append(reply)
        if self.gate is not None:
            self.gate.finished(source.name, target.name)
        if self.on_probe is not None:
            self.on_probe(source, target, reply)

    def _error(self, source: Source, target: Target, text: str) -> None:
        self.errors[(source.name, target)].append(text)

    def _send(self, source: Source, sock: StampedSocket, target: Target, seq: int, now: float) -> None:
        ident = self.ids[(source.name, target)]
        try:
            sent = sock.send_probe(self.addresses[target], ident, seq, self.payload)
        except OSError as exc:  # e.g. "Message too long" with DF, no route
            self._error(source, target, exc.strerror or str(exc))
            self._record(source, target, PingReply(seq, None))
            return
        key = (sock.fileno(), ident, seq)
        quiet = (source.name, target.name) in self.quiet
        self._pending[key] = _Probe(source, target, seq, sent, now + self.opts.timeout, quiet)
        self._young[key] = now
        self._loud += not quiet

    def _done(self, key: tuple[int, int, int]) -> _Probe:
        probe = self._pending.pop(key)
        self._young.pop(key, None)
        self._loud -= not probe.quiet
        return probe

    def _round(
        self,
        poller: select.poll,
        socks: dict[Source, StampedSocket],
        by_fd: dict[int, tuple[Source, StampedSocket]],
        order: Sequence[tuple[Source, Target]],
        seq: int,
        window: int | None,
    ) -> None:
        """One probe of sequence `seq` to each (source, target) of `order`; with a window,
        paced (see Pacing). Returns when every probe is answered or timed out."""
        queue = deque(order)
        pending, young = self._pending, self._young
        floor = self.pacing.young if self.pacing else 0.0
        while (queue or pending) and not self.cancel.is_set():
            now = time.monotonic()
            while pending:  # same timeout for all: the oldest expires first
                key, probe = next(iter(pending.items()))
                if probe.deadline > now:
                    break
                self._done(key)
                self._record(probe.source, probe.target, PingReply(probe.seq, None))
            horizon = max(floor, 2 * self._srtt)
            while young and next(iter(young.values())) <= now - horizon:
                del young[next(iter(young))]
            cap = self.pacing.in_flight if self.pacing else None
            while queue and (window is None or len(young) < window):
                source, target = queue[0]
                if cap is not None and self._loud >= cap and (source.name, target.name) not in self.quiet:
                    break  # a stall: wait for replies or timeouts
                if self.gate is not None and not self.gate.admit(source.name, target.name, not pending):
                    break  # no room: a probe that ends makes some
                queue.popleft()
                self._send(source, socks[source], target, seq, now)
            if not pending:
                continue
            wake = next(iter(pending.values())).deadline
            if queue and young:  # a place frees up when the oldest young probe ages
                wake = min(wake, next(iter(young.values())) + horizon)
            for fd, _event in poller.poll(max(0.0, min(wake - now, SLICE)) * 1000.0):
                self._drain(fd, *by_fd[fd])
        # in flight when cancelled: neither answered nor timed out, not counted
        pending.clear()
        young.clear()
        self._loud = 0

    def _drain(self, fd: int, source: Source, sock: StampedSocket) -> None:
        pending = self._pending
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
            key = (fd, reply.id, reply.sequence)
            probe = pending.get(key)
            if probe is None:
                continue  # late (an earlier round's), or another pinger's
            if reply.type == ICMP_ECHO_REPLY and reply.source == probe.target.ip:
                self._done(key)
                rtt = (received_ns - probe.sent_ns) / 1e6
                self._srtt += (max(rtt, 0.0) / 1e3 - self._srtt) / 8
                self._record(source, probe.target, PingReply(probe.seq, max(rtt, 0.0)))
            elif reply.type in ICMP_ERRORS:
                self._done(key)
                self._error(source, probe.target, f"{ICMP_ERRORS[reply.type]} from {reply.source}")
                self._record(source, probe.target, PingReply(probe.seq, None))


def ping_sources(
    sources: Sequence[Source],
    opts: PingOptions,
    *,
    on_probe: OnProbe | None = None,
    cancel: threading.Event | None = None,
    pacing: Pacing | None = None,
    order: Sequence[tuple[Source, Target]] | None = None,
    first_seq: int = 1,
    gate: Gate | None = None,
    quiet: frozenset[tuple[str, str]] = frozenset(),
) -> dict[Cell, PingResult]:
    """Ping every source's targets from inside its namespace, all in one loop (paced
    when `pacing` says so, in `order`, default `interleaved`; sequence numbers from
    `first_seq`; each probe let go by `gate`, if any; `quiet` pairs are expected not
    to answer); a PingResult per (source name, target), partial if cancelled."""
    opts.check()
    pacer = pacing.check() if pacing else None
    pinger = Pinger(
        sources, opts, on_probe, cancel or threading.Event(), pacer, order, first_seq, gate, quiet
    )
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
