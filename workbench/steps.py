"""The step engine: a plan is an ordered list of steps, each of which knows
how to apply itself, check that it holds (verify, reading real state) and
undo itself. State is never stored: a step is "applied" when verify() says so.

    Plan.apply   runs pending steps, verifies each, and on a failure undoes the
                 steps it applied in this run (reverse order). Steps run side by
                 side where what they declare allows it (see Plan.apply).
    Plan.next    applies the first pending step.
    Plan.undo    undoes every step that holds, last first.
    Plan.back    undoes the last step that holds.
"""

from __future__ import annotations

import contextlib
import enum
import json
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .context import Context
from .errors import StepFailed, WorkbenchError
from .host import Host
from .intents.base import Cmd, Intent, Where

__all__ = ["Cmd", "Context", "Plan", "Step", "StepEvent", "StepState", "Where"]


@dataclass(frozen=True)
class Step:
    """One step of a plan: an intent, and why a presenter would take it. Its
    commands, apply, verify and undo are the intent's; its id is "<host>/<key>"."""

    intent: Intent
    why: str
    title: str = ""  # default: the intent's own title
    id: str = ""  # default: "<host>/<intent key>"

    def __post_init__(self) -> None:
        if not self.title:
            object.__setattr__(self, "title", self.intent.title())
        if not self.id:
            object.__setattr__(self, "id", f"{self.intent.host}/{self.intent.key()}")

    @property
    def host(self) -> str:
        """Where it runs ("" for docker-wide steps and barriers over hosts)."""
        return self.intent.host

    @property
    def where(self) -> str:
        """Where it runs, for people: its host, "all hosts" for a barrier whose commands
        run on several hosts, "docker" for a docker-wide step."""
        if self.host:
            return self.host
        return "all hosts" if any(c.host for c in self.commands) else "docker"

    @property
    def commands(self) -> tuple[Cmd, ...]:
        return self.intent.commands()

    def apply(self, ctx: Context) -> None:
        self.intent.apply(ctx)

    def verify(self, ctx: Context) -> bool:
        return self.intent.verify(ctx)

    def undo(self, ctx: Context) -> None:
        self.intent.undo(ctx)

    @property
    def early(self) -> bool:
        """Needs no other step of the plan: may start at the beginning."""
        return self.intent.early

    @property
    def settle(self) -> float:
        """Seconds verify may take to become true after apply."""
        return self.intent.settle

    @property
    def subject(self) -> str:
        """What on the host it is about (a container), "" for the host itself."""
        return self.intent.subject

    @property
    def readiness(self) -> bool:
        """Changes nothing: waits until what the steps before it made is ready."""
        return self.intent.readiness

    @property
    def ovs_hosts(self) -> set[str]:
        """The hosts whose OVS its commands talk to (so their clients are needed)."""
        return {c.host or self.host for c in self.commands if c.where is Where.OVS} - {""}

    def rendered(self, render: Callable[[Host, Cmd], str], hosts: dict[str, Host]) -> list[str]:
        """Its commands as they run on their hosts (unrendered where the host is unknown)."""
        out = []
        for c in self.commands:
            host = hosts.get(c.host or self.host)
            out.append(render(host, c) if host is not None else c.text)
        return out


class StepState(enum.StrEnum):
    RUNNING = "running"
    APPLIED = "applied"
    SKIPPED = "skipped"
    FAILED = "failed"
    UNDOING = "undoing"
    UNDONE = "undone"
    ROLLED_BACK = "rolled-back"


@dataclass(frozen=True)
class StepEvent:
    index: int
    step: Step
    state: StepState
    message: str = ""
    seconds: float = 0.0


Listener = Callable[[StepEvent], None]


def _ignore(_event: StepEvent) -> None:
    pass


#: seconds between two progress lines of a step that waits (see Intent.progress)
PROGRESS_EVERY = 0.5


