"""The `containet-tui` process ends (screens/session.py): SIGTERM and a closed
terminal end it in a terminal; SIGTERM, "quit" and a textual-serve that went away
end it when served -- also when nobody reads its output any more, which is how
textual-serve leaves an app whose browser tab closed (its pump stops at the first
write after the websocket closed). Each within a few seconds, without spinning.

The real app, in its own process, on whatever lab the test instance has (it shows
"lab is down" without one): its watchers, workers and signal handling are the
point. The browser itself: test_browser.py."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = [sys.executable, "-m", "screens.app"]
#: the process must be gone this long after it was told to end (seconds)
ENDS_WITHIN = 5.0
#: what "not spinning" means: average CPU over the window, as a share of one core
MAX_CORE_SHARE = 0.5

pytestmark = pytest.mark.timeout(90)


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == b"Z":
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def watch_end(pids: list[int], window: float = ENDS_WITHIN) -> tuple[list[int], float]:
    """Sample the processes until all are gone or the window is over: (the pids
    still there, the CPU seconds they used meanwhile)."""
    start = {p: cpu_seconds(p) or 0.0 for p in pids}
    last = dict(start)
    deadline = time.monotonic() + window
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        for p in list(alive):
            now = cpu_seconds(p)
            if now is None:
                alive.remove(p)
            else:
                last[p] = now
    return alive, sum(last[p] - start[p] for p in pids)


def assert_ended(proc: subprocess.Popen[bytes], what: str) -> None:
    alive, used = watch_end([proc.pid])
    assert not alive, f"the app is still running {ENDS_WITHIN:g} s after {what}"
    assert used / ENDS_WITHIN < MAX_CORE_SHARE, f"it used {used:.2f} s of CPU on its way out"
    proc.wait(5)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


# --- in a terminal ------------------------------------------------------------------


@contextmanager
def in_a_terminal(nohup: bool = False) -> Iterator[tuple[subprocess.Popen[bytes], int, bytearray]]:
    """The app on a pseudo-terminal that is its controlling terminal (closing the
    master hangs it up, as closing a terminal window does); yields the process, the
    master and what the app drew, once it drew its title. nohup: started with
    SIGHUP ignored."""

    def child() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # the pty: its controlling terminal
        if nohup:
            signal.signal(signal.SIGHUP, signal.SIG_IGN)

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = dict(os.environ, TERM="xterm-256color")
    env.pop("TEXTUAL_DRIVER", None)
    proc = subprocess.Popen(
        APP,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        preexec_fn=child,
    )
    os.close(slave)
    drawn = bytearray()
    try:
        read_until(master, drawn, b"containet", timeout=30)
        yield proc, master, drawn
    finally:
        kill_group(proc)
        try:
            os.close(master)
        except OSError:
            pass


def read_until(fd: int, into: bytearray, needle: bytes, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while needle not in into:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not seen within {timeout:g} s: {bytes(into[-300:])!r}"
        if select.select([fd], [], [], min(left, 0.5))[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # EIO: the other side is gone
                chunk = b""
            if not chunk:
                raise AssertionError(f"the app ended before {needle!r}: {bytes(into[-300:])!r}")
            into += chunk


def drain(fd: int, into: bytearray, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            into += chunk


def test_sigterm_ends_the_app_in_a_terminal_and_restores_it() -> None:
    with in_a_terminal() as (proc, master, drawn):
        drain(master, drawn, 1.0)  # let it settle (watchers starting)
        before = len(drawn)
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + ENDS_WITHIN
        while proc.poll() is None and time.monotonic() < deadline:
            drain(master, drawn, 0.1)
        drain(master, drawn, 0.2)
        assert proc.poll() is not None, f"still running {ENDS_WITHIN:g} s after SIGTERM"
        assert proc.returncode == 128 + signal.SIGTERM, proc.returncode
        # the app's own way out: it left the alternate screen and showed the cursor again
        assert b"\x1b[?1049l" in drawn[before:], bytes(drawn[-200:])


@pytest.mark.parametrize("nohup", [False, True], ids=["hangup", "nohup"])
def test_closing_the_terminal_ends_the_app(nohup: bool) -> None:
    """nohup: SIGHUP ignored, the terminal's input reads as end of file for ever;
    Textual's input thread spun on it, the app stayed (about half a core here)."""
    with in_a_terminal(nohup) as (proc, master, drawn):
        drain(master, drawn, 1.0)
        os.close(master)  # the terminal window closes: SIGHUP, and a hung-up terminal
        assert_ended(proc, "its terminal closed")


