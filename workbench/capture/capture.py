"""A capture: tcpdump started inside the target's namespace, writing pcap to a
pipe; frames are read into a ring buffer bounded in bytes, the capture in count
and time; it stops on request, at its bounds, or when its port disappears.

Why tcpdump and not an AF_PACKET socket read from Python: libpcap reads the
kernel's TPACKET_V3 ring (mmap, no syscall per frame), compiles and checks the
BPF filter (a bad filter is a clear one-line error before anything starts),
cuts frames to the snap length in the kernel, and hands Python pcap in large
chunks. Measured on this machine with iperf over GRE and the capture reading
every frame of the underlay NIC, both cost about the same throughput; tcpdump
also gives the bounded kernel buffer (-B) and the count (-c) for free. What
costs throughput is waking up per frame (--immediate-mode) and copying whole
frames: a capture keeps 256 bytes of each (every header; -s for more) and takes
frames a block at a time (bench/bench_capture.py).

tcpdump is marked as ours: its filter file lives under containet's run
directory, so its command line names it and `containet clean` finds it; it also
dies with the thread that started it (setpriv --pdeathsig).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import BadInput, NotReady, WorkbenchError
from ..marks import RUN_DIR
from ..ovs import pids_running
from . import mirror
from .decode import Frame, decode
from .pcap import Record, StreamReader, Writer
from .where import Target
from .xray import PathContext, Xray, xray

CAPTURE_DIR = RUN_DIR / "captures"
TCPDUMP = "tcpdump"
READY_WAIT = 5.0  # seconds for tcpdump to say "listening on"
STOP_WAIT = 2.0
#: libpcap hands frames over a block at a time, a block at most 1 s after its first frame:
#: a stop keeps reading this long so that the last frames are not lost
FLUSH_WAIT = 1.1
CHECK_EVERY = 0.5  # seconds between checks that the namespace and device still exist
MAX_SECONDS = 3600.0
GONE_WORDS = ("disappeared", "went down", "no such device", "not up", "network is down")


@dataclass(frozen=True)
class CaptureOptions:
    count: int = 20  # frames, then stop (0: until the time bound or a stop)
    seconds: float = 10.0  # then stop
    filter: str = ""  # a tcpdump (BPF) filter expression
    snaplen: int = 256  # bytes kept of each frame: every header of a wrapped, tagged TCP frame
    ring_bytes: int = 4 << 20  # the frames kept in memory: the newest, at most this many bytes
    write: str | None = None  # a pcap file, written as frames come

    def check(self) -> CaptureOptions:
        if self.count < 0 or self.count > 10_000_000:
            raise BadInput(f"bad count {self.count}: 0 (no limit) to 10000000 frames")
        if not 0 < self.seconds <= MAX_SECONDS:
            raise BadInput(f"bad duration {self.seconds:g} s: more than 0, at most {MAX_SECONDS:.0f}")
        if not 64 <= self.snaplen <= 262144:
            raise BadInput(f"bad snap length {self.snaplen}: 64 to 262144 bytes")
        if not 64 << 10 <= self.ring_bytes <= 1 << 30:
            raise BadInput(f"bad ring size {self.ring_bytes}: 64 KiB to 1 GiB")
        if "\n" in self.filter or "\0" in self.filter:
            raise BadInput("bad capture filter: one line, please")
        if self.write is not None:
            parent = Path(self.write).expanduser().resolve().parent
            if not parent.is_dir():
                raise BadInput(f"cannot write {self.write}: no directory {parent}")
        return self


@dataclass
class CaptureResult:
    label: str
    ended: str = ""  # count, time, stopped, gone, error
    message: str = ""
    seen: int = 0  # frames read from tcpdump
    kept: int = 0  # frames in the ring at the end
    ring_limit: int = 0
    ring_peak: int = 0  # the most bytes the ring ever held
    kernel_dropped: int | None = None
    seconds: float = 0.0
    written: int = 0
    path: str | None = None
    records: list[Record] = field(default_factory=list)
    context: PathContext = field(default_factory=PathContext)

    def frames(self) -> list[Frame]:
        return frames(self.records)

    def xrays(self) -> list[Xray]:
        return [xray(f, self.context) for f in self.frames()]

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.label,
            "ended": self.ended,
            "message": self.message,
            "seen": self.seen,
            "kept": self.kept,
            "ring_limit": self.ring_limit,
            "ring_peak": self.ring_peak,
            "kernel_dropped": self.kernel_dropped,
            "seconds": round(self.seconds, 3),
            "written": self.written,
            "path": self.path,
        }


def check_filter(expr: str) -> None:
    """Compile the filter (tcpdump -d, on loopback) or raise BadInput with tcpdump's reason."""
    if not expr.strip():
        return
    CAPTURE_DIR.mkdir(parents=True, exist_ok=True)
    path = CAPTURE_DIR / f"check-{os.getpid()}-{threading.get_ident()}.bpf"
    path.write_text(expr + "\n")
    try:
        proc = subprocess.run(
            [TCPDUMP, "-i", "lo", "-d", "-F", str(path)], capture_output=True, text=True, timeout=10
        )
    except FileNotFoundError as exc:
        raise NotReady("tcpdump is not installed: run the README's install command") from exc
    finally:
        path.unlink(missing_ok=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        why = lines[-1].removeprefix("tcpdump: ") if lines else f"exit code {proc.returncode}"
        raise BadInput(f"bad capture filter {expr!r}: {why}")


def _count_dropped(lines: list[str]) -> int | None:
    for line in lines:
        words = line.split()
        if line.endswith("dropped by kernel") and words and words[0].isdigit():
            return int(words[0])
    return None


class Capture:
    """One running capture. start() returns once tcpdump listens; stop() ends it
    and returns the result; frames arrive through `on_record` (from the reader
    thread) and stay in `records()` (the ring)."""

    def __init__(
        self,
        target: Target,
        opts: CaptureOptions,
        on_record: Callable[[Record], None] | None = None,
    ) -> None:
        self.target = target
        self.opts = opts.check()
        self.on_record = on_record
        self._ring: deque[Record] = deque()
        self._ring_bytes = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._stderr: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._filter_file: Path | None = None
        self._iface = target.iface
        self._mirror_port: str | None = None
        self.result = CaptureResult(
            target.label, ring_limit=opts.ring_bytes, path=opts.write, context=target.context
        )
        self._thread = threading.Thread(target=self._run, name=f"capture:{target.label}", daemon=True)
        self._started = 0.0

    # --- the caller's side
    def start(self) -> Capture:
        check_filter(self.opts.filter)
        if self.target.mirror is not None:
            self._mirror_port = mirror.add(self.target.mirror, mirror.mirror_name())
            self._iface = self._mirror_port
        self._started = time.monotonic()
        self._thread.start()
        self._ready.wait(READY_WAIT + 1)
        if self._error is not None:
            self._thread.join(STOP_WAIT * 2)
            raise self._error
        if not self._ready.is_set():
            self.stop()
            raise WorkbenchError(
                f"tcpdump did not start listening on {self.target.label} in {READY_WAIT:.0f} s"
            )
        return self

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def records(self) -> list[Record]:
        with self._lock:
            return list(self._ring)

    def request_stop(self) -> None:
        """Ask the capture to end (it reads what libpcap still holds first); stop() waits."""
        self._stop.set()

    def stop(self) -> CaptureResult:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(STOP_WAIT * 3)
        return self.result

    def wait(self, cancel: threading.Event | None = None) -> CaptureResult:
        """Until the capture ends by itself, or `cancel` is set (then stopped)."""
        while not self._done.wait(0.1):
            if cancel is not None and cancel.is_set():
                return self.stop()
        self._thread.join(STOP_WAIT)
        return self.result

    # --- the reader thread
    def _argv(self) -> list[str]:
        # no --immediate-mode: libpcap then hands frames over a block at a time (at most
        # 1 s late on a quiet port); measured here, immediate mode (a wake-up per frame)
        # took iperf on the same tunnel down to 0.4-0.8x, a block at a time 0.97-1.13x
        argv = [TCPDUMP, "-Z", "root", "-U", "-n", "-i", self._iface]
        argv += ["-s", str(self.opts.snaplen), "-B", "4096", "-w", "-"]
        if self.opts.count:
            argv += ["-c", str(self.opts.count)]
        CAPTURE_DIR.mkdir(parents=True, exist_ok=True)
        sweep_files()
        # the filter file: never parsed as an option, and our mark on the process
        self._filter_file = CAPTURE_DIR / f"{os.getpid()}-{id(self):x}.bpf"
        self._filter_file.write_text(self.opts.filter + "\n")
        argv += ["-F", str(self._filter_file)]
        return ["setpriv", "--pdeathsig", "KILL", "--", *self.target.place.exec_argv(argv)]

    def _read_stderr(self, stream: Any) -> None:
        for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            self._stderr.append(line)
            if "listening on" in line:
                self._ready.set()

    def _run(self) -> None:
        writer_fh: BinaryIO | None = None
        try:
            if self.opts.write:
                writer_fh = open(self.opts.write, "wb")  # noqa: SIM115 - closed in finally
            writer = Writer(writer_fh, self.opts.snaplen) if writer_fh else None
            self._capture(writer)
        except BaseException as exc:  # noqa: BLE001 - handed to start() or the result
            if not self._ready.is_set():
                self._error = exc
            else:
                self.result.ended, self.result.message = "error", str(exc)
        finally:
            self._ready.set()
            self._finish(writer_fh)

    def _capture(self, writer: Writer | None) -> None:
        try:
            proc = subprocess.Popen(self._argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError as exc:
            raise NotReady("tcpdump is not installed: run the README's install command") from exc
        self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        errs = threading.Thread(target=self._read_stderr, args=(proc.stderr,), daemon=True)
        errs.start()
        fd = proc.stdout.fileno()
        reader = StreamReader()
        deadline = self._started + self.opts.seconds
        next_check = time.monotonic() + CHECK_EVERY
        ended = ""
        ending: str | None = None  # a stop was asked: frames still in libpcap's block come first
        flush_until = 0.0
        while True:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break  # tcpdump is gone: see why below
                self._keep(reader.feed(chunk), writer)
            if not self._ready.is_set() and proc.poll() is not None:
                break
            now = time.monotonic()
            if ending is None:
                if self._stop.is_set():
                    ending, flush_until = "stopped", now + FLUSH_WAIT
                elif now >= deadline:
                    ending, flush_until = "time", now + FLUSH_WAIT
            if ending is None and now >= next_check:
                next_check = now + CHECK_EVERY
                if not self._present():
                    ending, flush_until = "gone", now
            if ending is not None and now >= flush_until:
                ended = ending
                if not self._end_tcpdump(fd, reader, writer):
                    proc.kill()  # deaf to SIGINT for STOP_WAIT: waiting longer only delays Ctrl-C
                break
        try:
            proc.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_WAIT)
        errs.join(STOP_WAIT)
        self.result.kernel_dropped = _count_dropped(self._stderr)
        if not ended:
            ended = self._why_ended(proc.returncode)
        if ended != "error":
            self.result.ended = ended
        if ended == "gone":
            self.result.ended = "gone"
            self.result.message = (
                f"{self.target.label} disappeared: the capture ended after {self.result.seen} frame(s)"
            )

    def _end_tcpdump(self, fd: int, reader: StreamReader, writer: Writer | None) -> bool:
        """SIGINT: tcpdump writes what it holds and its statistics, then exits. False
        when it had not closed its output after STOP_WAIT."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return True
        with suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        until = time.monotonic() + STOP_WAIT
        while time.monotonic() < until:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return True
                self._keep(reader.feed(chunk), writer)
        return False

    def _why_ended(self, code: int | None) -> str:
        text = " ".join(self._stderr[-3:]).lower()
        if code == 0 and self.opts.count and self.result.seen >= self.opts.count:
            return "count"
        if any(w in text for w in GONE_WORDS) or not self._present():
            return "gone"
        if not self._ready.is_set():
            lines = [ln for ln in self._stderr if ln.strip()]
            raise WorkbenchError(
                f"tcpdump could not capture on {self.target.label}: "
                + (lines[-1].removeprefix("tcpdump: ") if lines else f"exit code {code}")
            )
        self.result.message = self._stderr[-1] if self._stderr else f"tcpdump exited ({code})"
        return "error" if code else "count"

    def _present(self) -> bool:
        """The namespace is there, and so is the device (checked in the root's view
        of /proc: the namespace's /sys is not ours to read)."""
        place = self.target.place
        if not place.exists():
            return False
        if place.path is not None and place.path.startswith("/proc/"):
            return True  # a container: its process still runs; tcpdump sees its device go
        try:
            return place.call(_has_dev, self._iface)
        except (OSError, WorkbenchError):
            return False

    def _keep(self, recs: list[Record], writer: Writer | None) -> None:
        """A chunk's frames into the ring (one lock for the chunk), the file, the callback."""
        if not recs:
            return
        limit, ring = self.opts.ring_bytes, self._ring
        with self._lock:
            held = self._ring_bytes
            for rec in recs:
                ring.append(rec)
                held += len(rec.data) + 96
            # (while this lock is held the ring may pass its bound by one read, 64 KiB of
            # pcap at most; nobody sees it: the oldest frames go before the lock is let go)
            while held > limit and len(ring) > 1:
                held -= ring.popleft().size
            self._ring_bytes = held
            self.result.ring_peak = max(self.result.ring_peak, held)
            self.result.seen = recs[-1].index
        if writer is not None:
            for rec in recs:
                writer.write(rec)
            self.result.written = writer.count
        if self.on_record is not None:
            for rec in recs:
                self.on_record(rec)

    def _finish(self, writer_fh: BinaryIO | None) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            with suppress(subprocess.TimeoutExpired):
                proc.wait(STOP_WAIT)
        for stream in (proc.stdout, proc.stderr) if proc is not None else ():
            if stream is not None:
                with suppress(OSError):
                    stream.close()
        if writer_fh is not None:
            writer_fh.close()
        if self._filter_file is not None:
            self._filter_file.unlink(missing_ok=True)
        if self._mirror_port is not None and self.target.mirror is not None:
            mirror.remove(self.target.mirror, self._mirror_port)
        with self._lock:
            self.result.records = list(self._ring)
            self.result.kept = len(self._ring)
        self.result.seconds = time.monotonic() - self._started if self._started else 0.0
        self._done.set()


def _has_dev(name: str) -> bool:
    """Whether the calling thread's namespace has device `name` (/proc/self/net/dev
    follows the thread's network namespace)."""
    with open("/proc/thread-self/net/dev") as fh:
        return any(line.split(":", 1)[0].strip() == name for line in fh.readlines()[2:])


def frames(records: list[Record]) -> list[Frame]:
    return [decode(r.data, r.wire_len, r.time, r.index) for r in records]


def sweep_files() -> None:
    """Filter files of captures whose process is gone (killed before it could remove them)."""
    for path in CAPTURE_DIR.glob("*.bpf"):
        pid = path.name.split("-", 1)[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            path.unlink(missing_ok=True)


def capture_pids() -> list[int]:
    """tcpdump processes started by a capture of this instance (their filter file
    under the run directory is on their command line)."""
    return pids_running((TCPDUMP.encode(),), (str(CAPTURE_DIR) + "/").encode())
