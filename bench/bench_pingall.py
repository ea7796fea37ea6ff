"""Benchmark: "applied" means ready, and a true pingall at scale (issue 13).

    python bench/bench_pingall.py [--quick]

1. Apply -> pingall clean, 3 hosts, mesh (RSTP), exp1: the time from `apply` returning
   to the start of the first pingall that has every cell as expected (pingall again
   and again until one is, 20 s at most; 0 when the first one is). The pingall here
   is strict -- one probe per pair, 0.5 s, no retry -- so that it sees the network at
   that moment (the product's pingall retries a lost probe for up to a few seconds,
   which would hide a tree still converging). With readiness (the plan's last step
   waits for spanning tree to converge) against without it (that step taken as done
   at once: the plan as before issue 13), interleaved, in the same run. Target: 0 s
   with readiness. Also printed: how long apply itself takes, both ways.
2. Pingall at 40 and 80 containers (2 hosts, exp2 + `container add`, every pair
   should answer): `Engine.pingall` (paced, fitted to the kernel's neighbour table,
   lost probes retried) against one pair at a time (`ping_from` per pair, count 1,
   timeout 1 s: a loop of `containet ping -c 1`), interleaved, in the same run. Each
   pingall must have every pair as expected, else the figure is flagged. Target:
   >= 5x faster than one pair at a time.

Runs in its own instance (CONTAINET_INSTANCE=bp unless set) and removes everything it
made, also when interrupted (Ctrl-C, SIGTERM, SIGHUP, or its output closing).
Traffic goes only to addresses inside namespaces this script created. The machine's
load average is printed at the start and the end: on a shared machine, read the
figures with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

os.environ.setdefault("CONTAINET_INSTANCE", "bp")

from workbench import cleanup  # noqa: E402
from workbench.engine import Engine  # noqa: E402
from workbench.exits import run_main, shielded  # noqa: E402
from workbench.host import Place  # noqa: E402
from workbench.intents import RstpConverged  # noqa: E402
from workbench.measure.ping import Pacing, PingOptions, Target, ping_from  # noqa: E402
from workbench.measure.pingall import Member, expectations, run_pingall  # noqa: E402

CLEAN_WITHIN = 20.0  # seconds: apply -> pingall clean, at most
INDENT = " " * 16
T = TypeVar("T")


def quiet(_msg: str) -> None:
    pass


def load() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


@contextmanager
def without_readiness() -> Iterator[None]:
    """The plan as before issue 13: its spanning-tree step holds at once."""
    verify = RstpConverged.verify
    RstpConverged.verify = lambda self, ctx: True  # type: ignore[method-assign]
    try:
        yield
    finally:
        RstpConverged.verify = verify  # type: ignore[method-assign]


# --- 1. apply -> pingall clean ---------------------------------------------------------------
@dataclass
class Ready:
    apply: list[float] = field(default_factory=list)
    to_clean: list[float] = field(default_factory=list)
    first_bad: list[int] = field(default_factory=list)  # pairs not as expected, first pingall
    failed: int = 0  # runs with no clean pingall within CLEAN_WITHIN


def strict_pingall(engine: Engine) -> int:
    """How many pairs did not answer their one probe (0.5 s, no retry): 0 is clean."""
    snap = engine.snapshot().containers
    members = [Member(c.name, c.ip, Place.of_pid(c.pid, c.name)) for c in snap if c.pid and c.ip]
    expected = expectations({"all_talk": True}, members)
    opts = PingOptions(count=1, timeout=0.5)
    res = run_pingall(members, expected=expected, scenario="exp1", opts=opts, pacing=Pacing(retries=0))
    assert len(members) == 6, [m.name for m in members]
    return sum(1 for s, d in res.pairs if not res.passed(s, d))


def apply_then_pingall(engine: Engine, into: Ready) -> None:
    t0 = time.monotonic()
    engine.apply("exp1")
    returned = time.monotonic()
    into.apply.append(returned - t0)
    first = True
    while True:
        started = time.monotonic()
        bad = strict_pingall(engine)
        if first:
            into.first_bad.append(bad)
        if not bad:
            into.to_clean.append(0.0 if first else started - returned)
            break
        first = False
        if started - returned > CLEAN_WITHIN:
            into.failed += 1
            break
    engine.undo("exp1")


def bench_ready(rounds: int) -> tuple[Ready, Ready]:
    engine = Engine(hosts=3)
    engine.lab_up(progress=quiet, topology="mesh")
    ready, before = Ready(), Ready()
    for k in range(rounds):
        for variant in (ready, before) if k % 2 == 0 else (before, ready):
            if variant is before:
                with without_readiness():
                    apply_then_pingall(engine, before)
            else:
                apply_then_pingall(engine, ready)
    engine.lab_down(progress=quiet)
    return ready, before


# --- 2. pingall at scale ----------------------------------------------------------------------
def grow(engine: Engine, total: int) -> None:
    """Containers w1, w2, ... alternating hosts, 172.15.42.150 on, up to `total` in all."""
    have = {c.name for c in engine.snapshot().containers}
    for k in range(1, total - 4 + 1):
        if f"w{k}" not in have:
            engine.container_add(f"host{2 - k % 2}", f"w{k}", f"172.15.42.{149 + k}/24")


def pair_at_a_time(engine: Engine) -> tuple[float, int, int]:
    """One pair after the other, each a `containet ping -c 1`: (seconds, answered, pairs)."""
    snap = engine.snapshot().containers
    cs = [(c.name, c.pid, c.ip) for c in snap if c.status == "running" and c.pid and c.ip]
    opts = PingOptions(count=1, timeout=1.0)
    answered = pairs = 0
    t0 = time.perf_counter()
    for name, pid, _ip in cs:
        place = Place.of_pid(pid, name)
        for other, _pid, ip in cs:
            if other != name and ip:
                target = Target(other, ip)
                answered += ping_from(place, name, [target], opts)[target].received
                pairs += 1
    return time.perf_counter() - t0, answered, pairs


@dataclass
class Scale:
    n: int
    ours: list[float] = field(default_factory=list)
    pairwise: list[float] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    all_expected: bool = True
    all_answered: bool = True


def bench_scale(engine: Engine, total: int, rounds: int) -> Scale:
    grow(engine, total)
    fig = Scale(total)

    def ours() -> None:
        t0 = time.perf_counter()
        res = engine.pingall()
        fig.ours.append(time.perf_counter() - t0)
        fig.lost.append(res.lost)
        fig.all_expected = fig.all_expected and res.all_passed and len(res.names) == total

    def theirs() -> None:
        secs, answered, pairs = pair_at_a_time(engine)
        fig.pairwise.append(secs)
        fig.all_answered = fig.all_answered and answered == pairs

    for k in range(rounds):
        order: list[Callable[[], None]] = [ours, theirs] if k % 2 == 0 else [theirs, ours]
        for fn in order:
            fn()
    return fig


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def timed(label: str, fn: Callable[[], T]) -> T:
    t0 = time.perf_counter()
    out = fn()
    print(f"  ({label}: {time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    return out


def report_ready(ready: Ready, before: Ready, ready_rounds: int) -> None:
    med = statistics.median(ready.to_clean)
    base = statistics.median(before.to_clean) if before.to_clean else float("nan")
    worst, their_worst = max(ready.to_clean, default=0.0), max(before.to_clean, default=0.0)
    print(
        f"apply -> clean  3 hosts mesh exp1: with readiness median {med:.2f} s, worst {worst:.2f} s "
        f"(target 0 s: {verdict(worst == 0)})   without median {base:.2f} s, worst {their_worst:.2f} s"
    )
    print(
        f"{INDENT}first pingall after apply not clean: with readiness {sum(1 for b in ready.first_bad if b)} "
        f"of {len(ready.first_bad)} runs, without {sum(1 for b in before.first_bad if b)} of "
        f"{len(before.first_bad)} (pairs not as expected of 30: {ready.first_bad} / {before.first_bad})"
    )
    ours_apply, their_apply = statistics.median(ready.apply), statistics.median(before.apply)
    print(
        f"{INDENT}{ready_rounds} interleaved rounds; apply itself {ours_apply:.2f} s with readiness, "
        f"{their_apply:.2f} s without; apply start -> clean {ours_apply + med:.2f} vs "
        f"{their_apply + base:.2f} s; runs never clean within {CLEAN_WITHIN:.0f} s: "
        f"{ready.failed} / {before.failed}"
    )


def report_scale(scale_rounds: dict[int, int]) -> None:
    engine = Engine(hosts=2)
    engine.lab_up(progress=quiet)
    engine.apply("exp2")
    for total, rounds in scale_rounds.items():
        fig = timed(f"pingall at {total}", partial(bench_scale, engine, total, rounds))
        ours, theirs = statistics.median(fig.ours), statistics.median(fig.pairwise)
        speedup = theirs / ours
        fair = "every pair as expected in every run" if fig.all_expected else "NOT every pair as expected"
        print(
            f"pingall {total:2} ctr  {ours:.2f} s   one pair at a time {theirs:.2f} s   "
            f"speedup {speedup:.1f}x  (target >= 5x: {verdict(speedup >= 5 and fig.all_expected)}; "
            f"{fair})"
        )
        answered = "every pair answered" if fig.all_answered else "SOME PAIR DID NOT ANSWER"
        print(
            f"{INDENT}{rounds} interleaved round(s), {total * (total - 1)} pairs; pingall "
            f"{min(fig.ours):.2f}-{max(fig.ours):.2f} s, probes lost (then retried) {fig.lost}; "
            f"one pair at a time: {answered}"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI size: fewer rounds")
    ap.add_argument("--part", choices=("ready", "scale", "all"), default="all", help="run one half only")
    args = ap.parse_args()
    ready_rounds = 2 if args.quick else 6
    scale_rounds = {40: 1, 80: 1} if args.quick else {40: 3, 80: 1}  # one pair at a time at 80: ~7 min
    size = "quick" if args.quick else "full"
    print(f"containet pingall benchmark ({size}), {os.cpu_count()} CPUs, load average {load()}")
    cleanup.clean(progress=quiet)
    try:
        if args.part != "scale":
            report_ready(*timed("apply -> clean", partial(bench_ready, ready_rounds)), ready_rounds)
        if args.part != "ready":
            report_scale(scale_rounds)
        print(f"load average at the end {load()}")
        return 0
    finally:
        with shielded():
            cleanup.clean(progress=quiet)


if __name__ == "__main__":
    sys.exit(run_main(main))
