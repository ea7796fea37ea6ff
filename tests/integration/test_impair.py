"""Impairment on the real lab (exp1, built once for the module): `netem set` raises the
RTT by the delay asked, drops a share of probes inside the binomial band, caps iperf;
`netem clear` brings the RTT back; `link down|up|flap`; bad input is one line, exit 2.

This kernel has no sch_netem, so these measure the substitutes (iptables statistic,
tbf, containet's delay line). Every test clears what it set, also on failure."""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from tests_support import link_names

from workbench.cli import render_status
from workbench.engine import Engine
from workbench.errors import BadInput
from workbench.impair import procs
from workbench.impair.link import resolve

pytestmark = pytest.mark.lab

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def exp1(lab_engine: Engine) -> Iterator[Engine]:
    active = lab_engine.active()
    if active is not None:
        lab_engine.undo(active.scenario)  # also reverts leftovers of a crashed run
    lab_engine.apply("exp1")
    try:
        yield lab_engine
    finally:
        lab_engine.netem_clear()
        lab_engine.undo("exp1")


@pytest.fixture
def lab(exp1: Engine) -> Iterator[Engine]:
    try:
        yield exp1
    finally:
        exp1.netem_clear()
        exp1.link_state("h1-a", "up")
        exp1.link_state("host1:gre0", "up")


def ok(out: subprocess.CompletedProcess[str]) -> str:
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def median_rtt(engine: Engine, count: int = 40) -> float:
    res = engine.ping("h1-a", "h2-a", count=count, interval=0.02)
    return statistics.median(r.rtt_ms for r in res.replies if r.rtt_ms is not None)


def delay_line(engine: Engine, target: str) -> set[str]:
    """Those of the target's delay line veth ends (ImpairLink.delay_links) that exist."""
    link = resolve(target, engine.hosts(), engine.snapshot())
    return set(link.delay_links) & link_names(link.ns)


def binomial_band(n: int, p: float, level: float = 0.99) -> tuple[int, int]:
    """The central `level` interval of Binomial(n, p), exactly."""
    tail = (1 - level) / 2
    cdf, lo, hi = 0.0, 0, n
    for k in range(n + 1):
        cdf += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if cdf <= tail:
            lo = k + 1
        if cdf >= 1 - tail:
            hi = k
            break
    return lo, hi


def test_delay_adds_its_milliseconds_and_clear_takes_them_back(lab: Engine, cli: Cli) -> None:
    before = median_rtt(lab)
    out = ok(cli("netem", "set", "h1-a", "--delay", "20"))
    assert "h1-a: delay 20 ms [substitute]" in out and "relay.py" in out and "state 0" in out, out
    delayed = median_rtt(lab)
    assert 18.0 <= delayed - before <= 22.0, (before, delayed)
    backend, states = lab.netem_show()
    assert "no tc netem" in backend and [(s.target, s.spec.delay, s.holds) for s in states] == [
        ("h1-a", 20, True)
    ]
    assert "[netem delay 20 ms (substitute)]" in render_status(lab.snapshot())  # next to h1-a
    line = delay_line(lab, "h1-a")
    assert len(line) == 2 and procs.pid_of("relay", "h1-a") is not None, line
    assert lab.netem_clear("h1-a") == ["h1-a: cleared delay 20 ms"]
    # nothing of the delay line is left: its veth pair and relay are gone, so frames take
    # the direct path again (a relay left in it costs the whole 20 ms; the direct path's own
    # wobble on a loaded 2-core machine is a few tenths of a millisecond)
    assert delay_line(lab, "h1-a") == set() and procs.pid_of("relay", "h1-a") is None
    after = median_rtt(lab)
    assert after - before < 2.0, (before, after)
    assert lab.netem_show()[1] == []


def test_loss_is_inside_the_binomial_band(lab: Engine) -> None:
    lab.netem_set("h1-a", loss=10)
    res = lab.ping("h1-a", "h2-a", count=500, interval=0.01, timeout=0.05)
    lo, hi = binomial_band(500, 0.10)
    assert lo <= res.sent - res.received <= hi, (res.sent - res.received, (lo, hi))
    assert lab.netem_set("h1-a", loss=0).spec.empty  # back to zero: the rule goes
    assert lab.ping("h1-a", "h2-a", count=20, interval=0.01).received == 20


def test_rate_caps_iperf_and_flags_combine(lab: Engine) -> None:
    state = lab.netem_set("h1-a", rate=100)
    assert state.holds and any("tbf rate 100mbit" in c for c in state.commands), state
    # 4 s: a 2 s run loses 10-20% to one late end of test (the end message retransmitted
    # after TCP's 200 ms minimum RTO on the lossy tunnel, see bench_measure), seen twice
    mbit = lab.iperf("h1-a", "h2-a", seconds=4).received_bps / 1e6
    assert 85 <= mbit <= 115, mbit
    both = lab.netem_set("h1-a", delay=10, jitter=2, duplicate=1)
    assert both.spec.describe() == "delay 10 ms ±2 ms, duplicate 1%, rate 100 Mbit/s" and both.holds
    assert 8 <= median_rtt(lab, 20) <= 14


def test_bad_input_is_one_line_and_changes_nothing(lab: Engine) -> None:
    lab.netem_set("h1-a", delay=5)
    cases = (  # the CLI: one line on stderr, exit 2
        (("netem", "set", "ghost", "--delay", "5"), "unknown target 'ghost'"),
        (("fault", "inject", "no-such-fault"), "unknown fault 'no-such-fault'"),
    )
    runs = [  # side by side: each is a python start-up
        subprocess.Popen(
            [sys.executable, "-m", "workbench.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for args, _ in cases
    ]
    for (args, says), proc in zip(cases, runs, strict=True):
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and err.count("\n") == 1 and says in err, (args, err)
    for changes, says in (  # the same BadInput path, in process
        ({"delay": -3}, "--delay must be 0 or more"),
        ({"loss": 120}, "--loss is a percentage"),
        ({"jitter": 9}, "--jitter 9 ms is more than --delay 5 ms"),
    ):
        with pytest.raises(BadInput, match=says):
            lab.netem_set("h1-a", **changes)
    with pytest.raises(BadInput, match="--period must be"):
        lab.link_state("h1-a", "flap", period=0)
    _, states = lab.netem_show()
    assert [(s.target, s.spec.describe(), s.holds) for s in states] == [("h1-a", "delay 5 ms", True)]


def test_link_down_up_and_a_counted_flap(lab: Engine) -> None:
    out = lab.link_state("h1-a", "down")
    assert "link set cn-h1-a down" in out
    assert lab.ping("h1-a", "h2-a", count=2, interval=0.05, timeout=0.3).received == 0
    assert "[cn-h1-a down]" in render_status(lab.snapshot())  # the inventory shows it
    lab.link_state("h1-a", "up")
    assert lab.ping("h1-a", "h2-a", count=3, interval=0.05).received == 3
    assert "flapping every 0.4 s, 2 times" in lab.link_state("h1-a", "flap", period=0.4, count=2)
    assert "link set host1 down" in lab.link_state("host1:gre0", "down")  # its host's underlay port
    assert lab.ping("h1-a", "h2-a", count=2, interval=0.05, timeout=0.3).received == 0
    lab.link_state("host1:gre0", "up")
