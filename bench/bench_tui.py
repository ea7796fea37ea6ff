"""Benchmark the TUI's live inventory, start-up and memory.

    python bench/bench_tui.py [--quick]

1. Event latency: `docker run` of a marked container -> its row in the app's
   model, the app running headless with its watcher; against a 2 s polling
   loop of full snapshots (the baseline, measured in the same run).
2. Cold start to first paint (the first inventory drawn), in a fresh process;
   against a trivial Textual app's first paint.
3. Resident memory of that process with the lab up and exp1 applied; against
   the trivial app.

Uses its own instance (CONTAINET_INSTANCE=bt unless set), brings its lab up,
and cleans it up at the end, even on failure, Ctrl-C, SIGTERM, SIGHUP or its
output closing (`| head -3` ends it at its next line, cleaned up). Only
loopback and namespaces it created see traffic (none here: it only starts and
removes containers).
"""

from __future__ import annotations

import os

os.environ.setdefault("CONTAINET_INSTANCE", "bt")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

CHILD_APP = r"""
import asyncio, sys, time
t_start = float(sys.argv[1])
from screens.app import make_app
from workbench.engine import Engine
t_import = time.time() - t_start

async def main():
    app = make_app(Engine())
    async with app.run_test(size=(120, 40)) as pilot:
        t_frame = time.time() - t_start  # composed and mounted: the first frame
        while app.snap is None or app.collects < 1:
            await asyncio.sleep(0.002)
        painted = asyncio.Event()
        app.call_after_refresh(painted.set)  # runs once the screen with the inventory is drawn
        await painted.wait()
        first = time.time() - t_start
        await pilot.pause(1.0)
        rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
        print(first, rss, t_import, t_frame)

asyncio.run(main())
"""

CHILD_TRIVIAL = r"""
import asyncio, sys, time
t_start = float(sys.argv[1])
from textual.app import App
from textual.widgets import Footer, Label

class Hello(App):
    def compose(self):
        yield Label("containet")
        yield Footer()

async def main():
    app = Hello()
    async with app.run_test(size=(120, 40)) as pilot:
        painted = asyncio.Event()
        app.call_after_refresh(painted.set)
        await painted.wait()
        first = time.time() - t_start
        await pilot.pause(1.0)
        rss = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
        print(first, rss, 0, 0)

asyncio.run(main())
"""


def child(code: str) -> tuple[float, int, float, float]:
    """(first inventory drawn, RSS kB, imports done, first frame), seconds since before exec."""
    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "-c", code, str(t0)], capture_output=True, text=True, timeout=120, check=True
    )
    first, rss, imports, frame = out.stdout.split()
    return float(first), int(rss), float(imports), float(frame)


def event_latency(engine, trials: int) -> list[float]:  # type: ignore[no-untyped-def]
    from screens.app import make_app
    from workbench import containers as dk
    from workbench.marks import docker_name

    async def run() -> list[float]:
        app = make_app(engine)
        out: list[float] = []
        async with app.run_test(size=(120, 40)) as pilot:
            deadline = time.monotonic() + 20
            while not (app.snap is not None and app.sources.get("docker")) and time.monotonic() < deadline:
                await pilot.pause(0.02)
            cli = dk.client()
            try:
                for n in range(trials):
                    name = f"bench{n}"
                    box: dict[str, float] = {}

                    def start(name: str = name, box: dict[str, float] = box) -> None:
                        box["t0"] = time.monotonic()
                        dk.run(cli, name, "host1")

                    threading.Thread(target=start).start()
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline:
                        if app.snap is not None and app.snap.container(name) is not None and "t0" in box:
                            out.append(time.monotonic() - box["t0"])
                            break
                        await asyncio.sleep(0.002)
                    dk.remove(cli, docker_name(name))
                    await pilot.pause(0.5)
            finally:
                cli.close()
        return out

    return asyncio.run(run())


