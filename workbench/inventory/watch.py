"""Live event sources for the inventory: docker events, netlink per host
namespace, OVSDB row events per host database.

Each source runs on its own thread and emits small `Change` records to a
callback (called from that thread), and reports itself connected or
disconnected with `SourceState`. A source that goes away is retried with a
bounded backoff until the watcher stops. `dirty()` folds a burst of changes
into what to re-collect, and `recollect()` re-reads only that part, producing
the same model types as `collect.snapshot()`.

No textual here: the TUI hands the callbacks to its own message queue.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import WorkbenchError
from ..marks import LABEL, MARK_VALUE
from .model import Snapshot

if TYPE_CHECKING:
    from ..host import Host

# docker, pyroute2 and ovsdbapp are imported where they are used: importing this
# module (for Dirty and dirty) stays cheap, and the sources import them on their threads.

#: backoff between reconnection attempts: first, factor, cap (seconds)
BACKOFF = (0.25, 2.0, 5.0)
#: how often a blocked source looks at its stop flag (seconds)
TICK = 0.25
#: OVS columns whose changes matter to the inventory (statistics are left out:
#: they tick every few seconds and would cause a re-collect each time)
OVS_COLUMNS = {
    "Bridge": ["name", "ports", "datapath_type", "external_ids"],
    "Port": ["name", "interfaces", "tag", "external_ids"],
    "Interface": ["name", "type", "options", "ofport", "external_ids"],
}
#: what the inventory shows of OVN's databases (see collect.ovn_view)
OVN_COLUMNS = {
    "nb": {"Logical_Switch": ["name", "ports"], "Logical_Switch_Port": ["name", "addresses", "up"]},
    "sb": {
        "Chassis": ["name", "encaps"],
        "Encap": ["type", "ip"],
        "Port_Binding": ["logical_port", "chassis", "up"],
    },
}


@dataclass(frozen=True)
class Change:
    """Something changed: `source` is docker, netlink or ovs; `host` is the
    emulated host it happened on (None for docker, which is shared)."""

    source: str
    host: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class SourceState:
    """A source connected or went away (`detail` says why)."""

    source: str
    host: str | None
    connected: bool
    detail: str = ""

    @property
    def key(self) -> str:
        return f"{self.source}:{self.host}" if self.host else self.source


@dataclass(frozen=True)
class Dirty:
    """What to re-collect after a burst of changes."""

    hosts: frozenset[str] = field(default_factory=frozenset)
    containers: bool = False

    def __bool__(self) -> bool:
        return bool(self.hosts) or self.containers

    def __or__(self, other: Dirty) -> Dirty:
        return Dirty(self.hosts | other.hosts, self.containers or other.containers)


def dirty(changes: Iterable[Change | SourceState]) -> Dirty:
    """Fold changes into what to re-collect (pure).

    docker: the container list. netlink/ovs on a host: that host's view and the
    containers (their attachment is read from the host's links and ports). A
    source going or coming back counts as a change of everything it covers, so
    the model shows it as disconnected, then fresh again."""
    hosts: set[str] = set()
    containers = False
    for ch in changes:
        if ch.source == "docker":
            containers = True
        elif ch.host:
            hosts.add(ch.host)
            containers = True
    return Dirty(frozenset(hosts), containers)


def recollect(
    snap: Snapshot,
    what: Dirty,
    hosts: list[Host],
    docker_ok: bool | None = None,
    lab_line: str | None = None,
) -> Snapshot:
    """A new snapshot where only `what` was read again (worker thread).

    The facts of the hosts not named in `what` are the snapshot's own; the
    topology is built again from the merged facts, so a container is placed on
    its host even when only that host's facts changed. A snapshot without facts
    (made elsewhere) is read again whole."""
    from ..topology.build import build
    from ..topology.discover import read_facts
    from .collect import view

    facts = read_facts(
        hosts,
        previous=snap.facts,
        hosts_to_read=what.hosts,
        containers=what.containers,
    )
    new = view(build(facts), snap.mode, snap.lab if lab_line is None else lab_line, facts)
    if snap.facts is not None:  # what was not read again stays the very same object
        kept = {h.name: h for h in snap.hosts if h.name not in what.hosts}
        views = tuple(kept.get(h.name, h) for h in new.hosts)
        same = not what.containers and new.containers == snap.containers
        new = replace(new, hosts=views, containers=snap.containers if same else new.containers)
    if docker_ok is not None and not what.containers:
        new = replace(new, docker_connected=docker_ok)
    from .collect import ovn_view  # OVN's two databases: a select each (~2 ms), read every time

    found = ovn_view(hosts, new.hosts)
    return replace(new, ovn=found) if found != new.ovn else new


OnChange = Callable[[Change], None]
OnState = Callable[[SourceState], None]


class _Source(threading.Thread):
    """A thread that connects, listens until its source breaks, and retries."""

    source = ""

    def __init__(self, host: str | None, on_change: OnChange, on_state: OnState) -> None:
        super().__init__(name=f"watch:{self.source}:{host or '-'}", daemon=True)
        self.host = host
        self.on_change = on_change
        self.on_state = on_state
        self.stopping = threading.Event()
        self.connected: bool | None = None

    def state(self, connected: bool, detail: str = "") -> None:
        if connected != self.connected:
            self.connected = connected
            self.on_state(SourceState(self.source, self.host, connected, detail))

    def change(self, detail: str = "") -> None:
        self.on_change(Change(self.source, self.host, detail))

    def run(self) -> None:
        delay = BACKOFF[0]
        while not self.stopping.is_set():
            try:
                self.listen()  # returns when the source ends; raises when it cannot connect
                delay = BACKOFF[0]
                if self.stopping.is_set():
                    break
                self.state(False, "connection lost")
            except Exception as exc:  # noqa: BLE001 - any failure means "down, retry later"
                self.state(False, _one_line(exc))
            self.stopping.wait(delay)
            delay = min(delay * BACKOFF[1], BACKOFF[2])

    def listen(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self.stopping.set()


class DockerSource(_Source):
    source = "docker"

    def __init__(self, on_change: OnChange, on_state: OnState) -> None:
        super().__init__(None, on_change, on_state)
        self._lock = threading.Lock()
        self._stream: Any = None

    def listen(self) -> None:
        from .. import containers as dk

        cli = dk.client(timeout=5)
        try:
            stream = cli.events(decode=True, filters={"label": f"{LABEL}={MARK_VALUE}"})
            with self._lock:
                self._stream = stream
            if self.stopping.is_set():
                return
            self.state(True)
            self.change("connected")  # whatever happened while we were away
            for event in stream:
                if self.stopping.is_set():
                    return
                action = str(event.get("Action") or event.get("status") or "")
                if event.get("Type", "container") == "container" and not action.startswith("exec_"):
                    self.change(action)
        finally:
            with self._lock:
                self._stream = None
            cli.close()

    def stop(self) -> None:
        super().stop()
        with self._lock:
            stream = self._stream
        if stream is not None:
            try:
                stream.close()  # unblocks the reading thread
            except Exception:  # noqa: BLE001 - best effort
                pass


class NetlinkSource(_Source):
    """RTM_* events in one host's namespace. The IPRoute socket is created in
    this thread after entering the namespace: created elsewhere, no event
    arrives (see shared/lab-notes.md)."""

    source = "netlink"

    def __init__(self, host: Host, on_change: OnChange, on_state: OnState) -> None:
        super().__init__(host.name, on_change, on_state)
        self.path = host.place.path

    def _inode(self) -> int | None:
        if self.path is None:
            return None
        try:
            return os.stat(self.path).st_ino
        except OSError:
            return None

    def listen(self) -> None:
        from pyroute2 import IPRoute, netns

        inode = self._inode()
        if self.path is not None:
            if inode is None:
                raise WorkbenchError("namespace missing")
            netns.setns(self.path, flags=0)
        ipr = IPRoute()
        try:
            ipr.bind()
            self.state(True)
            self.change("connected")
            fd = ipr.fileno()
            while not self.stopping.is_set():
                ready, _, _ = select.select([fd], [], [], TICK)
                if ready:
                    msgs = ipr.get()
                    kinds = sorted({str(m.get("event", "")) for m in msgs})
                    if kinds:
                        self.change(",".join(kinds))
                elif self.path is not None and self._inode() != inode:
                    return  # the namespace was deleted (or replaced): reconnect
        finally:
            ipr.close()


class OvsSource(_Source):
    """Row events of one host's OVS database, through an Idl whose notify()
    reports each insert/update/delete of a Bridge, Port or Interface row."""

    source = "ovs"
    database = "Open_vSwitch"
    columns: dict[str, list[str]] = OVS_COLUMNS

    def __init__(self, host: Host, on_change: OnChange, on_state: OnState) -> None:
        super().__init__(host.name, on_change, on_state)
        self.remote = host.ovs_db

    def listen(self) -> None:
        import ovs.db.idl
        import ovs.poller
        from ovsdbapp.backend.ovs_idl import idlutils

        sock = self.remote.removeprefix("unix:")
        if self.remote.startswith("unix:") and not os.path.exists(sock):
            raise WorkbenchError("database socket missing")
        helper = idlutils.get_schema_helper(self.remote, self.database)
        for table, cols in self.columns.items():
            helper.register_columns(table, cols)
        source = self

        class NotifyingIdl(ovs.db.idl.Idl):  # type: ignore[misc]
            def notify(self, event: str, row: Any, updates: Any = None) -> None:
                source.change(f"{row._table.name} {event}")

        idl = NotifyingIdl(self.remote, helper)
        try:
            seen = False
            lost_at: float | None = None
            while not self.stopping.is_set():
                idl.run()
                if idl._session.is_connected():
                    lost_at = None
                    if not seen and idl.has_ever_connected():
                        seen = True
                        self.state(True)
                        self.change("connected")
                else:
                    lost_at = lost_at or time.monotonic()
                    if seen and time.monotonic() - lost_at > 1.0:
                        return  # down: report it and start over with a fresh schema
                    if not seen and time.monotonic() - lost_at > 3.0:
                        raise WorkbenchError("not answering")
                poller = ovs.poller.Poller()
                idl.wait(poller)
                poller.timer_wait(int(TICK * 1000))
                poller.block()
        finally:
            idl.close()


class OvnSource(OvsSource):
    """Row events of OVN's northbound or southbound database (a logical port added,
    going up, bound; a chassis coming or going), so the inventory follows OVN live.
    Where: in the lab, the central host's run directory (its socket); in real mode,
    the central this host's OVS points ovn-controller at (`external_ids:ovn-remote`,
    host1's tcp:10.0.0.3:6642 and its NB beside it). While there is none (no socket,
    no ovn-remote) it waits quietly: OVN stopped or never applied is not a source that
    broke, and one applied later is found within a second."""

    def __init__(self, host: Host, which: str, on_change: OnChange, on_state: OnState) -> None:
        super().__init__(host, on_change, on_state)
        from ..ovn import OvnDb

        self.which, self.ovs_db = which, host.ovs_db
        self.source = f"ovn-{which}"
        self.name = f"watch:{self.source}:{host.name}"
        self.columns = OVN_COLUMNS[which]
        self.database = "OVN_Northbound" if which == "nb" else "OVN_Southbound"
        self.db = None if host.real or host.run_dir is None else OvnDb(host.run_dir, which)
        self.remote = self.db.remote if self.db is not None else ""

    def locate(self) -> str | None:
        """The database's remote, None while there is no OVN to watch."""
        if self.db is not None:
            return self.db.remote if self.db.sock.exists() else None
        from ..ovn import nb_of
        from ..ovs import select as read_tables

        try:
            rows = read_tables(self.ovs_db, ["Open_vSwitch"], timeout=2)["Open_vSwitch"]
        except WorkbenchError:
            return None
        sb = str(((rows[0].get("external_ids") or {}) if rows else {}).get("ovn-remote", ""))
        if not sb.startswith("tcp:"):
            return None
        return sb if self.which == "sb" else nb_of(sb)

    def state(self, connected: bool, detail: str = "") -> None:
        if not connected and self.locate() is None:
            if self.connected:  # OVN went away on purpose: re-read, say nothing
                self.connected = None
                self.change("stopped")
            return
        super().state(connected, detail)

    def listen(self) -> None:
        while (remote := self.locate()) is None:
            if self.stopping.wait(1.0 if self.db is None else 0.5):
                return
        self.remote = remote
        super().listen()


