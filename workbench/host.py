"""Where an operation runs.

A `Place` is a network namespace: the root namespace (real mode), an emulated
host's namespace (lab mode), or a container's namespace (by pid). Netlink work
runs in a short-lived thread that first enters the namespace: setns() changes
only the calling thread, so the rest of the program (the TUI, other workers)
never moves, and no process is forked.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pyroute2 import IPRoute, netns

from .errors import NotReady, WorkbenchError

T = TypeVar("T")

NETNS_DIR = Path("/var/run/netns")


@dataclass(frozen=True)
class Place:
    """A network namespace, named by path (None = the root namespace)."""

    path: str | None
    label: str

    @classmethod
    def root(cls) -> Place:
        return cls(None, "root")

    @classmethod
    def named(cls, name: str) -> Place:
        return cls(str(NETNS_DIR / name), name)

    @classmethod
    def of_pid(cls, pid: int, label: str | None = None) -> Place:
        return cls(f"/proc/{pid}/ns/net", label or f"pid {pid}")

    def exists(self) -> bool:
        return self.path is None or os.path.exists(self.path)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run fn(*args) in this namespace (in a thread that entered it)."""
        if self.path is None:
            return fn(*args, **kwargs)
        if not os.path.exists(self.path):
            raise NotReady(f"namespace {self.label} does not exist")
        box: dict[str, Any] = {}

        def runner() -> None:
            try:
                netns.setns(self.path, flags=0)
                box["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                box["error"] = exc

        thread = threading.Thread(target=runner, name=f"netns:{self.label}", daemon=True)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]  # type: ignore[no-any-return]

    def netlink(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run fn(ipr, *args) with an IPRoute socket opened in this namespace."""

        def with_ipr() -> T:
            with IPRoute() as ipr:
                return fn(ipr, *args, **kwargs)

        return self.call(with_ipr)

    def exec_argv(self, argv: Sequence[str]) -> list[str]:
        """The argument list that runs argv inside this namespace."""
        if self.path is None:
            return list(argv)
        if self.path.startswith(str(NETNS_DIR) + "/"):
            return ["ip", "netns", "exec", os.path.basename(self.path), *argv]
        pid = self.path.split("/")[2]
        return ["nsenter", "-t", pid, "-n", *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 30,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a program inside this namespace (argument list, never a shell)."""
        return spawn(
            self.exec_argv(argv), argv, self.label, check=check, timeout=timeout, env=env, stdin=stdin
        )


def spawn(
    full: Sequence[str],
    argv: Sequence[str],
    label: str,
    *,
    check: bool = True,
    timeout: float = 30,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """subprocess.run(full) with containet's errors; `argv` is what to name in them."""
    try:
        proc = subprocess.run(
            list(full), input=stdin, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except FileNotFoundError as exc:
        raise NotReady(f"{argv[0]} is not installed: run the README's install command") from exc
    except subprocess.TimeoutExpired as exc:
        raise WorkbenchError(f"{' '.join(argv)} did not finish within {timeout:.0f}s") from exc
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        detail = msg[-1] if msg else f"exit code {proc.returncode}"
        raise WorkbenchError(f"{' '.join(argv)} failed in {label}: {detail}")
    return proc


class NetnsWorker:
    """One thread that stays in a namespace, with one netlink socket, for a burst
    of work (a plan run): no thread and socket to set up per operation.

    Close it when the burst ends: while it lives, its thread and socket keep the
    namespace alive, even after the namespace's last process is gone."""

    def __init__(self, place: Place) -> None:
        if not place.exists():
            raise NotReady(f"namespace {place.label} does not exist")
        self.place = place
        self._ipr: IPRoute | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"netns:{place.label}")
        try:
            self._pool.submit(self._enter).result()
        except BaseException:
            self._pool.shutdown(wait=True)
            raise

    def _enter(self) -> None:
        if self.place.path is not None:
            netns.setns(self.place.path, flags=0)
        ipr = IPRoute()
        ipr.link_lookup(ifname="lo")  # pyroute2 opens its socket on first use: here, in the namespace
        self._ipr = ipr

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on the worker's thread (in the namespace)."""
        return self._pool.submit(fn, *args).result()

    def netlink(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(ipr, *args) with the worker's socket."""
        return self._pool.submit(lambda: fn(self._ipr, *args)).result()

    def run(
        self, argv: Sequence[str], *, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a program in the namespace: forked from the worker's thread, the
        child starts in it already (no `ip netns exec` in between)."""
        return self.call(lambda: spawn(argv, argv, self.place.label, check=check, stdin=stdin))

    def close(self) -> None:
        def shut() -> None:
            if self._ipr is not None:
                self._ipr.close()
                self._ipr = None

        try:
            self._pool.submit(shut).result()
        finally:
            self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class Host:
    """A host of the experiment: an emulated one (netns) or this machine (real mode)."""

    name: str
    index: int
    underlay_ip: str
    place: Place
    ovs_db: str  # ovsdb remote, e.g. unix:/run/containet/host1/db.sock
    run_dir: Path | None = None  # lab mode: per-host OVS run directory
    real: bool = False
    datapath: str = "netdev"  # OVS datapath_type of the bridges made here: netdev (userspace) or system

    @property
    def netns(self) -> str | None:
        return None if self.place.path is None else os.path.basename(self.place.path)
