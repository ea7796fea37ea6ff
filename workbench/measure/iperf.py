"""Throughput between two containers with the iperf3 library (libiperf).

How a run goes (one per repeat):

1. a *server* child process enters DST's namespace, picks a free port (5201..5210,
   else any), and runs one libiperf server test in **text mode**, its stdout going to
   a pipe of its own, line-buffered. A thread in the child parses each report line
   (`iperf_data.parse_interval_line`) and sends "listening", each interval, and
   errors to us over a multiprocessing pipe;
2. once the server listens, a *client* child enters SRC's namespace and runs the
   libiperf client in **JSON mode**; its final JSON is the authoritative result.

Why this split: libiperf 3.12 only emits JSON at the end of a test, but prints a
text line per interval while it runs. The server's lines are the receiver's view
(what really arrived each second; with --reverse the server is the sender and its
lines carry retransmits), which is the honest live figure for a sparkline. The
final figures (sent, received, retransmits, per-interval, CPU) come from the
client's JSON, as `iperf3 -J` reports them.

Every wait has a deadline: the server must listen within START_TIMEOUT, the client
must finish within the test duration + GRACE; then both children are terminated,
then killed. `cancel` is checked every 0.2 s.
"""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInput, WorkbenchError
from ..host import Place
from ..marks import RUN_DIR
from ..ovs import pid_alive
from .iperf_data import (
    IperfInterval,
    IperfResult,
    RunFigures,
    assess,
    combine,
    figures_from_json,
    format_interval,
    format_result,
)
from .stats import parse_rate

__all__ = [
    "IperfInterval",
    "IperfOptions",
    "IperfResult",
    "format_interval",
    "format_result",
    "reap_stale",
    "run_iperf",
]

SERVER_PORTS = tuple(range(5201, 5211))
START_TIMEOUT = 10.0  # spawn + import + listen
GRACE = 10.0  # beyond the test duration: connect, exchange results
CONNECT_TIMEOUT_MS = 3000
SLICE = 0.2
MIN_INTERVAL = 0.1  # a test's last, shorter interval below this is noise, not a point
REGISTRY = RUN_DIR / "iperf"

OnInterval = Callable[[IperfInterval], None]


@dataclass(frozen=True)
class IperfOptions:
    seconds: float = 3.0
    parallel: int = 1
    udp: bool = False
    bitrate: str | None = None
    reverse: bool = False
    repeat: int = 1
    udp_blksize: int = 1410

    def check(self) -> IperfOptions:
        """Bounds that keep a run finite (and the library's report inside its pipe)."""
        if not 1 <= self.seconds <= 60:
            raise BadInput(f"bad duration {self.seconds}: use 1 to 60 seconds")
        if not 1 <= self.parallel <= 16:
            raise BadInput(f"bad parallel {self.parallel}: use 1 to 16 streams")
        if not 1 <= self.repeat <= 20:
            raise BadInput(f"bad repeat {self.repeat}: use 1 to 20")
        if self.bitrate is not None:
            parse_rate(self.bitrate)
        return self

    @property
    def duration(self) -> int:
        """libiperf takes whole seconds."""
        return max(1, math.ceil(self.seconds))

    def settings(self) -> dict[str, Any]:
        rate = parse_rate(self.bitrate) if self.bitrate else (10**6 if self.udp else 0)
        return {
            "duration": self.duration,
            "parallel": self.parallel,
            "udp": self.udp,
            "bitrate": rate,
            "reverse": self.reverse,
            "udp_blksize": self.udp_blksize,
            "connect_timeout_ms": CONNECT_TIMEOUT_MS,
        }


