"""What intents run against: the hosts, and clients opened lazily, once per run.

A Context hands out one OVS client per host, one netlink worker thread per
network namespace (setns() moves only that thread), the docker client, and the
rows of containet's containers, asked once. Intents never open their own.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeAlias, TypeVar

import docker

from . import containers as dk
from .errors import WorkbenchError
from .host import Host, NetnsWorker, Place
from .intents.base import ContainerRef
from .intents.commands import Containet
from .ovn import OvnNb
from .ovs import Ovs

T = TypeVar("T")
DockerClient: TypeAlias = docker.DockerClient  # (inside Context, `docker` is its property)


class Context:
    """What steps run against: the hosts, and lazily opened clients."""

    def __init__(self, hosts: Iterable[Host], containet: Containet | None = None) -> None:
        self.hosts = {h.name: h for h in hosts}
        self._containet = containet
        self._ovs: dict[str, Ovs] = {}
        self._nb: dict[str, OvnNb] = {}
        self._docker: docker.DockerClient | None = None
        self._containers: dict[str, dk.ContainerRow | None] = {}
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}  # one per client to open (see _lock_for)
        self._workers: dict[str | None, NetnsWorker] = {}
        self._names: set[str] | None = None  # our containers' names, listed once

    def host(self, name: str) -> Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise WorkbenchError(f"unknown host {name!r} (have: {', '.join(self.hosts)})") from None

    def _lock_for(self, key: str) -> threading.Lock:
        """A lock per client to open, so that different ones open concurrently."""
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def ovs(self, host: str) -> Ovs:
        """One client per host, opened on first use; hosts' clients open concurrently."""
        with self._lock_for(f"ovs:{host}"):
            if host not in self._ovs:
                self._ovs[host] = Ovs(self.host(host).ovs_db)
            return self._ovs[host]

    def ovn_nb(self, remote: str) -> OvnNb:
        """One client of an OVN northbound database, opened on first use."""
        with self._lock_for(f"nb:{remote}"):
            if remote not in self._nb:
                self._nb[remote] = OvnNb(remote)
            return self._nb[remote]

    def _worker(self, place: Place) -> NetnsWorker:
        with self._lock_for(f"netns:{place.path}"):
            worker = self._workers.get(place.path)
            if worker is None:
                worker = self._workers[place.path] = NetnsWorker(place)
            return worker

    def netlink(self, place: Place, fn: Callable[..., T], *args: Any) -> T:
        """fn(ipr, *args) in `place`, on this context's socket there."""
        return self._worker(place).netlink(fn, *args)

    def run(
        self, place: Place, argv: list[str], *, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A program run in `place` from this context's thread there."""
        return self._worker(place).run(argv, check=check, stdin=stdin)

    def call(self, place: Place, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) in `place`, on this context's thread there."""
        return self._worker(place).call(fn, *args)

    @property
    def docker(self) -> docker.DockerClient:
        with self._lock:
            return self._docker_client()

    def _docker_client(self) -> DockerClient:
        if self._docker is None:
            self._docker = dk.client()
        return self._docker

    def container(self, name: str) -> dk.ContainerRow | None:
        """A container's row, asked once per context: its pid does not change while it
        runs. Steps that create or remove containers call remember() or forget().
        Which of ours exist is asked once, so absent ones cost no request each."""
        if name not in self._containers:
            with self._lock:
                if self._names is None:
                    self._names = dk.marked_names(self._docker_client())
                absent = name not in self._names
            if absent:
                return None
            row = dk.find(self.docker, name)
            if row is None or row.status != "running":
                return row  # not cached: it may be started in a moment
            self._containers[name] = row
        return self._containers[name]

    def place_of(self, ref: ContainerRef) -> Place:
        """The network namespace of a running container: one of ours by its name,
        any other (built by hand) by its docker name or ID."""
        row = self.container(ref.name)
        if row is None:
            row = dk.find_any(self.docker, ref.docker)
        if row is None or row.status != "running" or not row.pid:
            raise WorkbenchError(f"container {ref.name} is not running")
        return Place.of_pid(row.pid, ref.name)

    def containet(self) -> Containet:
        """The engine's own actions (re-apply a scenario, repair the lab)."""
        if self._containet is None:
            raise WorkbenchError("this change needs containet itself: run it from the engine")
        return self._containet

    def remember(self, row: dk.ContainerRow) -> None:
        """A container a step has just started (saves asking docker again)."""
        if self._names is not None:
            self._names.add(row.name)
        if row.status == "running" and row.pid:
            self._containers[row.name] = row

    def forget(self, name: str) -> None:
        row = self._containers.pop(name, None)
        if row is not None:  # let its namespace go when the container does
            worker = self._workers.pop(Place.of_pid(row.pid).path, None)
            if worker is not None:
                worker.close()

    def warm(self, hosts: Iterable[str], pool: ThreadPoolExecutor) -> None:
        """Start opening these hosts' OVS clients in `pool` (a failure here is
        ignored: the step that needs the client meets it again and reports it)."""
        for host in hosts:
            pool.submit(_quietly, self.ovs, host)

    def close(self) -> None:
        for worker in self._workers.values():
            worker.close()
        self._workers.clear()
        for ovs in self._ovs.values():
            ovs.close()
        self._ovs.clear()
        for nb in self._nb.values():
            nb.close()
        self._nb.clear()
        if self._docker is not None:
            self._docker.close()
            self._docker = None

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _quietly(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - see Context.warm
        pass
