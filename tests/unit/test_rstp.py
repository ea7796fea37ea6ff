"""Spanning tree readiness: the stable-state rule, the tree over hosts, and the
readiness step in a plan (barrier, progress lines, bound, back/undo pass over it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from workbench.actions import render, render_plain
from workbench.errors import StepFailed
from workbench.host import Host, Place
from workbench.intents import Cmd, Intent, RstpConverged, Where
from workbench.rstp import port_stable, rstp_bridges, tree_state
from workbench.steps import Context, Plan, Step, StepEvent, predecessors

# --- the rule -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "state", "stable"),
    [
        ("Root", "Forwarding", True),
        ("Designated", "Forwarding", True),
        ("Alternate", "Discarding", True),
        ("Backup", "Discarding", True),
        ("Disabled", "Discarding", True),
        ("Disabled", "Disabled", True),
        ("Designated", "Discarding", False),  # waits for its peer's agreement or a timer
        ("Root", "Discarding", False),
        ("Designated", "Learning", False),
        ("Root", "Learning", False),
        ("Alternate", "Learning", False),
        ("", "", False),  # no status yet: ovs-vswitchd has not seen the port
    ],
)
def test_port_stable(role: str, state: str, stable: bool) -> None:
    assert port_stable(role, state) is stable


def status(role: str, state: str) -> dict[str, str]:
    return {"rstp_port_role": role, "rstp_port_state": state} if role else {}


def host_rows(
    root: str, ports: dict[str, tuple[str, str]], *, rstp: bool = True, bridge: str = "br0"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Bridge and Port rows as `ovs.select` gives them (UUIDs as strings), with the
    bridge's own internal port (never a participant) and a bridge without RSTP."""
    port_rows = [
        {"_uuid": f"u-{name}", "name": name, "rstp_status": status(*rs)} for name, rs in ports.items()
    ]
    port_rows.append({"_uuid": f"u-{bridge}", "name": bridge, "rstp_status": {}})
    port_rows.append({"_uuid": "u-eth1", "name": "eth1", "rstp_status": {}})
    bridges = [
        {
            "name": bridge,
            "rstp_enable": rstp,
            "rstp_status": {"rstp_root_id": root} if root else {},
            "ports": [f"u-{n}" for n in [*ports, bridge]],
        },
        {"name": "br-phy", "rstp_enable": False, "rstp_status": {}, "ports": "u-eth1"},  # a set of one
    ]
    return bridges, port_rows


CONVERGED = {
    "host1": host_rows(
        "R", {"gre0-host2": ("Root", "Forwarding"), "gre0-host3": ("Alternate", "Discarding")}
    ),
    "host2": host_rows(
        "R", {"gre0-host1": ("Designated", "Forwarding"), "gre0-host3": ("Designated", "Forwarding")}
    ),
    "host3": host_rows(
        "R", {"gre0-host1": ("Designated", "Forwarding"), "gre0-host2": ("Root", "Forwarding")}
    ),
}


def readings(rows: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]]) -> list[Any]:
    return [(h, "br0", b, p) for h, (b, p) in rows.items()]


def test_converged_mesh() -> None:
    tree = tree_state(readings(CONVERGED))
    assert tree.converged and tree.agreed_root == "R"
    assert len(tree.ports) == 6  # not the bridges' own ports, not br-phy's
    assert tree.describe() == "6 of 6 ports stable, root R"


def test_a_designated_port_still_discarding_is_not_ready() -> None:
    rows = dict(CONVERGED)
    rows["host2"] = host_rows(
        "R", {"gre0-host1": ("Designated", "Discarding"), "gre0-host3": ("Designated", "Forwarding")}
    )
    tree = tree_state(readings(rows))
    assert not tree.converged
    assert [p.port for p in tree.unsettled] == ["gre0-host1"]
    assert "5 of 6 ports stable; waiting for host2 gre0-host1 Designated/Discarding" in tree.describe()


def link_status(role: str, state: str, port_id: str, designated: tuple[str, str]) -> dict[str, str]:
    return {
        "rstp_port_role": role,
        "rstp_port_state": state,
        "rstp_port_id": port_id,
        "rstp_designated_bridge_id": designated[0],
        "rstp_designated_port_id": designated[1],
    }


def two_bridges(far_role: str) -> list[Any]:
    """host1's gre0 (Designated, still Discarding) and, at the other end of the link,
    host2's gre0, which names host1's port as its designated one."""
    near = link_status("Designated", "Discarding", "8001", ("B1", "8001"))
    far = link_status(far_role, "Discarding", "8002", ("B1", "8001"))
    out = []
    for host, bid, status in (("host1", "B1", near), ("host2", "B2", far)):
        bridges = [
            {
                "name": "br0",
                "rstp_enable": True,
                "rstp_status": {"rstp_root_id": "B1", "rstp_bridge_id": bid},
                "ports": [f"u-{host}"],
            }
        ]
        out.append((host, "br0", bridges, [{"_uuid": f"u-{host}", "name": "gre0", "rstp_status": status}]))
    return out


