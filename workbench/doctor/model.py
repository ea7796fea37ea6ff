"""What the doctor answers: checks, the report, fixes, and the path MTU report.

A check is OK / FAIL / WARN for one thing on one hop, with the value it read
and, on FAIL, the fix: a shell command and a FixAction the workbench can apply.
`Out` collects the checks of one report as the walk goes.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ..intents import Cmd, Intent, ScenarioApplied
from ..intents.base import intent_dict


class Status(enum.StrEnum):
    """A check's verdict; the values are what --json prints."""

    OK = "ok"
    FAIL = "fail"
    WARN = "warn"


@dataclass(frozen=True)
class FixAction:
    """A repair: intents (workbench.intents) applied in order, by the same code as a
    scenario's steps; their commands are what `fix_command` shows."""

    title: str
    intents: tuple[Intent, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "intents": [intent_dict(i) for i in self.intents]}


@dataclass(frozen=True)
class Check:
    name: str
    hop: str
    status: Status
    evidence: str
    fix_command: str | None = None
    fix: FixAction | None = None


@dataclass(frozen=True)
class DoctorReport:
    src: str
    dst: str
    src_host: str
    dst_host: str
    scenario: str | None
    checks: tuple[Check, ...]
    seconds: float = 0.0

    @property
    def hops(self) -> tuple[str, ...]:
        """Hop names in path order."""
        return tuple(dict.fromkeys(c.hop for c in self.checks))

    def hop_checks(self, hop: str) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.hop == hop)

    def hop_status(self, hop: str) -> Status:
        states = {c.status for c in self.hop_checks(hop)}
        return Status.FAIL if Status.FAIL in states else Status.WARN if Status.WARN in states else Status.OK

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if c.status == Status.FAIL), None)

    @property
    def ok(self) -> bool:
        return self.first_failure is None

    @property
    def summary(self) -> str:
        bad = self.first_failure
        if bad is None:
            warns = sum(c.status == Status.WARN for c in self.checks)
            extra = f", {warns} warning(s)" if warns else ""
            return f"{self.src} -> {self.dst}: every hop is OK ({len(self.checks)} checks{extra})"
        return f"{self.src} -> {self.dst}: first broken hop is {bad.hop}: {bad.name}: {bad.evidence}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"] = [_check_dict(c) for c in self.checks]
        data["hops"] = [{"name": h, "status": self.hop_status(h)} for h in self.hops]
        first = self.first_failure
        data["first_failure"] = _check_dict(first) if first else None
        data["ok"] = self.ok
        data["summary"] = self.summary
        return data


# --- path MTU ------------------------------------------------------------------------
@dataclass(frozen=True)
class MtuHop:
    where: str  # e.g. "h1-a eth0", "host1 cn-h1-a", "host1 gre0 (GRE, fits 1462)"
    mtu: int


@dataclass(frozen=True)
class MtuReport:
    src: str
    dst: str
    interfaces: tuple[MtuHop, ...]
    tunnel: str | None  # "gre over a 1500 underlay" or None (same host)
    fits: int | None  # the largest container MTU the tunnel carries
    path_mtu: int | None  # largest packet (IP bytes) a DF ping got through; None: none did
    probes: tuple[tuple[int, bool], ...]  # (packet bytes, answered)
    verdict: str
    ok: bool
    fixed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_dict(check: Check) -> dict[str, Any]:
    data = asdict(check)
    data["fix"] = check.fix.to_dict() if check.fix else None
    return data


# --- fixes the checks offer ------------------------------------------------------------
#: turns (host name, command) into the command as typed in this mode
Render = Callable[[str, Cmd], str]


def plain(_host: str, cmd: Cmd) -> str:
    return cmd.text


Fix = tuple[str, FixAction]  # the rendered shell command(s), and the action


class Out:
    """Collects the checks of one report."""

    def __init__(self, render: Render) -> None:
        self.checks: list[Check] = []
        self.render = render

    def add(self, hop: str, name: str, status: Status, evidence: str, fix: Fix | None = None) -> None:
        cmd, action = fix if fix and status == Status.FAIL else (None, None)
        self.checks.append(Check(name, hop, status, evidence, cmd, action))

    def fix(self, title: str, *intents: Intent) -> Fix:
        shown = "; ".join(self.render(i.host, c) for i in intents for c in i.commands())
        return shown, FixAction(title, intents)

    def redo(self, host: str, scenario: str | None) -> Fix | None:
        """Re-applying the scenario re-creates whatever it made that is gone."""
        if not scenario:
            return None
        intent = ScenarioApplied(host, scenario)
        return self.fix(intent.title(), intent)
