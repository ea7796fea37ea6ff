"""Every way out of a long command goes through its cleanup.

Ctrl-C raises KeyboardInterrupt in the main thread, so `finally` blocks run and
what a command built is removed. Three other ways out skipped that:

* SIGTERM (`kill`, `timeout`, a service manager) and SIGHUP (the terminal
  closed) end a Python process on the spot by default: no `finally` runs.
* A reader that went away (`containet pingall | head -1`) turns the next print
  into a BrokenPipeError traceback, raised wherever that print is -- often in a
  `finally` that then skips the rest of its cleanup -- and once more when the
  interpreter flushes stdout on its way out.

`handled()` puts all three on Ctrl-C's path. SIGTERM and SIGHUP raise `Stop`,
a KeyboardInterrupt, in the main thread; a further one while the cleanup runs
is ignored (a second Ctrl-C still aborts, as always). stdout is written line by
line, so a closed reader is noticed at the next line: `Stop` is raised once in
the main thread (a worker thread's print returns and the main thread is
interrupted instead, as Ctrl-C would), and stdout then goes to /dev/null (the
file descriptor itself, so the interpreter's last flush and later prints in
`finally` blocks are harmless).
A stderr that is gone (a hung-up terminal) goes quiet the same way, without
raising. `shielded()` keeps a final cleanup whole: a way out taken inside it is
raised at its end. `run_main` wraps a benchmark's main with all this.

`handled()` also gives Ctrl-C back to a command a script started in the
background (`containet capture ... &`): the shell starts it with SIGINT ignored,
and `kill -INT`, a script's Ctrl-C, did nothing (tcpdump and ping take SIGINT
back the same way).

Exit status: 128 + the signal (143 for SIGTERM, 129 for SIGHUP, 141 for a
closed output, as a shell reports a process killed by SIGPIPE); Ctrl-C 130.
"""

from __future__ import annotations

import errno
import io
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import Any, TextIO, cast

#: the signals that take Ctrl-C's path
SIGNALS = (signal.SIGTERM, signal.SIGHUP)
#: what a write to a reader that is gone fails with (EIO: a terminal that hung up)
GONE = (errno.EPIPE, errno.EIO)
CLOSED_OUTPUT = 128 + int(signal.SIGPIPE)


class Stop(KeyboardInterrupt):
    """A way out that is not Ctrl-C, on Ctrl-C's path; `code` is the exit status."""

    def __init__(self, why: str, code: int) -> None:
        super().__init__(why)
        self.why = why
        self.code = code


class Guard:
    """What `handled()` yields: the first way out taken (None while there was none)."""

    def __init__(self) -> None:
        self.stop: Stop | None = None
        self.raised = False  # the stop was raised in the main thread
        self.pid = os.getpid()
        self.signals = False  # our handlers are installed (handled() in the main thread)
        self.shield = 0  # inside shielded(): a way out waits for the block's end

    def interrupt_main(self) -> None:
        """Raise the recorded stop in the main thread: a worker's print found stdout
        closed. A real signal, so that a main thread blocked in a wait wakes up."""
        main = threading.main_thread()
        if self.signals and main.ident is not None:
            signal.pthread_kill(main.ident, SIGNALS[0])

    def code(self, normal: int) -> int:
        """The exit status: `normal`, unless a signal or a closed output ended the run
        (a measurement that returns its partial result on KeyboardInterrupt returns)."""
        return self.stop.code if self.stop is not None else normal

    def returned(self, normal: int, prog: str) -> int:
        """The end of a run that returned `normal`: as `code`, and the line saying
        which way out it took, if one was (a measurement's partial result)."""
        if self.stop is None:
            return normal
        return self.ended(self.stop, prog)

    def ended(self, exc: KeyboardInterrupt, prog: str) -> int:
        """The end of a run that KeyboardInterrupt left: one line on stderr (none
        when nobody reads: a closed stdout), and the exit status. The first way
        out taken wins over what reached the top (a wait that was interrupted
        may raise a plain KeyboardInterrupt of its own)."""
        why = describe(self.stop or exc)
        if why:
            print(f"{prog}: {why}", file=sys.stderr)
        return exit_code(self.stop or exc)

    def take(self, stop: Stop) -> bool:
        """Record the first way out; False when one was taken already."""
        if self.stop is not None:
            return False
        self.stop = stop
        return True


#: the guards of the `handled()` blocks entered, innermost last
_guards: list[Guard] = []


