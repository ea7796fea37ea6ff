"""What `lab up` found, did and left: the records the CLI prints and the TUI shows.

    Fault         something broken, and what `lab up` will do about it (labup.diagnose)
    Repair        one thing it repaired
    LabReport     all it did, and the applied scenario's steps read again after it
    ScenarioCheck those steps: re-applied (broken by the fault), still pending

`recheck_scenario` reads the applied scenario again after `lab up`: the steps a
repaired fault broke are applied again, as far as state can tell which those are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import WorkbenchError

if TYPE_CHECKING:
    from .steps import Context, Listener, Plan


@dataclass(frozen=True)
class Fault:
    """Something broken in the lab, and what `lab up` will do about it."""

    host: str  # a host, "underlay" (the switch between hosts), or a stray namespace
    kind: str  # underlay, stray, namespace, ovsdb, vswitchd, link, phy, nic, address
    broken: str  # what was found
    plan: str  # what `lab up` does about it

    def __str__(self) -> str:
        return f"{self.host}: {self.broken}: {self.plan}"


@dataclass(frozen=True)
class Repair:
    """One thing `lab up` repaired."""

    host: str
    what: str
    rebuilt: bool = False  # the host could not be repaired: it was built again from nothing

    def __str__(self) -> str:
        return f"{self.host}: {self.what}"


@dataclass(frozen=True)
class ScenarioCheck:
    """The applied scenario's steps, read again after `lab up` (steps as "N. host: title")."""

    name: str
    total: int
    restored: tuple[str, ...] = ()  # re-applied: broken by the fault, below a step that held
    pending: tuple[str, ...] = ()  # still not holding: `scenario apply` restores them
    error: str = ""  # re-applying failed (and was rolled back)

    def lines(self) -> list[str]:
        out = []
        if self.restored:
            out.append(
                f"scenario {self.name}: re-applied {len(self.restored)} step(s) the fault had broken "
                f"({_numbers(self.restored)})"
            )
        if self.error:
            out.append(f"scenario {self.name}: re-applying failed: {self.error}")
        if self.pending:
            out.append(
                f"scenario {self.name}: {len(self.pending)} of {self.total} steps pending "
                f"({_numbers(self.pending)}): run `containet scenario apply {self.name}`"
            )
        return out


def broken_below_last(held: list[bool]) -> list[int]:
    """The steps a fault broke, as far as state can tell: those that do not hold below
    the last step that does. Steps are taken in order (apply, or next one by one),
    so those were applied once; later ones may never have been (a walk under way)."""
    last = max((i for i, ok in enumerate(held) if ok), default=-1)
    return [i for i in range(last) if not held[i]]


def _numbers(steps: tuple[str, ...]) -> str:
    return ", ".join(s.split(".", 1)[0] for s in steps)


@dataclass(frozen=True)
class LabReport:
    """What `lab up` found and did: the engine and the TUI show it."""

    state: str  # the lab's health afterwards ("lab is up: host1, host2")
    repairs: tuple[Repair, ...] = ()
    built: bool = False  # built from nothing (it was down)
    rebuilt: str = ""  # why the whole lab was rebuilt ("" when it was not)
    topology: str = ""  # the tunnel topology, when this run changed it
    ovs_io: str = ""  # how OVS opens the data ports, when this run changed it (workbench.portio)
    scenario: ScenarioCheck | None = field(default=None)

    @property
    def changed(self) -> bool:
        return bool(self.built or self.rebuilt or self.repairs or self.topology or self.ovs_io)

    def text(self) -> str:
        if self.rebuilt:
            head = f"{self.state} (rebuilt: {self.rebuilt})"
        elif self.repairs:
            n = len(self.repairs)
            rebuilt = [r.host for r in self.repairs if r.rebuilt]
            rest = f"{', '.join(rebuilt)} rebuilt from nothing" if rebuilt else "nothing healthy was touched"
            head = f"{self.state} (repaired {n} thing{'s' if n > 1 else ''}; {rest})"
        elif self.topology:
            head = f"{self.state} (topology {self.topology})"
        elif self.ovs_io:
            head = f"{self.state} (OVS port I/O {self.ovs_io})"
        elif self.built:
            head = self.state
        else:
            head = f"{self.state} (nothing changed)"
        return "\n".join([head, *(self.scenario.lines() if self.scenario else [])])


def recheck_scenario(
    plan: Plan, ctx: Context, repaired: bool, progress: Callable[[str], None], on_event: Listener
) -> ScenarioCheck:
    """The applied scenario's steps, read again after `lab up`. After a repair, the
    steps the fault broke (broken_below_last) are applied again; a failure there is
    rolled back by the plan and reported, not raised: the lab itself is up."""

    def label(i: int) -> str:
        step = plan.steps[i]
        return f"{i + 1}. {step.where}: {step.title}"

    held = plan.status(ctx)
    holes = broken_below_last(held)
    restored: list[int] = []
    error = ""
    if repaired and holes:
        progress(f"scenario {plan.name}: re-applying {len(holes)} step(s) the fault broke")
        try:
            plan.apply(ctx, on_event, upto=holes[-1] + 1)
            restored = holes
        except WorkbenchError as exc:
            error = str(exc)
        held = plan.status(ctx)
    pending = tuple(label(i) for i, ok in enumerate(held) if not ok)
    return ScenarioCheck(plan.name, len(plan.steps), tuple(label(i) for i in restored), pending, error)
