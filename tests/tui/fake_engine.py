"""A fake engine for Pilot tests: workbench.api.EngineAPI (checked by mypy, see
`_conforms`), deterministic, no root, no lab. It returns the engine's own result
types; the canned data is in fake_data.py."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from workbench.active import Active
from workbench.api import EngineAPI, Progress
from workbench.capture import CaptureOptions, Record, Target
from workbench.capture.flows import BridgeFlows
from workbench.capture.path import HopView, TraceView
from workbench.capture.rates import RateTable
from workbench.doctor import DoctorReport, FixAction
from workbench.errors import BadInput, NotReady, StepFailed
from workbench.faults.catalogue import CATALOGUE, FaultDef
from workbench.impair.ops import ImpairState
from workbench.impair.spec import Spec
from workbench.inventory.model import Container, HostView, OvnView, Snapshot
from workbench.inventory.watch import Change, Dirty, SourceState
from workbench.measure.compare import CompareResult, PathFigure
from workbench.measure.iperf_data import IperfInterval, IperfResult
from workbench.measure.ping import PingReply, PingResult
from workbench.measure.pingall import PingallResult
from workbench.steps import Listener, Plan, StepEvent, StepState

from . import fake_capture, fake_data
from .fake_data import STEPS, FakeScenario

SOURCES = ("docker", "netlink:host1", "ovs:host1", "netlink:host2", "ovs:host2")


def _noop(_event: StepEvent) -> None:
    pass


class FakeWatcher:
    """workbench.api.LiveWatcher: every source connects on start; tests play the sources."""

    def __init__(
        self, on_change: Callable[[Change], None], on_state: Callable[[SourceState], None] | None
    ) -> None:
        self.on_change = on_change
        self.on_state = on_state or (lambda _s: None)
        self.started = False
        self.stopped = False
        self._states: dict[str, bool | None] = dict.fromkeys(SOURCES)

    def start(self) -> FakeWatcher:
        self.started = True
        for key in SOURCES:
            src, _, host = key.partition(":")
            self.state(src, host or None, True)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self.stopped = True

    def states(self) -> dict[str, bool | None]:
        return dict(self._states)

    # test helpers, called from any thread like the real sources
    def emit(self, source: str, host: str | None = None) -> None:
        self.on_change(Change(source, host))

    def state(self, source: str, host: str | None, connected: bool, detail: str = "") -> None:
        st = SourceState(source, host, connected, detail)
        self._states[st.key] = connected
        self.on_state(st)


@dataclass
class FakeEngine:
    """The engine's API over a dict of which steps are applied; the knobs below make
    it slow, fail or refuse where a test needs it, and `calls` records what was asked."""

    mode: str = "lab"
    lab_up_state: bool = True
    fail_at: int | None = None  # step index whose apply fails
    step_delay: float = 0.0
    step_gate: threading.Event | None = None  # a running step waits for it (at most 5 s)
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
    last: dict[str, dict[str, object]] = field(default_factory=dict)  # the options of the last run of each
    per_host: int = 1  # containers per host once the scenario runs them: h1-a (h1-b ...), h2-a ...
    #: the failure switch: pairs whose reachability is the opposite of what the scenario
    #: expects (an unexpected failure, or across exp3's VLANs an unexpected reach)
    pingall_flip: frozenset[tuple[str, str]] = frozenset()
    repairs: tuple[str, ...] = ()  # a half-built lab: what `lab up` will repair
    pingall_gate: threading.Semaphore | None = None  # each pingall cell waits for a permit
    scenarios: dict[str, FakeScenario] = field(default_factory=fake_data.scenarios)
    impaired: dict[str, Spec] = field(default_factory=dict)  # target -> its impairment
    injected: dict[str, bool] = field(default_factory=dict)  # fault name -> hidden
    ovn: OvnView | None = None  # OVN as the snapshot shows it (an OVN scenario)

    # --- lab ---------------------------------------------------------------------
    def lab_status(self) -> str:
        if self.repairs:
            return "lab is half-built (not healthy: host1)"
        return "lab is up: host1, host2" if self.lab_up_state else "lab is down"

    def lab_up(self, progress: Progress = print) -> str:
        self.calls.append("lab_up")
        progress("host1: namespace")
        progress("host2: namespace")
        self.lab_up_state = True
        self.repairs = ()
        return self.lab_status()

    def lab_down(self, progress: Progress = print) -> list[str]:
        self.calls.append("lab_down")
        self.lab_up_state = False
        self.applied.clear()
        return ["cn-host1", "cn-host2"]

    def active(self) -> Active | None:
        for name, st in self.applied.items():
            if any(st):
                return Active(name)
        return None

    # --- inventory -------------------------------------------------------------------
    def _containers_up(self) -> bool:
        return any(st and st[-1] for st in self.applied.values())

    def _tunnel_up(self) -> bool:
        return any(len(st) > 2 and st[2] for st in self.applied.values())

    def host_view(self, name: str, index: int) -> HostView:
        return fake_data.host_view(
            name,
            index,
            lab_up=self.lab_up_state,
            bridge=any(st and st[0] for st in self.applied.values()),
            tunnel=self._tunnel_up(),
            containers=self._containers_up(),
        )

    def containers(self) -> tuple[Container, ...]:
        if not self._containers_up() or not self.lab_up_state:
            return ()
        return fake_data.containers(self.per_host, vlans=self._is_active("exp3"))

    def _is_active(self, name: str) -> bool:
        active = self.active()
        return active is not None and active.scenario == name

    def snapshot(self) -> Snapshot:
        self.calls.append("snapshot")
        return Snapshot(
            mode=self.mode,
            lab=self.lab_status(),
            lab_repairs=self.repairs,
            hosts=(self.host_view("host1", 1), self.host_view("host2", 2)),
            containers=self.containers() if self.docker_up else (),
            docker_connected=self.docker_up,
            ovn=self.ovn,
        )

    def watch(
        self, on_change: Callable[[Change], None], on_state: Callable[[SourceState], None] | None = None
    ) -> FakeWatcher:
        self.watcher = FakeWatcher(on_change, on_state)
        return self.watcher

    def refresh(self, snap: Snapshot, what: Dirty) -> Snapshot:
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
        return self.scenarios[name].plan()

    def status(self, name: str) -> list[bool]:
        if not self.lab_up_state:
            raise NotReady("lab is down: run `containet lab up` first")
        return list(self._state(name))

    def _require(self) -> None:
        if not self.lab_up_state:
            raise NotReady("lab is down: run `containet lab up` first")

    def _run(self, name: str, indices: list[int], emit: Listener) -> int:
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
            if self.step_gate is not None:
                self.step_gate.wait(5)
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

    def apply(self, name: str, on_event: Listener | None = None) -> int:
        self.calls.append(f"apply:{name}")
        self._require()
        return self._run(name, list(range(len(STEPS))), on_event or _noop)

    def next_step(self, name: str, on_event: Listener | None = None) -> int | None:
        self.calls.append(f"next:{name}")
        self._require()
        st = self._state(name)
        for i, ok in enumerate(st):
            if not ok:
                self._run(name, [i], on_event or _noop)
                return i
        return None

    def back_step(self, name: str, on_event: Listener | None = None) -> int | None:
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

    def undo(self, name: str, on_event: Listener | None = None) -> int:
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
        return fake_data.ping_result(src, dst, replies)

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
        return fake_data.iperf_result(src, dst, udp, ivs)

    def compare(
        self,
        src: str = "h1-a",
        dst: str = "h2-a",
        *,
        paths: list[str] | None = None,
        seconds: float = 3.0,
        progress: Progress = print,
        cancel: threading.Event | None = None,
    ) -> CompareResult:
        """The ceiling at 20 Gbit/s, each path at a fixed share of it; the paths other
        than the applied one are applied for their turn (said through `progress`)."""
        self.calls.append(f"compare:{src}:{dst}:{','.join(paths or [])}")
        if self.measure_error:
            raise NotReady(self.measure_error)
        active = self.active()
        figures = []
        for path in paths or ([active.scenario] if active else []):
            if active is None or path != active.scenario:
                progress(f"{path}: apply {path}")
            self._wait(cancel)
            share = {"exp1": 0.04, "exp2": 0.05, "exp3": 0.05}.get(path, 0.6)
            figures.append(PathFigure(path, self.scenarios[path].TITLE, share * 20e9, 0.4, 100))
        restored = active.scenario if active and any(p != active.scenario for p in paths or []) else None
        ceiling = PathFigure("ceiling", "raw veth between two namespaces", 20e9, 0.05, 0)
        return CompareResult(src, dst, seconds, ceiling, tuple(figures), restored)

    def pingall(
        self,
        *,
        count: int = 1,
        timeout: float = 1.0,
        workers: int = 8,
        on_result: Callable[[str, str, PingResult], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> PingallResult:
        """Every pair, row by row, against the active scenario: exp3 expects only the
        same VLAN to reach, the others everyone. The network does what is expected except
        for `pingall_flip`; a pair with no reply was probed twice (one retry)."""
        self.calls.append("pingall")
        self.last["pingall"] = {"count": count, "timeout": timeout}
        if self.measure_error:
            raise NotReady(self.measure_error)
        running = self.containers()
        names = tuple(c.name for c in running) or ("h1-a", "h2-a")
        vlan = {c.name: c.vlan for c in running}
        active = self.active()
        expected = {
            (s, d): vlan.get(s) == vlan.get(d) if self._is_active("exp3") else True
            for s in names
            for d in names
            if s != d
        }
        cells: dict[tuple[str, str], PingResult] = {}
        for (s, d), want in expected.items():
            if self.pingall_gate is not None:
                while not self.pingall_gate.acquire(timeout=0.01):
                    if cancel is not None and cancel.is_set():
                        break
            if cancel is not None and cancel.is_set():
                break
            reach = want != ((s, d) in self.pingall_flip)
            rtt = 0.4 + 0.01 * (len(cells) % 7)  # deterministic, a little spread
            replies = [PingReply(1, rtt)] if reach else [PingReply(1, None), PingReply(2, None)]
            res = fake_data.ping_result(s, d, replies, dst_ip="x")
            cells[(s, d)] = res
            if on_result:
                on_result(s, d, res)
        return PingallResult(names, cells, expected, active.scenario if active else None, count=count)

    # --- doctor ---------------------------------------------------------------------------
    def doctor(
        self,
        src: str,
        dst: str,
        *,
        probe: bool = True,
        trace: bool = True,
        progress: Progress | None = None,
    ) -> DoctorReport:
        self.calls.append(f"doctor:{src}:{dst}")
        say = progress or (lambda _m: None)
        say("reading the inventory")
        if self.doctor_delay:
            time.sleep(self.doctor_delay)
        if self.doctor_error:
            raise NotReady(self.doctor_error)
        say("reading hosts, containers and probing")
        return fake_data.doctor_report(src, dst, self.veth_down)

    def doctor_fix(self, fix: FixAction) -> str:
        self.calls.append(f"doctor_fix:{type(fix.intents[0]).__name__}")
        self.veth_down = False
        return f"{fix.title}: {'; '.join(c.text for i in fix.intents for c in i.commands())}"

    # --- impairments and faults ----------------------------------------------------
    def netem_set(self, target: str, **changes: float | None) -> ImpairState:
        self.calls.append(f"netem_set:{target}")
        if target not in ("h1-a", "h2-a", "host1:gre0", "host2:gre0"):
            raise BadInput(f"unknown target {target!r}: a container or a tunnel HOST:PORT")
        spec = self.impaired.get(target, Spec()).merged(changes)
        if spec.empty:
            self.impaired.pop(target, None)
        else:
            self.impaired[target] = spec
        return ImpairState(target, spec, "substitute", True, (f"(fake) impair {target}",))

    def netem_clear(self, target: str | None = None) -> list[str]:
        self.calls.append(f"netem_clear:{target}")
        gone = [t for t in self.impaired if target in (None, t)]
        for t in gone:
            self.impaired.pop(t)
        return [f"{t}: cleared" for t in gone]

    def netem_show(self) -> tuple[str, list[ImpairState]]:
        return "substitutes (fake)", [ImpairState(t, s, "substitute", True) for t, s in self.impaired.items()]

    def link_state(self, target: str, action: str, period: float = 1.0, count: int = 0) -> str:
        self.calls.append(f"link_{action}:{target}")
        return f"{target}: {action}"

    def fault_catalogue(self) -> list[FaultDef]:
        return list(CATALOGUE)

    def fault_inject(self, name: str | None, on: str | None = None, hidden: bool = False) -> str:
        self.calls.append(f"fault_inject:{name}:{hidden}")
        if name is None:
            name = CATALOGUE[0].name
        elif name not in {f.name for f in CATALOGUE}:
            raise BadInput(f"unknown fault {name!r}")
        if name in self.injected:
            raise BadInput(f"{name} is injected already")
        self.injected[name] = hidden
        return "a fault is injected, and hidden" if hidden else f"{name}: injected"

    def fault_revert(self, name: str | None = None) -> list[str]:
        self.calls.append(f"fault_revert:{name}")
        gone = [n for n in self.injected if name in (None, n)]
        for n in gone:
            self.injected.pop(n)
        return [f"reverted {n}" for n in gone]

    def fault_reveal(self) -> str:
        hidden = [n for n, h in self.injected.items() if h]
        return f"the hidden fault is {hidden[-1]}" if hidden else "no hidden fault is injected"

    def faults_active(self) -> list[str]:
        return ["a hidden fault" if h else n for n, h in self.injected.items()]

    # --- see the packets (canned frames: tests/tui/fake_capture.py) ---------------------
    def capture_target(self, where: str) -> Target:
        return fake_capture.target(where)

    def open_capture(
        self, where: str, opts: CaptureOptions, on_record: Callable[[Record], None] | None = None
    ) -> fake_capture.FakeCapture:
        self.calls.append(f"capture:{where}:{opts.filter}")
        return fake_capture.FakeCapture(where, opts)

    def open_path_capture(
        self,
        src: str,
        dst: str,
        opts: CaptureOptions,
        on_record: Callable[[str, Record], None] | None = None,
    ) -> fake_capture.FakePathCapture:
        self.calls.append(f"capture_path:{src}:{dst}")
        return fake_capture.FakePathCapture(src, dst)

    def flows(self, where: str) -> list[BridgeFlows]:
        return fake_capture.flows(where)

    def trace(self, src: str, dst: str, *, probes: int = 3) -> TraceView:
        return TraceView(src, dst, (HopView("host1", None, ()),), probes)

    def rates(self, on_rates: Callable[[RateTable], None], interval: float = 1.0) -> fake_capture.FakeRates:
        return fake_capture.FakeRates(on_rates)


def _conforms(fake: FakeEngine) -> EngineAPI:
    """mypy checks here that the fake implements the API the TUI is typed with."""
    return fake
