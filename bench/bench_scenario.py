"""Benchmark: build Exp1 (2 hosts, 2 containers each) through the engine vs
running the exported bash script of the same steps, in the same run.

    python bench/bench_scenario.py [--repeats N] [--quick]

Prints medians and the ratio script/engine, end to end and for the network
plumbing alone (containers already running). Target: the engine >= 3x faster
end to end. Runs in its own instance (CONTAINET_INSTANCE=bs unless set) and
removes everything it made, also when interrupted (Ctrl-C, SIGTERM, SIGHUP, or
its output closing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("CONTAINET_INSTANCE", "bs")

from workbench import cleanup  # noqa: E402
from workbench.actions import render  # noqa: E402
from workbench.engine import Engine  # noqa: E402
from workbench.exits import run_main, shielded  # noqa: E402
from workbench.steps import Plan  # noqa: E402

SCENARIO = "exp1"
QUIET = 1.0  # seconds for teardown to settle after each undo (see undo)


def is_run(step_id: str) -> bool:
    return step_id.split("/", 1)[1].startswith("run:")


def subset(plan: Plan, keep_runs: bool) -> Plan:
    steps = tuple(s for s in plan.steps if keep_runs or not is_run(s.id))
    return Plan(plan.name, plan.title, plan.summary, steps)


def run_script(engine: Engine, plan: Plan) -> float:
    hosts = {h.name: h for h in engine.hosts()}
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as fh:
        fh.write(plan.to_bash(render, hosts))
        path = fh.name
    try:
        t0 = time.perf_counter()
        out = subprocess.run(["bash", path], capture_output=True, text=True, timeout=300)
        elapsed = time.perf_counter() - t0
    finally:
        os.unlink(path)
    if out.returncode != 0:
        raise SystemExit(f"the exported script failed: {out.stderr.strip()[-400:]}")
    with engine.context() as ctx:
        if not all(plan.status(ctx)):
            raise SystemExit("the exported script ran but the plan does not verify")
    return elapsed


def timed_apply(engine: Engine, plan: Plan) -> float:
    with engine.context() as ctx:
        t0 = time.perf_counter()
        plan.apply(ctx)
        elapsed = time.perf_counter() - t0
        if not all(plan.status(ctx)):
            raise SystemExit("engine apply does not verify")
    return elapsed


def undo(engine: Engine, plan: Plan) -> None:
    with engine.context() as ctx:
        plan.undo(ctx)
    # docker and the kernel finish tearing down after the calls return (shims
    # exiting, namespaces freed): let that settle so neither side is timed
    # against the other's leftovers
    time.sleep(QUIET)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="3 repeats (CI size)")
    args = ap.parse_args()
    repeats = 3 if args.quick else args.repeats

    cleanup.clean(progress=lambda _m: None)
    engine = Engine()
    try:
        engine.lab_up(progress=lambda _m: None)
        full = engine.plan(SCENARIO)
        plumbing = subset(full, keep_runs=False)
        e2e_engine, e2e_script, net_engine, net_script = [], [], [], []
        for _ in range(repeats):
            e2e_engine.append(timed_apply(engine, full))
            undo(engine, full)
            e2e_script.append(run_script(engine, full))
            undo(engine, plumbing)  # containers stay: now measure the plumbing alone
            net_engine.append(timed_apply(engine, plumbing))
            undo(engine, plumbing)
            net_script.append(run_script(engine, plumbing))
            undo(engine, full)
    finally:
        with shielded():
            cleanup.clean(progress=lambda _m: None)

    def row(label: str, eng: list[float], sh: list[float]) -> float:
        me, ms = statistics.median(eng), statistics.median(sh)
        figures = f"engine {me * 1000:8.0f} ms   script {ms * 1000:8.0f} ms"
        print(f"{label:26} {figures}   script/engine {ms / me:5.1f}x")
        return ms / me

    print(f"{SCENARIO}: 2 hosts x 2 containers, {len(full.steps)} steps, {repeats} repeats (medians)")
    ratio = row("end to end", e2e_engine, e2e_script)
    row("network plumbing alone", net_engine, net_script)
    print(f"target: engine >= 3x faster end to end -> {'MET' if ratio >= 3 else 'NOT MET'} ({ratio:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
