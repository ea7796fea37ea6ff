"""Containet's helper processes: the delay line (relay.py) and the link flapper
(flap.py), started as children in a namespace and marked.

Their mark: the script's path and a pidfile under this instance's run directory
(RUN_DIR/impair/) on their command line. `marked()` finds them by that alone, so
`containet clean` stops them after a crash too, and never anyone else's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..host import Place
from ..marks import RUN_DIR
from ..ovs import pid_alive

DIR = RUN_DIR / "impair"
HERE = Path(__file__).resolve().parent
SCRIPTS = {"relay": HERE / "relay.py", "flap": HERE / "flap.py"}


def pidfile(kind: str, key: str) -> Path:
    return DIR / f"{kind}-{key}.pid"


def argv(kind: str, key: str, args: list[str]) -> list[str]:
    """The command line of a helper: python3 SCRIPT --mark PIDFILE ARGS."""
    return [sys.executable, str(SCRIPTS[kind]), "--mark", str(pidfile(kind, key)), *args]


def shown(kind: str, key: str, args: list[str]) -> str:
    """As a person would type it (python3 for the interpreter, in the background)."""
    return " ".join(["python3", str(SCRIPTS[kind]), "--mark", str(pidfile(kind, key)), *args, "&"])


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [w.decode(errors="replace") for w in fh.read().split(b"\0") if w]
    except OSError:
        return []


def args_of(pid: int) -> list[str]:
    """A process's command line (empty when it is gone)."""
    return _cmdline(pid)


def is_ours(pid: int) -> bool:
    words = _cmdline(pid)
    mark = str(DIR) + "/"
    return any(w in (str(s) for s in SCRIPTS.values()) for w in words) and any(
        w.startswith(mark) for w in words
    )


def pid_of(kind: str, key: str) -> int | None:
    try:
        pid = int(pidfile(kind, key).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if is_ours(pid) and str(pidfile(kind, key)) in _cmdline(pid) else None


def start(place: Place, kind: str, key: str, args: list[str], wait: float = 3.0) -> int:
    """Start a helper in `place`; returns its pid once it has written its pidfile
    (it has opened its sockets by then)."""
    stop(kind, key)
    DIR.mkdir(parents=True, exist_ok=True)
    log = open(DIR / f"{kind}-{key}.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            place.exec_argv(argv(kind, key, args)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # a Ctrl-C of the CLI does not reach it
        )
    finally:
        log.close()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        pid = pid_of(kind, key)
        if pid is not None:
            return pid
        if proc.poll() is not None:
            tail = (DIR / f"{kind}-{key}.log").read_text(errors="replace").strip().splitlines()
            raise RuntimeError(f"the {kind} helper ended at once: {tail[-1] if tail else proc.returncode}")
        time.sleep(0.01)
    raise RuntimeError(f"the {kind} helper did not start within {wait:g} s")


def stop_pid(pid: int, wait: float = 3.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)  # our child: reap it
        except ChildProcessError:
            done = 0 if pid_alive(pid) else pid
        if done:
            return
        time.sleep(0.01)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop(kind: str, key: str) -> bool:
    pid = pid_of(kind, key)
    if pid is not None:
        stop_pid(pid)
    pidfile(kind, key).unlink(missing_ok=True)
    return pid is not None


def marked() -> list[int]:
    """Every helper process of this instance (by its command line alone)."""
    return sorted(int(e) for e in os.listdir("/proc") if e.isdigit() and is_ours(int(e)))
