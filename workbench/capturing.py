"""The engine's capturing half: capture on a port of the lab (or on a whole path),
OVS flows, the OVS trace beside the wire, and live rates. The logic is in
workbench.capture; these resolve names against the discovered topology and
delegate. `Engine` inherits them; `_Core` says what they need of it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from .capture import Capture, CaptureOptions, CaptureResult, Record, Target, resolve
from .capture.flows import BridgeFlows, parse_where, read_flows
from .capture.path import TUNNELS_OR_ICMP, PathCapture, PathResult, TraceView, path_targets, trace_view
from .capture.rates import RateSampler, RateTable, measure
from .doctor import Expected
from .errors import WorkbenchError
from .host import Host
from .topology.model import Topology


class _Core(Protocol):
    def require_lab(self) -> None: ...

    def hosts(self) -> list[Host]: ...

    def topology(self) -> Topology: ...

    def _expected(self) -> Expected: ...

    def ping(
        self, src: str, dst: str, *, count: int = 4, interval: float = 0.2, timeout: float = 1.0
    ) -> Any: ...


class Capturing:
    # --- capture ---
    def capture_target(self: _Core, where: str) -> Target:
        """WHERE (a container, HOST:IFACE, or HOST:OVS-PORT) as a capture target."""
        self.require_lab()
        return resolve(where, self.hosts(), self.topology())

    def open_capture(
        self: _Core,
        where: str,
        opts: CaptureOptions,
        on_record: Callable[[Record], None] | None = None,
    ) -> Capture:
        """A started capture (tcpdump listens): stop() it, or let it end at its bounds.
        `on_record` is called from the capture's reader thread."""
        self.require_lab()
        target = resolve(where, self.hosts(), self.topology())
        return Capture(target, opts, on_record).start()

    def capture(
        self: _Core,
        where: str,
        opts: CaptureOptions,
        *,
        on_record: Callable[[Record], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> CaptureResult:
        """Capture until the count, the time bound, `cancel`, or the port going away."""
        self.require_lab()
        target = resolve(where, self.hosts(), self.topology())
        return Capture(target, opts, on_record).start().wait(cancel)

    def open_path_capture(
        self: _Core,
        src: str,
        dst: str,
        opts: CaptureOptions,
        on_record: Callable[[str, Record], None] | None = None,
    ) -> PathCapture:
        """Captures on both containers and the source host's underlay NIC, started
        together; `records()` merges them in time order."""
        self.require_lab()
        return PathCapture(path_targets(self.hosts(), self.topology(), src, dst), opts, on_record).start()

    # --- OVS flows and the trace beside the wire ---
    def flows(self: _Core, where: str) -> list[BridgeFlows]:
        """HOST or HOST:BRIDGE: OpenFlow rules and datapath flows with their counters."""
        self.require_lab()
        hosts = self.hosts()
        topology = self.topology()
        bridges = {h.name: [b.name for b in topology.ovs_bridges(h.name)] for h in hosts}
        return [read_flows(h, br) for h, br in parse_where(where, hosts, bridges)]

    def trace(self: _Core, src: str, dst: str, *, probes: int = 3) -> TraceView:
        """ofproto/trace of src's frame through each bridge of the path (the doctor's),
        beside what captures on both ends and the underlay saw of `probes` pings."""
        from .doctor.collect import collect

        self.require_lab()
        hosts, topology = self.hosts(), self.topology()
        facts = collect(hosts, topology, self._expected(), src, dst, probe=False, trace=True)
        targets = path_targets(hosts, topology, src, dst)
        cap = PathCapture(targets, CaptureOptions(count=0, seconds=20, filter=TUNNELS_OR_ICMP)).start()
        result = PathResult()
        try:
            try:
                self.ping(src, dst, count=probes, interval=0.1, timeout=1.0)
            except WorkbenchError:
                pass  # what the wire saw (or did not) says it
        finally:
            result = cap.stop()
        return trace_view(facts, targets, result, probes)

    # --- live rates ---
    def _tunnel_bridges(self: _Core) -> dict[str, list[str]]:
        topology = self.topology()
        return {h.name: sorted({t.bridge for t in topology.tunnels(h.name)}) for h in self.hosts()}

    def rates(self: _Core, on_rates: Callable[[RateTable], None], interval: float = 1.0) -> RateSampler:
        """Per-port bits/s, packets/s, drops and errors of every host, sampled every
        `interval` s (at most 1) on a thread of its own: start() it, stop() it;
        `on_rates` gets each new table from that thread."""
        bridges = lambda: Capturing._tunnel_bridges(self)  # type: ignore[arg-type]  # noqa: E731
        return RateSampler(self.hosts(), on_rates, interval, bridges)  # asked on the sampler's thread

    def port_rates(self: _Core, seconds: float = 1.0) -> RateTable:
        """One table of rates over `seconds`."""
        self.require_lab()
        return measure(self.hosts(), seconds, Capturing._tunnel_bridges(self))  # type: ignore[arg-type]
