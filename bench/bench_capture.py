"""Benchmark: what a capture costs, and how fast frames decode.

    python bench/bench_capture.py [--quick]

1. Overhead: iperf (TCP, h1-a -> h2-a across exp1's userspace GRE tunnel) without a
   capture, and with a capture on host1's underlay NIC (eth1, every frame, no
   filter) running for the whole test; same run, interleaved (A B, B A, ...) so a
   drift of the shared machine hits both. Two kinds of capture: "ring" keeps the
   frames in its ring buffer and decodes none (what the TUI does: it decodes the
   rows it shows), "decode" also decodes and X-rays every frame as it arrives
   (what `containet capture` does to print it). Printed: the medians, and the
   median of the per-pair ratios. Target: >= 0.8x with the ring capture.
2. Decode speed: the frames captured during those tests (GRE-wrapped TCP from the
   wire), decoded and X-rayed again and again: frames per second.

Runs in its own instance (CONTAINET_INSTANCE=bc unless set) and removes everything it
made, also when interrupted (Ctrl-C, SIGTERM, SIGHUP, or its output closing). Traffic
goes only between the lab's containers. The load average is printed at the start and
the end: on a shared machine, read the figures with it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("CONTAINET_INSTANCE", "bc")

from workbench import cleanup  # noqa: E402
from workbench.capture import CaptureOptions, PathContext, Record, decode, xray  # noqa: E402
from workbench.engine import Engine  # noqa: E402
from workbench.exits import run_main, shielded  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 pairs of 2 s tests (CI size)")
    args = ap.parse_args()
    pairs, seconds = (2, 2.0) if args.quick else (5, 3.0)
    print(f"load average at start: {load()}", flush=True)

    cleanup.clean(progress=lambda _m: None)
    engine = Engine()
    base: list[float] = []
    runs: dict[str, list[float]] = {"ring": [], "decode": []}
    ratios: dict[str, list[float]] = {"ring": [], "decode": []}
    seen: dict[str, list[int]] = {"ring": [], "decode": []}
    dropped: dict[str, list[int]] = {"ring": [], "decode": []}
    sample: list[Record] = []
    try:
        engine.lab_up(progress=lambda _m: None)
        engine.apply("exp1")
        ctx = engine.capture_target("host1:eth1").context

        def iperf() -> float:
            return engine.iperf("h1-a", "h2-a", seconds=seconds).received_bps / 1e6

        def captured(kind: str) -> float:
            opts = CaptureOptions(count=0, seconds=seconds + 10, ring_bytes=8 << 20)

            def each(rec: Record) -> None:
                xray(decode(rec.data, rec.wire_len, rec.time, rec.index), ctx)

            cap = engine.open_capture("host1:eth1", opts, each if kind == "decode" else None)
            try:
                mbit = iperf()
            finally:
                res = cap.stop()
            seen[kind].append(res.seen)
            dropped[kind].append(res.kernel_dropped or 0)
            if not sample:
                sample.extend(res.records)
            return mbit

        iperf()  # warm-up: ARP, flow caches
        for i in range(pairs):
            for kind in ("ring", "decode"):
                if i % 2 == 0:
                    a = iperf()
                    b = captured(kind)
                else:
                    b = captured(kind)
                    a = iperf()
                base.append(a)
                runs[kind].append(b)
                ratios[kind].append(b / a if a else 0.0)
                print(f"  pair {i + 1} {kind:6}: without {a:7.0f} Mbit/s, with {b:7.0f} Mbit/s", flush=True)
    finally:
        with shielded():
            cleanup.clean(progress=lambda _m: None)

    print(f"\niperf h1-a -> h2-a, {seconds:g} s tests, {pairs} pairs per kind, capture on host1:eth1")
    print(f"  without a capture: median {statistics.median(base):.0f} Mbit/s")
    for kind in ("ring", "decode"):
        med = statistics.median(runs[kind])
        ratio = statistics.median(ratios[kind])
        per_test = statistics.median(seen[kind])
        drops = max(dropped[kind])
        print(
            f"  with a {kind:6} capture: median {med:.0f} Mbit/s, per-pair ratio {ratio:.2f}x "
            f"(frames seen per test: {per_test:.0f}, kernel drops at most {drops})"
        )
    ring_ratio = statistics.median(ratios["ring"])
    verdict = "MET" if ring_ratio >= 0.8 else "NOT MET"
    print(f"target: >= 0.8x with the ring capture -> {verdict} ({ring_ratio:.2f}x)")

    if sample:
        frames = sample[:2000]
        rounds = max(1, 20000 // len(frames))
        ctx = PathContext("gre", 1500)
        t0 = time.perf_counter()
        for _ in range(rounds):
            for rec in frames:
                xray(decode(rec.data, rec.wire_len, rec.time, rec.index), ctx)
        dt = time.perf_counter() - t0
        n = rounds * len(frames)
        tunnels = sum(1 for r in frames if decode(r.data, r.wire_len).tunnel)
        print(
            f"\ndecode + X-ray: {n / dt:,.0f} frames/s ({n} frames from the wire, "
            f"{tunnels} of {len(frames)} distinct ones GRE-wrapped)"
        )
    print(f"load average at end: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
