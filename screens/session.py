"""How a `containet-tui` process ends: when its browser tab closes, its terminal
closes, or it is sent SIGTERM -- within a few seconds, threads, watchers and
child processes included.

`run(app)` runs the app in place of `App.run()`:

* **Served** (textual-serve started us, one process per browser tab): the driver
  is `ServedDriver`. textual-serve stops reading our stdout at the first write
  after the tab's websocket closed (its pump task ends on the write error), and
  only then sends "quit". Textual's WebDriver writes with a blocking os.write from
  the main thread, so an app that still had a screenful to write blocked for good
  with a full pipe: it never read "quit", and SIGTERM (an asyncio handler, run by
  the blocked loop) was swallowed. And when textual-serve went away without a
  "quit" (stdin at end of file), the WebDriver's input thread just ended and the
  app ran on with nobody to see it. Here stdout is written without blocking:
  once "quit", end of input or a signal says the client is gone, a write that
  makes no progress is given up (`LEAVING_STALL`), a broken pipe ends the
  session, and a pipe nobody reads for `STALL` seconds does too. End of input
  without "quit" quits the app.
* **Terminal**: `TerminalDriver`. SIGHUP (the terminal closed) detaches from the
  terminal first (its output goes to /dev/null, its input to a pipe that never
  speaks: Textual's input thread spins on a hung-up terminal's end of file), then
  quits -- also when SIGHUP was ignored (nohup), where the app used to stay,
  spinning, with no terminal.
* **Both**: SIGTERM and SIGHUP take the app's ordinary way out (`App.exit`, as
  the "q" key and textual-serve's "quit" do; exit status 128 + the signal, as
  `workbench.exits`). A second signal ends the process at once. Textual runs
  thread workers in the event loop's default executor, and `asyncio.run` waited
  for all of them however long they took (a running iperf, a lab being built);
  here the executor's threads are daemons and the wait is bounded (`GRACE`).
  The app cancels its measurement and stops its watcher when it unmounts; a
  child process still running after that is terminated, and a non-daemon thread
  still running (a library's pool, busy for an abandoned worker) is not waited for.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from types import FrameType
from typing import Any, ParamSpec, TypeVar

from textual import messages
from textual.app import App
from textual.drivers.linux_driver import LinuxDriver
from textual.drivers.web_driver import WebDriver

from workbench.exits import SIGNALS

P = ParamSpec("P")
T = TypeVar("T")

#: how long the app's thread workers may still run once the app has ended (seconds)
GRACE = 2.0
#: how long a child process left running gets between SIGTERM and SIGKILL
CHILD_GRACE = 1.0
#: how long a non-daemon thread still running at the very end is waited for
THREAD_GRACE = 1.0
#: served: a write that makes no progress is given up after this long once the
#: client is gone ("quit", end of input, a signal) ...
LEAVING_STALL = 0.5
#: ... and after this long in any case: nobody has read our output, the session is over
STALL = 30.0


class DaemonPool(ThreadPoolExecutor):
    """The event loop's default executor (Textual's thread workers): one daemon
    thread per call, and a shutdown that waits at most `grace` seconds for them.
    A worker still running then (a measurement, a lab being built) does not keep
    the process: the interpreter does not wait for daemon threads."""

    def __init__(self, grace: float = GRACE) -> None:
        super().__init__(max_workers=1)  # asyncio wants a ThreadPoolExecutor; its own pool stays unused
        self.grace = grace
        self._threads: set[threading.Thread] = set()
        self._guard = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()

        def work() -> None:
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:  # noqa: BLE001 - the caller gets it from the future
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                with self._guard:
                    self._threads.discard(threading.current_thread())

        name = f"worker:{getattr(fn, '__name__', 'call')}"
        thread = threading.Thread(target=work, name=name, daemon=True)
        with self._guard:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._threads.add(thread)
        thread.start()
        return future

    def running(self) -> list[threading.Thread]:
        with self._guard:
            return [t for t in self._threads if t.is_alive()]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._guard:
            self._closed = True
        if wait:
            deadline = time.monotonic() + self.grace
            for thread in self.running():
                thread.join(max(0.0, deadline - time.monotonic()))
        super().shutdown(wait=False, cancel_futures=cancel_futures)


class _Ending:
    """SIGTERM and SIGHUP on the app's way out; a second one ends the process at once.

    A plain signal handler, not the event loop's: it runs in the main thread even
    while the loop is busy (a write waiting for the pipe), and only sets flags and
    schedules `App.exit` on the loop."""

    def __init__(self, app: App[Any], on_signal: Callable[[int], None]) -> None:
        self.app = app
        self.on_signal = on_signal  # the driver's part (served: give up writes; terminal: detach)
        self.loop = asyncio.get_running_loop()
        self.signalled = 0
        self.previous: dict[int, Any] = {}

    def install(self) -> None:
        for sig in SIGNALS:
            self.loop.remove_signal_handler(sig)  # WebDriver's own SIGTERM handler, replaced
            self.previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        """Back to what was there (the default: a later signal ends the process)."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous.clear()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        code = 128 + signum
        if self.signalled:
            os._exit(code)  # asked twice: now
        self.signalled = signum
        self.on_signal(signum)
        self.loop.call_soon_threadsafe(partial(self.app.exit, return_code=code))


