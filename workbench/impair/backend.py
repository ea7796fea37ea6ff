"""Which backend impairs links here: tc netem where the kernel has it, else substitutes.

Detected, not assumed: a netem qdisc is added on `lo` of a scratch namespace
(marked, removed at once). The answer is kept in the run directory (a tmpfs: it
lasts until the machine reboots). CONTAINET_NETEM=netem|substitute overrides it
(to try the substitutes on a kernel that has netem).
"""

from __future__ import annotations

import os
from typing import Any

from pyroute2 import IPRoute

from ..marks import NS_PREFIX
from .procs import DIR

NETEM = "netem"
SUBSTITUTE = "substitute"
CACHE = DIR / "backend"


def describe(backend: str) -> str:
    if backend == NETEM:
        return "tc netem (the kernel has sch_netem)"
    return (
        "substitutes (this kernel has no tc netem): loss by an iptables statistic rule, rate by "
        "tc tbf, delay/jitter/duplicate/reorder by containet's delay line (a userspace relay)"
    )


def _try_netem(ipr: IPRoute) -> bool:
    idx = ipr.link_lookup(ifname="lo")[0]
    ipr.link("set", index=idx, state="up")
    try:
        ipr.tc("add", "netem", idx, 0x10000, delay=1000)
    except Exception:  # noqa: BLE001 - "Specified qdisc kind is unknown" and the like
        return False
    ipr.tc("del", index=idx, handle=0x10000, parent=0xFFFFFFFF)
    return True


def detect() -> str:
    forced = os.environ.get("CONTAINET_NETEM", "").strip()
    if forced in (NETEM, SUBSTITUTE):
        return forced
    try:
        cached = CACHE.read_text().strip()
    except OSError:
        cached = ""
    if cached in (NETEM, SUBSTITUTE):
        return cached
    from .. import lab

    name = f"{NS_PREFIX}netemprobe"
    place = lab.create_ns(name)
    try:
        found = NETEM if place.netlink(_try_netem) else SUBSTITUTE
    finally:
        lab.delete_ns(name)
    DIR.mkdir(parents=True, exist_ok=True)
    CACHE.write_text(found + "\n")
    return found


def netem_kwargs(
    delay: float, jitter: float, loss: float, duplicate: float, reorder: float
) -> dict[str, Any]:
    """pyroute2's netem options (delay and jitter in microseconds)."""
    kw: dict[str, Any] = {"delay": int(delay * 1000), "jitter": int(jitter * 1000)}
    if loss:
        kw["loss"] = loss
    if duplicate:
        kw["duplicate"] = duplicate
    if reorder:
        kw["prob_reorder"] = reorder
    return kw
