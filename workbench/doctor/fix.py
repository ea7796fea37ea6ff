"""The doctor's hands: apply a check's fix.

A fix is a list of intents (workbench.intents), applied by the same code as a
scenario's steps, in a Context over the lab's hosts. Two intents are containet
commands the doctor cannot do itself (re-apply the scenario, bring the lab up):
the caller lends them, and a way to discover the topology afresh, as `FixHooks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..host import Host
from ..steps import Context, Step, wait_verified
from ..topology.model import Topology
from .model import FixAction


@dataclass(frozen=True)
class FixHooks:
    """What applying a fix asks of the caller (the engine): intents.Containet."""

    topology: Callable[[], Topology]  # discovered afresh (after a fix, to measure again)
    scenario_apply: Callable[[str], object]  # `containet scenario apply NAME`
    lab_up: Callable[[], object]  # `containet lab up`

    def apply_scenario(self, name: str) -> None:
        self.scenario_apply(name)

    def repair_lab(self) -> None:
        self.lab_up()


def apply_fix(hosts: Sequence[Host], fix: FixAction, hooks: FixHooks) -> str:
    """Apply every intent of `fix` in order, each verified before the next (as a
    plan's steps are: a link brought up is not done until it has carrier), and
    return a one-line summary that names what did not verify in time."""
    late = []
    with Context(hosts, containet=hooks) as ctx:
        for intent in fix.intents:
            intent.apply(ctx)
            if not wait_verified(Step(intent, why=fix.title), ctx):
                late.append(intent.title())
    if late:
        return f"applied: {fix.title} (not verified yet: {'; '.join(late)})"
    return f"applied: {fix.title}"
