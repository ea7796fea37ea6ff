"""iperf3 results as data, and the pure parsers that build them (unit-tested without root).

Two sources feed an `IperfResult`:

* the client's final JSON (the iperf3 library's `Client.run()` in JSON mode): the
  authoritative totals, per-interval figures and CPU use;
* the server's text report, one line per interval, printed as the test runs: the
  live stream for `on_interval` (see `parse_interval_line`). libiperf 3.12 has no
  streaming JSON, so the text report is the only thing it emits while a test runs.

`assess` turns the figures into warnings when a number should not be trusted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import WorkbenchError
from .stats import human_bps, median, spread_pct

#: warn when the machine was this busy (percent of all cores) during the run
CPU_BUSY_PCT = 90.0
#: warn when an iperf3 process used this much of one core
PROCESS_CPU_PCT = 90.0
#: warn when this share of TCP segments was retransmitted
RETRANSMIT_SHARE = 0.01
#: "nothing arrived": below this share of what was sent
RECEIVED_SHARE = 0.01
#: warn above this UDP datagram loss
UDP_LOSS_PCT = 5.0
DEFAULT_MSS = 1448


@dataclass(frozen=True)
class IperfInterval:
    """One reporting interval (seconds since the test start); retransmits None when unknown."""

    start: float
    end: float
    bits_per_second: float
    retransmits: int | None


@dataclass(frozen=True)
class IperfResult:
    src: str
    dst: str
    protocol: str  # "TCP" or "UDP"
    seconds: float
    sent_bps: float
    received_bps: float
    retransmits: int | None
    intervals: tuple[IperfInterval, ...]
    warnings: tuple[str, ...]
    runs: tuple[float, ...]  # received_bps of each repeat
    median_bps: float
    spread_pct: float
    #: extra to the contract: bytes moved, datagram loss (UDP), CPU use (percent of one core)
    sent_bytes: int = 0
    received_bytes: int = 0
    lost_pct: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the server's live text report ------------------------------------------------
_LINE_RE = re.compile(
    r"^\[\s*(?P<id>\d+|SUM)\]\s+(?P<start>\d+(?:\.\d+)?)-\s*(?P<end>\d+(?:\.\d+)?)\s+sec\s+"
    r"(?P<xfer>\d+(?:\.\d+)?)\s+(?P<xunit>[KMGT]?Bytes)\s+"
    r"(?P<rate>\d+(?:\.\d+)?)\s+(?P<runit>[KMGT]?bits/sec)(?P<rest>.*)$"
)
_BIT_SCALE = {"bits/sec": 1.0, "Kbits/sec": 1e3, "Mbits/sec": 1e6, "Gbits/sec": 1e9, "Tbits/sec": 1e12}


def parse_interval_line(line: str, *, streams: int = 1, tcp: bool = True) -> IperfInterval | None:
    """An interval line of iperf3's text report -> IperfInterval; None for any other line.

    With several streams only the [SUM] line counts (one point per interval); the end
    summary ("sender"/"receiver") and omitted intervals are not intervals. The sender's
    TCP lines carry "Retr Cwnd" after the bitrate, the receiver's nothing, UDP lines
    jitter and loss (never read as retransmits).
    """
    match = _LINE_RE.match(line.strip())
    if not match:
        return None
    rest = match["rest"].split()
    if rest and rest[-1] in ("sender", "receiver", "(omitted)"):
        return None
    if (match["id"] == "SUM") != (streams > 1):
        return None
    retransmits = None
    if tcp and len(rest) >= 2 and rest[0].isdigit() and rest[2:3] and rest[2].endswith("Bytes"):
        retransmits = int(rest[0])
    return IperfInterval(
        start=float(match["start"]),
        end=float(match["end"]),
        bits_per_second=float(match["rate"]) * _BIT_SCALE[match["runit"]],
        retransmits=retransmits,
    )


_LISTEN_RE = re.compile(r"^Server listening on (\d+)")


def parse_listening(line: str) -> int | None:
    """The port of iperf3's "Server listening on 5201" line (its readiness signal)."""
    match = _LISTEN_RE.match(line.strip())
    return int(match.group(1)) if match else None


def parse_error(line: str) -> str | None:
    """The message of an "iperf3: error - ..." line."""
    text = line.strip()
    if text.startswith("iperf3: error - "):
        return text.removeprefix("iperf3: error - ")
    return None


# --- the client's final JSON ----------------------------------------------------------
@dataclass(frozen=True)
class RunFigures:
    """One test's figures from the client JSON, before repeats are combined."""

    protocol: str
    seconds: float
    sent_bytes: int
    sent_bps: float
    received_bytes: int
    received_bps: float
    retransmits: int | None
    mss: int
    lost_pct: float | None
    intervals: tuple[IperfInterval, ...]
    cpu: dict[str, float]