class ServedDriver(WebDriver):
    """Textual's web driver, with an end: see the module's docstring."""

    def __init__(self, app: App[Any], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.leaving = threading.Event()  # the client is gone: "quit", end of input, a signal
        self.output_lost = False  # stdout broke, or nobody read it: nothing more is written
        self._exit_posted = False
        self._send_lock = threading.Lock()
        self._write = partial(self._send)
        self._ending: _Ending | None = None

    def start_application_mode(self) -> None:
        os.set_blocking(self.fileno, False)
        super().start_application_mode()
        self._ending = _Ending(self._app, self._signalled)
        self._ending.install()

    def _send(self, data: bytes) -> int:
        """Write all of data, without ever blocking for good (see STALL)."""
        with self._send_lock:
            if self.output_lost:
                return len(data)
            view = memoryview(data)
            stalled: float | None = None
            while view:
                try:
                    view = view[os.write(self.fileno, view) :]
                    stalled = None
                    continue
                except BlockingIOError:
                    pass
                except OSError:  # EPIPE: textual-serve is gone
                    self._lose_output()
                    break
                now = time.monotonic()
                stalled = stalled if stalled is not None else now
                if now - stalled > (LEAVING_STALL if self.leaving.is_set() else STALL):
                    self._lose_output()
                    break
                try:
                    select.select([], [self.fileno], [], 0.1)
                except OSError:
                    pass
            return len(data)

    def _lose_output(self) -> None:
        """Nobody reads our output any more: it goes to /dev/null (stderr too: nobody
        reads that either, and a traceback printed on the way out must not block)."""
        self.output_lost = True
        _to_devnull(1, 2)
        self._client_gone()

    def _client_gone(self) -> None:
        self.leaving.set()
        if not self._exit_posted:
            self._exit_posted = True
            self._app.post_message(messages.ExitApp())  # thread-safe

    def _signalled(self, _signum: int) -> None:
        self.leaving.set()

    def on_meta(self, packet_type: str, payload: dict[str, object]) -> None:
        if packet_type == "quit":
            self.leaving.set()  # from now on a write to a full pipe is not waited for
        super().on_meta(packet_type, payload)

    def run_input_thread(self) -> None:
        try:
            super().run_input_thread()
        finally:
            if not self.exit_event.is_set():
                self._client_gone()  # end of input without "quit": textual-serve is gone

    def close(self) -> None:
        super().close()
        if self._ending is not None:
            self._ending.uninstall()
        if not self.output_lost:
            if self.leaving.is_set():
                _to_devnull(1)  # the session is over: nothing more for textual-serve to read
            else:
                os.set_blocking(self.fileno, True)  # the app quit by itself ("q"): stdout as it was


class TerminalDriver(LinuxDriver):
    """Textual's terminal driver; SIGTERM and SIGHUP take the app's way out, and
    SIGHUP (the terminal is gone) detaches from the terminal first."""

    _ending: _Ending | None = None
    _quiet_input: int | None = None

    def start_application_mode(self) -> None:
        super().start_application_mode()
        self._ending = _Ending(self._app, self._signalled)
        self._ending.install()

    def _signalled(self, signum: int) -> None:
        if signum != signal.SIGHUP:
            return
        # writes to a hung-up terminal fail (EIO): Textual's writer thread would die
        # on the first and the app would block on its full queue
        _to_devnull(1, 2)
        # a hung-up terminal reads as end of file at once, for ever: Textual's input
        # thread would spin on it until the app has ended; a pipe nobody writes to
        # keeps it waiting quietly instead
        read, self._quiet_input = os.pipe()
        os.dup2(read, 0)
        os.close(read)

    def close(self) -> None:
        super().close()
        if self._ending is not None:
            self._ending.uninstall()


def _to_devnull(*fds: int) -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            os.dup2(null, fd)
    finally:
        os.close(null)


def children(pid: int) -> list[int]:
    """The live child processes of pid (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != b"Z":
            out.append(int(entry))
    return out


def end_children(grace: float = CHILD_GRACE) -> list[int]:
    """Terminate the child processes this process left running (a measurement's,
    an abandoned worker's command), then kill what is left after `grace`; reap them.
    Returns their pids."""
    left = children(os.getpid())
    for pid in left:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    waiting = set(left)
    while waiting and time.monotonic() < deadline:
        waiting = {pid for pid in waiting if not _reaped(pid)}
        if waiting:
            time.sleep(0.05)
    for pid in waiting:
        _signal(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return left


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _reaped(pid: int) -> bool:
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # not ours to wait for any more (reaped by its Popen)
    return done == pid


def run(app: App[Any]) -> int:
    """Run the app until it ends, then end what it left: bounded, see the module's
    docstring. Returns the exit status (the app's return code)."""
    if issubclass(app.driver_class, WebDriver):
        app.driver_class = ServedDriver
    elif issubclass(app.driver_class, LinuxDriver):
        app.driver_class = TerminalDriver
    loop = asyncio.new_event_loop()
    pool = DaemonPool()
    loop.set_default_executor(pool)
    asyncio.set_event_loop(loop)
    try:
        app.run(loop=loop)
    finally:
        try:
            _cancel_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            pool.shutdown(wait=True)  # at most GRACE
            asyncio.set_event_loop(None)
            loop.close()
            end_children()
    code = app.return_code or 0
    if _threads_left(THREAD_GRACE):
        # the interpreter would wait for them at exit, however long: it does not
        _flush()
        os._exit(code)
    return code


def _threads_left(grace: float) -> list[threading.Thread]:
    """Non-daemon threads still running after `grace` seconds (a library's pool
    thread in the middle of an abandoned worker's call)."""
    deadline = time.monotonic() + grace
    left = []
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            left.append(thread)
    return left


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _cancel_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """What asyncio.run does with the tasks still pending when the main one returned."""
    tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
