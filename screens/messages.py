"""Messages that carry work results from worker threads to the UI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from workbench.inventory.model import Snapshot
    from workbench.inventory.watch import Change, SourceState
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