def wait_verified(step: Step, ctx: Context, on_progress: Callable[[str], None] | None = None) -> bool:
    """Poll verify until it holds or `settle` seconds pass; meanwhile, every
    PROGRESS_EVERY seconds, let the intent nudge what it waits for and hand its
    progress line (if it has one) on."""
    start = time.monotonic()
    deadline = start + step.settle
    next_line = start + PROGRESS_EVERY
    nudged = 0.0  # seconds waited at the last nudge
    while True:
        if _safe_verify(step, ctx):
            return True
        now = time.monotonic()
        if now >= deadline:
            return False
        if now >= next_line:
            next_line = now + PROGRESS_EVERY
            _safe_nudge(step, ctx, now - start, nudged)
            nudged = now - start
            if on_progress is not None and (line := _safe_progress(step, ctx)):
                on_progress(line)
        time.sleep(0.05)


def _safe_nudge(step: Step, ctx: Context, waited: float, before: float) -> None:
    with contextlib.suppress(Exception):  # a nudge that fails leaves verify to say so
        step.intent.nudge(ctx, waited, before)


def _safe_progress(step: Step, ctx: Context) -> str | None:
    try:
        return step.intent.progress(ctx)
    except Exception as exc:  # noqa: BLE001 - a line that cannot be read says so
        return f"cannot read progress: {exc}"


def _safe_verify(step: Step, ctx: Context) -> bool:
    try:
        return bool(step.verify(ctx))
    except Exception:  # noqa: BLE001 - a check that cannot read state says "not applied"
        return False


def verify_all(steps: Iterable[Step], ctx: Context) -> list[bool]:
    """verify() of each step, read concurrently (each reads its own source)."""
    steps = list(steps)
    if len(steps) < 2:
        return [_safe_verify(s, ctx) for s in steps]
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda s: _safe_verify(s, ctx), steps))


def predecessors(steps: tuple[Step, ...]) -> list[set[int]]:
    """For each step, the earlier steps it must wait for (see Plan.apply)."""
    out: list[set[int]] = []
    for i, step in enumerate(steps):
        if step.early:
            out.append(set())
        elif not step.host:  # a barrier: after everything before it
            out.append(set(range(i)))
        else:
            out.append(
                {
                    j
                    for j in range(i)
                    if not steps[j].host  # barriers
                    or (
                        steps[j].host == step.host
                        and (not step.subject or not steps[j].subject or steps[j].subject == step.subject)
                    )
                }
            )
    return out


class _Run:
    """One Plan.apply: what held before, what it applied, the first failure."""

    def __init__(self, plan: Plan, ctx: Context, emit: Listener) -> None:
        self.plan, self.ctx, self.emit = plan, ctx, emit
        self.held: dict[int, bool] = {}  # early steps: held before the run
        self.done: list[int] = []  # applied, or started, in this run
        self.error: tuple[int, BaseException] | None = None
        self._finished: queue.SimpleQueue[tuple[int, BaseException | None]] = queue.SimpleQueue()
        self._running = 0
        self._lock = threading.Lock()

    def read_status(self, indices: list[int]) -> None:
        held = verify_all((self.plan.steps[i] for i in indices), self.ctx)
        self.held.update(zip(indices, held, strict=True))

    def _step(self, i: int) -> None:
        step = self.plan.steps[i]
        # read now: earlier steps may matter. A readiness step waits again once a step
        # before it was applied in this run (what it waits for was made anew)
        again = step.readiness and any(j < i for j in self.done)
        if i not in self.held and not again and _safe_verify(step, self.ctx):
            self.emit(StepEvent(i, step, StepState.SKIPPED, "already applied"))
            return
        self.done.append(i)  # undone on rollback even when half-applied
        try:
            self.plan._apply_one(i, step, self.ctx, self.emit)
        except BaseException as exc:
            with self._lock:  # at once: from now on nothing new starts
                if self.error is None:
                    self.error = (i, exc)
            raise

    def _submit(self, pool: ThreadPoolExecutor, i: int) -> None:
        def report(fut: Future[None]) -> None:
            self._finished.put((i, fut.exception()))

        pool.submit(self._step, i).add_done_callback(report)

    def start_early(self, count: int, pool: ThreadPoolExecutor) -> None:
        for i in range(count):
            step = self.plan.steps[i]
            if step.early and self.held[i]:
                self.emit(StepEvent(i, step, StepState.SKIPPED, "already applied"))
            elif step.early:
                self._submit(pool, i)
                self._running += 1

    def run(self, count: int, pool: ThreadPoolExecutor) -> None:
        """Start each step once the steps it waits for are through; stop starting
        new ones at the first failure, and return when none is running."""
        preds = predecessors(self.plan.steps[:count])
        through = {i for i, held in self.held.items() if held}
        waiting = [i for i in range(count) if i not in through and not self.plan.steps[i].early]
        while True:
            if self.error is None:
                ready = [i for i in waiting if preds[i] <= through]
                for i in ready:
                    self._submit(pool, i)
                self._running += len(ready)
                waiting = [i for i in waiting if i not in ready]
            if self._running == 0:
                return
            i, exc = self._finished.get()
            self._running -= 1
            if exc is None:
                through.add(i)
            else:
                with self._lock:
                    if self.error is None:
                        self.error = (i, exc)


