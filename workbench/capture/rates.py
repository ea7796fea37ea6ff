"""Live per-port rates: bits/s, packets/s, drops and errors, for every kernel
device of every host (netlink's 64-bit link statistics, read by one worker
thread per host namespace) and every OVS port with no kernel device (tunnel
ports of the userspace datapath: `ovs-ofctl dump-ports`, live, where OVSDB's
Interface statistics refresh only every 5 s and the datapath's own `gre_sys`
port counts nothing). Sampled by a thread of
its own, once a second by default: never on the UI's thread."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import WorkbenchError
from ..host import Host, NetnsWorker

FIELDS = (
    "rx_bytes",
    "tx_bytes",
    "rx_packets",
    "tx_packets",
    "rx_dropped",
    "tx_dropped",
    "rx_errors",
    "tx_errors",
)


@dataclass(frozen=True)
class Counters:
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_packets: int = 0
    tx_packets: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0
    rx_errors: int = 0
    tx_errors: int = 0


@dataclass(frozen=True)
class PortRate:
    host: str
    name: str
    source: str  # "netlink" or "ovs"
    rx_bps: float
    tx_bps: float
    rx_pps: float
    tx_pps: float
    drops: int  # dropped, both ways, since the device was made
    errors: int
    new_drops: int  # in the last interval
    new_errors: int

    @property
    def busy(self) -> bool:
        return bool(self.rx_pps or self.tx_pps or self.new_drops or self.new_errors)

    def short(self) -> str:
        """ "rx 1.2 Mb/s 100 p/s tx 3.4 Mb/s 300 p/s drops 2 (+1)"""
        rx = f"rx {human_bps(self.rx_bps)} {self.rx_pps:.0f} p/s"
        out = f"{rx} tx {human_bps(self.tx_bps)} {self.tx_pps:.0f} p/s"
        if self.drops:
            out += f" drops {self.drops}" + (f" (+{self.new_drops})" if self.new_drops else "")
        if self.errors:
            out += f" errors {self.errors}" + (f" (+{self.new_errors})" if self.new_errors else "")
        return out

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


RateTable = dict[tuple[str, str], PortRate]


