"""Path MTU: don't-fragment pings of growing size, then a binary search, against
the interface MTUs along the path and what the tunnel carries; `fix` fits the
containers and their host sides to the tunnel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..errors import NotReady
from ..host import Host
from ..intents import Intent, SetMtu
from ..topology.model import Topology
from .collect import Progress, collect, container_place, ping_probe, quiet, renderer
from .facts import Expected
from .fix import FixHooks, apply_fix
from .model import FixAction, MtuHop, MtuReport
from .path import path_mtu_limit

MAX_PROBES = 14


def next_probe(lo: int, hi: int) -> int | None:
    """Binary search step between a size that passed (lo) and one that failed (hi)."""
    if hi - lo <= 1:
        return None
    return (lo + hi) // 2


def growing_sizes(top: int) -> list[int]:
    """Packet sizes (IP bytes) to try first, smallest first, up to the local MTU."""
    sizes = [s for s in (576, 1280, 1400, 1450) if s < top]
    return [*sizes, top]


def mtu_verdict(
    interfaces: tuple[MtuHop, ...], fits: int | None, path_mtu: int | None, local: int, tunnel: str | None
) -> tuple[bool, str]:
    if path_mtu is None:
        return (
            False,
            "no don't-fragment ping got through at any size: the pair does not talk (run the doctor)",
        )
    too_big = [h for h in interfaces if fits is not None and h.mtu > fits and "tunnel" not in h.where]
    if fits is not None and local > fits:
        return False, (
            f"interfaces allow {local} B but the {tunnel} carries only {fits}: "
            f"packets above {path_mtu} B are lost (ping works, TCP stalls); "
            f"`containet mtu ... --fix` sets {fits} on "
            f"{', '.join(h.where for h in too_big) or 'the containers'}"
        )
    if path_mtu < local:
        return False, f"path MTU {path_mtu} B is below the interface MTU {local}: a hop drops bigger packets"
    return True, f"path MTU {path_mtu} B = interface MTU {local}" + (f", fits the {tunnel}" if tunnel else "")


def measure_mtu(
    hosts: Sequence[Host],
    topology: Topology,
    expected: Expected,
    src: str,
    dst: str,
    *,
    fix: bool = False,
    hooks: FixHooks | None = None,
    progress: Progress = quiet,
) -> MtuReport:
    """The path MTU from `src` to `dst`; with fix=True (needs `hooks`) set both containers
    and their host sides to what the tunnel carries, and measure again."""
    if fix and hooks is None:
        raise ValueError("measure_mtu(fix=True) needs the hooks that apply the fix")
    facts = collect(hosts, topology, expected, src, dst, probe=False, trace=False)
    s, d = facts.src, facts.dst
    if s.eth0 is None or d.eth0 is None or not facts.dst_ip:
        raise NotReady(f"{s.name} and {d.name} need eth0 with an address: run `containet doctor {src} {dst}`")
    fits, why = path_mtu_limit(facts)
    tunnel = why if facts.cross_host else None
    hops: list[MtuHop] = [MtuHop(f"{s.name} eth0", s.eth0.mtu)]
    for end in (s, d):
        row = facts.hosts[end.host].link(end.host_veth)
        if row is not None:
            hops.append(MtuHop(f"{end.host} {end.host_veth}", row.mtu))
        lb = row.master if row is not None else None
        lrow = facts.hosts[end.host].link(lb)
        if lrow is not None and lrow.kind == "bridge":
            hops.append(MtuHop(f"{end.host} {lb}", lrow.mtu))
        if end is s and fits is not None:
            hops.append(MtuHop(f"tunnel ({why})", fits))
    hops.append(MtuHop(f"{d.name} eth0", d.eth0.mtu))
    interfaces = tuple(dict.fromkeys(hops))
    local = s.eth0.mtu
    place = container_place(topology, s.docker or s.name)
    probes: list[tuple[int, bool]] = []

    def probe(packet: int) -> bool:
        progress(f"DF ping {packet} B")
        ok = ping_probe(place, s.name, facts.dst_ip or "", packet - 28, True).ok
        probes.append((packet, ok))
        return ok

    lo: int | None = None
    hi: int | None = None
    for size in growing_sizes(local):
        if probe(size):
            lo = size
        else:
            hi = size
            break
    if lo is not None and hi is not None:
        while len(probes) < MAX_PROBES:
            mid = next_probe(lo, hi)
            if mid is None:
                break
            if probe(mid):
                lo = mid
            else:
                hi = mid
    ok, verdict = mtu_verdict(interfaces, fits, lo, local, tunnel)
    report = MtuReport(s.name, d.name, interfaces, tunnel, fits, lo, tuple(probes), verdict, ok)
    if not fix or fits is None:
        return report
    intents: list[Intent] = []
    for end in (s, d):
        if end.eth0 is not None and end.eth0.mtu != fits:
            intents.append(SetMtu(end.host, "eth0", fits, end.ref))
        row = facts.hosts[end.host].link(end.host_veth)
        if row is not None and row.mtu != fits:
            intents.append(SetMtu(end.host, end.host_veth, fits))
    if not intents:
        return report
    assert hooks is not None
    rend = renderer(hosts)
    apply_fix(hosts, FixAction(f"MTU {fits} along the path", tuple(intents)), hooks)
    after = measure_mtu(hosts, hooks.topology(), expected, src, dst, progress=progress)
    return replace(after, fixed=tuple(rend(i.host, c) for i in intents for c in i.commands()))
