"""workbench.exits: SIGTERM, SIGHUP and a closed stdout take Ctrl-C's path, so
`finally` blocks run; no traceback. Each case is a small Python program run as a
child process (signals and pipes are process-wide), bounded in time."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench import exits

PROGRAM = """
import sys, threading, time
from workbench import exits

MARK = sys.argv[1]

def note(text):
    with open(MARK, "a") as fh:
        fh.write(text + "\\n")

def main():
    try:
{body}
        return 0
    finally:
        note("finally")
        print("cleaning up")  # a print in the cleanup: harmless once stdout is gone
        with exits.shielded():
            time.sleep({cleanup})  # a signal meanwhile waits for the end of the block
            note("cleaned")

sys.exit(exits.run_main(main, "prog"))
"""

#: main waits, ready for a signal
WAIT = """
        print("ready", file=sys.stderr, flush=True)
        time.sleep(10)
"""
#: main prints a line every 20 ms
LINES = """
        for i in range(500):
            print("line", i)
            time.sleep(0.02)
"""
#: a worker thread prints, main waits for it without a timeout
WORKER = """
        def work():
            for i in range(500):
                print("line", i)
                time.sleep(0.02)
        t = threading.Thread(target=work, daemon=True)
        t.start()
        t.join()
"""


@pytest.fixture
def mark(tmp_path: Path) -> Path:
    return tmp_path / "mark"


def start(body: str, mark: Path, cleanup: float = 0.0, background: bool = False) -> subprocess.Popen[str]:
    """The program in a child; `background`: started as a script's `cmd &` starts it
    (a non-interactive shell sets SIGINT and SIGQUIT to ignored)."""
    code = PROGRAM.format(body=textwrap.indent(textwrap.dedent(body), " " * 8), cleanup=cleanup)
    return subprocess.Popen(
        [sys.executable, "-c", code, str(mark)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_background if background else None,
    )


def _as_background() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait(5)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_runs_the_cleanup(
    sig: signal.Signals, mark: Path, procs: list[subprocess.Popen[str]]
) -> None:
    p = start(WAIT, mark)
    procs.append(p)
    assert p.stderr is not None and p.stderr.readline() == "ready\n"
    p.send_signal(sig)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 128 + sig
    assert mark.read_text() == "finally\ncleaned\n"
    assert out == "cleaning up\n"
    assert err == f"prog: stopped by {sig.name}\n"


def test_sigint_stops_a_command_a_script_started_in_the_background(
    mark: Path, procs: list[subprocess.Popen[str]]
) -> None:
    p = start(WAIT, mark, background=True)
    procs.append(p)
    assert p.stderr is not None and p.stderr.readline() == "ready\n"
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=5)  # ignored, it would sleep its 10 s out
    assert p.returncode == 130 and err == "prog: interrupted\n"
    assert mark.read_text() == "finally\ncleaned\n"


def test_a_second_signal_waits_for_the_cleanup(mark: Path, procs: list[subprocess.Popen[str]]) -> None:
    p = start(WAIT, mark, cleanup=0.5)
    procs.append(p)
    assert p.stderr is not None and p.stderr.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    time.sleep(0.2)  # inside the shielded cleanup now
    p.send_signal(signal.SIGTERM)
    p.send_signal(signal.SIGHUP)
    _out, err = p.communicate(timeout=10)
    assert p.returncode == 143
    assert mark.read_text() == "finally\ncleaned\n"
    assert "Traceback" not in err


def test_a_signal_in_the_cleanup_comes_after_it(mark: Path, procs: list[subprocess.Popen[str]]) -> None:
    p = start("print('done', file=sys.stderr, flush=True)", mark, cleanup=0.5)
    procs.append(p)
    assert p.stderr is not None and p.stderr.readline() == "done\n"
    time.sleep(0.2)  # the run ended; its cleanup is under way
    p.send_signal(signal.SIGTERM)
    _out, err = p.communicate(timeout=10)
    assert mark.read_text() == "finally\ncleaned\n"
    assert p.returncode == 143 and err == "prog: stopped by SIGTERM\n"


@pytest.mark.parametrize("body", [LINES, WORKER], ids=["main thread", "worker thread"])
def test_a_closed_stdout_ends_quietly(body: str, mark: Path, procs: list[subprocess.Popen[str]]) -> None:
    """`prog | head -1`: the reader takes a line and goes; the program ends at its
    next line (not after its 500), with its cleanup, exit status 141, nothing on stderr."""
    p = start(body, mark)
    procs.append(p)
    assert p.stdout is not None and p.stdout.readline() == "line 0\n"
    t0 = time.monotonic()
    p.stdout.close()
    assert p.stderr is not None
    err = p.stderr.read()
    p.wait(10)
    assert time.monotonic() - t0 < 3
    assert p.returncode == exits.CLOSED_OUTPUT == 141
    assert err == ""
    assert mark.read_text() == "finally\ncleaned\n"


def test_in_process_it_leaves_things_as_they_were(capsys: pytest.CaptureFixture[str]) -> None:
    before_out, before_term = sys.stdout, signal.getsignal(signal.SIGTERM)
    with exits.handled() as guard:
        print("through the guard")
        assert signal.getsignal(signal.SIGTERM) is not before_term
    assert sys.stdout is before_out and signal.getsignal(signal.SIGTERM) is before_term
    assert guard.stop is None and guard.code(7) == 7
    assert capsys.readouterr().out == "through the guard\n"
    assert exits.exit_code(KeyboardInterrupt()) == 130
    assert exits.describe(KeyboardInterrupt()) == "interrupted"
    assert exits.describe(exits.Stop("output closed", 141)) is None
