"""Pure statistics for measurements: no I/O, so they are unit-tested without root.

The formulas follow the standard tools, so our numbers can be compared with theirs:
`mdev` is iputils ping's (the root of mean-of-squares minus square-of-mean, not the
sample standard deviation), throughput units are iperf3's (bits in powers of 1000).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ..errors import BadInput


def rtt_summary(rtts: Sequence[float]) -> tuple[float | None, float | None, float | None, float | None]:
    """(min, avg, max, mdev) in ms of the replies received; all None without a reply."""
    if not rtts:
        return None, None, None, None
    n = len(rtts)
    avg = sum(rtts) / n
    mean_sq = sum(r * r for r in rtts) / n
    mdev = math.sqrt(max(mean_sq - avg * avg, 0.0))
    return min(rtts), avg, max(rtts), mdev


def loss_pct(sent: int, received: int) -> float:
    """Packet loss in percent (0 when nothing was sent, like an empty run has no loss)."""
    if sent <= 0:
        return 0.0
    return 100.0 * (sent - received) / sent


def median(values: Sequence[float]) -> float:
    """The median (mean of the middle two for an even count); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[mid])
    return (ordered[mid - 1] + ordered[mid]) / 2.0


def spread_pct(values: Sequence[float]) -> float:
    """(max - min) / median in percent: how far repeated runs disagree."""
    if len(values) < 2:
        return 0.0
    mid = median(values)
    if mid == 0:
        return 0.0
    return 100.0 * (max(values) - min(values)) / mid


_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:bit|bps|b)?(?:/s)?\s*$")
_RATE_MULT = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_rate(text: str) -> int:
    """An iperf3 style bitrate ("100M", "1.5G", "800k", "2000") in bits per second."""
    match = _RATE_RE.match(text)
    if not match:
        raise BadInput(f"bad bitrate {text!r}: use a number with an optional K, M or G suffix (e.g. 100M)")
    value = float(match.group(1)) * _RATE_MULT[match.group(2).lower()]
    if value <= 0:
        raise BadInput(f"bad bitrate {text!r}: must be more than 0")
    return int(value)


def human_bps(bps: float) -> str:
    """1.27e9 -> '1.27 Gbit/s' (powers of 1000, as iperf3 prints bits)."""
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("Kbit/s", 1e3)):
        if abs(bps) >= scale:
            return f"{bps / scale:.2f} {unit}"
    return f"{bps:.0f} bit/s"
