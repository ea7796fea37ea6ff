"""Run a cancellable measurement so that Ctrl-C ends it with its partial result.

The CLI's main thread waits here; the measurement runs in a worker thread with a
`cancel` event. KeyboardInterrupt sets the event and waits for the (prompt) return,
instead of abandoning a thread that still holds sockets and child processes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: the longest wait for a cancelled measurement to return (they check every 0.2 s)
CANCEL_WAIT = 10.0


def interruptible(work: Callable[[threading.Event], T]) -> tuple[T, bool]:
    """(work(cancel)'s result, whether it was interrupted). Errors are re-raised here."""
    cancel = threading.Event()
    done = threading.Event()
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = work(cancel)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller below
            box["error"] = exc
        finally:
            done.set()

    # waits on `done`, not Thread.join: a join interrupted by KeyboardInterrupt
    # marks a running thread as stopped (CPython 3.11, the bpo-45274 fix), so the
    # join after it returned at once and the partial result was lost
    thread = threading.Thread(target=runner, name="measurement", daemon=True)
    thread.start()
    interrupted = False
    while not done.is_set():
        try:
            done.wait(0.2)
        except KeyboardInterrupt:
            interrupted = True
            cancel.set()
            done.wait(CANCEL_WAIT)
            break
    if "error" in box:
        raise box["error"]
    if "value" not in box:
        raise KeyboardInterrupt
    return box["value"], interrupted
