"""Every exit path cleans up (issue 18, item 7): a benchmark stopped by SIGTERM or
SIGHUP, or whose reader goes away (`python bench/bench_tui.py | head -1`),
removes its whole lab; a CLI command whose stdout closes early ends without a
traceback. Each bench runs in an instance of its own, as a child process in its
own session, bounded in time, and its instance is cleaned in `finally`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests_support import NOTHING, leftovers

from workbench.marks import INSTANCE

ROOT = Path(__file__).resolve().parents[2]


def env(instance: str) -> dict[str, str]:
    return dict(os.environ, CONTAINET_INSTANCE=instance)


def group(pgid: int) -> list[int]:
    """Live processes of a process group (a bench's children it left behind)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(pid))
    return out


@pytest.fixture
def bench() -> Iterator[Callable[[str, str], subprocess.Popen[str]]]:
    """bench(script, instance): the benchmark, --quick, started in its own session."""
    started: list[tuple[subprocess.Popen[str], str]] = []

    def start(script: str, instance: str) -> subprocess.Popen[str]:
        p = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / script), "--quick"],
            cwd=ROOT,
            env=env(instance),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append((p, instance))
        return p

    yield start
    for p, instance in started:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)
        subprocess.run(
            [sys.executable, "-m", "workbench.cli", "clean"],
            capture_output=True,
            timeout=120,
            env=env(instance),
        )


def wait_for_lab(p: subprocess.Popen[str], instance: str, timeout: float = 90) -> None:
    """Until the bench's lab has its namespaces and containers (it is mid-run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            pytest.fail(f"the bench ended before its lab was up: {p.returncode}")
        left = leftovers(instance)
        if left["namespaces"] and left["containers"]:
            return
        time.sleep(0.1)
    pytest.fail(f"no lab of instance {instance} within {timeout:.0f} s")


@pytest.mark.lab
@pytest.mark.parametrize(
    ("script", "sig", "after"),
    [
        ("bench_scenario.py", signal.SIGTERM, 0.0),  # while it builds exp1 again and again
        ("bench_scenario.py", signal.SIGHUP, 0.0),
        ("bench_qos.py", signal.SIGTERM, 2.0),  # iperf children running
    ],
    ids=["scenario-SIGTERM", "scenario-SIGHUP", "qos-SIGTERM"],
)
def test_a_signal_cleans_up_a_bench(
    bench: Callable[[str, str], subprocess.Popen[str]], script: str, sig: signal.Signals, after: float
) -> None:
    instance = f"{INSTANCE[:5]}x{script[6]}{sig.name[3]}".lower()
    p = bench(script, instance)
    wait_for_lab(p, instance)
    time.sleep(after)
    p.send_signal(sig)
    _out, err = p.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert p.returncode == 128 + sig, err
    assert err.endswith(f"{script}: stopped by {sig.name}\n"), err
    assert leftovers(instance) == NOTHING
    assert group(p.pid) == []  # no child of the bench left running either


@pytest.mark.lab
def test_a_closed_output_cleans_up_a_bench(bench: Callable[[str, str], subprocess.Popen[str]]) -> None:
    """`python bench/bench_tui.py --quick | head -1`: the reader takes the first line
    and goes while the lab is up; the bench stops at its next line, cleaned up."""
    instance = f"{INSTANCE[:5]}xtp"
    p = bench("bench_tui.py", instance)
    assert p.stdout is not None and p.stderr is not None
    assert p.stdout.readline().startswith(f"instance {instance}:")
    wait_for_lab(p, instance)
    p.stdout.close()
    err = p.stderr.read()
    p.wait(150)
    assert "Traceback" not in err and "Error" not in err, err
    assert p.returncode == 141, err
    assert leftovers(instance) == NOTHING
    assert group(p.pid) == []


def cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", *args],
        env=env(INSTANCE),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def closed_early(*args: str, first_line: bool = False) -> tuple[int, str, float]:
    """Run the CLI with a reader that closes its end at once (or after the first
    line): (exit status, stderr, seconds from the close to the exit)."""
    p = cli(*args)
    assert p.stdout is not None and p.stderr is not None
    if first_line:
        p.stdout.readline()
    t0 = time.monotonic()
    p.stdout.close()
    err = p.stderr.read()
    p.wait(60)
    return p.returncode, err, time.monotonic() - t0


def test_cli_output_closed_without_a_lab() -> None:
    for args in (["--help"], ["scenario", "list"], ["scenario", "export", "exp3"]):
        code, err, _secs = closed_early(*args)
        assert err == "", (args, err)
        assert code in (0, 141), (args, code)  # 0: it all fit in the pipe before the close


@pytest.mark.lab
def test_cli_output_closed_and_signals(applied: Callable[[str], object]) -> None:
    applied("exp1")
    # `containet pingall | head -1` whose reader is gone before the matrix comes
    code, err, _secs = closed_early("pingall")
    assert (code, err) == (141, "")
    # live lines: the reader takes one and goes; the ping ends at the next reply
    code, err, secs = closed_early("ping", "h1-a", "h2-a", "-c", "100", "-i", "0.05", first_line=True)
    assert (code, err) == (141, "")
    assert secs < 3  # not the 5 s of 100 probes
    # SIGTERM: Ctrl-C's path, the partial result printed
    p = cli("ping", "h1-a", "h2-a", "-c", "100", "-i", "0.05")
    assert p.stdout is not None
    assert " from h2-a" in p.stdout.readline()
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 143
    assert err == "containet: stopped by SIGTERM\n"
    assert "packets transmitted" in out
