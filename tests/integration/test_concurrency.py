"""One change at a time: `scenario apply exp1` and `scenario apply exp2` started at
the same moment, as two terminals would. Exactly one applies, the other is told
who holds the lab's lock, waits, then refuses in one line; the lab is exactly
one scenario afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from workbench.engine import Engine

pytestmark = pytest.mark.lab


def _undo_active(engine: Engine) -> None:
    active = engine.active()  # only the applied scenario may be undone
    if active is not None:
        engine.undo(active.scenario)


@pytest.fixture
def lab(lab_engine: Engine) -> Iterator[Engine]:
    _undo_active(lab_engine)
    try:
        yield lab_engine
    finally:
        _undo_active(lab_engine)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),  # the suite's instance (CONTAINET_INSTANCE)
    )


def test_two_applies_at_once_leave_exactly_one_scenario(lab: Engine) -> None:
    procs = {name: start("scenario", "apply", name) for name in ("exp1", "exp2")}
    results = {name: (p.wait(timeout=180), *p.communicate()) for name, p in procs.items()}
    winners = [name for name, (rc, _out, _err) in results.items() if rc == 0]
    assert len(winners) == 1, results
    winner = winners[0]
    loser = "exp2" if winner == "exp1" else "exp1"
    rc, _out, err = results[loser]
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc != 0 and lines[-1] == (
        f"containet: error: scenario {winner} is applied: `containet scenario undo {winner}` first"
    ), err
    # (the loser may have found the lock free for a moment; when it waited, it said for whom)
    assert all("waiting for the lab lock, held by" in line for line in lines[:-1]), err
    active = lab.active()
    assert active is not None and active.scenario == winner
    assert all(lab.status(winner))
    # nothing of the other scenario's own wiring is there (exp1: docker0; exp2: veths on br0)
    # (steps are compared by intent: exp1 and exp2 both have a "plumb:h1-a", wired differently)
    mine = {s.intent for s in lab.plan(winner).steps}
    other = lab.plan(loser)
    held = dict(zip(other.steps, lab.status(loser), strict=True))
    theirs = [s for s in other.steps if s.intent not in mine]
    assert theirs and not any(held[s] for s in theirs), [s.id for s in theirs if held[s]]
