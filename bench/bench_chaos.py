"""Benchmark: chaos -- random faults from the crash matrix, each followed by repair.

    python bench/bench_chaos.py [--rounds N] [--seed S] [--quick]

Builds a 2-host lab with exp1 applied in its own instance (CONTAINET_INSTANCE=bc
unless set), then N rounds (default 50) of one random fault -- host1's
ovs-vswitchd or ovsdb-server killed (kill -9), both OVS daemons of host2 killed,
host2's underlay veth deleted, a container killed or restarted by docker -- and
the repair a user runs: `lab up` (Engine.lab_repair), then `scenario apply` when
it names pending steps, then pingall until it is clean (10 s at most).

A round is repaired without loss when pingall came back clean and every
container the fault did not hit kept its docker ID, its namespace (pid) and its
veth (ifindex). Prints that count and the time from the fault to the first clean
pingall (median, p90, max), per fault too. dockerd restarts are not in the mix:
the machine's dockerd is shared (tests/integration/test_crash.py restarts a
private one). Removes everything it made, also when interrupted (Ctrl-C,
SIGTERM, SIGHUP, or its output closing).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("CONTAINET_INSTANCE", "bc")

from workbench import cleanup, links  # noqa: E402
from workbench import containers as dk  # noqa: E402
from workbench.engine import Engine  # noqa: E402
from workbench.exits import run_main, shielded  # noqa: E402
from workbench.host import Place  # noqa: E402
from workbench.lab import UNDERLAY_NS  # noqa: E402
from workbench.marks import RUN_DIR, docker_name, host_veth  # noqa: E402

SCENARIO = "exp1"
PINGALL_WITHIN = 10.0  # seconds after the repair for pingall to come back clean


def quiet(_msg: str) -> None:
    pass


# --- the faults ---------------------------------------------------------------------
def kill(host: str, *daemons: str) -> Callable[[Engine], None]:
    def do(_engine: Engine) -> None:
        pids = [int((RUN_DIR / host / f"{d}.pid").read_text()) for d in daemons]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{p}").exists() for p in pids) and time.monotonic() < deadline:
            time.sleep(0.01)

    return do


def delete_underlay(_engine: Engine) -> None:
    Place.named(UNDERLAY_NS).netlink(links.delete_link, "host2")


def docker_do(name: str, what: str) -> Callable[[Engine], None]:
    def do(_engine: Engine) -> None:
        cli = dk.client()
        try:
            container = cli.containers.get(docker_name(name))
            container.kill() if what == "kill" else container.restart(timeout=0)
        finally:
            cli.close()

    return do


@dataclass(frozen=True)
class Fault:
    name: str
    do: Callable[[Engine], None]
    victims: tuple[str, ...] = ()


FAULTS = (
    Fault("host1 ovs-vswitchd killed", kill("host1", "ovs-vswitchd")),
    Fault("host1 ovsdb-server killed", kill("host1", "ovsdb-server")),
    Fault("host2 OVS daemons killed", kill("host2", "ovsdb-server", "ovs-vswitchd")),
    Fault("host2 underlay veth deleted", delete_underlay),
    Fault("container h1-b killed", docker_do("h1-b", "kill"), ("h1-b",)),
    Fault("container h2-a restarted", docker_do("h2-a", "restart"), ("h2-a",)),
)


# --- one round ------------------------------------------------------------------------
def wiring(engine: Engine) -> dict[str, tuple[str, int, int | None]]:
    """Each container: docker ID, pid, and the ifindex of its host-side veth."""
    hosts = {h.name: h for h in engine.hosts()}
    out = {}
    for c in engine.snapshot().containers:
        row = hosts[c.host].place.netlink(links.link_row, host_veth(c.name)) if c.host in hosts else None
        out[c.name] = (c.full_id, c.pid, row.index if row is not None else None)
    return out


@dataclass(frozen=True)
class Round:
    fault: str
    clean: bool  # pingall came back clean
    kept: bool  # nothing the fault did not hit was made again
    seconds: float  # fault -> first clean pingall
    pingalls: int  # how many it took
    applied: bool  # `scenario apply` was needed


def one_round(engine: Engine, fault: Fault, before: dict[str, tuple[str, int, int | None]]) -> Round:
    t0 = time.monotonic()
    fault.do(engine)
    report = engine.lab_repair(progress=quiet)
    applied = bool(report.scenario and report.scenario.pending)
    if applied:
        engine.apply(SCENARIO)
    clean, tries = False, 0
    deadline = time.monotonic() + PINGALL_WITHIN
    while not clean and time.monotonic() < deadline:
        tries += 1
        clean = engine.pingall().all_passed
    seconds = time.monotonic() - t0
    after = wiring(engine)
    kept = all(after.get(n) == w for n, w in before.items() if n not in fault.victims)
    return Round(fault.name, clean, kept, seconds, tries, applied)


def describe(r: Round) -> str:
    out = f", {r.pingalls} pingalls" if r.pingalls > 1 else ""
    out += ", scenario apply" if r.applied else ""
    if not r.clean:
        out += "  LOSS: pingall not clean"
    if not r.kept:
        out += "  LOSS: something healthy was made again"
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=50, help="faults to inject (default 50)")
    ap.add_argument("--seed", type=int, help="random seed (default: a new one, printed)")
    ap.add_argument("--quick", action="store_true", help="6 rounds, one of each fault (CI size)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    faults = list(FAULTS) if args.quick else [rng.choice(FAULTS) for _ in range(args.rounds)]

    cleanup.clean(progress=quiet)
    engine = Engine(hosts=2)
    rounds: list[Round] = []
    try:
        engine.lab_up(progress=quiet)
        engine.apply(SCENARIO)
        print(f"chaos: {len(faults)} rounds on a 2-host {SCENARIO} lab, seed {seed}", flush=True)
        before = wiring(engine)
        for i, fault in enumerate(faults, start=1):
            r = one_round(engine, fault, before)
            rounds.append(r)
            print(f"{i:3}. {r.fault:28} {r.seconds:5.2f} s{describe(r)}", flush=True)
            before = wiring(engine)
    finally:
        with shielded():
            cleanup.clean(progress=quiet)

    good = [r for r in rounds if r.clean and r.kept]
    times = [r.seconds for r in rounds if r.clean]
    print(f"repaired without loss: {len(good)} of {len(rounds)} rounds")
    if times:
        print(
            f"fault -> clean pingall: median {statistics.median(times):.2f} s, "
            f"p90 {percentile(times, 0.9):.2f} s, max {max(times):.2f} s"
        )
    for fault in FAULTS:
        mine = [r for r in rounds if r.fault == fault.name]
        if mine:
            med = statistics.median(r.seconds for r in mine)
            retried = sum(1 for r in mine if r.pingalls > 1)
            print(f"  {fault.name:28} {len(mine):3} rounds  median {med:5.2f} s  pingall retried {retried}")
    return 0 if len(good) == len(rounds) else 1


if __name__ == "__main__":
    sys.exit(run_main(main))
