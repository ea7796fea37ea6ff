"""Benchmark: how the lab's cost grows with the number of hosts.

    python bench/bench_hosts.py [--quick]

For N = 2, 4, 8 (quick: 2, 4): `lab up`, then exp1 with two containers per
host (a mesh of tunnels, RSTP on), then `lab down`; prints the wall time of
each and the memory per host (resident size of the host's ovsdb-server and
ovs-vswitchd, and of its containers' processes). The baseline is N = 2 in the
same run: the ratio columns say how much more N hosts cost than two.
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


def measure(n: int) -> dict[str, float]:
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
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="N = 2 and 4 only (CI size)")
    args = ap.parse_args()
    sizes = [2, 4] if args.quick else [2, 4, 8]
    cleanup.clean(progress=lambda _m: None)
    rows = {}
    try:
        for n in sizes:
            rows[n] = measure(n)
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
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
