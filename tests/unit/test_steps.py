"""The plan runner on steps that act on a dict: order, skip, rollback, undo."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from workbench.actions import render, render_plain
from workbench.errors import StepFailed
from workbench.host import Host, Place
from workbench.intents import ContainerRef, Intent, Where
from workbench.steps import Cmd, Context, Plan, Step, StepEvent, predecessors


@dataclass(frozen=True)
class Fn(Intent):
    """A test intent: functions on a dict instead of the system."""

    host: str
    name: str
    do: Callable[[Context], None] = field(compare=False)
    check: Callable[[Context], bool] = field(compare=False)
    drop: Callable[[Context], None] = field(compare=False)
    first: bool = False
    about: str = ""
    wait: float = 0.0

    @property
    def early(self) -> bool:
        return self.first

    @property
    def settle(self) -> float:
        return self.wait

    @property
    def subject(self) -> str:
        return self.about

    def key(self) -> str:
        return self.name

    def title(self) -> str:
        return f"make {self.name}"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.HOST, f"ip link add {self.name} type bridge"),)

    def apply(self, ctx: Context) -> None:
        self.do(ctx)

    def verify(self, ctx: Context) -> bool:
        return self.check(ctx)

    def undo(self, ctx: Context) -> None:
        self.drop(ctx)


def make_step(state: dict[str, bool], key: str, *, fail: bool = False, early: bool = False) -> Step:
    def apply(_ctx: Context) -> None:
        if fail:
            state[key] = True  # half-applied before it breaks
            raise RuntimeError(f"{key} broke")
        state[key] = True

    def undo(_ctx: Context) -> None:
        state.pop(key, None)

    intent = Fn("host1", key, apply, lambda _ctx: state.get(key, False), undo, first=early)
    return Step(intent, f"because {key}", id=key)


def tweak(step: Step, *, id: str | None = None, **changes: object) -> Step:  # noqa: A002 - as Step calls it
    """The step with its intent changed: host, do (apply), check (verify), first (early), about (subject)."""
    assert isinstance(step.intent, Fn)
    return Step(dataclasses.replace(step.intent, **changes), step.why, id=id or step.id)  # type: ignore[arg-type]


def bare(key: str, do: Callable[[Context], None], check: Callable[[Context], bool]) -> Step:
    return Step(Fn("host1", key, do, check, lambda _c: None), "why", id=key)


def plan_of(state: dict[str, bool], *keys: str, fail: str | None = None) -> Plan:
    return Plan("t", "Test", "a test plan", tuple(make_step(state, k, fail=(k == fail)) for k in keys))


CTX = Context([])


def test_apply_in_order_and_report() -> None:
    state: dict[str, bool] = {}
    events: list[StepEvent] = []
    plan = plan_of(state, "a", "b", "c")
    assert plan.apply(CTX, events.append) == 3
    assert state == {"a": True, "b": True, "c": True}
    assert [(e.step.id, e.state) for e in events] == [
        ("a", "running"),
        ("a", "applied"),
        ("b", "running"),
        ("b", "applied"),
        ("c", "running"),
        ("c", "applied"),
    ]


def test_apply_twice_is_a_no_op() -> None:
    state: dict[str, bool] = {}
    plan = plan_of(state, "a", "b")
    plan.apply(CTX)
    events: list[StepEvent] = []
    assert plan.apply(CTX, events.append) == 0
    assert {e.state for e in events} == {"skipped"}


def test_failure_rolls_back_only_what_this_run_applied() -> None:
    state: dict[str, bool] = {"a": True}  # found applied: must survive the rollback
    events: list[StepEvent] = []
    plan = plan_of(state, "a", "b", "c", "d", fail="c")
    with pytest.raises(StepFailed, match=r"step 3 'make c' on host1: c broke \(rolled back 2 step"):
        plan.apply(CTX, events.append)
    assert state == {"a": True}
    states = [(e.step.id, e.state) for e in events]
    assert ("c", "failed") in states
    assert states[-2:] == [("c", "rolled-back"), ("b", "rolled-back")]


def test_a_step_that_does_not_verify_fails() -> None:
    state: dict[str, bool] = {}
    liar = bare("liar", lambda _c: None, lambda _c: False)
    plan = Plan("t", "T", "", (make_step(state, "a"), liar))
    with pytest.raises(StepFailed, match="applied but does not verify"):
        plan.apply(CTX)
    assert state == {}


def test_next_and_back_walk_one_step() -> None:
    state: dict[str, bool] = {}
    plan = plan_of(state, "a", "b", "c")
    assert plan.next(CTX) == 0
    assert plan.next(CTX) == 1
    assert plan.status(CTX) == [True, True, False]
    assert plan.back(CTX) == 1
    assert plan.status(CTX) == [True, False, False]
    assert plan.next(CTX) == 1
    assert plan.next(CTX) == 2
    assert plan.next(CTX) is None


def test_undo_everything_and_twice() -> None:
    state: dict[str, bool] = {}
    plan = plan_of(state, "a", "b", "c")
    plan.apply(CTX)
    events: list[StepEvent] = []
    assert plan.undo(CTX, events.append) == 3
    assert [e.step.id for e in events if e.state == "undone"] == ["c", "b", "a"]
    assert state == {}
    assert plan.undo(CTX) == 0


def test_early_steps_start_together_at_the_beginning() -> None:
    state: dict[str, bool] = {}
    barrier = threading.Barrier(3, timeout=5)
    order: list[str] = []

    def slow(key: str) -> Step:
        base = make_step(state, key, early=True)

        def apply(ctx: Context) -> None:
            barrier.wait()  # only passes when all three run at once
            base.apply(ctx)

        return tweak(base, do=apply)

    def first(ctx: Context) -> None:
        order.append("first")
        barrier.wait()  # the early steps are already running while this one runs

    head = bare("a", first, lambda _c: "first" in order)
    plan = Plan("t", "T", "", (head, slow("x"), slow("y")))
    assert plan.apply(CTX) == 3
    assert state == {"x": True, "y": True}


def test_early_failure_rolls_back_everything_applied() -> None:
    state: dict[str, bool] = {}
    steps = (
        make_step(state, "a"),
        make_step(state, "x", early=True),
        make_step(state, "y", early=True, fail=True),
        make_step(state, "b"),
    )
    with pytest.raises(StepFailed, match="y broke"):
        Plan("t", "T", "", steps).apply(CTX)
    assert state == {}


def test_next_runs_early_steps_one_at_a_time() -> None:
    state: dict[str, bool] = {}
    plan = Plan("t", "T", "", (make_step(state, "x", early=True), make_step(state, "y", early=True)))
    assert plan.next(CTX) == 0
    assert state == {"x": True}


def on_host(step: Step, host: str, apply: Callable[[Context], None] | None = None) -> Step:
    assert isinstance(step.intent, Fn)
    return tweak(step, id=f"{host}/{step.id}", host=host, do=apply or step.intent.do)


def test_hosts_run_side_by_side_each_in_plan_order() -> None:
    state: dict[str, bool] = {}
    meet = threading.Barrier(2, timeout=5)
    order: list[str] = []

    def meeting(step: Step) -> Callable[[Context], None]:
        def apply(ctx: Context) -> None:
            meet.wait()  # passes only while host1 and host2 each run a step at the same time
            order.append(step.id)
            step.apply(ctx)

        return apply

    a1, b1 = make_step(state, "a1"), make_step(state, "b1")
    a2, b2 = make_step(state, "a2"), make_step(state, "b2")
    steps = (
        on_host(a1, "host1", meeting(a1)),
        on_host(b1, "host1"),
        on_host(a2, "host2", meeting(a2)),
        on_host(b2, "host2"),
    )
    events: list[StepEvent] = []
    assert Plan("t", "T", "", steps).apply(CTX, events.append) == 4
    assert state == {"a1": True, "b1": True, "a2": True, "b2": True}
    applied = [e.step.id for e in events if e.state == "applied"]
    assert applied.index("host1/a1") < applied.index("host1/b1")
    assert applied.index("host2/a2") < applied.index("host2/b2")


def test_a_step_with_no_host_waits_for_all_before_it() -> None:
    state: dict[str, bool] = {}
    seen: dict[str, bool] = {}

    def census(ctx: Context) -> None:
        seen.update(state)  # everything before the barrier has been applied by now
        state["all"] = True

    barrier = tweak(make_step(state, "all"), host="", do=census)
    after = on_host(make_step(state, "c1"), "host1", lambda _c: state.update(c1=("all" in state)))
    a1, a2 = on_host(make_step(state, "a1"), "host1"), on_host(make_step(state, "a2"), "host2")
    steps = (a1, a2, barrier, after)
    Plan("t", "T", "", steps).apply(CTX)
    assert seen == {"a1": True, "a2": True}
    assert state["c1"] is True  # and what follows it ran after it


def test_a_failing_host_stops_the_others_and_everything_is_rolled_back() -> None:
    state: dict[str, bool] = {}
    started: list[str] = []
    broke = threading.Event()

    def slow_then_note(key: str) -> Callable[[Context], None]:
        def apply(_ctx: Context) -> None:
            broke.wait(5)  # host2 fails while this step runs...
            time.sleep(0.2)  # ...and this one ends after the failure
            started.append(key)
            state[key] = True

        return apply

    def breaks(_ctx: Context) -> None:
        state["x2"] = True
        broke.set()
        raise RuntimeError("x2 broke")

    steps = (
        on_host(make_step(state, "a1"), "host1", slow_then_note("a1")),
        on_host(make_step(state, "b1"), "host1", slow_then_note("b1")),
        on_host(make_step(state, "x2"), "host2", breaks),
    )
    events: list[StepEvent] = []
    with pytest.raises(StepFailed, match="x2 broke"):
        Plan("t", "T", "", steps).apply(CTX, events.append)
    assert started == ["a1"]  # host1 finished the step it was in, then started nothing
    assert state == {}
    assert {e.step.id for e in events if e.state == "rolled-back"} == {"host1/a1", "host2/x2"}


def test_what_each_step_waits_for() -> None:
    state: dict[str, bool] = {}

    def step(key: str, host: str, subject: str = "", early: bool = False) -> Step:
        return tweak(make_step(state, key), host=host, about=subject, first=early)

    steps = (
        step("br", "host1"),  # 0
        step("br2", "host2"),  # 1
        step("run-a", "host1", "a", early=True),  # 2
        step("run-b", "host1", "b", early=True),  # 3
        step("wire-a", "host1", "a"),  # 4
        step("wire-b", "host1", "b"),  # 5
        step("rules", "host1"),  # 6: about the host again: after everything of host1
        step("sync", ""),  # 7: a barrier
        step("after", "host2"),  # 8
    )
    assert predecessors(steps) == [
        set(),
        set(),
        set(),
        set(),
        {0, 2},  # the host's bridge and its own container, not the other container
        {0, 3},
        {0, 2, 3, 4, 5},
        {0, 1, 2, 3, 4, 5, 6},
        {1, 7},
    ]


def test_steps_about_different_containers_do_not_wait_for_each_other() -> None:
    state: dict[str, bool] = {}
    meet = threading.Barrier(2, timeout=5)

    def wire(key: str, subject: str) -> Step:
        def apply(_ctx: Context) -> None:
            assert state.get("br"), "the host's bridge comes first"
            meet.wait()  # both containers are wired at the same time
            state[key] = True

        return tweak(make_step(state, key), about=subject, do=apply)

    steps = (make_step(state, "br"), wire("wire-a", "a"), wire("wire-b", "b"))
    assert Plan("t", "T", "", steps).apply(CTX) == 3


def test_early_steps_start_before_the_others_are_read() -> None:
    state: dict[str, bool] = {}
    running = threading.Event()
    started_when_read: list[bool] = []

    def read_after_start(_ctx: Context) -> bool:
        started_when_read.append(running.wait(2))
        return state.get("a", False)

    def run(_ctx: Context) -> None:
        running.set()
        state["x"] = True

    head = tweak(make_step(state, "a"), check=read_after_start)
    early = tweak(make_step(state, "x", early=True), do=run)
    assert Plan("t", "T", "", (head, early)).apply(CTX) == 2
    assert started_when_read and all(started_when_read)


def lab_host() -> Host:
    return Host("host1", 1, "10.0.0.3", Place.named("cn-x-host1"), "unix:/run/x/db.sock")


def test_render_commands_for_the_lab_and_for_a_vm() -> None:
    host = lab_host()
    assert render(host, Cmd(Where.HOST, "ip link set br0 up")) == "ip -n cn-x-host1 link set br0 up"
    assert render(host, Cmd(Where.HOST, "iptables -L")) == "ip netns exec cn-x-host1 iptables -L"
    ovs = "ovs-vsctl --db=unix:/run/x/db.sock add-br br0"
    assert render(host, Cmd(Where.OVS, "ovs-vsctl add-br br0")) == ovs
    assert render(host, Cmd(Where.DOCKER, "docker ps")) == "docker ps"
    assert render(host, Cmd(Where.CONTAINER, "ip link set eth0 up", ContainerRef.ours("h1-a"))).startswith(
        "nsenter -t $(docker inspect"
    )
    assert render_plain(host, Cmd(Where.OVS, "ovs-vsctl add-br br0")) == "ovs-vsctl add-br br0"
    inside = Cmd(Where.CONTAINER, "ip a", ContainerRef("h1-a", "cn-h1-a"))
    assert render_plain(host, inside) == "ip netns exec h1-a ip a"


def test_export_bash_and_json() -> None:
    import json

    state: dict[str, bool] = {}
    plan = plan_of(state, "a", "b")
    hosts = {"host1": lab_host()}
    script = plan.to_bash(render, hosts)
    assert script.startswith("#!/bin/bash")
    assert "set -euo pipefail" in script
    assert "# 1. [host1] make a" in script
    assert "ip -n cn-x-host1 link add a type bridge" in script
    data = json.loads(plan.to_json(render_plain, hosts))
    assert [s["commands"] for s in data["steps"]] == [
        ["ip link add a type bridge"],
        ["ip link add b type bridge"],
    ]
    assert data["steps"][0]["why"] == "because a"