def figures_from_json(text: str | dict[str, Any]) -> RunFigures:
    """The client's JSON (text or parsed) -> RunFigures; an iperf3 error -> WorkbenchError."""
    data = json.loads(text) if isinstance(text, str) else text
    if data.get("error"):
        raise WorkbenchError(f"iperf3: {data['error']}")
    try:
        start, end = data["start"], data["end"]
        protocol = start["test_start"]["protocol"]
        sent = end.get("sum_sent") or end["sum"]
        received = end.get("sum_received") or end["sum"]
    except (KeyError, TypeError) as exc:
        raise WorkbenchError(f"iperf3 result without {exc}: not an iperf3 client report") from None
    cpu = {k: float(v) for k, v in (end.get("cpu_utilization_percent") or {}).items()}
    lost = end.get("sum", received).get("lost_percent") if protocol == "UDP" else None
    return RunFigures(
        protocol=protocol,
        seconds=float(sent.get("seconds", 0.0)),
        sent_bytes=int(sent.get("bytes", 0)),
        sent_bps=float(sent.get("bits_per_second", 0.0)),
        received_bytes=int(received.get("bytes", 0)),
        received_bps=float(received.get("bits_per_second", 0.0)),
        retransmits=sent.get("retransmits") if protocol == "TCP" else None,
        mss=int(start.get("tcp_mss_default") or DEFAULT_MSS),
        lost_pct=float(lost) if lost is not None else None,
        intervals=tuple(_json_interval(i["sum"]) for i in data.get("intervals", []) if "sum" in i),
        cpu=cpu,
    )


def _json_interval(s: dict[str, Any]) -> IperfInterval:
    retr = s.get("retransmits")
    return IperfInterval(
        float(s.get("start", 0.0)),
        float(s.get("end", 0.0)),
        float(s.get("bits_per_second", 0.0)),
        int(retr) if retr is not None else None,
    )


def assess(fig: RunFigures, cpu_busy_pct: float | None = None) -> tuple[str, ...]:
    """Warnings for figures that measure something else than the network path."""
    out: list[str] = []
    if fig.sent_bytes > 0 and fig.received_bytes < RECEIVED_SHARE * fig.sent_bytes:
        out.append(
            f"nothing arrived: {fig.received_bytes} of {fig.sent_bytes} bytes received; "
            "big packets are dropped on the path: the MTU trap? (tunnels need a container MTU "
            "below 1500, e.g. --mtu 1450)"
        )
    if cpu_busy_pct is not None and cpu_busy_pct >= CPU_BUSY_PCT:
        out.append(
            f"CPU-bound: the host CPU was {cpu_busy_pct:.0f}% busy during the run; "
            "the figure measures the CPU, not the network path"
        )
    busiest = max((fig.cpu.get("host_total", 0.0), fig.cpu.get("remote_total", 0.0)), default=0.0)
    if busiest >= PROCESS_CPU_PCT:
        out.append(f"CPU-bound: an iperf3 end used {busiest:.0f}% of a core")
    if fig.retransmits and fig.sent_bytes:
        share = fig.retransmits / max(fig.sent_bytes / max(fig.mss, 1), 1.0)
        if share >= RETRANSMIT_SHARE:
            out.append(
                f"huge retransmits: {fig.retransmits} ({share:.1%} of segments): "
                "the path drops packets, the throughput is unstable"
            )
    if fig.lost_pct is not None and fig.lost_pct >= UDP_LOSS_PCT:
        out.append(f"UDP loss {fig.lost_pct:.1f}%: the offered rate is above what the path carries")
    return tuple(out)


def combine(
    src: str,
    dst: str,
    runs: Sequence[tuple[RunFigures, tuple[str, ...]]],
    protocol: str = "TCP",
    extra_warnings: Sequence[str] = (),
) -> IperfResult:
    """Repeats -> one result: the median run's figures, the median and the spread."""
    bps = [fig.received_bps for fig, _w in runs]
    warnings = list(extra_warnings)
    for k, (_fig, warns) in enumerate(runs, start=1):
        warnings += [f"run {k}: {w}" if len(runs) > 1 else w for w in warns]
    if not runs:
        return IperfResult(src, dst, protocol, 0.0, 0.0, 0.0, None, (), tuple(warnings), (), 0.0, 0.0)
    mid = median(bps)
    chosen = min(runs, key=lambda r: abs(r[0].received_bps - mid))[0]
    return IperfResult(
        src=src,
        dst=dst,
        protocol=chosen.protocol,
        seconds=chosen.seconds,
        sent_bps=chosen.sent_bps,
        received_bps=chosen.received_bps,
        retransmits=chosen.retransmits,
        intervals=chosen.intervals,
        warnings=tuple(warnings),
        runs=tuple(bps),
        median_bps=mid,
        spread_pct=spread_pct(bps),
        sent_bytes=chosen.sent_bytes,
        received_bytes=chosen.received_bytes,
        lost_pct=chosen.lost_pct,
        cpu=dict(chosen.cpu),
    )


def format_interval(iv: IperfInterval) -> str:
    retr = f"  retr {iv.retransmits}" if iv.retransmits is not None else ""
    return f"  {iv.start:6.2f}-{iv.end:<6.2f} s  {human_bps(iv.bits_per_second):>14}{retr}"


def format_result(res: IperfResult) -> str:
    lines = [
        f"{res.src} -> {res.dst} ({res.protocol}, {res.seconds:.1f} s)",
        f"  sent      {human_bps(res.sent_bps)}",
        f"  received  {human_bps(res.received_bps)}",
    ]
    if res.retransmits is not None:
        lines.append(f"  retransmits {res.retransmits}")
    if res.lost_pct is not None:
        lines.append(f"  datagram loss {res.lost_pct:.2f}%")
    if len(res.runs) > 1:
        each = ", ".join(human_bps(b) for b in res.runs)
        lines.append(
            f"  {len(res.runs)} runs: median {human_bps(res.median_bps)}, spread {res.spread_pct:.1f}%"
        )
        lines.append(f"  runs: {each}")
    lines += [f"  warning: {w}" for w in res.warnings]
    return "\n".join(lines)
