"""Pingall: every container to every other, both hosts, concurrently, against what
the active scenario says should happen.

All the probes of a round are in flight together: every source's socket is opened in
its namespace, then one event loop (`ping.ping_sources`) sends an echo request from
each source to each other container and collects the replies as they come. So N
containers cost about one timeout per round in the worst case (and a few RTTs when
everyone answers), not N * (N - 1) pings in a row. No thread per source and no
thread hop per probe: on a small machine the per-probe Python cost, not the network,
is what a concurrent pingall pays. Beyond `WORKER_SOURCES` sources, they are shared
out among at most `workers` loops, a thread each.

The RTTs are measured while the other probes are in flight: fine for a reachability
matrix; use `ping` for a latency figure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import BadInput
from ..host import Place
from .ping import PingOptions, PingReply, PingResult, Source, Target, make_result, ping_sources

Pair = tuple[str, str]
OnResult = Callable[[str, str, PingResult], None]
#: a pingall event loop takes at least this many sources (threads only pay beyond that)
WORKER_SOURCES = 32


@dataclass(frozen=True)
class Member:
    """A container as pingall sees it."""

    name: str
    ip: str
    place: Place
    vlan: int | None = None


@dataclass(frozen=True)
class PingallResult:
    names: tuple[str, ...]
    cells: dict[Pair, PingResult]
    expected: dict[Pair, bool]  # True = should reach; pairs without an expectation are absent
    scenario: str | None

    def passed(self, src: str, dst: str) -> bool:
        """Reachability as expected; without an expectation, reachable passes. Unmeasured fails."""
        cell = self.cells.get((src, dst))
        if cell is None:
            return False
        want = self.expected.get((src, dst), True)
        return cell.reachable == want

    @property
    def pairs(self) -> list[Pair]:
        return [(s, d) for s in self.names for d in self.names if s != d]

    @property
    def all_passed(self) -> bool:
        return all(self.passed(s, d) for s, d in self.pairs)

    def to_dict(self) -> dict[str, Any]:
        cells = []
        for s, d in self.pairs:
            cell = self.cells.get((s, d))
            cells.append(
                {
                    "src": s,
                    "dst": d,
                    "expected": self.expected.get((s, d)),
                    "passed": self.passed(s, d),
                    "result": cell.to_dict() if cell else None,
                }
            )
        return {
            "scenario": self.scenario,
            "names": list(self.names),
            "all_passed": self.all_passed,
            "cells": cells,
        }


def expectations(expect: Mapping[str, Any], members: Sequence[Member]) -> dict[Pair, bool]:
    """A scenario's `Plan.expect` -> should src reach dst, for every ordered pair.

    {"all_talk": True}: everyone reaches everyone; {"same_vlan_only": True}: only
    containers with the same VLAN tag. An expectation we do not know says nothing."""
    out: dict[Pair, bool] = {}
    for a in members:
        for b in members:
            if a.name == b.name:
                continue
            if expect.get("same_vlan_only"):
                out[(a.name, b.name)] = a.vlan == b.vlan
            elif expect.get("all_talk"):
                out[(a.name, b.name)] = True
    return out


def share_out(sources: Sequence[Source], workers: int) -> list[list[Source]]:
    """The sources dealt out to event loops: one loop per `WORKER_SOURCES` sources, at most
    `workers` loops, always at least one."""
    loops = max(1, min(workers, len(sources) // WORKER_SOURCES))
    return [list(sources[k::loops]) for k in range(loops)]


def run_pingall(
    members: Sequence[Member],
    *,
    expected: dict[Pair, bool],
    scenario: str | None,
    opts: PingOptions,
    workers: int = 8,
    on_result: OnResult | None = None,
    cancel: threading.Event | None = None,
) -> PingallResult:
    """Ping every ordered pair; a cell arrives (on_result) as soon as its probes are done.

    `workers` bounds the threads: the sources are shared out among at most that many
    event loops (at least `WORKER_SOURCES` each: one loop for a lab of up to 63 containers)."""
    if not 1 <= workers <= 64:
        raise BadInput(f"bad workers {workers}: use 1 to 64")
    if len(members) < 2:
        raise BadInput("pingall needs at least two running containers: apply a scenario first")
    opts.check()
    cancel = cancel or threading.Event()
    sources = [
        Source(m.name, m.place, tuple(Target(o.name, o.ip) for o in members if o.name != m.name))
        for m in members
    ]
    cells: dict[Pair, PingResult] = {}
    lock = threading.Lock()
    seen: dict[tuple[str, Target], list[PingReply]] = {}

    def on_probe(source: Source, target: Target, reply: PingReply) -> None:
        got = seen.setdefault((source.name, target), [])
        got.append(reply)
        if len(got) == opts.count and on_result is not None:
            on_result(source.name, target.name, make_result(source.name, target, got, ()))

    def one_loop(share: list[Source]) -> None:
        results = ping_sources(share, opts, on_probe=on_probe, cancel=cancel)
        with lock:  # the full results carry the errors; partial ones a cancelled run's probes
            for (src, target), result in results.items():
                if result.sent:
                    cells[(src, target.name)] = result

    shares = share_out(sources, workers)
    if len(shares) == 1:
        one_loop(shares[0])
    else:
        with ThreadPoolExecutor(max_workers=len(shares), thread_name_prefix="pingall") as pool:
            for future in [pool.submit(one_loop, share) for share in shares]:
                future.result()
    names = tuple(m.name for m in members)
    return PingallResult(names, dict(cells), expected, scenario)


def format_cell(result: PingallResult, src: str, dst: str) -> str:
    if src == dst:
        return "-"
    cell = result.cells.get((src, dst))
    if cell is None:
        return "?"
    if not cell.reachable:
        text = "lost"
    elif cell.loss_pct:
        text = f"{cell.avg_ms:.2f}ms {cell.loss_pct:.0f}%"
    else:
        text = f"{cell.avg_ms:.2f}ms"
    return f"{text} {'ok' if result.passed(src, dst) else 'FAIL'}"


def format_matrix(result: PingallResult) -> str:
    """The matrix as text: rows are sources, columns destinations; each cell the average
    RTT or "lost", and "ok"/"FAIL" against the scenario's expectation."""
    names = list(result.names)
    rows = [["from \\ to", *names]]
    rows += [[s, *(format_cell(result, s, d) for d in names)] for s in names]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    failed = [f"{s}->{d}" for s, d in result.pairs if not result.passed(s, d)]
    reach = sum(1 for c in result.cells.values() if c.reachable)
    head = f"pingall ({result.scenario or 'no scenario'}): {len(result.pairs)} pairs, {reach} reachable, "
    head += "all as expected" if not failed else f"{len(failed)} not as expected: {', '.join(failed)}"
    return "\n".join([head, *lines])
