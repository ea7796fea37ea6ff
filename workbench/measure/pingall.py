"""Pingall: every container to every other, against what the active scenario says
should happen -- a true matrix: a pair is called unreachable only when it answered
none of its probes, retried.

Every source's socket is opened in its namespace, then one event loop
(`ping.ping_sources`) sends an echo request from each source to each other container
and collects the replies as they come: N containers cost a few timeouts at worst, not
N * (N - 1) pings in a row. What keeps that honest at scale (measured on 2 hosts, exp2
plus `container add`, 40 containers: 741 to 1044 of 1560 pairs reported failing before):

- the probes are paced (`ping.Pacing`): a window of probes in flight that follows the
  replies, so a busy userspace datapath is not flooded with probes and ARP broadcasts;
- the kernel's neighbour table, shared by every namespace of the machine, holds 1024
  entries: a pair needs one at each end, 40 containers need 1560. `PairGate` lets a
  pair's probes go only while there is room, deleting entries of pairs that are done
  (`neigh`); the order (`schedule`, `in_order`) probes each pair one way, then back;
- a pair that answered none of its probes is probed again, later, slower and with more
  patience (`Pacing.retries` rounds), and the lost probes are counted.

Beyond `WORKER_SOURCES` sources, they are shared out among at most `workers` loops, a
thread each. The RTTs are measured while other probes are in flight: fine for a
reachability matrix; use `ping` for a latency figure.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from ..errors import BadInput
from ..host import Place
from .neigh import NeighbourCache, table_use
from .ping import Pacing, PingOptions, PingReply, PingResult, Source, Target, make_result, ping_sources

Pair = tuple[str, str]
IndexPair = tuple[int, int]  # members by their index
OnResult = Callable[[str, str, PingResult], None]
#: a pingall event loop takes at least this many sources (threads only pay beyond that)
WORKER_SOURCES = 32
#: seconds before the k-th retry round (times k): let whatever lost the probes pass
RETRY_PAUSE = 0.2
#: unordered pairs probed one way, then the other way (see in_order)
CHUNK = 64
#: pairs whose neighbour entries are deleted together when the table needs room
RELEASE_EVERY = 32


@dataclass(frozen=True)
class Member:
    """A container as pingall sees it."""

    name: str
    ip: str
    place: Place
    vlan: int | None = None


class Verdict(enum.StrEnum):
    """A cell of the matrix against what the scenario expects (no expectation: reach)."""

    REACH = "reach"  # answers, as expected
    ISOLATED = "isolated"  # no answer, as expected (exp3: another VLAN)
    UNEXPECTED_REACH = "unexpected-reach"  # answers, but should not
    UNEXPECTED_FAILURE = "unexpected-failure"  # no answer (after a retry), but should
    UNMEASURED = "unmeasured"  # no probe went (cancelled, or a source gone)


@dataclass(frozen=True)
class PingallResult:
    names: tuple[str, ...]
    cells: dict[Pair, PingResult]
    expected: dict[Pair, bool]  # True = should reach; pairs without an expectation are absent
    scenario: str | None
    count: int = 1  # probes per pair before any retry
    in_play: int = 0  # the most pairs whose neighbour entries were held at once (see neigh)
    #: times the machine's neighbour table was full while pingall ran (anyone's entries)
    overflows: int = 0
    #: when a pair failed and a bridge's spanning tree had not converged: how far it was
    converging: str | None = None

    def verdict(self, src: str, dst: str) -> Verdict:
        cell = self.cells.get((src, dst))
        if cell is None:
            return Verdict.UNMEASURED
        want = self.expected.get((src, dst), True)
        if cell.reachable:
            return Verdict.REACH if want else Verdict.UNEXPECTED_REACH
        return Verdict.UNEXPECTED_FAILURE if want else Verdict.ISOLATED

    def passed(self, src: str, dst: str) -> bool:
        """Reachability as expected; without an expectation, reachable passes. Unmeasured fails."""
        return self.verdict(src, dst) in (Verdict.REACH, Verdict.ISOLATED)

    @property
    def pairs(self) -> list[Pair]:
        return [(s, d) for s in self.names for d in self.names if s != d]

    @property
    def all_passed(self) -> bool:
        return all(self.passed(s, d) for s, d in self.pairs)

    @property
    def lost(self) -> int:
        """Probes that got no reply from a pair that should answer, retries included."""
        return sum(c.sent - c.received for k, c in self.cells.items() if self.expected.get(k, True))

    @property
    def silent(self) -> int:
        """Probes that got no reply from a pair expected to be isolated (as it should)."""
        return sum(c.sent - c.received for k, c in self.cells.items() if not self.expected.get(k, True))

    @property
    def retried(self) -> list[Pair]:
        """Pairs that should answer, answered none of their first `count` probes and were
        probed again."""
        return [k for k, c in self.cells.items() if c.sent > self.count and self.expected.get(k, True)]

    @property
    def recovered(self) -> list[Pair]:
        """Retried pairs that answered a retry: a lost probe, not an unreachable pair."""
        return [k for k in self.retried if self.cells[k].reachable]

    def counts(self) -> dict[str, int]:
        out = {v.value: 0 for v in Verdict}
        for s, d in self.pairs:
            out[self.verdict(s, d)] += 1
        return out

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
                    "verdict": self.verdict(s, d).value,
                    "result": cell.to_dict() if cell else None,
                }
            )
        return {
            "scenario": self.scenario,
            "names": list(self.names),
            "all_passed": self.all_passed,
            "counts": self.counts(),
            "probes_per_pair": self.count,
            "lost_probes": self.lost,
            "silent_probes_isolated": self.silent,
            "retried_pairs": len(self.retried),
            "recovered_pairs": len(self.recovered),
            "spanning_tree_converging": self.converging,
            "most_pairs_in_play": self.in_play,
            "neighbour_table_overflows": self.overflows,
            "cells": cells,
        }


def expectations(expect: Mapping[str, Any], members: Sequence[Member]) -> dict[Pair, bool]:
    """A scenario's `Plan.expect` -> should src reach dst, for every ordered pair.

    {"all_talk": True}: everyone reaches everyone; {"same_vlan_only": True}: only
    containers with the same VLAN tag; {"same_group_only": {name: group}}: only
    containers of the same group (ovn-vlan: the same logical switch; a container the
    map does not name says nothing). An expectation we do not know says nothing."""
    out: dict[Pair, bool] = {}
    groups = expect.get("same_group_only")
    for a in members:
        for b in members:
            if a.name == b.name:
                continue
            if isinstance(groups, Mapping):
                if a.name in groups and b.name in groups:
                    out[(a.name, b.name)] = groups[a.name] == groups[b.name]
            elif expect.get("same_vlan_only"):
                out[(a.name, b.name)] = a.vlan == b.vlan
            elif expect.get("all_talk"):
                out[(a.name, b.name)] = True
    return out


def share_out(sources: Sequence[Source], workers: int) -> list[list[Source]]:
    """The sources dealt out to event loops: one loop per `WORKER_SOURCES` sources, at most
    `workers` loops, always at least one."""
    loops = max(1, min(workers, len(sources) // WORKER_SOURCES))
    return [list(sources[k::loops]) for k in range(loops)]


def schedule(n: int) -> list[IndexPair]:
    """Every unordered pair {i, j} of n members once, in the rounds of a tournament:
    offset k = 1, 2, ... n // 2, each round pairing every i with i + k (mod n), so that
    probes in flight together go to different destinations."""
    out = []
    for k in range(1, n // 2 + 1):
        for i in range(n):
            j = (i + k) % n
            if 2 * k == n and i > j:
                continue  # the middle offset meets each pair twice
            out.append((i, j))
    return out


def cell_done(got: Sequence[PingReply], count: int, retries: int) -> bool:
    """Are a pair's probes over? Its `count` probes, and when none of them was answered,
    the retries until one is (or none is left)."""
    answered = any(r.rtt_ms is not None for r in got)
    if len(got) < count:
        return False
    return answered or len(got) >= count + retries


class PairGate:
    """Room in the machine's neighbour table for pingall's pairs (a ping.Gate).

    A pair's first probe (either way) makes up to two entries, one at each end. A new
    pair goes only while the table has room for them (see neigh.TableUse.room); when it
    has none, entries of pairs whose probes are over are deleted first. The probes of
    a pair already in play always go."""

    def __init__(self, cache: NeighbourCache, order: Sequence[Pair]) -> None:
        self.cache = cache
        self.left: dict[Pair, int] = {}  # probes of the round still to end, per pair
        for a, b in order:
            key = _key(a, b)
            self.left[key] = self.left.get(key, 0) + 1
        self.live: set[Pair] = set()
        self.most = 0  # the most pairs in play at once
        self.room = self._room()
        self._lock = threading.Lock()

    @staticmethod
    def _room() -> int:
        use = table_use()
        return use.room() if use else 1 << 30

    def admit(self, source: str, target: str, force: bool) -> bool:
        key = _key(source, target)
        with self._lock:
            if key in self.live:
                return True
            if self.room < 2 and self.cache.pooled:
                self.cache.release(2 * RELEASE_EVERY)
                self.room = self._room()
            if self.room < 2 and not force:
                return False
            self.live.add(key)
            self.room -= 2
            self.most = max(self.most, len(self.live))
            return True

    def finished(self, source: str, target: str) -> None:
        key = _key(source, target)
        with self._lock:
            self.left[key] = self.left.get(key, 1) - 1
            if self.left[key] <= 0 and key in self.live:
                self.live.discard(key)
                self.cache.ended(*key)

    def close(self) -> None:
        """Pairs still in play (a cancelled run): their entries may go too."""
        with self._lock:
            for key in self.live:
                self.cache.ended(*key)
            self.live.clear()


def _key(a: str, b: str) -> Pair:
    return (a, b) if a <= b else (b, a)


class _Run:
    """One pingall: its rounds of probes, what came back, the gate of each round."""

    def __init__(self, members: Sequence[Member], opts: PingOptions, pacing: Pacing, workers: int) -> None:
        self.members, self.opts, self.pacing, self.workers = list(members), opts, pacing, workers
        self.targets = [Target(m.name, m.ip) for m in members]
        self.seen: dict[tuple[str, Target], list[PingReply]] = {}
        self.errors: dict[tuple[str, Target], list[str]] = {}
        self.on_result: OnResult | None = None
        self.cancel = threading.Event()
        self.most = 0  # the most pairs in play at once (see PairGate)
        self.quiet: frozenset[Pair] = frozenset()  # pairs expected not to answer

    def on_probe(self, source: Source, target: Target, reply: PingReply) -> None:
        got = self.seen.setdefault((source.name, target), [])
        got.append(reply)
        if self.on_result is not None and cell_done(got, self.opts.count, self.pacing.retries):
            self.on_result(source.name, target.name, make_result(source.name, target, got, ()))

    def lost(self, pairs: Sequence[IndexPair]) -> list[IndexPair]:
        """The ordered pairs none of whose probes was answered."""
        m, t = self.members, self.targets
        return [
            (i, j) for i, j in pairs if all(r.rtt_ms is None for r in self.seen.get((m[i].name, t[j]), []))
        ]

    def probe(
        self, batch: Sequence[IndexPair], opts: PingOptions, first_seq: int, cache: NeighbourCache | None
    ) -> None:
        """One probe (per round) for each ordered pair of `batch`, in its order, paced; the
        sources shared out among event loops that share the window (and the gate: the
        table's room, when `cache` is given and there is one probe per pair)."""
        names = [m.name for m in self.members]
        targets: dict[int, list[Target]] = {}
        for i, j in batch:
            targets.setdefault(i, []).append(self.targets[j])
        sources = {i: Source(names[i], self.members[i].place, tuple(ts)) for i, ts in targets.items()}
        shares = share_out(list(sources.values()), self.workers)
        loops = len(shares)
        pacing = replace(
            self.pacing,
            window=max(1, self.pacing.window // loops),
            in_flight=max(1, self.pacing.in_flight // loops),
        )
        gate = None
        if cache is not None and opts.count == 1:
            gate = PairGate(cache, [(names[i], names[j]) for i, j in batch])

        def one_loop(share: list[Source]) -> None:
            mine = {s.name for s in share}
            order = [(sources[i], self.targets[j]) for i, j in batch if names[i] in mine]
            results = ping_sources(
                share,
                opts,
                on_probe=self.on_probe,
                cancel=self.cancel,
                pacing=pacing,
                order=order,
                first_seq=first_seq,
                gate=gate,
                quiet=self.quiet,
            )
            for key, result in results.items():
                self.errors.setdefault(key, []).extend(result.errors)

        try:
            if len(shares) == 1:
                one_loop(shares[0])
            else:
                with ThreadPoolExecutor(max_workers=len(shares), thread_name_prefix="pingall") as pool:
                    for future in [pool.submit(one_loop, share) for share in shares]:
                        future.result()
        finally:
            if gate is not None:
                gate.close()
                self.most = max(self.most, gate.most)
            elif cache is not None:  # more than one probe per pair: no gate, all at the end
                for i, j in batch:
                    cache.ended(names[i], names[j])

    def cells(self) -> dict[Pair, PingResult]:
        return {
            (src, target.name): make_result(src, target, got, self.errors.get((src, target), ()))
            for (src, target), got in self.seen.items()
            if got
        }


def in_order(pairs: Sequence[IndexPair], chunk: int) -> list[IndexPair]:
    """Both directions of each unordered pair, chunk by chunk: a chunk's pairs one way,
    then the other (the way back finds the ARP entries the way there made: the receiver
    of an ARP request learns the sender)."""
    out: list[IndexPair] = []
    for at in range(0, len(pairs), chunk):
        part = pairs[at : at + chunk]
        out += list(part) + [(j, i) for i, j in part]
    return out


def run_pingall(
    members: Sequence[Member],
    *,
    expected: dict[Pair, bool],
    scenario: str | None,
    opts: PingOptions,
    workers: int = 8,
    on_result: OnResult | None = None,
    cancel: threading.Event | None = None,
    pacing: Pacing | None = None,
) -> PingallResult:
    """Ping every ordered pair; a cell arrives (on_result) as soon as its probes are over.

    Paced (see ping.Pacing); a pair's probes go only while the machine's neighbour table
    has room for its entries, deleted once its probes are over (see neigh and PairGate;
    with more than one probe per pair, the entries are deleted at the end); then
    `pacing.retries` more probes, later and with more patience, to each pair that
    answered none of its own. `workers` bounds the threads: the sources are shared out
    among at most that many event loops (at least `WORKER_SOURCES` each: one loop for
    up to 63 containers), which share the window."""
    if not 1 <= workers <= 64:
        raise BadInput(f"bad workers {workers}: use 1 to 64")
    if len(members) < 2:
        raise BadInput("pingall needs at least two running containers: apply a scenario first")
    opts.check()
    run = _Run(members, opts, (pacing or Pacing()).check(), workers)
    run.on_result, run.cancel = on_result, cancel or threading.Event()
    run.quiet = frozenset(pair for pair, reach in expected.items() if not reach)
    pairs = schedule(len(members))
    before = table_use()
    chunk = max(8, min(CHUNK, (before.room() if before else 4 * CHUNK) // 4))
    with NeighbourCache({m.name: m.place for m in members}, {m.name: m.ip for m in members}) as cache:
        everyone = in_order(pairs, chunk)
        run.probe(everyone, opts, 1, cache)
        window = run.pacing.window
        for extra in range(1, run.pacing.retries + 1):
            lost = run.lost(everyone)
            if not lost or run.cancel.wait(RETRY_PAUSE * extra):
                break
            # later, slower and with more patience: a lost ARP request is sent again by the
            # kernel only after a second
            window = max(1, window // 2)
            run.pacing = replace(run.pacing, window=window, in_flight=max(window, run.pacing.in_flight // 2))
            slower = replace(opts, count=1, timeout=min(30.0, max(opts.timeout, 1.0) * (extra + 1)))
            run.probe(lost, slower, opts.count + extra, cache)
        cache.settle()
    after = table_use()
    overflows = after.fulls - before.fulls if before and after else 0
    names = tuple(m.name for m in members)
    return PingallResult(names, run.cells(), expected, scenario, opts.count, run.most, overflows)