def human_bps(bps: float) -> str:
    for unit, scale in (("Gb/s", 1e9), ("Mb/s", 1e6), ("kb/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.1f} {unit}"
    return f"{bps:.0f} b/s"


def read_links(ipr: Any) -> dict[str, Counters]:
    """Every link's IFLA_STATS64 in the calling worker's namespace."""
    out = {}
    for msg in ipr.get_links():
        stats = msg.get_attr("IFLA_STATS64") or msg.get_attr("IFLA_STATS") or {}
        out[msg.get_attr("IFLA_IFNAME")] = Counters(*(int(stats.get(f, 0) or 0) for f in FIELDS))
    return out


_PORT = re.compile(r"^\s*port\s+(\S+?):\s+rx (.*)$")
_TX = re.compile(r"^\s+tx (.*)$")
_NUM = re.compile(r"(\w+)=(\d+)")


def parse_dump_ports(text: str) -> dict[str, Counters]:
    """`ovs-ofctl --names dump-ports BRIDGE`: per OpenFlow port, its rx and tx lines
    ("?" where the port keeps no such counter)."""
    out: dict[str, dict[str, int]] = {}
    port = None
    for line in text.splitlines():
        m = _PORT.match(line)
        if m:
            port = m.group(1).strip('"')
            out[port] = {f"rx_{k}": int(v) for k, v in _NUM.findall(m.group(2))}
            continue
        t = _TX.match(line)
        if t and port is not None:
            out[port].update({f"tx_{k}": int(v) for k, v in _NUM.findall(t.group(1))})
    names = {"pkts": "packets", "drop": "dropped", "errs": "errors"}
    return {
        name: Counters(*(_get(v, f, names) for f in FIELDS)) for name, v in out.items() if name != "LOCAL"
    }


def _get(values: dict[str, int], field: str, names: dict[str, str]) -> int:
    side, what = field.split("_", 1)
    for short, long in names.items():
        if long == what:
            return values.get(f"{side}_{short}", 0)
    return values.get(field, 0)


def diff(host: str, name: str, source: str, a: Counters, b: Counters, dt: float) -> PortRate:
    def per_s(x: int, y: int) -> float:
        return max(0, y - x) / dt if dt > 0 else 0.0

    drops_a, drops_b = a.rx_dropped + a.tx_dropped, b.rx_dropped + b.tx_dropped
    errs_a, errs_b = a.rx_errors + a.tx_errors, b.rx_errors + b.tx_errors
    return PortRate(
        host,
        name,
        source,
        rx_bps=per_s(a.rx_bytes, b.rx_bytes) * 8,
        tx_bps=per_s(a.tx_bytes, b.tx_bytes) * 8,
        rx_pps=per_s(a.rx_packets, b.rx_packets),
        tx_pps=per_s(a.tx_packets, b.tx_packets),
        drops=drops_b,
        errors=errs_b,
        new_drops=max(0, drops_b - drops_a),
        new_errors=max(0, errs_b - errs_a),
    )


Sample = dict[tuple[str, str], tuple[str, Counters]]
BRIDGES_EVERY = 5.0  # seconds between looks at which OVS bridges have tunnel ports


class RateSampler:
    """Samples every host every `interval` seconds on its own thread; hands each
    new table to `on_rates` (from that thread). start() once, stop() once."""

    def __init__(
        self,
        hosts: Sequence[Host],
        on_rates: Callable[[RateTable], None],
        interval: float = 1.0,
        tunnel_bridges: dict[str, list[str]] | Callable[[], dict[str, list[str]]] | None = None,
    ) -> None:
        if not 0.1 <= interval <= 1.0:
            raise ValueError("rates are sampled at 1 Hz or faster (interval 0.1 to 1 s)")
        self.hosts = list(hosts)
        # host -> OVS bridges with ports that have no device; a callable is asked again
        # every BRIDGES_EVERY seconds on the sampler's thread (a scenario adds tunnels)
        self._bridges_of = tunnel_bridges if callable(tunnel_bridges) else None
        self.tunnel_bridges: dict[str, list[str]] = {} if callable(tunnel_bridges) else (tunnel_bridges or {})
        self._bridges_at = 0.0
        self.on_rates = on_rates
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rates", daemon=True)
        self._workers: dict[str, NetnsWorker] = {}
        self._inodes: dict[str, int] = {}  # the namespace each worker entered
        self.errors: dict[str, str] = {}
        self.samples = 0

    def start(self) -> RateSampler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def states(self) -> dict[str, bool | None]:
        return {f"rates:{h.name}": h.name not in self.errors for h in self.hosts}

    def _refresh_bridges(self) -> None:
        if self._bridges_of is not None and time.monotonic() - self._bridges_at >= BRIDGES_EVERY:
            self._bridges_at = time.monotonic()
            try:
                self.tunnel_bridges = self._bridges_of()
            except Exception as exc:  # noqa: BLE001 - no tunnel rates until it answers again
                self.errors["topology"] = str(exc)

    def _worker(self, host: Host) -> NetnsWorker:
        """The host's worker thread, made again when its namespace is not the one the
        worker is in (the lab went down and came up: same name, a new namespace); a
        worker left in a deleted namespace would read it, and keep it alive, forever."""
        path = host.place.path
        inode = os.stat(path).st_ino if path is not None else 0  # OSError: no namespace (reported)
        worker = self._workers.get(host.name)
        if worker is not None and self._inodes.get(host.name) != inode:
            self._workers.pop(host.name).close()
            worker = None
        if worker is None:
            worker = self._workers[host.name] = NetnsWorker(host.place)
            self._inodes[host.name] = inode
        return worker

    def sample(self) -> Sample:
        self._refresh_bridges()
        out: Sample = {}
        for host in self.hosts:
            try:
                worker = self._worker(host)
                links = worker.netlink(read_links)
                for name, c in links.items():
                    if name != "lo" and not name.startswith(("ovs-netdev", "ovs-system")):
                        out[(host.name, name)] = ("netlink", c)
                for bridge in self.tunnel_bridges.get(host.name, []):
                    for name, c in parse_dump_ports(dump_ports(host, bridge)).items():
                        if name not in links:  # a port with no kernel device: a tunnel
                            out[(host.name, name)] = ("ovs", c)
                self.errors.pop(host.name, None)
            except (WorkbenchError, OSError) as exc:
                self.errors[host.name] = str(exc)
                stale = self._workers.pop(host.name, None)
                if stale is not None:
                    stale.close()
        return out

    def _run(self) -> None:
        try:
            prev, t_prev = self.sample(), time.monotonic()
            while not self._stop.wait(max(0.0, self.interval - (time.monotonic() - t_prev))):
                cur, t_cur = self.sample(), time.monotonic()
                table = rate_table(prev, cur, t_cur - t_prev)
                prev, t_prev = cur, t_cur
                self.samples += 1
                self.on_rates(table)
        finally:
            for worker in self._workers.values():
                worker.close()
            self._workers.clear()


def rate_table(prev: Sample, cur: Sample, dt: float) -> RateTable:
    return {
        key: diff(key[0], key[1], src, prev[key][1], c, dt) for key, (src, c) in cur.items() if key in prev
    }


def dump_ports(host: Host, bridge: str) -> str:
    target = f"unix:{host.run_dir / (bridge + '.mgmt')}" if host.run_dir is not None else bridge
    return host.place.run(["ovs-ofctl", "--names", "dump-ports", target], timeout=5).stdout


def measure(
    hosts: Sequence[Host], seconds: float = 1.0, tunnel_bridges: dict[str, list[str]] | None = None
) -> RateTable:
    """One table over `seconds` (the CLI's `status --rates`)."""
    sampler = RateSampler(hosts, lambda _t: None, min(1.0, max(0.1, seconds)), tunnel_bridges)
    try:
        a, t0 = sampler.sample(), time.monotonic()
        time.sleep(seconds)
        b = sampler.sample()
        return rate_table(a, b, time.monotonic() - t0)
    finally:
        for worker in sampler._workers.values():
            worker.close()
