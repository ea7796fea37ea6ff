"""Canned captures for the fake engine: frames crafted byte by byte (a GRE-wrapped
ICMP echo and its reply, a VXLAN one, a TCP segment too big for GRE), fed to the
TUI as a real capture's ring would be."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

from workbench.capture import CaptureOptions, CaptureResult, PathContext, Record, Target
from workbench.capture.flows import BridgeFlows, DpFlow, FlowRule
from workbench.capture.path import PathResult
from workbench.capture.rates import PortRate, RateTable
from workbench.errors import BadInput
from workbench.host import Place

T0 = 1796000000.0


def _ip(src: str, dst: str, proto: int, body: bytes) -> bytes:
    return struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, 0x4000, 64, proto, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    ) + body  # fmt: skip


def _eth(payload: bytes, ethertype: int = 0x0800) -> bytes:
    return bytes.fromhex("020000000002020000000001") + struct.pack("!H", ethertype) + payload


def echo(src: str, dst: str, kind: int, seq: int) -> bytes:
    return _eth(_ip(src, dst, 1, struct.pack("!BBHHH", kind, 0, 0, 7, seq) + b"x" * 56))


def gre(inner: bytes) -> bytes:
    return _eth(_ip("10.0.0.3", "10.0.0.4", 47, struct.pack("!HH", 0, 0x6558) + inner))


def tcp_big() -> bytes:
    seg = struct.pack("!HHIIBBHHH", 40000, 5201, 1, 1, 5 << 4, 0x18, 502, 0, 0) + b"y" * 1460
    return _eth(_ip("172.15.42.100", "172.15.42.101", 6, seg))


def frames() -> list[bytes]:
    a, b = "172.15.42.100", "172.15.42.101"
    out = []
    for seq in (1, 2):
        out += [gre(echo(a, b, 8, seq)), gre(echo(b, a, 0, seq))]
    out.append(tcp_big())
    return out


def records(n: int | None = None) -> list[Record]:
    data = frames()
    return [Record(i + 1, T0 + i * 0.1, len(d), d) for i, d in enumerate(data[:n])]


def target(where: str) -> Target:
    known = {"h1-a", "h2-a", "host1:eth1", "host1:gre0", "host2:eth1"}
    if where not in known:
        raise BadInput(f"unknown container {where!r} (have: h1-a, h2-a; or HOST:IFACE, e.g. host1:eth1)")
    return Target(where, where, "host1", Place.root(), "eth0", PathContext("gre", 1500, False, where))


class FakeCapture:
    """workbench.api.LiveCapture: its records appear at once; stop() ends it."""

    def __init__(self, where: str, opts: CaptureOptions, gate: threading.Event | None = None) -> None:
        self.target = target(where)
        self.opts = opts
        self._records = records(opts.count or None)
        self._running = True
        self.gate = gate

    @property
    def running(self) -> bool:
        return self._running

    def records(self) -> list[Record]:
        return list(self._records)

    def stop(self) -> CaptureResult:
        self._running = False
        res = CaptureResult(self.target.label, "stopped", seen=len(self._records), kept=len(self._records))
        res.records = list(self._records)
        res.context = self.target.context
        return res


class FakePathCapture:
    def __init__(self, src: str, dst: str) -> None:
        self.targets = [target(src), target("host1:eth1"), target(dst)]
        self._running = True

    @property
    def running(self) -> bool:
        return self._running

    def records(self) -> list[tuple[str, Record]]:
        recs = records(4)
        places = [t.label for t in self.targets]
        return [(places[i % 3], r) for i, r in enumerate(recs)]

    def stop(self) -> PathResult:
        self._running = False
        return PathResult([], self.records())


def flows(where: str) -> list[BridgeFlows]:
    rule = FlowRule(0, 0, "", "NORMAL", 57, 4842, 12.0)
    dp = DpFlow("in_port(br0),eth_type(0x0800)", "tnl_push(tnl_port(gre0)),eth1", 4, 392, "0.2s")
    return [BridgeFlows(where.split(":")[0], "br0", (rule,), (dp,))]


def rate_table() -> RateTable:
    def r(host: str, name: str, bps: float, pps: float) -> PortRate:
        return PortRate(host, name, "netlink", bps, bps, pps, pps, 0, 0, 0, 0)

    return {
        ("host1", "eth1"): r("host1", "eth1", 1.25e6, 120),
        ("host1", "cn-h1-a"): r("host1", "cn-h1-a", 1.0e6, 100),
        ("host1", "gre0"): r("host1", "gre0", 1.1e6, 110),
    }


class FakeRates:
    """workbench.api.LiveWatcher for rates: one table on start."""

    def __init__(self, on_rates: Callable[[RateTable], None]) -> None:
        self.on_rates = on_rates
        self.stopped = False

    def start(self) -> FakeRates:
        self.on_rates(rate_table())
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self.stopped = True

    def states(self) -> dict[str, bool | None]:
        return {"rates:host1": True}