def test_a_designated_port_facing_a_blocked_port_is_stable_for_traffic() -> None:
    """Its forward-delay timer still runs, but the other end blocks the link either way."""
    tree = tree_state(two_bridges("Alternate"))
    assert tree.converged and tree.ports[0].faces_blocked
    # facing a port that will forward (a Root port still Discarding), it is not
    tree = tree_state(two_bridges("Root"))
    assert not tree.converged and [p.host for p in tree.unsettled] == ["host1", "host2"]


def test_a_new_port_without_status_is_not_ready() -> None:
    rows = dict(CONVERGED)
    rows["host3"] = host_rows(
        "R",
        {"gre0-host1": ("Designated", "Forwarding"), "gre0-host2": ("Root", "Forwarding"), "cn-w1": ("", "")},
    )
    tree = tree_state(readings(rows))
    assert not tree.converged and "host3 cn-w1 no RSTP role yet" in tree.describe()


def test_bridges_that_disagree_on_the_root_are_not_ready() -> None:
    rows = dict(CONVERGED)
    rows["host3"] = host_rows("S", {"gre0-host1": ("Designated", "Forwarding")})
    tree = tree_state(readings(rows))
    assert not tree.unsettled and not tree.converged
    assert "disagree on the root" in tree.describe()


def test_a_bridge_without_rstp_or_missing_is_not_ready() -> None:
    rows = dict(CONVERGED)
    rows["host2"] = host_rows("", {}, rstp=False)
    assert "host2 br0: RSTP is off" in tree_state(readings(rows)).describe()
    rows["host2"] = ([], [])
    tree = tree_state(readings(rows))
    assert not tree.converged and "host2 br0: no such bridge" in tree.describe()


def test_ports_with_rstp_turned_off_take_no_part() -> None:
    bridges, ports = CONVERGED["host1"]
    ports = [
        *ports,
        {"_uuid": "u-x", "name": "x", "rstp_status": {}, "other_config": {"rstp-enable": "false"}},
    ]
    bridges = [dict(bridges[0], ports=[*bridges[0]["ports"], "u-x"]), bridges[1]]
    assert tree_state([("host1", "br0", bridges, ports)]).converged
    assert rstp_bridges(bridges) == ["br0"]


def test_many_waiting_ports_are_summed_up() -> None:
    ports = {f"cn-c{i}": ("Designated", "Discarding") for i in range(7)}
    text = tree_state([("host1", "br0", *host_rows("R", ports))]).describe()
    assert text.startswith("0 of 7 ports stable; waiting for host1 cn-c0") and text.endswith("and 3 more")


# --- the readiness step --------------------------------------------------------------------


def test_the_readiness_step_is_a_barrier_with_one_command_per_host() -> None:
    intent = RstpConverged("", (("host1", "br0"), ("host2", "br0"), ("host3", "br0")))
    step = Step(intent, "why")
    assert step.id == "/rstp-converged:br0" and step.where == "all hosts" and step.readiness
    assert step.settle == 30.0 and not step.early
    assert [c.host for c in step.commands] == ["host1", "host2", "host3"]
    assert step.ovs_hosts == {"host1", "host2", "host3"}
    hosts = {
        h: Host(h, i, f"10.0.0.{i + 2}", Place.named(f"cn-t-{h}"), "unix:db", run_dir=Path(f"/run/t/{h}"))
        for i, h in enumerate(("host1", "host2", "host3"), start=1)
    }
    shown = step.rendered(render, hosts)
    assert shown == [f"ovs-appctl --target=/run/t/{h}/ovs-vswitchd.ctl rstp/show br0" for h in hosts]
    assert step.rendered(render_plain, hosts) == ["ovs-appctl rstp/show br0"] * 3
    assert step.rendered(render, {}) == ["ovs-appctl rstp/show br0"] * 3  # hosts unknown: as written
    before = Step(Ticking("host1", "a", [True]), "a step of host1")
    assert predecessors((before, step)) == [set(), {0}]