# --- leftovers of killed runs -------------------------------------------------------
def _start_ticks(pid: int) -> str | None:
    """A process's start time (field 22 of /proc/PID/stat): tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _register(pid: int) -> Path | None:
    REGISTRY.mkdir(parents=True, exist_ok=True)
    path = REGISTRY / f"{pid}.json"
    path.write_text(json.dumps({"owner": os.getpid(), "pid": pid, "ticks": _start_ticks(pid)}))
    return path


def reap_stale() -> list[int]:
    """Kill iperf children whose owner is gone (e.g. `containet iperf` was SIGKILLed);
    the pids killed. Only processes recorded in this instance's registry are touched."""
    killed: list[int] = []
    if not REGISTRY.is_dir():
        return killed
    for entry in REGISTRY.glob("*.json"):
        try:
            rec = json.loads(entry.read_text())
        except (OSError, ValueError):
            entry.unlink(missing_ok=True)
            continue
        if pid_alive(int(rec["owner"])):
            continue
        pid = int(rec["pid"])
        if _start_ticks(pid) is not None and _start_ticks(pid) == rec.get("ticks"):
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        entry.unlink(missing_ok=True)
    return killed


# --- one run ------------------------------------------------------------------------
class _Child:
    """`python -m workbench.measure.iperf_child` with a reader thread; stopped for sure in `stop`.

    Its JSON-line messages land in the shared `inbox` tagged with `tag`; (tag, "eof", None)
    marks the child's end."""

    def __init__(self, tag: str, inbox: queue.Queue[tuple[str, str, Any]], **args: Any) -> None:
        argv = [
            sys.executable,
            "-m",
            "workbench.measure.iperf_child",
            json.dumps({**args, "parent_pid": os.getpid()}),
        ]
        self.tag = tag
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True
        )
        self.record = _register(self.proc.pid)
        self.reader = threading.Thread(target=self._read, args=(inbox,), name=f"iperf-{tag}", daemon=True)
        self.reader.start()

    def _read(self, inbox: queue.Queue[tuple[str, str, Any]]) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                kind, value = json.loads(line)
            except ValueError:
                continue
            inbox.put((self.tag, str(kind), value))
        inbox.put((self.tag, "eof", None))

    def stop(self, grace: float = 0.0) -> None:
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(1.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(1.0)
        self.reader.join(1.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.record is not None:
            self.record.unlink(missing_ok=True)


@dataclass
class _Run:
    figures: RunFigures | None = None
    live: list[IperfInterval] | None = None
    warnings: tuple[str, ...] = ()


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def _busy_pct(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    total = after[1] - before[1]
    return 100.0 * (after[0] - before[0]) / total if total > 0 else None


class _Session:
    """One run's two children and the messages they send."""

    def __init__(self, on_interval: OnInterval | None) -> None:
        self.inbox: queue.Queue[tuple[str, str, Any]] = queue.Queue()
        self.on_interval = on_interval
        self.live: list[IperfInterval] = []
        self.children: list[_Child] = []

    def start(self, tag: str, **args: Any) -> _Child:
        child = _Child(tag, self.inbox, **args)
        self.children.append(child)
        return child

    def next(self, timeout: float) -> tuple[str, str, Any] | None:
        """The next message (intervals are streamed and recorded on the way), or None."""
        try:
            tag, kind, value = self.inbox.get(timeout=timeout)
        except queue.Empty:
            return None
        if tag == "server" and kind == "interval":
            iv = IperfInterval(**value)
            if iv.end - iv.start < MIN_INTERVAL:
                return tag, "tail", value
            self.live.append(iv)
            if self.on_interval is not None:
                self.on_interval(iv)
        return tag, kind, value

    def drain(self) -> None:
        while self.next(0) is not None:
            pass

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()
        self.drain()


def _wait_listening(session: _Session, cancel: threading.Event) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline and not cancel.is_set():
        msg = session.next(SLICE)
        if msg is None:
            continue
        _tag, kind, value = msg
        if kind == "listening":
            return int(value)
        if kind == "error":
            raise WorkbenchError(f"iperf3 server: {value}")
        if kind == "eof":
            raise WorkbenchError("iperf3 server exited before listening")
    if cancel.is_set():
        return 0
    raise WorkbenchError(f"iperf3 server did not listen within {START_TIMEOUT:.0f}s")


def _wait_report(session: _Session, deadline: float, cancel: threading.Event) -> str | None:
    while time.monotonic() < deadline and not cancel.is_set():
        msg = session.next(SLICE)
        if msg is None:
            continue
        tag, kind, value = msg
        if tag != "client":
            continue
        if kind == "error":
            raise WorkbenchError(f"iperf3 client: {value}")
        if kind == "result":
            return str(value)
        if kind == "eof":
            raise WorkbenchError("iperf3 client exited without a report")
    return None


def _run_once(
    src: Place,
    dst: Place,
    dst_ip: str,
    opts: IperfOptions,
    on_interval: OnInterval | None,
    cancel: threading.Event,
) -> _Run:
    if src.path is None or dst.path is None:
        raise BadInput("iperf runs between containers (namespaces), not in the root namespace")
    session = _Session(on_interval)
    run = _Run(live=session.live)
    try:
        session.start(
            "server",
            role="server",
            ns_path=dst.path,
            ports=list(SERVER_PORTS),
            udp=opts.udp,
            streams=opts.parallel,
        )
        port = _wait_listening(session, cancel)
        if cancel.is_set():
            return run
        cpu0 = _cpu_times()
        session.start(
            "client", role="client", ns_path=src.path, host=dst_ip, port=port, settings=opts.settings()
        )
        report = _wait_report(session, time.monotonic() + opts.duration + GRACE, cancel)
        busy = _busy_pct(cpu0, _cpu_times())
        if report is not None:
            session.children[0].stop(grace=1.0)  # the server ends by itself; its last lines arrive
            session.drain()
            run.figures = figures_from_json(report)
            run.warnings = assess(run.figures, busy)
        elif not cancel.is_set():
            run.warnings = (
                f"no result: the client did not finish within {opts.duration + GRACE:.0f}s "
                "(a stalled path? the MTU trap?)",
            )
        return run
    finally:
        session.stop()


def partial_figures(live: list[IperfInterval], protocol: str) -> RunFigures | None:
    """A cancelled run: its figures from the live intervals seen so far."""
    if not live:
        return None
    span = sum(iv.end - iv.start for iv in live)
    bps = sum(iv.bits_per_second * (iv.end - iv.start) for iv in live) / span if span > 0 else 0.0
    retr = [iv.retransmits for iv in live if iv.retransmits is not None]
    return RunFigures(
        protocol=protocol,
        seconds=span,
        sent_bytes=0,
        sent_bps=bps,
        received_bytes=int(bps * span / 8),
        received_bps=bps,
        retransmits=sum(retr) if retr else None,
        mss=1448,
        lost_pct=None,
        intervals=tuple(live),
        cpu={},
    )


def run_iperf(
    src_name: str,
    src: Place,
    dst_name: str,
    dst: Place,
    dst_ip: str,
    opts: IperfOptions,
    *,
    on_interval: OnInterval | None = None,
    cancel: threading.Event | None = None,
) -> IperfResult:
    """iperf3 from src to dst (server in dst), `opts.repeat` times; partial if cancelled."""
    opts.check()
    cancel = cancel or threading.Event()
    reap_stale()
    protocol = "UDP" if opts.udp else "TCP"
    done: list[tuple[RunFigures, tuple[str, ...]]] = []
    notes: list[str] = []
    for _ in range(opts.repeat):
        if cancel.is_set():
            break
        run = _run_once(src, dst, dst_ip, opts, on_interval, cancel)
        notes += [w for w in run.warnings if run.figures is None]
        if run.figures is not None:
            done.append((run.figures, run.warnings))
        elif cancel.is_set():
            part = partial_figures(run.live or [], protocol)
            if part is not None:
                done.append((part, ()))
    if cancel.is_set():
        notes.append(f"cancelled: partial result ({len(done)} of {opts.repeat} run(s))")
    return combine(src_name, dst_name, done, protocol, notes)