@dataclass(frozen=True)
class Plan:
    name: str
    title: str
    summary: str
    steps: tuple[Step, ...]
    expect: dict[str, Any] = field(default_factory=dict, compare=False)

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise WorkbenchError(f"plan {self.name} has no step {step_id!r}")

    # --- state ------------------------------------------------------------
    def status(self, ctx: Context) -> list[bool]:
        """verify() of every step, read concurrently (each reads its own source)."""
        return verify_all(self.steps, ctx)

    # --- running ------------------------------------------------------------
    def _apply_one(self, i: int, step: Step, ctx: Context, emit: Listener) -> None:
        emit(StepEvent(i, step, StepState.RUNNING))
        t0 = time.monotonic()
        where = step.where
        try:
            step.apply(ctx)
        except Exception as exc:
            raise StepFailed(f"step {i + 1} '{step.title}' on {where}: {exc}") from exc

        def progress(line: str) -> None:
            emit(StepEvent(i, step, StepState.RUNNING, line, seconds=time.monotonic() - t0))

        if not wait_verified(step, ctx, progress):
            why = "applied but does not verify"
            if step.readiness:
                why = f"not ready after {step.settle:g} s: {_safe_progress(step, ctx) or 'no detail'}"
            raise StepFailed(f"step {i + 1} '{step.title}' on {where}: {why}")
        emit(StepEvent(i, step, StepState.APPLIED, seconds=time.monotonic() - t0))

    def apply(self, ctx: Context, on_event: Listener = _ignore, upto: int | None = None) -> int:
        """Apply pending steps (all, or the first `upto` of the plan); returns how many
        were applied. On failure undo them, reverse order, and raise StepFailed.

        What may run at the same time follows from the declaration, not from
        scheduling code in the scenarios:
        - a step marked `early` needs nothing else in the plan (`docker run`): all
          pending early steps start first; the others' state is read when their
          turn comes;
        - any other step waits for the earlier steps of its host, and hosts run
          side by side (they share nothing but the underlay);
        - except that steps about one thing on a host (their `subject`, e.g. a
          container) do not wait for earlier steps about another thing there:
          they wait for the host's own steps before them and their subject's;
        - a step with no host ("") is a barrier: it runs once everything before it
          has, and everything after it waits for it.
        """
        count = len(self.steps) if upto is None else upto
        run = _Run(self, ctx, on_event)
        early = [i for i in range(count) if self.steps[i].early]
        run.read_status(early)
        ovs_hosts = sorted({h for s in self.steps[:count] if not s.early for h in s.ovs_hosts})
        early_pool = ThreadPoolExecutor(max_workers=max(1, min(8, len(early))) + len(ovs_hosts))
        pool = ThreadPoolExecutor(max_workers=8)
        try:
            run.start_early(count, early_pool)
            ctx.warm(ovs_hosts, early_pool)
            run.run(count, pool)
        finally:
            early_pool.shutdown(wait=True)
            pool.shutdown(wait=True)
        if run.error is not None:
            index, exc = run.error
            on_event(StepEvent(index, self.steps[index], StepState.FAILED, str(exc)))
            self._rollback(run.done, ctx, on_event)
            if isinstance(exc, StepFailed):
                raise StepFailed(f"{exc} (rolled back {len(set(run.done))} step(s))") from exc
            raise exc
        return len(run.done)

    def _rollback(self, indices: list[int], ctx: Context, emit: Listener) -> None:
        for i in sorted(set(indices), reverse=True):
            step = self.steps[i]
            try:
                step.undo(ctx)
                emit(StepEvent(i, step, StepState.ROLLED_BACK))
            except Exception as exc:  # noqa: BLE001 - keep rolling back the rest
                emit(StepEvent(i, step, StepState.FAILED, f"rollback: {exc}"))

    def next(self, ctx: Context, on_event: Listener = _ignore) -> int | None:
        """Apply the first pending step; returns its index (None: all applied)."""
        for i, ok in enumerate(self.status(ctx)):
            if not ok:
                self.apply(ctx, on_event, upto=i + 1)
                return i
        return None

    def undo(self, ctx: Context, on_event: Listener = _ignore) -> int:
        """Undo every step, last first; returns how many held before."""
        undone = 0
        for i in reversed(range(len(self.steps))):
            step = self.steps[i]
            if step.readiness:
                continue  # nothing of its own to undo
            held = _safe_verify(step, ctx)
            if held:
                on_event(StepEvent(i, step, StepState.UNDOING))
            try:
                step.undo(ctx)
            except Exception as exc:
                raise StepFailed(f"undo of step {i + 1} '{step.title}': {exc}") from exc
            if held:
                undone += 1
                on_event(StepEvent(i, step, StepState.UNDONE))
        return undone

    def back(self, ctx: Context, on_event: Listener = _ignore) -> int | None:
        """Undo the last step that holds; returns its index."""
        for i in reversed(range(len(self.steps))):
            step = self.steps[i]
            if not step.readiness and _safe_verify(step, ctx):
                on_event(StepEvent(i, step, StepState.UNDOING))
                step.undo(ctx)
                on_event(StepEvent(i, step, StepState.UNDONE))
                return i
        return None

    # --- export ---------------------------------------------------------------
    def to_json(self, render: Callable[[Host, Cmd], str], hosts: dict[str, Host]) -> str:
        return json.dumps(
            {
                "name": self.name,
                "title": self.title,
                "summary": self.summary,
                "steps": [
                    {
                        "id": s.id,
                        "host": s.host,
                        "title": s.title,
                        "why": s.why,
                        "commands": s.rendered(render, hosts),
                    }
                    for s in self.steps
                ],
            },
            indent=2,
        )

    def to_bash(self, render: Callable[[Host, Cmd], str], hosts: dict[str, Host]) -> str:
        out = [
            "#!/bin/bash",
            f"# {self.title}: {self.summary}",
            "# Exported by `containet scenario export`; run as root on a lab that is up.",
            "set -euo pipefail",
            "",
        ]
        for i, s in enumerate(self.steps, start=1):
            out.append(f"# {i}. [{s.where}] {s.title}")
            out.append(f"#    {s.why}")
            for c, text in zip(s.commands, s.rendered(render, hosts), strict=True):
                if c.host and c.host != s.host:
                    out.append(f"#    on {c.host}:")
                out.append(text)
            out.append("")
        return "\n".join(out)
