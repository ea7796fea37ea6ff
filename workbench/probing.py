"""The engine's measuring half: ping, iperf, pingall and the doctor.

The logic is in workbench.measure and workbench.doctor; these methods resolve
names against the inventory, read what the active scenario expects, and
delegate. `Engine` inherits them; `_Core` says what they need of it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from icmplib import is_ipv4_address

from .active import Active
from .doctor import DoctorReport, Expected, FixAction, FixHooks, MtuReport, apply_fix, diagnose, measure_mtu
from .doctor.expect import expected_from
from .errors import BadInput, NotReady, WorkbenchError
from .host import Host, Place
from .inventory.model import Snapshot
from .measure.iperf import IperfInterval, IperfOptions, IperfResult, run_iperf
from .measure.ping import PingOptions, PingReply, PingResult, Target, ping_from
from .measure.pingall import Member, PingallResult, Verdict, expectations, run_pingall
from .rstp import read_tree
from .setup import Setup, load_tunrc
from .steps import Listener, Plan
from .topology.model import Topology


class _Core(Protocol):
    """What the measuring methods need of the engine."""

    tunrc_dir: str | None
    active_path: Path

    def require_lab(self) -> None: ...

    def hosts(self) -> list[Host]: ...

    def snapshot(self, peers: list[str] | None = None) -> Snapshot: ...

    def topology(self) -> Topology: ...

    def resolve(self, who: str, snap: Snapshot | None = None) -> Any: ...

    def active(self) -> Active | None: ...

    def setup(self, name: str) -> Setup: ...

    def plan(self, name: str, setup: Setup | None = None) -> Plan: ...

    def apply(self, name: str, on_event: Listener | None = None) -> int: ...

    def lab_up(self, progress: Callable[[str], None] = print, topology: str = "mesh") -> str: ...

    def _running(self, who: str, snap: Snapshot) -> Any: ...

    def locked(self) -> AbstractContextManager[None]: ...

    def _doctor_hooks(self) -> FixHooks: ...

    def _expected(self) -> Expected: ...


def _quiet(_msg: str) -> None:
    pass


class Probing:
    # --- measurements -----------------------------------------------------------
    # The logic is in workbench.measure; these resolve names and delegate. ping and
    # pingall call their callbacks in the calling thread, iperf from a reader thread:
    # call them from a worker; `cancel` ends a run within ~1 s, partial result.
    def _running(self: _Core, who: str, snap: Snapshot) -> Any:
        found = self.resolve(who, snap)
        if found.status != "running" or not found.pid or not found.ip:
            raise NotReady(f"container {found.name} is not running (or has no address)")
        return found

    def ping(
        self: _Core,
        src: str,
        dst: str,
        *,
        count: int = 4,
        interval: float = 0.2,
        size: int = 56,
        df: bool = False,
        timeout: float = 1.0,
        on_reply: Callable[[PingReply], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> PingResult:
        """Ping dst (a container, or any IPv4 address) from inside src's namespace."""
        opts = PingOptions(count, interval, size, df, timeout).check()
        self.require_lab()
        snap = self.snapshot()
        source = self._running(src, snap)
        if is_ipv4_address(dst) and snap.container(dst) is None:
            target = Target(dst, dst)
        else:
            found = self._running(dst, snap)
            target = Target(found.name, found.ip)
        relay = (lambda _t, reply: on_reply(reply)) if on_reply else None
        place = Place.of_pid(source.pid, source.name)
        return ping_from(place, source.name, [target], opts, on_reply=relay, cancel=cancel)[target]

    def iperf(
        self: _Core,
        src: str,
        dst: str,
        *,
        seconds: float = 3.0,
        parallel: int = 1,
        udp: bool = False,
        bitrate: str | None = None,
        reverse: bool = False,
        repeat: int = 1,
        on_interval: Callable[[IperfInterval], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> IperfResult:
        """iperf3 from src to dst (server in dst's namespace, client in src's)."""
        self.require_lab()
        snap = self.snapshot()
        source, target = self._running(src, snap), self._running(dst, snap)
        if source.name == target.name:
            raise BadInput(f"iperf needs two different containers (got {source.name} twice)")
        opts = IperfOptions(seconds, parallel, udp, bitrate, reverse, repeat, (source.mtu or 1500) - 40)
        return run_iperf(
            source.name,
            Place.of_pid(source.pid, source.name),
            target.name,
            Place.of_pid(target.pid, target.name),
            target.ip,
            opts,
            on_interval=on_interval,
            cancel=cancel,
        )

    def pingall(
        self: _Core,
        *,
        count: int = 1,
        timeout: float = 1.0,
        workers: int = 8,
        on_result: Callable[[str, str, PingResult], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> PingallResult:
        """Every running container to every other, against the active scenario's expectation."""
        opts = PingOptions(count=count, interval=0.2, timeout=timeout).check()
        self.require_lab()
        snap = self.snapshot()
        members = [
            Member(c.name, c.ip, Place.of_pid(c.pid, c.name), c.vlan)
            for c in sorted(snap.containers, key=lambda c: (c.host, c.name))
            if c.status == "running" and c.pid and c.ip
        ]
        active = Active.load(self.active_path)
        expect = self.plan(active.scenario).expect if active else {}
        result = run_pingall(
            members,
            expected=expectations(expect, members),
            scenario=active.scenario if active else None,
            opts=opts,
            workers=workers,
            on_result=on_result,
            cancel=cancel,
        )
        if any(result.verdict(s, d) == Verdict.UNEXPECTED_FAILURE for s, d in result.pairs):
            tree = read_tree(self.hosts())  # still converging, or a broken pair?
            if tree is not None and not tree.converged:
                result = replace(result, converging=tree.describe())
        return result

    # --- doctor ---
    # Walk the path between two containers hop by hop (workbench.doctor reads the facts
    # and judges them); fixes are FixActions the doctor applies with the engine's hooks.
    # The doctor never imports the engine: it gets hosts, the topology and `_expected()`.
    def doctor(
        self: _Core,
        src: str,
        dst: str,
        *,
        probe: bool = True,
        trace: bool = True,
        progress: Callable[[str], None] | None = None,
    ) -> DoctorReport:
        """A DoctorReport: every check in path order, OK / FAIL / WARN, evidence and fixes."""
        say = progress or _quiet
        started = time.monotonic()
        self.require_lab()
        active = self.active()
        if active is not None and runs_ovn(self.plan(active.scenario)):
            from .doctor.ovn import diagnose_ovn

            say("reading OVN and the hosts")
            return diagnose_ovn(
                self.hosts(),
                self.snapshot(),
                active.scenario,
                src,
                dst,
                probe=probe,
                progress=say,
                started=started,
            )
        say("discovering the topology")
        topology = self.topology()
        return diagnose(
            self.hosts(),
            topology,
            self._expected(),
            src,
            dst,
            probe=probe,
            trace=trace,
            progress=say,
            started=started,
        )

    def doctor_fix(self: _Core, fix: FixAction) -> str:
        """Apply a check's FixAction (report.first_failure.fix); returns a one-line summary."""
        self.require_lab()
        with self.locked():
            return apply_fix(self.hosts(), fix, self._doctor_hooks())

    def path_mtu(
        self: _Core, src: str, dst: str, fix: bool = False, progress: Callable[[str], None] | None = None
    ) -> MtuReport:
        """An MtuReport: path MTU by don't-fragment pings vs the interface MTUs; fix=True
        sets both containers and their host sides to what the tunnel carries. (Not named
        `mtu`: that is the --mtu option's attribute.)"""
        self.require_lab()
        with self.locked() if fix else nullcontext():  # a fix changes the lab
            return measure_mtu(
                self.hosts(),
                self.topology(),
                self._expected(),
                src,
                dst,
                fix=fix,
                hooks=self._doctor_hooks(),
                progress=progress or _quiet,
            )

    def _doctor_hooks(self: _Core) -> FixHooks:
        return FixHooks(
            topology=self.topology,
            scenario_apply=self.apply,
            lab_up=lambda: self.lab_up(progress=_quiet),
        )

    def _expected(self: _Core) -> Expected:
        """What the active scenario's intents say about each container and host (no
        scenario: each host's OVS bridge from its tunrc)."""
        active = self.active()
        if active is None:
            try:
                hosts = tuple(self.hosts())
                rcs = load_tunrc(hosts, self.tunrc_dir)
            except WorkbenchError:
                return Expected()
            subnet = rcs[hosts[0].name].subnet
            return expected_from(None, subnet, {h: r.ovs_bridge for h, r in rcs.items()})
        setup = self.setup(active.scenario)
        plan = self.plan(active.scenario, setup)
        bridges = {h.name: setup.rc(h.name).ovs_bridge for h in setup.hosts}
        intents = (s.intent for s in plan.steps)
        return expected_from(active.scenario, setup.rc(setup.hosts[0].name).subnet, bridges, intents)


def runs_ovn(plan: Plan) -> bool:
    """The plan's network is OVN's (it waits for OVN's readiness, in the lab and on a
    real host alike): the doctor walks OVN."""
    from .intents.ovn import OvnReady

    return any(isinstance(s.intent, OvnReady) for s in plan.steps)
