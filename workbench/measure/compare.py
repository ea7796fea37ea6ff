"""Compare paths: the same pair of containers over each path, beside the machine's ceiling.

The ceiling is a raw veth between two throwaway namespaces (marked like the lab's,
so `clean` sweeps what a killed run leaves), measured in the same run with the same
tools and settings as the containers: one TCP stream of `seconds` (containet's
iperf), and the median RTT of a short paced ping. A path's figure is then read as a
ratio of the ceiling, which cancels most of what a busy machine does to both.

This module measures; which scenario carries the pair while it measures is the
engine's business (workbench.comparing).
"""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..host import Place
from ..marks import NS_PREFIX
from .iperf import IperfOptions, IperfResult, run_iperf
from .ping import PingOptions, PingResult, Target, ping_from

CEILING = "ceiling"
CEIL_NS = (f"{NS_PREFIX}ceil-a", f"{NS_PREFIX}ceil-b")
CEIL_LINKS = ("ceil-a", "ceil-b")
CEIL_IPS = ("10.250.0.1", "10.250.0.2")  # inside the two namespaces only
PING = PingOptions(count=21, interval=0.05, size=56, df=False, timeout=1.0)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PathFigure:
    """One path's figures for the pair; bps None when it could not be measured (note says why)."""

    path: str  # "ceiling" or a scenario name
    title: str
    bps: float | None = None
    rtt_ms: float | None = None
    retransmits: int | None = None
    note: str = ""

    def ratio(self, ceiling: PathFigure) -> float | None:
        if self.bps is None or not ceiling.bps:
            return None
        return self.bps / ceiling.bps


@dataclass(frozen=True)
class CompareResult:
    src: str
    dst: str
    seconds: float
    ceiling: PathFigure
    paths: tuple[PathFigure, ...]
    #: the scenario applied again at the end (None: the one that was applied never left)
    restored: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for row, fig in zip(data["paths"], self.paths, strict=True):
            row["ratio"] = fig.ratio(self.ceiling)
        return data


def median_rtt(result: PingResult) -> float | None:
    """The median RTT, the first probe left out (it may pay an ARP or a flow-cache miss)."""
    rtts = [r.rtt_ms for r in result.replies[1:] if r.rtt_ms is not None]
    return statistics.median(rtts) if rtts else None


def measure_pair(
    path: str,
    title: str,
    src: tuple[str, Place],
    dst: tuple[str, Place, str],
    seconds: float,
    cancel: threading.Event,
) -> PathFigure:
    """RTT (paced ping) then throughput (one TCP stream) from src to dst."""
    src_name, src_place = src
    dst_name, dst_place, dst_ip = dst
    target = Target(dst_name, dst_ip)
    ping = ping_from(src_place, src_name, [target], PING, cancel=cancel)[target]
    if not ping.received:
        return PathFigure(path, title, note=f"{src_name} cannot reach {dst_name} ({dst_ip}): no ping reply")
    res: IperfResult = run_iperf(
        src_name, src_place, dst_name, dst_place, dst_ip, IperfOptions(seconds=seconds), cancel=cancel
    )
    note = "; ".join(w for w in res.warnings if "CPU-bound" not in w)
    return PathFigure(path, title, res.received_bps, median_rtt(ping), res.retransmits, note)


def build_ceiling() -> tuple[Place, Place]:
    """The two namespaces (marked: `clean` sweeps them) joined by a veth, addressed, up."""
    from pyroute2 import IPRoute

    from .. import lab

    places = tuple(lab.create_ns(name) for name in CEIL_NS)
    a, b = places

    def veth(ipr: IPRoute) -> None:
        if not ipr.link_lookup(ifname=CEIL_LINKS[0]):
            ipr.link(
                "add",
                ifname=CEIL_LINKS[0],
                kind="veth",
                peer={"ifname": CEIL_LINKS[1], "net_ns_fd": CEIL_NS[1]},
            )

    a.netlink(veth)
    for place, link, ip in zip(places, CEIL_LINKS, CEIL_IPS, strict=True):

        def address(ipr: IPRoute, link: str = link, ip: str = ip) -> None:
            idx = ipr.link_lookup(ifname=link)[0]
            if not ipr.get_addr(index=idx, address=ip):
                ipr.addr("add", index=idx, address=ip, prefixlen=30)
            ipr.link("set", index=idx, state="up")

        place.netlink(address)
    return a, b


def remove_ceiling() -> None:
    from .. import lab

    for name in CEIL_NS:
        lab.delete_ns(name)


def measure_ceiling(seconds: float, cancel: threading.Event, progress: Progress) -> PathFigure:
    """A raw veth between two fresh namespaces: the most this machine moves between two stacks."""
    title = "raw veth between two namespaces"
    progress(f"{CEILING}: a veth between two throwaway namespaces ({CEIL_NS[0]}, {CEIL_NS[1]})")
    try:
        a, b = build_ceiling()
        return measure_pair(CEILING, title, ("ceil-a", a), ("ceil-b", b, CEIL_IPS[1]), seconds, cancel)
    finally:
        remove_ceiling()


# --- text ---------------------------------------------------------------------------
BAR = 24


def _rate(bps: float | None) -> str:
    if bps is None:
        return "-"
    return f"{bps / 1e9:.2f} Gbit/s" if bps >= 1e9 else f"{bps / 1e6:.0f} Mbit/s"


def format_compare(result: CompareResult) -> str:
    lines = [
        f"compare {result.src} -> {result.dst}: one TCP stream of {result.seconds:g} s and "
        f"{PING.count - 1} paced pings per path, the ceiling measured in the same run"
    ]
    rows = [result.ceiling, *result.paths]
    width = max(len(r.path) for r in rows)
    title_w = min(44, max(len(r.title) for r in rows))
    lines.append(
        f"  {'path':{width}}  {'what':{title_w}}  {'throughput':>12}  {'of ceiling':>10}  {'RTT':>9}  retrans"
    )
    for row in rows:
        ratio = row.ratio(result.ceiling)
        share = f"{ratio:.3f}" if ratio is not None else "-"
        rtt = f"{row.rtt_ms:.3f} ms" if row.rtt_ms is not None else "-"
        retr = str(row.retransmits) if row.retransmits is not None else "-"
        bar = "█" * max(1, round(BAR * min(ratio, 1.0))) if ratio else ""
        lines.append(
            f"  {row.path:{width}}  {row.title[:title_w]:{title_w}}  {_rate(row.bps):>12}  {share:>10}  "
            f"{rtt:>9}  {retr:>7}  {bar}"
        )
        if row.note:
            lines.append(f"  {'':{width}}  note: {row.note}")
    if result.restored:
        lines.append(f"{result.restored} applied again at the end (its containers were made anew)")
    return "\n".join(lines)