def polling_latency(engine, trials: int, period: float = 2.0) -> list[float]:  # type: ignore[no-untyped-def]
    """The baseline: a loop taking a full snapshot every `period` seconds."""
    from workbench import containers as dk
    from workbench.marks import docker_name

    out: list[float] = []
    cli = dk.client()
    try:
        for n in range(trials):
            name = f"poll{n}"
            phase = (n + 0.5) / trials * period  # start at spread-out points of the polling cycle
            next_poll = time.monotonic() + period
            t0 = None
            deadline = time.monotonic() + period * 4
            while time.monotonic() < deadline:
                now = time.monotonic()
                if t0 is None and now >= next_poll - period + phase:
                    t0 = time.monotonic()
                    dk.run(cli, name, "host1")
                if now >= next_poll:
                    next_poll += period
                    if t0 is not None and engine.snapshot().container(name) is not None:
                        out.append(time.monotonic() - t0)
                        break
                time.sleep(0.005)
            dk.remove(cli, docker_name(name))
    finally:
        cli.close()
    return out


def _ms(runs: list[tuple[float, int, float, float]]) -> str:
    return ", ".join(f"{r[0] * 1000:.0f}" for r in runs)


def fmt(xs: list[float]) -> str:
    if not xs:
        return "no samples"
    med, lo, hi = statistics.median(xs) * 1000, min(xs) * 1000, max(xs) * 1000
    return f"median {med:.0f} ms (min {lo:.0f}, max {hi:.0f}, n={len(xs)})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer trials (about a minute)")
    args = ap.parse_args()
    trials = 3 if args.quick else 10

    from workbench import cleanup
    from workbench.engine import Engine
    from workbench.exits import shielded

    print(f"instance {os.environ['CONTAINET_INSTANCE']}: cleaning, then lab up + exp1")
    cleanup.clean(progress=lambda _m: None)
    engine = Engine()
    try:
        engine.lab_up(progress=lambda _m: None)
        engine.apply("exp1")

        ev = event_latency(engine, trials)
        poll = polling_latency(engine, trials)
        print("\n1. docker run -> row in the app's model")
        print(f"   event driven (watcher + 100 ms coalescing): {fmt(ev)}   target < 500 ms")
        print(f"   baseline, 2 s polling loop:                 {fmt(poll)}")
        if ev and poll:
            print(f"   ratio polling / events: {statistics.median(poll) / statistics.median(ev):.1f}x faster")

        runs = 3 if args.quick else 5  # a few seconds each; the median of a noisy shared machine
        app_runs = [child(CHILD_APP) for _ in range(runs)]
        base_runs = [child(CHILD_TRIVIAL) for _ in range(runs)]
        first = statistics.median(r[0] for r in app_runs)
        base_first = statistics.median(r[0] for r in base_runs)
        rss = statistics.median(r[1] for r in app_runs) / 1024
        base_rss = statistics.median(r[1] for r in base_runs) / 1024
        imports = statistics.median(r[2] for r in app_runs)
        frame = statistics.median(r[3] for r in app_runs)
        print("\n2. cold start -> first paint of the inventory")
        print(f"   containet-tui: {first * 1000:.0f} ms   target < 1500 ms   (runs: {_ms(app_runs)})")
        print(f"     imports done {imports * 1000:.0f} ms, first frame {frame * 1000:.0f} ms")
        print(
            f"   baseline, trivial Textual app: {base_first * 1000:.0f} ms   ratio {first / base_first:.2f}x"
        )
        print("\n3. resident memory, lab up, exp1 applied, watcher running")
        print(f"   containet-tui: {rss:.0f} MB   target < 150 MB")
        print(f"   baseline, trivial Textual app: {base_rss:.0f} MB   ratio {rss / base_rss:.2f}x")
    finally:
        with shielded():  # SIGTERM, SIGHUP or a closed stdout meanwhile: after the cleanup
            print("\ncleaning up")
            cleanup.clean(progress=lambda _m: None)
    return 0


if __name__ == "__main__":
    from workbench.exits import run_main

    sys.exit(run_main(main))