class Watcher:
    """All the event sources of a set of hosts; start() once, stop() once."""

    def __init__(
        self,
        hosts: list[Host],
        on_change: OnChange,
        on_state: OnState | None = None,
        *,
        docker: bool = True,
        netlink: bool = True,
        ovs: bool = True,
    ) -> None:
        state = on_state or (lambda _s: None)
        self.sources: list[_Source] = []
        if docker:
            self.sources.append(DockerSource(on_change, state))
        for h in hosts:
            if netlink:
                self.sources.append(NetlinkSource(h, on_change, state))
            if ovs:
                self.sources.append(OvsSource(h, on_change, state))
        central = hosts[0] if hosts else None
        if ovs and central is not None and (central.real or central.run_dir is not None):
            for which in ("nb", "sb"):  # OVN central: host1 in the lab, the system's in real mode
                self.sources.append(OvnSource(central, which, on_change, state))

    def start(self) -> Watcher:
        for s in self.sources:
            s.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        for s in self.sources:
            s.stop()
        deadline = time.monotonic() + timeout
        for s in self.sources:
            if s.is_alive():
                s.join(max(0.0, deadline - time.monotonic()))

    def states(self) -> dict[str, bool | None]:
        return {f"{s.source}:{s.host}" if s.host else s.source: s.connected for s in self.sources}

    def __enter__(self) -> Watcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
