"""Messages that carry work results from worker threads to the UI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from workbench.inventory.model import Snapshot
    from workbench.inventory.watch import Change, SourceState
    from workbench.measure.ping import PingResult
    from workbench.measure.pingall import PingallResult
    from workbench.steps import StepEvent


class SnapshotReady(Message):
    """A fresh (or partly re-collected) inventory."""

    def __init__(self, snapshot: Snapshot, full: bool = False) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.full = full


class SourceChanged(Message):
    """An event source connected or went away."""

    def __init__(self, state: SourceState) -> None:
        super().__init__()
        self.state = state


class Changed(Message):
    """Something changed in the lab, to be coalesced."""

    def __init__(self, change: Change) -> None:
        super().__init__()
        self.change = change


class StepUpdate(Message):
    """A scenario step changed state (from the engine's on_event)."""

    def __init__(self, scenario: str, event: StepEvent) -> None:
        super().__init__()
        self.scenario = scenario
        self.event = event


class LabChanged(Message):
    """The lab went up or down: everything must be read again."""


class PingallCell(Message):
    """A pair's probes are over (from the engine's on_result, on its thread)."""

    def __init__(self, src: str, dst: str, result: PingResult) -> None:
        super().__init__()
        self.src = src
        self.dst = dst
        self.result = result


class PingallDone(Message):
    """The whole pingall, after its last cell (the same queue: it comes after them)."""

    def __init__(self, result: PingallResult, cancelled: bool) -> None:
        super().__init__()
        self.result = result
        self.cancelled = cancelled
