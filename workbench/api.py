"""The engine's public API as a type: what the front ends may call.

`workbench.engine.Engine` implements it; the TUI is typed against it, and the
test fake (tests/tui/fake_engine.py) implements it too, returning the engine's
own result types. mypy checks both against this one declaration.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from .active import Active
from .capture import CaptureOptions, CaptureResult, Record, Target
from .capture.flows import BridgeFlows
from .capture.path import PathResult, TraceView
from .capture.rates import RateTable
from .doctor.model import DoctorReport, FixAction
from .inventory.model import Snapshot
from .inventory.watch import Change, Dirty, SourceState
from .measure.compare import CompareResult
from .measure.iperf_data import IperfInterval, IperfResult
from .measure.ping import PingReply, PingResult
from .measure.pingall import PingallResult
from .setup import Setup
from .steps import Listener, Plan

if TYPE_CHECKING:
    from .faults.catalogue import FaultDef
    from .impair.ops import ImpairState

Progress = Callable[[str], None]


class Scenario(Protocol):
    """A scenario module (found through the "containet.scenarios" entry points)."""

    NAME: str
    TITLE: str
    SUMMARY: str

    def plan(self, setup: Setup) -> Plan: ...


class LiveWatcher(Protocol):
    """Live event sources (docker, netlink, OVSDB), started once and stopped once."""

    def start(self) -> LiveWatcher: ...

    def stop(self, timeout: float = 2.0) -> None: ...

    def states(self) -> dict[str, bool | None]: ...


class LiveCapture(Protocol):
    """A running capture (workbench.capture.Capture): its ring, and stop()."""

    target: Target

    @property
    def running(self) -> bool: ...

    def records(self) -> list[Record]: ...

    def stop(self) -> CaptureResult: ...


class LivePathCapture(Protocol):
    """Captures on a path, merged in time order (workbench.capture.path.PathCapture)."""

    targets: list[Target]

    @property
    def running(self) -> bool: ...

    def records(self) -> list[tuple[str, Record]]: ...

    def stop(self) -> PathResult: ...


class EngineAPI(Protocol):
    """What `containet-tui` (and any other front end) may ask of the engine."""

    mode: str  # "lab" or "real"

    @property
    def scenarios(self) -> Mapping[str, Scenario]: ...

    # --- the lab
    def lab_up(self, progress: Progress = print) -> str: ...

    def lab_down(self, progress: Progress = print) -> list[str]: ...

    def lab_status(self) -> str: ...

    # --- the inventory
    def snapshot(self) -> Snapshot: ...

    def watch(
        self,
        on_change: Callable[[Change], None],
        on_state: Callable[[SourceState], None] | None = None,
    ) -> LiveWatcher: ...

    def refresh(self, snap: Snapshot, what: Dirty) -> Snapshot: ...

    # --- scenarios, step by step
    def plan(self, name: str) -> Plan: ...

    def status(self, name: str) -> list[bool]: ...

    def apply(self, name: str, on_event: Listener | None = None) -> int: ...

    def next_step(self, name: str, on_event: Listener | None = None) -> int | None: ...

    def back_step(self, name: str, on_event: Listener | None = None) -> int | None: ...

    def undo(self, name: str, on_event: Listener | None = None) -> int: ...

    def export(self, name: str, fmt: str = "bash", plain: bool = False) -> str: ...

    # --- measurements (callbacks come from a worker thread; `cancel` ends a run early)
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
    ) -> PingResult: ...

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
    ) -> IperfResult: ...

    def compare(
        self,
        src: str = "h1-a",
        dst: str = "h2-a",
        *,
        paths: list[str] | None = None,
        seconds: float = 3.0,
        progress: Callable[[str], None] = ...,
        cancel: threading.Event | None = None,
    ) -> CompareResult: ...

    def active(self) -> Active | None: ...

    def pingall(
        self,
        *,
        count: int = 1,
        timeout: float = 1.0,
        workers: int = 8,
        on_result: Callable[[str, str, PingResult], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> PingallResult: ...

    # --- the doctor
    def doctor(
        self,
        src: str,
        dst: str,
        *,
        probe: bool = True,
        trace: bool = True,
        progress: Progress | None = None,
    ) -> DoctorReport: ...

    def doctor_fix(self, fix: FixAction) -> str: ...

    # --- break it on purpose: impairments, link state, faults (workbench.impair, .faults)
    def netem_set(self, target: str, **changes: float | None) -> ImpairState: ...

    def netem_clear(self, target: str | None = None) -> list[str]: ...

    def netem_show(self) -> tuple[str, list[ImpairState]]: ...

    def link_state(self, target: str, action: str, period: float = 1.0, count: int = 0) -> str: ...

    def fault_catalogue(self) -> list[FaultDef]: ...

    def fault_inject(self, name: str | None, on: str | None = None, hidden: bool = False) -> str: ...

    def fault_revert(self, name: str | None = None) -> list[str]: ...

    def fault_reveal(self) -> str: ...

    def faults_active(self) -> list[str]: ...

    # --- see the packets (callbacks come from a capture's or the sampler's thread)
    def capture_target(self, where: str) -> Target: ...

    def open_capture(
        self, where: str, opts: CaptureOptions, on_record: Callable[[Record], None] | None = None
    ) -> LiveCapture: ...

    def open_path_capture(
        self,
        src: str,
        dst: str,
        opts: CaptureOptions,
        on_record: Callable[[str, Record], None] | None = None,
    ) -> LivePathCapture: ...

    def flows(self, where: str) -> list[BridgeFlows]: ...

    def trace(self, src: str, dst: str, *, probes: int = 3) -> TraceView: ...

    def rates(self, on_rates: Callable[[RateTable], None], interval: float = 1.0) -> LiveWatcher: ...
