"""Benchmark: how the lab's cost grows with the number of hosts.

    python bench/bench_hosts.py [--quick] [--no-ovn]

For N = 2, 4, 8 (quick: 2, 4): `lab up`, then exp1 with two containers per
host (a mesh of tunnels, RSTP on), then `lab down`; prints the wall time of
each and the memory per host (resident size of the host's ovsdb-server and
ovs-vswitchd, and of its containers' processes). The baseline is N = 2 in the
same run: the ratio columns say how much more N hosts cost than two.

Then, on the same lab (before `lab down`), exp1 against ovn (issue 16): each is
undone, applied again (apply time), its pingall run until one is clean (time
from the start of apply to the end of the first clean pingall; 30 s at most,
the number of pingalls it took), then iperf host1 -> hostN (2 s, TCP), and undone.
Runs in its own instance (CONTAINET_INSTANCE=bh unless set) and cleans up, also
when interrupted (Ctrl-C, SIGTERM, SIGHUP, or its output closing).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("CONTAINET_INSTANCE", "bh")

from workbench import cleanup  # noqa: E402
from workbench.engine import Engine  # noqa: E402
from workbench.exits import run_main, shielded  # noqa: E402
from workbench.ovs import DAEMONS, OvsPaths, read_pid  # noqa: E402


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    out = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
    return out


def to_clean_pingall(engine: Engine, name: str, n: int) -> dict[str, float]:
    """Apply `name` (from nothing), pingall until clean, iperf across; then undo."""
    t0 = time.perf_counter()
    engine.apply(name)
    t1 = time.perf_counter()
    tries, clean = 0, False
    while not clean and time.perf_counter() - t1 < 30:
        tries += 1
        clean = engine.pingall().all_passed
    t2 = time.perf_counter()
    far = f"h{n}-a"
    bps = engine.iperf("h1-a", far, seconds=2.0).received_bps
    engine.undo(name)
    return {
        "apply": t1 - t0,
        "clean": (t2 - t0) if clean else float("nan"),
        "tries": tries,
        "mbit": bps / 1e6,
    }


def measure(n: int, ovn: bool = True) -> dict[str, float]:
    engine = Engine(hosts=n)
    t0 = time.perf_counter()
    engine.lab_up(progress=lambda _m: None)
    t1 = time.perf_counter()
    engine.apply("exp1")
    t2 = time.perf_counter()
    snap = engine.snapshot()
    ovs_kb = sum(
        rss_kb(pid)
        for h in engine.hosts()
        if h.run_dir is not None
        for pid in (read_pid(OvsPaths(h.run_dir).pidfile(d)) for d in DAEMONS)
        if pid
    )
    ct_kb = sum(rss_kb(c.pid) + sum(rss_kb(p) for p in children(c.pid)) for c in snap.containers)
    versus = {}
    if ovn:
        engine.undo("exp1")
        for name in ("exp1", "ovn"):
            for k, v in to_clean_pingall(engine, name, n).items():
                versus[f"{name}_{k}"] = v
    t3 = time.perf_counter()
    engine.lab_down(progress=lambda _m: None)
    t4 = time.perf_counter()
    return {
        "up": t1 - t0,
        "exp1": t2 - t1,
        "down": t4 - t3,
        "ovs_mb_per_host": ovs_kb / 1024 / n,
        "containers_mb_per_host": ct_kb / 1024 / n,
        "containers": len(snap.containers),
        **versus,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 2 and 4 only (CI size)")
    ap.add_argument("--no-ovn", action="store_true", help="skip exp1 vs ovn")
    args = ap.parse_args()
    sizes = [2, 4] if args.quick else [2, 4, 8]
    cleanup.clean(progress=lambda _m: None)
    rows = {}
    try:
        for n in sizes:
            rows[n] = measure(n, ovn=not args.no_ovn)
    finally:
        with shielded():
            cleanup.clean(progress=lambda _m: None)
    base = rows[2]
    print("hosts  lab up   exp1 (2 ct/host)  lab down   OVS MB/host  containers MB/host   vs N=2: up  exp1")
    for n, r in rows.items():
        print(
            f"{n:5}  {r['up']:6.2f}s  {r['exp1']:8.2f}s ({r['containers']:2.0f})  {r['down']:7.2f}s"
            f"  {r['ovs_mb_per_host']:11.1f}  {r['containers_mb_per_host']:18.1f}"
            f"   {r['up'] / base['up']:8.1f}x {r['exp1'] / base['exp1']:5.1f}x"
        )
    if args.no_ovn:
        return 0
    print()
    print("hosts  scenario  apply    to clean pingall (pingalls)  iperf h1-a -> hN-a")
    for n, r in rows.items():
        for name in ("exp1", "ovn"):
            apply, clean, tries, mbit = (r[f"{name}_{k}"] for k in ("apply", "clean", "tries", "mbit"))
            print(f"{n:5}  {name:8}  {apply:5.2f}s  {clean:8.2f}s ({tries:.0f})  {mbit:18.0f} Mbit/s")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
