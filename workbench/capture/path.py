"""Capture a path: both containers' eth0 and the source host's underlay NIC at
once, merged in time order (one kernel clock: the timestamps compare); and the
OVS trace of a frame through each bridge of the path beside what those captures
saw of a real one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..doctor.facts import DoctorFacts, TraceFact
from ..errors import BadInput
from ..host import Host
from ..lab import NIC
from ..topology.model import Topology
from .capture import Capture, CaptureOptions, CaptureResult
from .decode import Frame, decode
from .pcap import Record, write_file
from .where import Target, container_target, resolve

TUNNELS_OR_ICMP = "icmp or ip proto gre or udp port 4789 or udp port 6081"


def path_targets(hosts: Sequence[Host], topology: Topology, a: str, b: str) -> list[Target]:
    """[a's eth0, a's host eth1 (when b is on another host), b's eth0]."""
    found = []
    for who in (a, b):
        c = topology.container(who)
        if c is None:
            names = ", ".join(sorted(c.name for c in topology.containers if topology.host_of(c))) or "none"
            raise BadInput(f"unknown container {who!r} (have: {names})")
        found.append(c)
    if found[0].docker_id == found[1].docker_id:
        raise BadInput(f"a path needs two different containers (got {found[0].name} twice)")
    ta, tb = (container_target(topology, c, c.name) for c in found)
    targets = [ta]
    if ta.host and tb.host and ta.host != tb.host:
        targets.append(resolve(f"{ta.host}:{NIC}", hosts, topology))
    targets.append(tb)
    return targets


@dataclass
class PathResult:
    results: list[CaptureResult] = field(default_factory=list)
    merged: list[tuple[str, Record]] = field(default_factory=list)  # (where, record), in time order

    def frames(self) -> list[tuple[str, Frame]]:
        return [(w, decode(r.data, r.wire_len, r.time, r.index)) for w, r in self.merged]

    def write(self, path: str) -> int:
        """One pcap of all places, in time order (the place is not in the file)."""
        return write_file(path, [r for _w, r in self.merged])

    def to_dict(self) -> dict[str, Any]:
        return {
            "captures": [r.to_dict() for r in self.results],
            "frames": [dict(f.to_dict(), where=w) for w, f in self.frames()],
        }


def _relay(on_record: Callable[[str, Record], None] | None, label: str) -> Callable[[Record], None] | None:
    if on_record is None:
        return None

    def relay(rec: Record) -> None:
        on_record(label, rec)

    return relay


class PathCapture:
    """Several captures started and stopped together."""

    def __init__(
        self,
        targets: list[Target],
        opts: CaptureOptions,
        on_record: Callable[[str, Record], None] | None = None,
    ) -> None:
        self.targets = targets
        self.captures = [Capture(t, opts, _relay(on_record, t.label)) for t in targets]

    def start(self) -> PathCapture:
        started: list[Capture] = []
        try:
            for cap in self.captures:
                started.append(cap.start())
        except BaseException:
            for cap in started:
                cap.stop()
            raise
        return self

    @property
    def running(self) -> bool:
        return any(c.running for c in self.captures)

    def records(self) -> list[tuple[str, Record]]:
        out = [(c.target.label, r) for c in self.captures for r in c.records()]
        return sorted(out, key=lambda wr: wr[1].time)

    def stop(self) -> PathResult:
        for c in self.captures:  # all at once: each reads what libpcap still holds, side by side
            c.request_stop()
        results = [c.stop() for c in self.captures]
        return PathResult(results, self.records())

    def wait(self, cancel: threading.Event | None = None) -> PathResult:
        while self.running:
            if cancel is not None and cancel.is_set():
                return self.stop()
            time.sleep(0.1)
        return self.stop()


# --- the trace beside the wire ------------------------------------------------------
@dataclass(frozen=True)
class HopView:
    host: str
    trace: TraceFact | None
    seen: tuple[tuple[str, str, int], ...]  # (where, what, how many)

    def to_dict(self) -> dict[str, Any]:
        t = self.trace
        return {
            "host": self.host,
            "trace": None
            if t is None
            else {
                "bridge": t.bridge,
                "flow": t.flow,
                "actions": t.actions,
                "outputs": list(t.outputs),
                "tunnels": list(t.tunnels),
                "error": t.error,
            },
            "seen": [{"where": w, "what": what, "count": n} for w, what, n in self.seen],
        }


@dataclass(frozen=True)
class TraceView:
    src: str
    dst: str
    hops: tuple[HopView, ...]
    probes: int

    @property
    def agree(self) -> bool:
        """Every bridge that forwards the frame has a capture on its host that saw it."""
        return all(h.seen for h in self.hops if h.trace is not None and not h.trace.dropped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "dst": self.dst,
            "probes": self.probes,
            "agree": self.agree,
            "hops": [h.to_dict() for h in self.hops],
        }

    def lines(self, width: int = 60) -> list[str]:
        out = [f"trace {self.src} -> {self.dst}: {'OVS trace':<{width}} | the wire ({self.probes} pings)"]
        for hop in self.hops:
            left: list[str] = []
            t = hop.trace
            if t is None:
                left.append("no OVS bridge traced here")
            elif t.error:
                left.append(f"{t.bridge}: {t.error}")
            else:
                left.append(f"{t.bridge}: {t.flow}")
                outs = ", ".join(t.outputs) or "drop"
                tun = f", tunnel to {', '.join(t.tunnels)}" if t.tunnels else ""
                left.append(f"-> out {outs}{tun}")
            right = [f"{w}: {n} x {what}" for w, what, n in hop.seen] or ["nothing seen"]
            out.append(f"{hop.host}")
            for i in range(max(len(left), len(right))):
                lt = left[i] if i < len(left) else ""
                if len(lt) > width:
                    lt = lt[: width - 1] + "…"
                rt = right[i] if i < len(right) else ""
                out.append(f"  {lt:<{width}} | {rt}")
        out.append(
            "the trace and the wire agree"
            if self.agree
            else "the trace and the wire disagree: a bridge forwards the frame, no capture on its host saw it"
        )
        return out


def trace_view(facts: DoctorFacts, targets: list[Target], result: PathResult, probes: int) -> TraceView:
    """The doctor's traces per host on the path, beside the frames between the two
    containers that each capture on that host saw."""
    ips = {facts.src_ip, facts.dst_ip}
    by_host: dict[str, list[tuple[str, str, int]]] = {}
    counts: dict[tuple[str, str, str], int] = {}
    host_of = {t.label: t.host or "" for t in targets}
    for where, f in result.frames():
        if f.src not in ips or f.dst not in ips or f.src == f.dst:
            continue
        what = (f"{f.tunnel.upper()} {f.outer_src} > {f.outer_dst} carrying " if f.tunnel else "") + (
            f"{f.src} > {f.dst} {f.proto} {f.info.split(' id=')[0]}"
        )
        key = (host_of.get(where, ""), where, what)
        counts[key] = counts.get(key, 0) + 1
    for (host, where, what), n in counts.items():
        by_host.setdefault(host, []).append((where, what, n))
    hops = tuple(
        HopView(h, facts.hosts[h].trace if h in facts.hosts else None, tuple(by_host.get(h, [])))
        for h in facts.hosts_on_path
    )
    return TraceView(facts.src.name, facts.dst.name, hops, probes)