# --- served (as textual-serve runs it) -------------------------------------------------


def packet(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


def meta(data: dict[str, object]) -> bytes:
    return packet(b"M", json.dumps(data).encode())


@contextmanager
def served() -> Iterator[subprocess.Popen[bytes]]:
    """The app as textual-serve starts it for a browser tab (its environment, the
    packet protocol on stdin and stdout), once it drew its title."""
    env = dict(
        os.environ,
        TEXTUAL_DRIVER="textual.drivers.web_driver:WebDriver",
        TEXTUAL_FPS="60",
        TEXTUAL_COLOR_SYSTEM="truecolor",
        TERM_PROGRAM="textual",
        COLUMNS="120",
        ROWS="40",
    )
    proc = subprocess.Popen(
        APP,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        bufsize=0,  # unbuffered: what readline leaves is still in the pipe for os.read
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"__GANGLION__\n"
        seen = bytearray()
        read_until(proc.stdout.fileno(), seen, b"containet", timeout=30)
        yield proc
    finally:
        kill_group(proc)
        for pipe in (proc.stdin, proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass


def send(proc: subprocess.Popen[bytes], data: bytes) -> None:
    assert proc.stdin is not None
    proc.stdin.write(data)
    proc.stdin.flush()


def stop_reading_and_redraw(proc: subprocess.Popen[bytes]) -> None:
    """What a closed tab leaves: textual-serve no longer reads the app's output, and
    the app has screenfuls to write (the browser's last resizes): more than the pipe
    holds, so a blocking write would wait for good."""
    for n in range(8):
        send(proc, meta({"type": "resize", "width": 200 + n % 2, "height": 60}))
        time.sleep(0.15)


def test_served_app_ends_on_sigterm_though_nobody_reads_it() -> None:
    with served() as proc:
        stop_reading_and_redraw(proc)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert_ended(proc, "SIGTERM")


def test_served_app_ends_on_quit_though_nobody_reads_it() -> None:
    """textual-serve's way when the tab closes: its pump stopped reading, then "quit"."""
    with served() as proc:
        stop_reading_and_redraw(proc)
        send(proc, meta({"type": "quit"}))
        assert_ended(proc, '"quit"')


def test_served_app_ends_when_textual_serve_is_gone() -> None:
    """No "quit": the server died, the app's input ends (and its output is closed)."""
    with served() as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        proc.stdout.close()
        assert_ended(proc, "its input and output closed")


def test_served_app_quits_cleanly_while_read() -> None:
    """The ordinary close: "quit" while textual-serve still reads; the app says "exit"."""
    with served() as proc:
        send(proc, meta({"type": "quit"}))
        assert proc.stdout is not None
        rest = proc.stdout.read()  # to the end: the app closed its output, i.e. exited
        assert b'"type": "exit"' in rest
        assert proc.wait(ENDS_WITHIN) == 0


# --- a worker that does not end ------------------------------------------------------

SLOW_WORKER_APP = """
import sys, time
from textual import work
from textual.app import App
from screens.session import run

class Slow(App[None]):
    def on_mount(self) -> None:
        self.busy()
        self.set_timer(0.5, self.exit)

    @work(thread=True)
    def busy(self) -> None:
        time.sleep(120)  # a measurement, a lab being built: not cancellable

sys.exit(run(Slow()))
"""


def test_a_worker_that_does_not_end_does_not_keep_the_process() -> None:
    """asyncio.run waited for every thread worker at the end, however long it took."""
    env = dict(os.environ, TEXTUAL_DRIVER="textual.drivers.web_driver:WebDriver", COLUMNS="80", ROWS="24")
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WORKER_APP],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        started = time.monotonic()
        assert proc.wait(ENDS_WITHIN + 5) == 0  # quits after 0.5 s, then GRACE at most
        assert time.monotonic() - started < ENDS_WITHIN + 3
    finally:
        kill_group(proc)
        assert proc.stdin is not None
        proc.stdin.close()
