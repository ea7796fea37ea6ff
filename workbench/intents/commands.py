"""Intents realised by containet itself (a doctor's "re-apply the scenario")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .base import Cmd, Intent, Where

if TYPE_CHECKING:
    from ..steps import Context


class Containet(Protocol):
    """What the engine lends a Context for these intents (so no intent imports it)."""

    def apply_scenario(self, name: str) -> None: ...

    def repair_lab(self) -> None: ...


@dataclass(frozen=True)
class ScenarioApplied(Intent):
    """Every step of a scenario holds (re-applying creates what is missing)."""

    host: str
    scenario: str

    def key(self) -> str:
        return f"scenario:{self.scenario}"

    def title(self) -> str:
        return f"re-apply scenario {self.scenario} (re-creates what is missing)"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.CONTAINET, f"containet scenario apply {self.scenario}"),)

    def apply(self, ctx: Context) -> None:
        ctx.containet().apply_scenario(self.scenario)

    def verify(self, ctx: Context) -> bool:
        return False  # the plan's own steps say; this intent only asks for them


@dataclass(frozen=True)
class LabUp(Intent):
    """The lab's hosts, OVS daemons and underlay are up (repairing a half-built lab)."""

    host: str
    why: str = "bring the lab up"

    def key(self) -> str:
        return "lab"

    def title(self) -> str:
        return self.why

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.CONTAINET, "containet lab up"),)

    def apply(self, ctx: Context) -> None:
        ctx.containet().repair_lab()

    def verify(self, ctx: Context) -> bool:
        return False