@dataclass(frozen=True)
class Ticking(Intent):
    """Ready after a given number of verify calls; says how far it is."""

    host: str
    name: str
    answers: list[bool] = field(compare=False)
    ready: bool = True  # a readiness step (False: an ordinary one)
    wait: float = 2.0
    undone: list[str] = field(default_factory=list, compare=False)

    @property
    def settle(self) -> float:
        return self.wait

    @property
    def readiness(self) -> bool:
        return self.ready

    def key(self) -> str:
        return self.name

    def title(self) -> str:
        return f"wait for {self.name}"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.OVS, "ovs-appctl rstp/show br0", host="host1"),)

    def apply(self, ctx: Context) -> None:
        pass

    def verify(self, ctx: Context) -> bool:
        return self.answers.pop(0) if self.answers else False

    def undo(self, ctx: Context) -> None:
        self.undone.append(self.name)

    def progress(self, ctx: Context) -> str | None:
        return f"{len(self.answers)} to go"


def test_a_waiting_step_reports_progress_until_it_holds() -> None:
    # not held before the run; then 14 polls (0.05 s apart, ~0.7 s) before it holds
    answers = [False] * 15 + [True]
    step = Step(Ticking("", "tree", answers), "why")
    events: list[StepEvent] = []
    assert Plan("t", "T", "s", (step,)).apply(Context([]), events.append) == 1
    lines = [e for e in events if e.state == "running" and e.message]
    assert lines and lines[0].message.endswith("to go") and lines[0].seconds >= 0.5
    assert events[-1].state == "applied"


def test_a_readiness_step_that_never_holds_fails_within_its_bound_and_says_why() -> None:
    step = Step(Ticking("", "tree", [], wait=0.3), "why")
    with pytest.raises(StepFailed, match=r"not ready after 0.3 s: 0 to go"):
        Plan("t", "T", "s", (step,)).apply(Context([]))


def test_back_and_undo_pass_over_a_readiness_step() -> None:
    ordinary = Ticking("host1", "port", [True] * 10, ready=False)
    ready = Ticking("", "tree", [True] * 10)
    plan = Plan("t", "T", "s", (Step(ordinary, "w"), Step(ready, "w")))
    events: list[StepEvent] = []
    assert plan.back(Context([]), events.append) == 0  # the ordinary step, not the check after it
    assert plan.undo(Context([]), events.append) == 1
    assert ready.undone == [] and ordinary.undone == ["port", "port"]


def test_a_readiness_step_waits_again_once_a_step_before_it_was_applied() -> None:
    """Re-applying after a repair (a restarted ovn-controller): the check that held
    before must wait for what was just made, not pass on the state before it."""
    pending = Ticking("host1", "daemon", [False, True], ready=False)  # broken, then repaired
    check = Ticking("", "caught-up", [True, True])
    plan = Plan("t", "T", "s", (Step(pending, "w"), Step(check, "w")))
    events: list[StepEvent] = []
    assert plan.apply(Context([]), events.append) == 2
    assert [(e.index, e.state) for e in events if e.state in ("applied", "skipped")] == [
        (0, "applied"),
        (1, "applied"),
    ]
    # nothing applied before it: it is read once and passed over
    held = Ticking("host1", "daemon", [True], ready=False)
    again = Ticking("", "caught-up", [True])
    assert Plan("t", "T", "s", (Step(held, "w"), Step(again, "w"))).apply(Context([])) == 0


def test_a_waits_nudge_comes_once_per_period() -> None:
    """Readiness waits drop stale datapath flows every PURGE_EVERY seconds, not at
    every nudge: `every` says when a nudge crossed a period's end."""
    from workbench.intents.base import every

    nudges = [0.5, 1.0, 1.6, 2.9, 3.4, 4.0, 5.9, 6.05, 6.6, 9.9]
    crossed = [t for t, before in zip(nudges, [0.0, *nudges], strict=False) if every(3.0, t, before)]
    assert crossed == [3.4, 6.05, 9.9]


def test_rstp_runs_on_the_labs_timers_and_shows_them() -> None:
    """Forward delay 4 s (the protocol's least) and max age 6 s: a handshake that is
    lost costs 2 x 4 s, not 2 x 15; the shown command sets them with RSTP."""
    from workbench.intents import Rstp
    from workbench.intents.switch import RSTP_TIMERS

    assert RSTP_TIMERS == {"rstp-forward-delay": "4", "rstp-max-age": "6"}
    delay, age = int(RSTP_TIMERS["rstp-forward-delay"]), int(RSTP_TIMERS["rstp-max-age"])
    assert delay >= 4 and 2 * (2 + 1) <= age <= 2 * (delay - 1)  # 802.1D's rules, hello 2 s
    (cmd,) = Rstp("host1", "br0").commands()
    timers = "other_config:rstp-forward-delay=4 other_config:rstp-max-age=6"
    assert cmd.text == f"ovs-vsctl set bridge br0 rstp_enable=true {timers}"
