"""Ping from inside a container's network namespace, with icmplib.

A worker thread enters the source container's namespace (`Place.call`) and opens a
raw ICMP socket there, so packets leave through the container's own eth0 exactly as
`nsenter -t PID -n ping` would send them. One pinger handles one or many
destinations: every round sends one echo request to each destination, waits for the
replies (at most `timeout` seconds), then sleeps out the interval. A single ping is
the one-destination case; pingall uses the many-destination case, so a source's
probes are in flight together instead of one after another.

Every wait is bounded (`timeout` per round, in slices of at most 0.2 s so that
`cancel` is noticed promptly): an unreachable destination costs `count * timeout`
and is reported as 100% loss, never a hang. Packets still in flight when the run is
cancelled are not counted as sent (they were neither answered nor timed out).
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from icmplib import ICMPReply, ICMPRequest, ICMPv4Socket
from icmplib.exceptions import ICMPLibError, TimeoutExceeded

from ..errors import BadInput
from ..host import Place
from .stats import loss_pct, rtt_summary

ICMP_ECHO_REPLY = 0
#: ICMP types that carry our request back as an error (unreachable, time exceeded, ...)
ICMP_ERRORS = {3: "destination unreachable", 11: "time exceeded", 12: "parameter problem"}
IP_MTU_DISCOVER = getattr(socket, "IP_MTU_DISCOVER", 10)
IP_PMTUDISC_DO = getattr(socket, "IP_PMTUDISC_DO", 2)
SLICE = 0.2  # longest single blocking wait, so cancel is seen within it

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


OnReply = Callable[[Target, PingReply], None]


class _Pinger:
    """The rounds of one source; runs entirely inside the source's namespace thread."""

    def __init__(
        self, targets: Sequence[Target], opts: PingOptions, on_reply: OnReply | None, cancel: threading.Event
    ) -> None:
        self.targets = list(targets)
        self.opts = opts
        self.on_reply = on_reply
        self.cancel = cancel
        self.ids = {t: _next_id() for t in self.targets}
        self.replies: dict[Target, list[PingReply]] = {t: [] for t in self.targets}
        self.errors: dict[Target, list[str]] = {t: [] for t in self.targets}

    def run(self) -> None:
        with ICMPv4Socket(privileged=True) as sock:
            if self.opts.df:
                # icmplib has no DF switch; the documented escape hatch is its socket
                sock.sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
            for seq in range(1, self.opts.count + 1):
                if self.cancel.is_set():
                    return
                started = time.monotonic()
                self._round(sock, seq)
                if seq < self.opts.count:
                    self._sleep_until(started + self.opts.interval)

    def _record(self, target: Target, reply: PingReply) -> None:
        self.replies[target].append(reply)
        if self.on_reply is not None:
            self.on_reply(target, reply)

    def _round(self, sock: ICMPv4Socket, seq: int) -> None:
        pending: dict[tuple[int, int], tuple[Target, ICMPRequest]] = {}
        for target in self.targets:
            request = ICMPRequest(target.ip, self.ids[target], seq, payload_size=self.opts.size)
            try:
                sock.send(request)
            except ICMPLibError as exc:
                self.errors[target].append(str(exc) or type(exc).__name__)
                self._record(target, PingReply(seq, None))
                continue
            pending[(request.id, seq)] = (target, request)
        deadline = time.monotonic() + self.opts.timeout
        while pending and not self.cancel.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            reply = self._receive(sock, min(left, SLICE), pending)
            if reply is not None:
                self._match(reply, pending)
        if self.cancel.is_set():
            return  # in flight when cancelled: neither answered nor timed out, not counted
        for target, _request in pending.values():
            self._record(target, PingReply(seq, None))

    def _receive(
        self, sock: ICMPv4Socket, wait: float, pending: dict[tuple[int, int], tuple[Target, ICMPRequest]]
    ) -> ICMPReply | None:
        try:
            return sock.receive(None, timeout=wait)
        except TimeoutExceeded:
            return None
        except ICMPLibError as exc:  # an asynchronous socket error, e.g. host unreachable
            for target, _req in pending.values():
                self.errors[target].append(str(exc) or type(exc).__name__)
            time.sleep(min(wait, 0.01))
            return None

    def _match(self, reply: ICMPReply, pending: dict[tuple[int, int], tuple[Target, ICMPRequest]]) -> None:
        key = (reply.id, reply.sequence)
        if key not in pending:
            return  # another pinger's reply, or an echo request to this container
        target, request = pending[key]
        if reply.type == ICMP_ECHO_REPLY and reply.source == target.ip:
            del pending[key]
            self._record(target, PingReply(request.sequence, (reply.time - request.time) * 1000.0))
        elif reply.type in ICMP_ERRORS:
            del pending[key]
            self.errors[target].append(f"{ICMP_ERRORS[reply.type]} from {reply.source}")
            self._record(target, PingReply(request.sequence, None))

    def _sleep_until(self, when: float) -> None:
        while not self.cancel.is_set():
            left = when - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, SLICE))


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
    opts.check()
    pinger = _Pinger(targets, opts, on_reply, cancel or threading.Event())
    place.call(pinger.run)
    return {t: make_result(src, t, pinger.replies[t], pinger.errors[t]) for t in pinger.targets}


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
