"""Benchmark: QoS caps set vs measured, and the uncapped path beside them.

    python bench/bench_qos.py [--quick]

Runs exp2 in its own instance (CONTAINET_INSTANCE=bq unless set), caps h1-a at
a few rates, measures iperf from it to h2-a (and back with --reverse), prints
set rate, measured rate and their ratio, and removes everything it made, also
when interrupted (Ctrl-C, SIGTERM, SIGHUP, or its output closing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

os.environ.setdefault("CONTAINET_INSTANCE", "bq")

from workbench import cleanup  # noqa: E402
from workbench.engine import Engine  # noqa: E402
from workbench.exits import run_main, shielded  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="two caps, one run each (CI size)")
    args = ap.parse_args()
    caps = [50.0, 200.0] if args.quick else [20.0, 50.0, 100.0, 200.0, 400.0]
    runs = 1 if args.quick else 3

    cleanup.clean(progress=lambda _m: None)
    engine = Engine()
    rows = []
    try:
        engine.lab_up(progress=lambda _m: None)
        engine.apply("exp2")

        def measure(reverse: bool = False) -> float:
            got = [
                engine.iperf("h1-a", "h2-a", seconds=2, reverse=reverse).received_bps / 1e6
                for _ in range(runs)
            ]
            return statistics.median(got)

        uncapped = measure()
        for cap in caps:
            state = engine.qos_set("h1-a", cap)
            rows.append((cap, measure(), measure(reverse=True), state.download, state.upload))
        engine.qos_clear("h1-a")
    finally:
        with shielded():
            cleanup.clean(progress=lambda _m: None)

    print(f"uncapped h1-a -> h2-a: {uncapped:.0f} Mbit/s (median of {runs})")
    print(f"{'cap':>8} {'from it':>10} {'ratio':>6} {'to it':>10} {'ratio':>6}   mechanisms")
    for cap, up, down, dmech, umech in rows:
        figures = f"{cap:8.0f} {up:10.1f} {up / cap:6.2f} {down:10.1f} {down / cap:6.2f}"
        print(f"{figures}   in: {dmech}; out: {umech}")
    # the target is for caps well below what the path carries uncapped
    judged = [r for r in rows if r[0] <= uncapped / 3]
    worst = max((max(abs(r[1] / r[0] - 1), abs(r[2] / r[0] - 1)) for r in judged), default=0.0)
    verdict = "MET" if worst <= 0.15 else "NOT MET"
    print(f"target: caps <= 1/3 of uncapped within 15% both ways -> {verdict} (worst {worst:.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