class _Guarded(io.TextIOBase):
    """A text stream that writes through line by line and survives its reader."""

    def __init__(self, inner: TextIO, guard: Guard, raises: bool) -> None:
        super().__init__()
        self._inner = inner
        self._guard = guard
        self._raises = raises  # stdout: a closed reader ends the run; stderr: it only goes quiet
        self._gone = False
        self._finalizing = False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._inner.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self._inner.errors

    def fileno(self) -> int:
        return self._inner.fileno()

    def isatty(self) -> bool:
        return self._inner.isatty()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if self._gone:
            return len(s)
        try:
            n = self._inner.write(s)
            if "\n" in s:
                self._inner.flush()
        except OSError as exc:
            self._lost(exc)
            return len(s)
        return n

    def flush(self) -> None:
        if self._gone:
            return
        try:
            self._inner.flush()
        except OSError as exc:
            self._lost(exc)

    def close(self) -> None:
        """Flush, and never raise from here: a finalizer may be the caller. The
        stream underneath stays open (it is the process's own)."""
        self._finalizing = True
        with suppress(Exception):
            self.flush()
        super().close()

    def __getattr__(self, name: str) -> Any:  # buffer, reconfigure, line_buffering ...
        return getattr(self._inner, name)

    def _lost(self, exc: OSError) -> None:
        if exc.errno not in GONE:
            raise exc
        self._gone = True
        _to_devnull(self._inner)
        stop = Stop("output closed", CLOSED_OUTPUT)
        if not self._raises or self._finalizing or not self._guard.take(stop):
            return
        if threading.current_thread() is threading.main_thread():
            if not self._guard.shield:
                self._guard.raised = True
                raise stop from None
            return
        # a worker thread printed: the main thread takes the way out, as on Ctrl-C
        # (raised here, it would read as that worker's own failure, e.g. a failed step)
        self._guard.interrupt_main()


def _to_devnull(stream: TextIO) -> None:
    """Point the stream's file descriptor at /dev/null: what is still buffered
    (also in sys.__stdout__, flushed at interpreter exit) then goes nowhere quietly."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return  # not a real file (a test's capture): _Guarded drops the writes itself
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
    finally:
        os.close(null)


@contextmanager
def handled() -> Iterator[Guard]:
    """SIGTERM, SIGHUP and a closed stdout on Ctrl-C's path, for the `with` block
    (in the main thread; elsewhere only the streams are guarded)."""
    guard = Guard()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if os.getpid() != guard.pid:  # a forked child: the default action, as before
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        guard.take(Stop(f"stopped by {signal.Signals(signum).name}", 128 + signum))
        # the first way out (or a worker's closed stdout) is raised; a later one, or
        # one inside shielded(), waits: the cleanup under way finishes
        if guard.stop is not None and not guard.raised and not guard.shield:
            guard.raised = True
            raise guard.stop

    _guards.append(guard)
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            previous[sig] = signal.signal(sig, on_signal)
        if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
            # started with `&` by a script: the shell set SIGINT to ignored, so `kill -INT`
            # (how a script or a test says Ctrl-C) was lost and a capture ran to its bound
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
        guard.signals = True
    out, err = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, _Guarded(out, guard, raises=True))
    sys.stderr = cast(TextIO, _Guarded(err, guard, raises=False))
    try:
        yield guard
    finally:
        with suppress(Exception):
            sys.stdout.flush()
        sys.stdout, sys.stderr = out, err
        guard.signals = False
        _guards.remove(guard)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def shielded() -> Iterator[None]:
    """A cleanup that SIGTERM, SIGHUP or a closed stdout must not cut short (the
    final `clean` of a benchmark, with its prints): a way out taken meanwhile is
    raised when the block ends, unless an exception is on its way already."""
    guard = _guards[-1] if _guards else None
    if guard is None:
        yield
        return
    guard.shield += 1
    try:
        yield
    finally:
        guard.shield -= 1
    if not guard.shield and guard.stop is not None and not guard.raised:
        guard.raised = True
        raise guard.stop


def describe(exc: KeyboardInterrupt) -> str | None:
    """The line to tell the user (None when nobody is reading: a closed output)."""
    if isinstance(exc, Stop):
        return None if exc.code == CLOSED_OUTPUT else exc.why
    return "interrupted"


def exit_code(exc: KeyboardInterrupt) -> int:
    return exc.code if isinstance(exc, Stop) else 128 + int(signal.SIGINT)


def run_main(main: Callable[[], int], name: str | None = None) -> int:
    """A benchmark's (or any command's) main with every way out handled: its own
    `finally` blocks run on SIGTERM, SIGHUP and a closed stdout as on Ctrl-C, and
    it ends with one line on stderr (none when stdout was closed) and no traceback."""
    prog = name or os.path.basename(sys.argv[0])
    with handled() as guard:
        try:
            return guard.returned(main(), prog)
        except KeyboardInterrupt as exc:
            return guard.ended(exc, prog)
