"""The instance lock: one mutating command at a time, and the run directory
goes away with clean / lab down even while another command waits on the lock."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from workbench import lab


def test_release_removes_the_run_dir_and_waiters_still_exclude_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "containet" / "inst"
    monkeypatch.setattr(lab, "RUN_DIR", run_dir)
    inside = 0
    most = 0
    guard = threading.Lock()
    entered = threading.Event()

    def hold(release: bool, seconds: float) -> None:
        nonlocal inside, most
        with lab.locked(release=release):
            with guard:
                inside += 1
                most = max(most, inside)
            entered.set()
            (run_dir / "netns.d").mkdir(exist_ok=True)  # what a command leaves: an empty registry
            time.sleep(seconds)
            with guard:
                inside -= 1

    first = threading.Thread(target=hold, args=(True, 0.3))
    first.start()
    assert entered.wait(5)
    waiters = [threading.Thread(target=hold, args=(False, 0.1)) for _ in range(3)]
    for t in waiters:
        t.start()  # they open the lock file that `first` is about to remove
    first.join()
    for t in waiters:
        t.join()
    assert most == 1  # never two holders, although the file they waited on was removed
    assert (run_dir / ".lock").exists()  # the waiters made a new one

    with lab.locked(release=True):
        pass
    assert not run_dir.exists() and not run_dir.parent.exists()


def test_release_keeps_a_run_dir_that_still_holds_something(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "inst"
    monkeypatch.setattr(lab, "RUN_DIR", run_dir)
    with lab.locked(release=True):
        (run_dir / "lab.json").write_text("{}")
    assert (run_dir / "lab.json").exists() and (run_dir / ".lock").exists()


def test_a_second_writer_is_told_who_holds_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab, "RUN_DIR", tmp_path / "inst")
    held = threading.Event()
    done = threading.Event()
    told: list[str] = []

    def holder() -> None:
        with lab.locked():
            held.set()
            done.wait(5)

    first = threading.Thread(target=holder)
    first.start()
    assert held.wait(5)
    assert lab.lock_holder() is not None and lab.lock_holder().startswith(f"{os.getpid()} ")  # type: ignore[union-attr]

    def wait_then_take() -> None:
        with lab.locked(on_wait=told.append):
            pass

    waiter = threading.Thread(target=wait_then_take)
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()  # it waits ...
    assert told and told[0].startswith(f"waiting for the lab lock, held by {os.getpid()} ")  # and for whom
    done.set()
    first.join(5)
    waiter.join(5)
    assert not waiter.is_alive()


def test_the_lock_is_reentrant_in_one_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A doctor's fix holds the lock and re-applies the scenario, which takes it again."""
    monkeypatch.setattr(lab, "RUN_DIR", tmp_path / "inst")
    with lab.locked(), lab.locked():
        assert lab.lock_holder() is not None

    def take() -> None:
        with lab.locked():
            pass

    other = threading.Thread(target=take)
    other.start()
    other.join(5)
    assert not other.is_alive()  # released: another thread gets it at once
