"""A fake Engine for Pilot tests: the public API of workbench.engine.Engine
(plus the measurement API), deterministic, no root, no lab."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

from workbench.doctor import Check, DoctorReport, FixAction, Status
from workbench.errors import BadInput, NotReady, StepFailed
from workbench.intents import Intent, LinkUp, Where
from workbench.inventory.model import (
    Container,
    HostView,
    Iface,
    LinuxBridge,
    OvsBridge,
    OvsPort,
    Snapshot,
)
from workbench.inventory.watch import Change, SourceState
from workbench.steps import Cmd, Plan, Step, StepEvent, StepState


def _noop(*_a: Any) -> Any:
    return True


@dataclass(frozen=True)
class Shown(Intent):
    """An intent that only shows its command: the fake keeps state in its own dict."""

    host: str
    name: str
    cmd: str

    def key(self) -> str:
        return self.name

    def title(self) -> str:
        return self.name

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.HOST, self.cmd),)

    def apply(self, ctx: Any) -> None:
        pass

    def verify(self, ctx: Any) -> bool:
        return True


def _step(i: int, host: str, title: str, why: str, cmd: str) -> Step:
    return Step(Shown(host, f"s{i}", cmd), why, title=title)


STEPS = [
    (
        "host1",
        "linux bridge docker0 172.15.42.1/24",
        "Containers plug into a linux bridge.",
        "ip link add docker0 type bridge",
    ),
    ("host1", "OVS bridge br0", "OVS carries the tunnel.", "ovs-vsctl add-br br0"),
    (
        "host1",
        "GRE port gre0 to 10.0.0.4",
        "Wraps frames in GRE.",
        "ovs-vsctl add-port br0 gre0 -- set interface gre0 type=gre options:remote_ip=10.0.0.4",
    ),
    ("host2", "linux bridge docker0 172.15.42.2/24", "The same on host2.", "ip link add docker0 type bridge"),
    ("host2", "OVS bridge br0", "OVS carries the tunnel.", "ovs-vsctl add-br br0"),
    ("", "run h1-a h2-a", "docker run --net=none.", "docker run -d --net=none --name h1-a containet/busybox"),
]


@dataclass(frozen=True)
class PingReply:
    seq: int
    rtt_ms: float | None


@dataclass(frozen=True)
class PingResult:
    src: str
    dst: str
    dst_ip: str
    sent: int
    received: int
    loss_pct: float
    min_ms: float | None
    avg_ms: float | None
    max_ms: float | None
    mdev_ms: float | None
    replies: tuple[PingReply, ...] = ()


@dataclass(frozen=True)
class IperfInterval:
    start: float
    end: float
    bits_per_second: float
    retransmits: int | None = None


@dataclass(frozen=True)
class IperfResult:
    src: str
    dst: str
    protocol: str
    seconds: float
    sent_bps: float
    received_bps: float
    retransmits: int | None
    intervals: tuple[IperfInterval, ...] = ()
    warnings: tuple[str, ...] = ()
    runs: int = 1
    median_bps: float | None = None
    spread_pct: float | None = None


@dataclass
class PingallResult:
    names: tuple[str, ...]
    cells: dict[tuple[str, str], PingResult]
    expected: dict[tuple[str, str], bool]
    scenario: str | None = None

    def passed(self, src: str, dst: str) -> bool:
        return (self.cells[(src, dst)].received > 0) == self.expected.get((src, dst), True)

    @property
    def all_passed(self) -> bool:
        return all(self.passed(s, d) for s, d in self.cells)


class FakeWatcher:
    def __init__(self, on_change: Callable[[Any], None], on_state: Callable[[Any], None] | None) -> None:
        self.on_change = on_change
        self.on_state = on_state or (lambda _s: None)
        self.started = False
        self.stopped = False

    def start(self) -> FakeWatcher:
        self.started = True
        for key in ("docker", "netlink:host1", "ovs:host1", "netlink:host2", "ovs:host2"):
            src, _, host = key.partition(":")
            self.on_state(SourceState(src, host or None, True))
        return self

    def stop(self) -> None:
        self.stopped = True

    # test helpers, called from any thread like the real sources
    def emit(self, source: str, host: str | None = None) -> None:
        self.on_change(Change(source, host))

    def state(self, source: str, host: str | None, connected: bool, detail: str = "") -> None:
        self.on_state(SourceState(source, host, connected, detail))


@dataclass
class FakeEngine:
    mode: str = "lab"
    lab_up_state: bool = True
    fail_at: int | None = None  # step index whose apply fails
    step_delay: float = 0.0
    ping_rtts: tuple[float | None, ...] = (0.61, 0.55, None, 0.72)
    iperf_bps: tuple[float, ...] = (1.2e9, 1.3e9, 1.25e9)
    measure_error: str | None = None
    docker_up: bool = True
    applied: dict[str, list[bool]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    watcher: FakeWatcher | None = None
    block: threading.Event | None = None  # measurements wait on it (to test Stop)
    veth_down: bool = False  # the doctor finds host1's veth down and offers a fix
    doctor_error: str | None = None
    doctor_delay: float = 0.0
    last: dict[str, dict[str, Any]] = field(default_factory=dict)  # the options of the last run of each

    def __post_init__(self) -> None:
        self.scenarios = {
            n: SimpleNamespace(NAME=n, TITLE=t, SUMMARY=s)
            for n, t, s in (
                ("exp1", "Exp1 docker bridge + OVS", "Containers on docker0; OVS br0 carries a GRE tunnel."),
                ("exp2", "Exp2 OVS only", "Containers plugged straight into OVS br0."),
                ("exp3", "Exp3 VLANs", "Exp2 with VLAN tags 10 and 20."),
            )
        }
        self._lock = threading.Lock()

    # --- lab ---------------------------------------------------------------------
    def lab_status(self) -> str:
        return "lab is up: host1, host2" if self.lab_up_state else "lab is down"

    def lab_up(self, progress: Callable[[str], None] = print) -> str:
        self.calls.append("lab_up")
        progress("host1: namespace")
        progress("host2: namespace")
        self.lab_up_state = True
        return self.lab_status()

    def lab_down(self, progress: Callable[[str], None] = print) -> list[str]:
        self.calls.append("lab_down")
        self.lab_up_state = False
        self.applied.clear()
        return ["cn-host1", "cn-host2"]

    def active(self) -> Any:
        for name, st in self.applied.items():
            if any(st):
                return SimpleNamespace(scenario=name)
        return None

    # --- inventory -------------------------------------------------------------------
    def _containers_up(self) -> bool:
        return any(st and st[-1] for st in self.applied.values())

    def _tunnel_up(self) -> bool:
        return any(len(st) > 2 and st[2] for st in self.applied.values())

    def host_view(self, name: str, index: int) -> HostView:
        if not self.lab_up_state:
            return HostView(name, f"10.0.0.{index + 2}", False, False, error="namespace missing")
        phy = OvsBridge("br-phy", "netdev", (OvsPort("eth1"),), ours=True)
        lb: tuple[LinuxBridge, ...] = ()
        obr: tuple[OvsBridge, ...] = (phy,)
        if any(st and st[0] for st in self.applied.values()):
            ports = ("br0", f"cn-h{index}-a") if self._containers_up() else ("br0",)
            lb = (LinuxBridge("docker0", "UP", 1500, (f"172.15.42.{index}/24",), ports),)
        if self._tunnel_up():
            remote = "10.0.0.4" if index == 1 else "10.0.0.3"
            gre = OvsPort("gre0", "gre", None, (("remote_ip", remote),), 1)
            obr = (OvsBridge("br0", "netdev", (gre,), ours=True), phy)
        return HostView(
            name=name,
            underlay_ip=f"10.0.0.{index + 2}",
            reachable=True,
            ovs_connected=True,
            links=(),
            linux_bridges=lb,
            ovs_bridges=obr,
        )

    def containers(self) -> tuple[Container, ...]:
        if not self._containers_up() or not self.lab_up_state:
            return ()
        out = []
        for n, host in ((1, "host1"), (2, "host2")):
            name = f"h{n}-a"
            eth0 = Iface("eth0", "veth", "UP", 1450, "02:00:00:00:00:0" + str(n), (f"172.15.42.{99 + n}/24",))
            out.append(
                Container(
                    name=name,
                    host=host,
                    docker_name=f"cn-{name}",
                    id=f"abcdef00000{n}",
                    status="running",
                    pid=1000 + n,
                    interfaces=(Iface("lo", "", "UNKNOWN", 65536, "", ("127.0.0.1/8",)), eth0),
                    gateway="172.15.42.1",
                    host_veth=f"cn-{name}",
                    attached_to="docker0",
                    ours=True,
                )
            )
        return tuple(out)

    def snapshot(self) -> Snapshot:
        self.calls.append("snapshot")
        return Snapshot(
            mode=self.mode,
            lab=self.lab_status(),
            hosts=(self.host_view("host1", 1), self.host_view("host2", 2)),
            containers=self.containers() if self.docker_up else (),
            docker_connected=self.docker_up,
        )

    def watch(
        self, on_change: Callable[[Any], None], on_state: Callable[[Any], None] | None = None
    ) -> FakeWatcher:
        self.watcher = FakeWatcher(on_change, on_state)
        return self.watcher

    def refresh(self, snap: Snapshot, what: Any) -> Snapshot:
        self.calls.append(f"refresh:{','.join(sorted(what.hosts))}:{int(what.containers)}")
        hosts = tuple(
            self.host_view(h.name, i + 1) if h.name in what.hosts else h for i, h in enumerate(snap.hosts)
        )
        cts = snap.containers
        if what.containers:
            cts = self.containers() if self.docker_up else snap.containers
        return replace(
            snap, lab=self.lab_status(), hosts=hosts, containers=cts, docker_connected=self.docker_up
        )

    # --- scenarios -------------------------------------------------------------------
    def _state(self, name: str) -> list[bool]:
        return self.applied.setdefault(name, [False] * len(STEPS))

    def plan(self, name: str) -> Plan:
        mod = self.scenarios[name]
        return Plan(name, mod.TITLE, mod.SUMMARY, tuple(_step(i, *s) for i, s in enumerate(STEPS)))

    def status(self, name: str) -> list[bool]:
        if not self.lab_up_state:
            raise NotReady("lab is down: run `containet lab up` first")
        return list(self._state(name))

    def _require(self) -> None:
        if not self.lab_up_state:
            raise NotReady("lab is down: run `containet lab up` first")

    def _run(self, name: str, indices: list[int], emit: Callable[[StepEvent], None]) -> int:
        plan = self.plan(name)
        st = self._state(name)
        done: list[int] = []
        for i in indices:
            step = plan.steps[i]
            if st[i]:
                emit(StepEvent(i, step, StepState.SKIPPED, "already applied"))
                continue
            emit(StepEvent(i, step, StepState.RUNNING))
            if self.step_delay:
                time.sleep(self.step_delay)
            done.append(i)
            if i == self.fail_at:
                # a fixed duration: the time column of a snapshot must not depend on load
                emit(StepEvent(i, step, StepState.FAILED, "RTNETLINK answers: File exists", seconds=0.01))
                for j in reversed(done):
                    st[j] = False
                    emit(StepEvent(j, plan.steps[j], StepState.ROLLED_BACK))
                raise StepFailed(
                    f"step {i + 1} '{step.title}' on {step.host}: RTNETLINK answers: File exists "
                    f"(rolled back {len(done)} step(s))"
                )
            st[i] = True
            emit(StepEvent(i, step, StepState.APPLIED, seconds=0.01))
            self._changed(step.host)
        return len(done)

    def _changed(self, host: str) -> None:
        if self.watcher is not None:
            self.watcher.emit("netlink" if host else "docker", host or None)

    def apply(self, name: str, on_event: Callable[[StepEvent], None] | None = None) -> int:
        self.calls.append(f"apply:{name}")
        self._require()
        return self._run(name, list(range(len(STEPS))), on_event or _noop)

    def next_step(self, name: str, on_event: Callable[[StepEvent], None] | None = None) -> int | None:
        self.calls.append(f"next:{name}")
        self._require()
        st = self._state(name)
        for i, ok in enumerate(st):
            if not ok:
                self._run(name, [i], on_event or _noop)
                return i
        return None

    def back_step(self, name: str, on_event: Callable[[StepEvent], None] | None = None) -> int | None:
        self.calls.append(f"back:{name}")
        self._require()
        st = self._state(name)
        plan = self.plan(name)
        emit = on_event or _noop
        for i in reversed(range(len(st))):
            if st[i]:
                emit(StepEvent(i, plan.steps[i], StepState.UNDOING))
                st[i] = False
                emit(StepEvent(i, plan.steps[i], StepState.UNDONE))
                self._changed(plan.steps[i].host)
                return i
        return None

    def undo(self, name: str, on_event: Callable[[StepEvent], None] | None = None) -> int:
        self.calls.append(f"undo:{name}")
        self._require()
        st = self._state(name)
        plan = self.plan(name)
        emit = on_event or _noop
        n = 0
        for i in reversed(range(len(st))):
            if st[i]:
                emit(StepEvent(i, plan.steps[i], StepState.UNDOING))
                st[i] = False
                emit(StepEvent(i, plan.steps[i], StepState.UNDONE))
                n += 1
        self._changed("host1")
        return n

    def export(self, name: str, fmt: str = "bash", plain: bool = False) -> str:
        plan = self.plan(name)
        if fmt == "json":
            return json.dumps(
                {
                    "name": name,
                    "steps": [
                        {
                            "id": s.id,
                            "host": s.host,
                            "title": s.title,
                            "why": s.why,
                            "commands": [c.text for c in s.commands],
                        }
                        for s in plan.steps
                    ],
                }
            )
        lines = ["#!/bin/bash", f"# {plan.title}: {plan.summary}", "set -euo pipefail", ""]
        for i, s in enumerate(plan.steps, 1):
            lines += [f"# {i}. [{s.host or 'docker'}] {s.title}", *(c.text for c in s.commands), ""]
        return "\n".join(lines)

    # --- measurements ------------------------------------------------------------------
    def _wait(self, cancel: threading.Event | None) -> None:
        if self.block is not None:
            deadline = time.monotonic() + 5
            while not self.block.is_set() and time.monotonic() < deadline:
                if cancel is not None and cancel.is_set():
                    return
                time.sleep(0.01)

    def ping(
        self,
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
        self.calls.append(f"ping:{src}:{dst}")
        self.last["ping"] = {"count": count, "interval": interval}
        if not 1 <= count <= 10_000:  # the engine's own bounds (PingOptions.check)
            raise BadInput(f"bad count {count}: use 1 to 10000")
        if self.measure_error:
            raise NotReady(self.measure_error)
        replies = []
        for seq, rtt in enumerate(self.ping_rtts[:count], 1):
            self._wait(cancel)
            if cancel is not None and cancel.is_set():
                break
            r = PingReply(seq, rtt)
            replies.append(r)
            if on_reply:
                on_reply(r)
        got = [r.rtt_ms for r in replies if r.rtt_ms is not None]
        sent = len(replies)
        return PingResult(
            src,
            dst,
            "172.15.42.101",
            sent,
            len(got),
            100.0 * (sent - len(got)) / max(1, sent),
            min(got) if got else None,
            sum(got) / len(got) if got else None,
            max(got) if got else None,
            0.05,
            tuple(replies),
        )

    def iperf(
        self,
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
        self.calls.append(f"iperf:{src}:{dst}")
        self.last["iperf"] = {"seconds": seconds, "parallel": parallel, "udp": udp, "reverse": reverse}
        if not 1 <= parallel <= 16:  # IperfOptions.check
            raise BadInput(f"bad parallel {parallel}: use 1 to 16 streams")
        if self.measure_error:
            raise NotReady(self.measure_error)
        ivs = []
        for n, bps in enumerate(self.iperf_bps):
            self._wait(cancel)
            if cancel is not None and cancel.is_set():
                break
            iv = IperfInterval(float(n), float(n + 1), bps, 0)
            ivs.append(iv)
            if on_interval:
                on_interval(iv)
        avg = sum(i.bits_per_second for i in ivs) / max(1, len(ivs))
        proto = "udp" if udp else "tcp"
        return IperfResult(src, dst, proto, float(len(ivs)), avg, avg * 0.99, 0, tuple(ivs))

    def pingall(
        self,
        *,
        count: int = 1,
        timeout: float = 1.0,
        workers: int = 8,
        on_result: Callable[[str, str, PingResult], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> PingallResult:
        self.calls.append("pingall")
        names = tuple(c.name for c in self.containers()) or ("h1-a", "h2-a")
        cells = {}
        for s in names:
            for d in names:
                if s == d:
                    continue
                res = PingResult(s, d, "x", 1, 1, 0.0, 0.5, 0.5, 0.5, 0.0)
                cells[(s, d)] = res
                if on_result:
                    on_result(s, d, res)
        return PingallResult(names, cells, {k: True for k in cells}, "exp1")

    # --- doctor ---------------------------------------------------------------------------
    def doctor(
        self,
        src: str,
        dst: str,
        *,
        probe: bool = True,
        trace: bool = True,
        progress: Callable[[str], None] | None = None,
    ) -> DoctorReport:
        self.calls.append(f"doctor:{src}:{dst}")
        say = progress or (lambda _m: None)
        say("reading the inventory")
        if self.doctor_delay:
            time.sleep(self.doctor_delay)
        if self.doctor_error:
            raise NotReady(self.doctor_error)
        say("reading hosts, containers and probing")
        fix = FixAction(
            "bring cn-h1-a up on host1",
            (LinkUp("host1", "cn-h1-a"),),
        )
        ok, warn, fail = Status.OK, Status.WARN, Status.FAIL
        veth = (
            Check(
                "up",
                "veth cn-h1-a (host1)",
                fail,
                "cn-h1-a is DOWN on host1 (container side: DOWN)",
                "ip -n cn-host1 link set cn-h1-a up",
                fix,
            )
            if self.veth_down
            else Check("up", "veth cn-h1-a (host1)", ok, "cn-h1-a UP, carrier")
        )
        checks = (
            Check("eth0 up", f"container {src} (host1)", warn if self.veth_down else ok, "eth0 UP"),
            Check("address", f"container {src} (host1)", ok, "eth0 172.15.42.100/24 in 172.15.42.0/24"),
            veth,
            Check("MTU pair", "veth cn-h1-a (host1)", ok, "both ends MTU 1462"),
            Check("up", "docker0 (host1)", ok, "docker0 UP, mtu 1462, 172.15.42.1/24"),
            Check("ofproto/trace", "OVS br0 (host1)", ok, "frame leaves by gre0 (tunnelled to 10.0.0.4)"),
            Check("remote_ip", "tunnel gre0 (host1)", ok, "remote_ip=10.0.0.4 is host2's underlay address"),
            Check("address", f"container {dst} (host2)", ok, "eth0 172.15.42.101/24 in 172.15.42.0/24"),
            Check(
                "ping",
                "end to end",
                fail if self.veth_down else ok,
                "84 B 0/2" if self.veth_down else "84 B 2/2, 1462 B DF 2/2",
            ),
        )
        return DoctorReport(src, dst, "host1", "host2", "exp1", checks, seconds=0.4)

    def doctor_fix(self, fix: FixAction) -> str:
        self.calls.append(f"doctor_fix:{type(fix.intents[0]).__name__}")
        self.veth_down = False
        return f"{fix.title}: {'; '.join(c.text for i in fix.intents for c in i.commands())}"
