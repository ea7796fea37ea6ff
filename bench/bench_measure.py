"""Benchmark: containet's measurements against the standard tools, same run, same pair.

    python bench/bench_measure.py [--quick]

1. RTT: median of `containet ping` (icmplib in h1-a's namespace) vs iputils `ping`
   in the same namespace, h1-a -> h2-a across the tunnel, interleaved. Target ±10%.
2. Throughput: `containet iperf` (libiperf in child processes) vs the `iperf3` CLI
   (-J), same pair, interleaved, medians. Target ±10%.
3. Ceiling: iperf3 over a raw veth between two fresh namespaces, printed beside the
   tunnel figure as a ratio (how much the userspace GRE path costs).
4. Pingall with 20 containers (10 per host): concurrent vs one pair at a time, same
   probe code. Target >= 5x faster.

Runs in its own instance (CONTAINET_INSTANCE=bm unless set) and removes everything
it made (lab, containers, the two ceiling namespaces), also when interrupted.
Traffic goes only to addresses inside namespaces this script created.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

os.environ.setdefault("CONTAINET_INSTANCE", "bm")

from workbench import cleanup  # noqa: E402
from workbench.engine import Engine  # noqa: E402
from workbench.host import Place  # noqa: E402
from workbench.measure.ping import PingOptions, Target, ping_from  # noqa: E402
from workbench.measure.pingall import Member, expectations, run_pingall  # noqa: E402

SRC, DST = "h1-a", "h2-a"
CEIL_NS = ("cnbm-ceil-a", "cnbm-ceil-b")
CEIL_IPS = ("10.250.0.1", "10.250.0.2")
IPERF_PORT = 5301


def quiet(_msg: str) -> None:
    pass


def run(argv: list[str], timeout: float = 120) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def ns_argv(pid: int, argv: list[str]) -> list[str]:
    return ["nsenter", "-t", str(pid), "-n", *argv]


# --- 1. RTT -----------------------------------------------------------------------------
def iputils_rtts(pid: int, ip: str, count: int, interval: float) -> list[float]:
    out = run(ns_argv(pid, ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "1", ip]))
    return [float(x) for x in re.findall(r"time=([\d.]+) ms", out)]


def bench_rtt(engine: Engine, rounds: int, count: int) -> tuple[float, float]:
    pid = engine.resolve(SRC).pid
    ip = engine.resolve(DST).ip
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        res = engine.ping(SRC, DST, count=count, interval=0.05)
        ours += [r.rtt_ms for r in res.replies if r.rtt_ms is not None]
        theirs += iputils_rtts(pid, ip, count, 0.05)
    return statistics.median(ours), statistics.median(theirs)


# --- 2. throughput -------------------------------------------------------------------------
def iperf3_cli(server_ns: list[str], client_ns: list[str], ip: str, seconds: int) -> float:
    """iperf3 CLI client -J against a one-off CLI server; received bits per second."""
    server = subprocess.Popen(
        [*server_ns, "iperf3", "-s", "-1", "-p", str(IPERF_PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        out = run([*client_ns, "iperf3", "-J", "-c", ip, "-p", str(IPERF_PORT), "-t", str(seconds)], 60)
        return float(json.loads(out)["end"]["sum_received"]["bits_per_second"])
    finally:
        server.terminate()
        server.wait(5)


def bench_iperf(engine: Engine, rounds: int, seconds: int) -> tuple[float, float]:
    spid, dpid = engine.resolve(SRC).pid, engine.resolve(DST).pid
    ip = engine.resolve(DST).ip
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        ours.append(engine.iperf(SRC, DST, seconds=seconds).received_bps)
        theirs.append(
            iperf3_cli(["nsenter", "-t", str(dpid), "-n"], ["nsenter", "-t", str(spid), "-n"], ip, seconds)
        )
    return statistics.median(ours), statistics.median(theirs)


# --- 3. the ceiling ------------------------------------------------------------------------------
def ceiling(seconds: int) -> float:
    a, b = CEIL_NS
    remove_ceiling()
    run(["ip", "netns", "add", a])
    run(["ip", "netns", "add", b])
    run(["ip", "-n", a, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b", "netns", b])
    for ns, dev, ip in ((a, "veth-a", CEIL_IPS[0]), (b, "veth-b", CEIL_IPS[1])):
        run(["ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev])
        run(["ip", "-n", ns, "link", "set", dev, "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
    return iperf3_cli(["ip", "netns", "exec", b], ["ip", "netns", "exec", a], CEIL_IPS[1], seconds)


def remove_ceiling() -> None:
    for ns in CEIL_NS:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False, timeout=30)


# --- 4. pingall ----------------------------------------------------------------------------------
def add_containers(engine: Engine, per_host: int) -> None:
    have = {c.name for c in engine.snapshot().containers}
    n = 0
    for host in ("host1", "host2"):
        for i in range(per_host - 2):  # the scenario has 2 per host already
            name = f"x{host[-1]}-{i}"
            n += 1
            if name not in have:
                engine.container_add(host, name, f"172.15.42.{110 + n}/24")


def bench_pingall(engine: Engine, rounds: int) -> tuple[float, float, int, bool]:
    snap = engine.snapshot()
    members = [
        Member(c.name, c.ip, Place.of_pid(c.pid, c.name), c.vlan)
        for c in snap.containers
        if c.status == "running" and c.pid and c.ip
    ]
    expected = expectations({"all_talk": True}, members)
    opts = PingOptions(count=1, timeout=1.0)
    concurrent: list[float] = []
    serial: list[float] = []
    ok = True
    for _ in range(rounds):
        t0 = time.perf_counter()
        res = run_pingall(members, expected=expected, scenario="exp1", opts=opts, workers=8)
        concurrent.append(time.perf_counter() - t0)
        ok = ok and res.all_passed
        t0 = time.perf_counter()
        for src in members:
            for dst in members:
                if src is not dst:
                    ping_from(src.place, src.name, [Target(dst.name, dst.ip)], opts)
        serial.append(time.perf_counter() - t0)
    return statistics.median(concurrent), statistics.median(serial), len(members), ok


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def timed(label: str, fn: Callable[[], object]) -> object:
    t0 = time.perf_counter()
    out = fn()
    print(f"  ({label}: {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI size: fewer and shorter runs")
    args = ap.parse_args()
    ping_rounds, ping_count = (2, 20) if args.quick else (5, 40)
    iperf_rounds, iperf_secs = (2, 2) if args.quick else (3, 5)
    pingall_rounds = 1 if args.quick else 3

    engine = Engine()
    cleanup.clean(progress=quiet)
    try:
        engine.lab_up(progress=quiet)
        engine.apply("exp1")
        print(
            f"containet measurement benchmark ({'quick' if args.quick else 'full'}), {SRC} -> {DST} over GRE"
        )

        ours, theirs = bench_rtt(engine, ping_rounds, ping_count)
        ratio = ours / theirs
        print(
            f"RTT median      containet ping {ours:.3f} ms   iputils ping {theirs:.3f} ms   "
            f"ratio {ratio:.2f}  (target 0.90-1.10: {verdict(0.9 <= ratio <= 1.1)})"
        )

        ours, theirs = bench_iperf(engine, iperf_rounds, iperf_secs)
        ratio = ours / theirs
        print(
            f"throughput      containet iperf {ours / 1e6:.0f} Mbit/s   "
            f"iperf3 -J {theirs / 1e6:.0f} Mbit/s   "
            f"ratio {ratio:.2f}  (target 0.90-1.10: {verdict(0.9 <= ratio <= 1.1)})"
        )

        ceil = ceiling(iperf_secs)
        print(
            f"ceiling         raw veth {ceil / 1e9:.2f} Gbit/s   tunnel/ceiling {theirs / ceil:.3f}"
            f"  (the tunnel carries {100 * theirs / ceil:.1f}% of the machine's veth ceiling)"
        )

        timed("adding 16 containers", lambda: add_containers(engine, 10))
        conc, serial, n, ok = bench_pingall(engine, pingall_rounds)
        speedup = serial / conc
        print(
            f"pingall {n} ctr  concurrent {conc:.2f} s   one at a time {serial:.2f} s   "
            f"speedup {speedup:.1f}x  (target >= 5x: {verdict(speedup >= 5)}; matrix as expected: {ok})"
        )
        return 0
    finally:
        remove_ceiling()
        cleanup.clean(progress=quiet)


if __name__ == "__main__":
    sys.exit(main())
